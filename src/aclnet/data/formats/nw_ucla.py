"""NW-UCLA skeleton JSON as released with CTR-GCN (`all_sqe/`): one file per clip.

File `aAA_sSS_eEE_vVV.json` (action, subject, episode, view) holding
`{"file_name": "aAA_sSS_eEE_vVV", "skeletons": T x 20 x 3, "label": 1..10}` (Kinect v1 world
coordinates; label numbers the ten actions a01-a06, a08, a09, a11, a12 in order).
Source: a folder of such files or one file. Each clip is a sample: id = `file_name` (the file's stem
when absent), keypoint (1, T, 20, 3) in the `kinect-sdk` layout, label = label - 1, meta subject,
view and sequence (the episode). Splits: `train` views 1 and 2, `test` view 3.

`skeletons` must hold JSON numbers only (strings and true/false are refused); two clips with the same
id are an error naming both files. With `skip_invalid`, malformed clips (and the later of two with the
same id) are skipped and reported (count and names) as one logging warning.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from aclnet.data.class_names import class_names_for
from aclnet.data.formats import InvalidFiles, load_json
from aclnet.data.sample import Sample, SampleSet, describe, validate_sample
from aclnet.errors import InputError

logger = logging.getLogger(__name__)

NUM_JOINTS = 20
NUM_CLASSES = 10
TRAIN_VIEWS = (1, 2)
_NAME = re.compile(r"a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})")
_NUMBER_TYPES = frozenset({int, float})  # exact types: bool is not a number here


def read(source: Path, *, skip_invalid: bool = False) -> SampleSet:
    """Read a folder of NW-UCLA JSON clips (or one clip) into a validated sample set."""
    source = Path(source)
    invalid = InvalidFiles(skip_invalid)
    files = [source] if source.is_file() else sorted(source.glob("*.json"))
    if not files:
        raise InputError(f"{source}: no .json clip files")
    classes = class_names_for("nw-ucla")
    samples: list[Sample] = []
    first_file: dict[str, Path] = {}
    for path in files:
        sample = invalid.read(path.name, _read_valid_clip, path, len(classes))
        if sample is None:
            continue
        if sample.sample_id in first_file:
            other = first_file[sample.sample_id]
            invalid.skip(path.name, f"{path}: clip id '{sample.sample_id}' (its file_name) is also the id of {other}")
            continue
        first_file[sample.sample_id] = path
        samples.append(sample)
    invalid.report(logger, source, "clip files")
    if not samples:
        raise invalid.nothing_valid(source, "clip files")
    splits = {
        "train": [s.sample_id for s in samples if s.meta["view"] in TRAIN_VIEWS],
        "test": [s.sample_id for s in samples if s.meta["view"] not in TRAIN_VIEWS],
    }
    return SampleSet(samples, splits, "kinect-sdk", classes)


def _read_valid_clip(path: Path, num_classes: int) -> Sample:
    return validate_sample(_read_clip(path), str(path), num_classes=num_classes, num_joints=NUM_JOINTS)


def _read_clip(path: Path) -> Sample:
    """One (not yet validated) sample from a clip file."""
    doc = load_json(path)
    if not isinstance(doc, dict) or "skeletons" not in doc or "label" not in doc:
        raise InputError(f"{path}: expected {{'file_name', 'skeletons': T x 20 x 3, 'label': 1..10}}")
    sample_id = doc.get("file_name", path.stem)
    match = _NAME.fullmatch(sample_id) if isinstance(sample_id, str) else None
    if match is None:
        raise InputError(f"{path}: clip name {describe(sample_id)} is not aAA_sSS_eEE_vVV")
    _, subject, episode, view = (int(g) for g in match.groups())
    joints = _joints(path, doc["skeletons"])
    label = doc["label"]
    if isinstance(label, bool) or not isinstance(label, int) or not 1 <= label <= NUM_CLASSES:
        raise InputError(f"{path}: sample '{sample_id}': label {describe(label)} is not an integer 1..{NUM_CLASSES}")
    meta: dict[str, int | str] = {"subject": subject, "view": view, "sequence": episode}
    return Sample(sample_id, joints[None], label - 1, meta=meta)


def _joints(path: Path, skeletons: Any) -> np.ndarray:
    """The checked T x 20 x 3 float32 array of a clip's `skeletons` (JSON numbers only)."""
    shape = _nested_shape(skeletons)
    if len(shape) != 3 or shape[0] < 1 or shape[1:] != (NUM_JOINTS, 3):
        raise InputError(f"{path}: 'skeletons' has shape {shape}, expected T x {NUM_JOINTS} x 3")
    for t, frame in enumerate(skeletons):
        if not (isinstance(frame, list) and len(frame) == NUM_JOINTS):
            raise InputError(f"{path}: 'skeletons' frame {t} is {describe(frame)}, expected {NUM_JOINTS} joints")
        for j, joint in enumerate(frame):
            if not (isinstance(joint, list) and len(joint) == 3 and set(map(type, joint)) <= _NUMBER_TYPES):
                raise InputError(f"{path}: 'skeletons' frame {t}, joint {j} is {describe(joint)}, expected 3 numbers")
    try:
        joints = np.array(skeletons, dtype=np.float64)
    except OverflowError:
        raise InputError(f"{path}: 'skeletons' holds an integer too large for a number") from None
    with np.errstate(over="ignore"):
        return joints.astype(np.float32)  # beyond float32: infinite, refused by validate_sample


def _nested_shape(value: Any) -> tuple[int, ...]:
    """Lengths of the first list at each of up to 4 levels (the shape the data claims)."""
    shape: list[int] = []
    while isinstance(value, list) and len(shape) < 4:
        shape.append(len(value))
        value = value[0] if value else None
    return tuple(shape)
