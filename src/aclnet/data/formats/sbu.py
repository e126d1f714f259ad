"""SBU Kinect Interaction, clean version (Yun et al., CVPRW 2012): two-person interactions.

`source` is the dataset folder with `sXXsYY/CC/NNN/skeleton_pos.txt`: set (a pair of the 7
performers), class 01-08, sequence. Each line is a frame index then 2 persons x 15 joints x
(x, y, z), person A (on the left of the image) first, joints in OpenNI order (the `sbu` layout).

The files hold normalised values: x and y in [0, 1] across the image (y down) and z in
[0, 7.8125]. The dataset README gives the inverse, in millimetres: X = 1280 - 2560 x,
Y = 960 - 1920 y, Z = z * 10000 / 7.8125. The reader applies it and divides by 1000, so the
keypoints are metres in the Kinect camera frame (y up, z depth) like the other Kinect datasets,
with equal units on the three axes (the normalised values stretch x, y and z differently).

Class names follow the dataset's folder numbering (01 approaching ... 08 exchanging objects).
Splits: the README's 5 folds of sets, `foldK_test` = the sets of fold K and `foldK_train` = the
other four folds. Sample ids `sXXsYY_CC_NNN`; meta: subject (the set, e.g. 's01s02'), sequence.
A `skeleton_pos.txt` that is a symbolic link to nothing is an error naming it (sequence folders
without the file are not samples). With `skip_invalid`, unreadable or invalid files are skipped and
reported (count and names) as one logging warning.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from aclnet.data.class_names import SBU_CLASSES
from aclnet.data.formats import InvalidFiles
from aclnet.data.formats.small_kinect import build_sample_set, parse_name, read_table
from aclnet.data.sample import Sample, SampleSet
from aclnet.errors import InputError

LAYOUT = "sbu"
FILE_NAME = "skeleton_pos.txt"
NUM_PERSONS = 2
NUM_JOINTS = 15
FOLDS = {
    1: ("s01s02", "s03s04", "s05s02", "s06s04"),
    2: ("s02s03", "s02s07", "s03s05", "s05s03"),
    3: ("s01s03", "s01s07", "s07s01", "s07s03"),
    4: ("s02s01", "s02s06", "s03s02", "s03s06"),
    5: ("s04s02", "s04s03", "s04s06", "s06s02", "s06s03"),
}
SETS = frozenset(s for fold in FOLDS.values() for s in fold)
# Normalised (x, y, z) -> metres: offset + scale * value (the README's formula in millimetres / 1000).
OFFSET = np.array([1.28, 0.96, 0.0])
SCALE = np.array([-2.56, -1.92, 10.0 / 7.8125])
_CLASS_SEQUENCE = re.compile(r"(\d+)/(\d+)")


def read(source: Path, *, skip_invalid: bool = False) -> SampleSet:
    """All `skeleton_pos.txt` files of the 21 sets, in set/class/sequence order, with the 5 folds."""
    source = Path(source)
    invalid = InvalidFiles(skip_invalid)
    # Not glob("s*/*/*/skeleton_pos.txt"): a literal last component skips symbolic links to nothing.
    folders = sorted(p for p in source.glob("s*/*/*") if p.is_dir())
    paths = [f / FILE_NAME for f in folders if (f / FILE_NAME).exists() or (f / FILE_NAME).is_symlink()]
    read_files = (invalid.read(path.relative_to(source), _read_file, path) for path in paths)
    entries = [entry for entry in read_files if entry is not None]
    protocols = {f"fold{k}": (SETS - set(test), test) for k, test in FOLDS.items()}
    return build_sample_set(entries, source=source, layout=LAYOUT, classes=list(SBU_CLASSES), protocols=protocols,
                            invalid=invalid)


def to_metres(normalised: np.ndarray) -> np.ndarray:
    """The README's inverse of the normalisation, in metres, on an array whose last axis is (x, y, z);
    joints that are all zeros (missing) stay zeros."""
    missing = ~normalised.any(axis=-1, keepdims=True)
    return np.where(missing, 0.0, OFFSET + SCALE * normalised)


def _read_file(path: Path) -> tuple[Sample, Path]:
    """One `skeleton_pos.txt` as a two-person sample in metres."""
    set_name = path.parents[2].name
    if set_name not in SETS:
        raise InputError(f"{path}: set '{set_name}' is not one of the 21 sets of the 5 folds ({sorted(SETS)})")
    label, sequence = parse_name(_CLASS_SEQUENCE, f"{path.parents[1].name}/{path.parent.name}", path, "sXXsYY/CC/NNN")
    table = read_table(path, 1 + NUM_PERSONS * NUM_JOINTS * 3, delimiter=",")
    keypoint = to_metres(table[:, 1:].reshape(-1, NUM_PERSONS, NUM_JOINTS, 3)).transpose(1, 0, 2, 3)
    sample_id = f"{set_name}_{label:02d}_{sequence:03d}"
    return Sample(sample_id, keypoint, label - 1, meta={"subject": set_name, "sequence": sequence}), path
