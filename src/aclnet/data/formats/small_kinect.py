"""Shared parts of the readers of the small Kinect datasets (MSR Action3D, Florence 3D,
UTKinect-Action3D, UTD-MHAD, SBU): file reading whose errors name the file, the subject-based
protocols (including Vemulapalli's `tr_te_splits.mat`) and the final validation into a `SampleSet`.

Every reader returns coordinates in metres in the Kinect camera frame: x horizontal (a subject
facing the camera has the left shoulder at the smaller x), y up, z the distance from the camera.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aclnet.data.formats import InvalidFiles
from aclnet.data.formats.matlab import read_mat
from aclnet.data.sample import Sample, SampleError, SampleSet, validate_sample
from aclnet.errors import InputError
from aclnet.skeleton import get_layout

logger = logging.getLogger(__name__)

# A protocol: name -> (training subjects, test subjects); it becomes the splits `<name>_train` and
# `<name>_test`. Subjects are the meta field `subject` (numbers; SBU's performer pairs 'sXXsYY').
Protocols = Mapping[str, tuple[Collection[int | str], Collection[int | str]]]


def require_file(path: Path) -> Path:
    """`path` itself, or an `InputError` saying that this file of the dataset is missing (or is a
    symbolic link to nothing)."""
    if not path.is_file():
        if path.is_symlink():
            raise InputError(f"{path}: a symbolic link to {os.readlink(path)}, which does not exist")
        raise InputError(f"{path}: no such file (it is part of the dataset folder)")
    return path


def require_dir(path: Path) -> Path:
    """`path` itself, or an `InputError` saying that this folder of the dataset is missing."""
    if not path.is_dir():
        raise InputError(f"{path}: no such folder (it is part of the dataset folder)")
    return path


def load_mat(path: Path, *names: str) -> dict[str, Any]:
    """Load a MATLAB v5 file (structs as attribute objects, no squeezing) holding variables `names`."""
    data = read_mat(require_file(path))
    for name in names:
        if name not in data:
            found = sorted(k for k in data if not k.startswith("__"))
            raise InputError(f"{path}: no variable '{name}' (the file has {found})")
    return data


def mat_strings(path: Path, name: str) -> list[str]:
    """The MATLAB cell array of strings `name` (e.g. `action_names`) as stripped Python strings."""
    cell = np.asarray(load_mat(path, name)[name], dtype=object).ravel()
    strings: list[str] = []
    for k, item in enumerate(cell):
        item = np.asarray(item)
        if item.size != 1 or item.dtype.kind != "U":
            raise InputError(f"{path}: entry {k + 1} of '{name}' is not a string")
        strings.append(str(item.item()).strip())
    if not strings:
        raise InputError(f"{path}: '{name}' is empty")
    return strings


def mat_sequence(value: Any, rows: int, columns: int, where: str) -> np.ndarray:
    """A MATLAB `rows x columns x T` float array (T >= 1); MATLAB stores one frame as `rows x columns`."""
    array = np.asarray(value)
    array = array[..., None] if array.ndim == 2 else array
    if array.ndim != 3 or array.shape[:2] != (rows, columns) or array.dtype.kind != "f" or array.shape[2] == 0:
        raise InputError(f"{where} is {array.dtype} {array.shape}, expected {rows} x {columns} x T numbers")
    return array


def read_table(path: Path, columns: int, *, delimiter: str | None = None) -> np.ndarray:
    """A text file of numbers with `columns` values on every line, as float64 (lines, columns)."""
    require_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # NumPy warns about empty files; raised below
            table = np.loadtxt(path, dtype=np.float64, delimiter=delimiter, ndmin=2)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a table of numbers: {exc}") from exc
    if table.size == 0:
        raise InputError(f"{path}: no data (empty file)")
    if table.shape[1] != columns:
        raise InputError(f"{path}: {table.shape[1]} values per line, expected {columns}")
    return table


def parse_name(pattern: re.Pattern[str], name: str, path: Path, form: str) -> tuple[int, ...]:
    """The integer groups of `name` matched by `pattern`; `form` shows the expected name in errors."""
    match = pattern.fullmatch(name)
    if match is None:
        raise InputError(f"{path}: name '{name}' does not have the form {form}")
    return tuple(int(g) for g in match.groups())


def read_tr_te_splits(path: Path) -> dict[str, tuple[frozenset[int], frozenset[int]]]:
    """The protocols `split01` ... of Vemulapalli's `tr_te_splits.mat`: one row of `tr_subjects`
    and `te_subjects` (subject numbers) per split."""
    data = load_mat(path, "tr_subjects", "te_subjects")
    train, test = np.asarray(data["tr_subjects"]), np.asarray(data["te_subjects"])
    for name, table in (("tr_subjects", train), ("te_subjects", test)):
        if table.ndim != 2 or table.size == 0 or table.dtype.kind not in "iu":
            raise InputError(f"{path}: '{name}' is {table.dtype} {table.shape}, expected a matrix of subject numbers")
    if train.shape[0] != test.shape[0]:
        raise InputError(f"{path}: {train.shape[0]} rows of 'tr_subjects' but {test.shape[0]} of 'te_subjects'")
    protocols: dict[str, tuple[frozenset[int], frozenset[int]]] = {}
    for k, (tr_row, te_row) in enumerate(zip(train.tolist(), test.tolist()), start=1):
        tr_set, te_set = frozenset(tr_row), frozenset(te_row)
        if tr_set & te_set:
            raise InputError(f"{path}: split {k}: subjects {sorted(tr_set & te_set)} are both training and test")
        protocols[f"split{k:02d}"] = (tr_set, te_set)
    return protocols


def protocol_splits(samples: Sequence[Sample], protocols: Protocols, source: Path) -> dict[str, list[str]]:
    """Splits `<name>_train` / `<name>_test`: the samples (in their order) of each protocol's subjects."""
    subjects = np.array([s.meta["subject"] for s in samples])
    ids = np.array([s.sample_id for s in samples], dtype=object)
    splits: dict[str, list[str]] = {}
    for name, (train, test) in protocols.items():
        for part, members in (("train", train), ("test", test)):
            chosen = ids[np.isin(subjects, list(members))].tolist()
            if not chosen:
                raise InputError(f"{source}: split '{name}_{part}' is empty: "
                                 f"no sample has subject in {sorted(members)}")
            splits[f"{name}_{part}"] = chosen
    return splits


def build_sample_set(
    entries: Sequence[tuple[Sample, Path]],
    *,
    source: Path,
    layout: str,
    classes: list[str],
    protocols: Protocols,
    invalid: InvalidFiles | None = None,
) -> SampleSet:
    """Validate every sample against `layout` and `classes` (errors name the sample's file), refuse
    duplicate ids and samples without any skeleton, and add the protocols' splits.

    With `invalid` (the reader's skipped files), invalid samples are skipped there when it skips, and
    its skipped files are reported; a read that keeps nothing is an error.
    """
    invalid = invalid if invalid is not None else InvalidFiles(False)
    num_joints = get_layout(layout).num_joints
    seen: dict[str, Path] = {}
    samples: list[Sample] = []
    for sample, path in entries:
        where = f"{path}: sample '{sample.sample_id}'"
        try:
            if sample.sample_id in seen:
                raise SampleError(f"{where}: duplicate of the one from {seen[sample.sample_id]}")
            validate_sample(sample, str(path), num_classes=len(classes), num_joints=num_joints)
            if not sample.keypoint.any():
                raise SampleError(f"{where}: all coordinates are zero (no skeleton in any frame)")
        except SampleError as exc:
            invalid.skip(sample.sample_id, exc)
            continue
        seen[sample.sample_id] = path
        samples.append(sample)
    invalid.report(logger, source)
    if not samples:
        if invalid.skipped:
            raise invalid.nothing_valid(source)
        raise InputError(f"{source}: no samples found")
    return SampleSet(samples, protocol_splits(samples, protocols, source), layout, list(classes))
