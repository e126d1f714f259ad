"""PKU-MMD phase 1: skeleton text files cut into one sample per labelled action instance.

Source: a folder holding
- the skeleton files `NNNN-V.txt` (V: view L, M or R; one line per frame of 150 numbers: 2 persons x
  25 joints x (x, y, z), the second person zeros when absent) in a subfolder named `skeleton`,
  `Skeleton`, `skeletons`, `PKU_Skeleton_Renew` or `Data`;
- the label files of the same names (one line `action_id,start_frame,end_frame,confidence` per
  instance, action ids 1..51) in a subfolder named `label`, `Label`, `labels` or
  `Train_Label_PKU_final`, or in the folder given as `label_dir`;
- optionally the dataset's `cross-subject.txt` / `cross-view.txt` (a `Training videos:` line, the
  training sequence ids comma-separated, a `Validataion videos:` line, the validation ids) in the
  folder itself or in its `Split/` subfolder.

An instance is the rows `start_frame` to `end_frame - 1` (0-based, the slice `[start:end]` that the
common preprocessing scripts take); an end beyond the file is cut to the file's length. Samples: id
`NNNN-V_KKK` (KKK: the instance's row in the label file, from 0), keypoint (2, T, 25, 3) in the
`nturgb+d` layout, label = action_id - 1, meta view ('L', 'M', 'R') and sequence (NNNN).
Splits: xsub_train/xsub_val and xview_train/xview_val from the split files present; without
`cross-view.txt`, the paper's X-View rule: views M and R train (xview_train), view L tests (xview_val).
With `skip_invalid`, a skeleton file that cannot be read (or whose label file cannot) is skipped with
its instances and reported (count and names) as one logging warning.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from aclnet.data.class_names import class_names_for
from aclnet.data.formats import InvalidFiles, check_cover
from aclnet.data.sample import Sample, SampleSet, validate_sample
from aclnet.errors import InputError

logger = logging.getLogger(__name__)

NUM_JOINTS = 25
NUM_PERSONS = 2
SKELETON_DIRS = ("skeleton", "Skeleton", "skeletons", "PKU_Skeleton_Renew", "Data")
LABEL_DIRS = ("label", "Label", "labels", "Train_Label_PKU_final")
SPLIT_FILES = {"xsub": "cross-subject.txt", "xview": "cross-view.txt"}
XVIEW_TRAIN_VIEWS = ("M", "R")
_NAME = re.compile(r"(\d{4})-([LMR])")


def read(source: Path, *, label_dir: str | Path | None = None, skip_invalid: bool = False) -> SampleSet:
    """Read every skeleton file of the folder with its label file into one sample per instance."""
    source = Path(source)
    invalid = InvalidFiles(skip_invalid)
    skeleton_dir = _subfolder(source, SKELETON_DIRS, "skeleton")
    labels = Path(label_dir) if label_dir is not None else _subfolder(source, LABEL_DIRS, "label")
    files = sorted(skeleton_dir.glob("*.txt"))
    if not files:
        raise InputError(f"{skeleton_dir}: no NNNN-V.txt skeleton files")
    classes = class_names_for("pku-mmd")
    samples: list[Sample] = []
    for path in files:
        samples += invalid.read(path.name, _read_sequence, path, labels / path.name, len(classes)) or []
    invalid.report(logger, source, "skeleton files")
    if not samples:
        raise invalid.nothing_valid(source, "skeleton files")
    return SampleSet(samples, _splits(source, samples), "nturgb+d", classes)


def _read_sequence(path: Path, label_path: Path, num_classes: int) -> list[Sample]:
    """The validated samples of the instances of one skeleton file."""
    sequence, view = _parse_name(path)
    frames = read_skeleton(path)
    samples = []
    for k, (action, start, end) in enumerate(read_labels(label_path, frames.shape[1])):
        keypoint = np.ascontiguousarray(frames[:, start:end])
        sample = Sample(f"{path.stem}_{k:03d}", keypoint, int(action) - 1, meta={"view": view, "sequence": sequence})
        samples.append(validate_sample(sample, str(label_path), num_classes=num_classes, num_joints=NUM_JOINTS))
    return samples


def read_skeleton(path: Path) -> np.ndarray:
    """(2, T, 25, 3) float32 keypoints of one skeleton file (150 numbers per line)."""
    values = _load_table(path, delimiter=None)
    if values.shape[1] != NUM_PERSONS * NUM_JOINTS * 3:
        raise InputError(f"{path}: {values.shape[1]} numbers per line; PKU-MMD skeleton lines have 150")
    return values.reshape(len(values), NUM_PERSONS, NUM_JOINTS, 3).transpose(1, 0, 2, 3).astype(np.float32)


def read_labels(path: Path, num_frames: int) -> np.ndarray:
    """(K, 3) int rows (action_id, start, end) of a label file, checked against the sequence length."""
    if not path.is_file():
        raise InputError(f"{path}: label file not found for the skeleton file of the same name")
    table = _load_table(path, delimiter=",")
    if table.shape[1] < 3:
        expected = "action_id,start_frame,end_frame,confidence"
        raise InputError(f"{path}: {table.shape[1]} values per line; expected {expected}")
    rows = table[:, :3]
    if not (np.abs(rows) < 2**53).all():
        raise InputError(f"{path}, line {_first(~(np.abs(rows) < 2**53)) + 1}: action and frames must be whole numbers")
    if not np.array_equal(rows, np.round(rows)):
        raise InputError(f"{path}, line {_first(rows != np.round(rows)) + 1}: action and frames must be integers")
    rows = rows.astype(np.int64)
    rows[:, 2] = np.minimum(rows[:, 2], num_frames)
    checks = (
        ((rows[:, 0] < 1) | (rows[:, 0] > 51), "action id outside 1..51"),
        (rows[:, 1] < 0, "negative start frame"),
        (rows[:, 1] >= rows[:, 2], f"empty segment (start >= end, or start beyond the {num_frames} frames)"),
    )
    for bad, problem in checks:
        if bad.any():
            raise InputError(f"{path}, line {_first(bad) + 1}: {problem}")
    check_cover(int((rows[:, 2] - rows[:, 1]).sum()), num_frames, str(path))
    return rows


def _load_table(path: Path, delimiter: str | None) -> np.ndarray:
    """A 2-D float table from a text file; errors name the file."""
    try:
        table = np.loadtxt(path, delimiter=delimiter, ndmin=2, dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a table of numbers: {exc}") from exc
    if table.size == 0:
        raise InputError(f"{path}: empty file")
    return table


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))[0])


def _parse_name(path: Path) -> tuple[int, str]:
    match = _NAME.fullmatch(path.stem)
    if match is None:
        raise InputError(f"{path}: file name is not NNNN-V.txt (V one of L, M, R)")
    return int(match.group(1)), match.group(2)


def _subfolder(source: Path, names: tuple[str, ...], what: str) -> Path:
    for name in names:
        if (source / name).is_dir():
            return source / name
    raise InputError(f"{source}: no {what} folder; expected a subfolder named one of {', '.join(names)}")


def _splits(source: Path, samples: list[Sample]) -> dict[str, list[str]]:
    """Splits from the dataset's split files, else the X-View rule by view."""
    sequence_of = {s.sample_id: s.sample_id.rsplit("_", 1)[0] for s in samples}
    splits: dict[str, list[str]] = {}
    for prefix, name in SPLIT_FILES.items():
        path = next((p for p in (source / name, source / "Split" / name, source / "split" / name) if p.is_file()), None)
        if path is None:
            continue
        train, val = read_split_file(path)
        splits[f"{prefix}_train"] = [i for i, seq in sequence_of.items() if seq in train]
        splits[f"{prefix}_val"] = [i for i, seq in sequence_of.items() if seq in val]
    if "xview_train" not in splits:
        splits["xview_train"] = [s.sample_id for s in samples if s.meta["view"] in XVIEW_TRAIN_VIEWS]
        splits["xview_val"] = [s.sample_id for s in samples if s.meta["view"] not in XVIEW_TRAIN_VIEWS]
    return splits


def read_split_file(path: Path) -> tuple[set[str], set[str]]:
    """Training and validation sequence ids of cross-subject.txt / cross-view.txt.

    Layout: a header line ending in ':' starting with 'Train', the ids (comma-separated, over one or
    more lines), then a header starting with 'Valid' (the release spells it 'Validataion') and its ids.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise InputError(f"{path}: not a text split file (not UTF-8: byte {exc.start} is {byte:#04x})") from None
    parts: dict[str, set[str]] = {}
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        text = line.strip()
        if text.endswith(":"):
            current = _section(text)
            if current is None:
                raise InputError(f"{path}, line {number}: unknown section '{text}'; expected Training/Validation")
            parts[current] = set()
        elif text:
            if current is None:
                raise InputError(f"{path}, line {number}: sequence ids before a 'Training videos:' header")
            parts[current].update(i.strip() for i in text.split(",") if i.strip())
    if set(parts) != {"train", "val"}:
        raise InputError(f"{path}: expected a 'Training videos:' and a 'Validataion videos:' section")
    return parts["train"], parts["val"]


def _section(header: str) -> str | None:
    """'train' or 'val' for a split-file header ('Training videos:', 'Validataion videos:')."""
    lowered = header.lower()
    return "train" if lowered.startswith("train") else "val" if lowered.startswith("valid") else None
