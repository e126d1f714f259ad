"""Florence 3D Actions (Seidenari et al. 2013), MATLAB release of Vemulapalli et al. (CVPR 2014).

`source` is the dataset folder: `skeletal_data.mat` (struct array `skeletal_data`, 215 records with
`original_skeletal_data` 3 x 15 x T world coordinates in metres, `subject`, `action`),
`action_names.mat` (9 class names) and `tr_te_splits.mat`. Joints are in the order of the
`florence3d` layout (the dataset README's order).

Axes: Vemulapalli stores the coordinates as (x, depth, height): in every record the second row is
the distance from the camera (about 2-3 m) and the third row is up (the head is above the feet).
The reader reorders them to (x, y up, z depth), the frame of the other Kinect datasets; this is
a swap of the two rows, so the subject's left shoulder keeps the smaller x as in MSR Action3D.

The records carry no repetition number: `sequence` counts the repetitions of one action by one
subject in file order (sample ids `aAA_sSS_eEE`). Splits: `split01_train` ... `split10_test`
from `tr_te_splits.mat`. Meta: subject, sequence.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from aclnet.data.formats.small_kinect import (
    build_sample_set,
    load_mat,
    mat_sequence,
    mat_strings,
    read_tr_te_splits,
)
from aclnet.data.sample import Sample, SampleSet
from aclnet.errors import InputError

LAYOUT = "florence3d"
NUM_JOINTS = 15
# Rows of `original_skeletal_data` giving (x, y up, z depth).
AXES = [0, 2, 1]


def read(source: Path) -> SampleSet:
    """The 215 sequences with class names and the 10 published splits."""
    source = Path(source)
    path = source / "skeletal_data.mat"
    records = np.asarray(load_mat(path, "skeletal_data")["skeletal_data"], dtype=object).ravel()
    classes = mat_strings(source / "action_names.mat", "action_names")
    repetitions: Counter[tuple[int, int]] = Counter()
    entries = []
    for k, record in enumerate(records, start=1):
        keypoint, action, subject = _read_record(record, f"{path}: record {k} of 'skeletal_data'")
        repetitions[action, subject] += 1
        sequence = repetitions[action, subject]
        meta: dict[str, int | str] = {"subject": subject, "sequence": sequence}
        entries.append((Sample(f"a{action:02d}_s{subject:02d}_e{sequence:02d}", keypoint, action - 1, meta=meta), path))
    protocols = read_tr_te_splits(source / "tr_te_splits.mat")
    return build_sample_set(entries, source=source, layout=LAYOUT, classes=classes, protocols=protocols)


def _read_record(record: Any, where: str) -> tuple[np.ndarray, int, int]:
    """One record (a struct, or a cell holding one) as (keypoint (1, T, 15, 3) in (x, y up, z depth),
    action, subject), 1-based numbers."""
    cell = np.asarray(record, dtype=object)
    record = cell.item() if cell.size == 1 else record
    try:
        coords = mat_sequence(record.original_skeletal_data, 3, NUM_JOINTS, f"{where}: 'original_skeletal_data'")
        action = _number(record.action, "action", where)
        subject = _number(record.subject, "subject", where)
    except AttributeError as exc:
        raise InputError(f"{where}: missing field ({exc})") from exc
    return coords[AXES].transpose(2, 1, 0)[None], action, subject


def _number(value: Any, field: str, where: str) -> int:
    """A MATLAB scalar field holding a whole number."""
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "iuf" or not float(array.item()).is_integer():
        raise InputError(f"{where}: '{field}' is {array.tolist()!r}, expected one whole number")
    return int(array.item())
