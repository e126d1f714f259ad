"""MSR Action3D (Li et al. 2010), real-world-coordinates release of Vemulapalli et al. (CVPR 2014).

`source` is the dataset folder: `action_names.mat` (20 class names), `files_used.mat` (the 557
sequences of the standard protocol), `tr_te_splits.mat` and `real_world_coordinates/
aAA_sSS_eEE_skeleton3D.txt` (one line `x y z confidence` per joint, 20 lines per frame, joints in
the order of the `msr-action3d` layout; metres, y up, z depth).

Only the 557 listed sequences are read. The other 10 files of the release are not part of the
protocol (one of them, a13_s09_e02, is all zeros) and are ignored. The confidence column is
dropped (3D data carries no scores). Frames where the tracker lost the person are all zeros in
the files (13 of the used sequences, in `bend` and `pickup and throw`); they are kept as zeros,
the convention for missing joints.

Splits: `xsub_train`/`xsub_test` (subjects 1, 3, 5, 7, 9 train) and `split01_train` ...
`split10_test` from `tr_te_splits.mat`. Meta: subject, sequence (the episode eEE).
With `skip_invalid`, missing or invalid sequence files are skipped and reported (count and names) as
one logging warning.
"""

from __future__ import annotations

import re
from pathlib import Path

from aclnet.data.formats import InvalidFiles
from aclnet.data.formats.small_kinect import build_sample_set, mat_strings, parse_name, read_table, read_tr_te_splits
from aclnet.data.sample import Sample, SampleSet
from aclnet.errors import InputError

LAYOUT = "msr-action3d"
NUM_JOINTS = 20
XSUB = ((1, 3, 5, 7, 9), (2, 4, 6, 8, 10))
_NAME = re.compile(r"a(\d+)_s(\d+)_e(\d+)")


def read(source: Path, *, skip_invalid: bool = False) -> SampleSet:
    """The 557 sequences of the standard protocol, with class names and the published splits."""
    source = Path(source)
    invalid = InvalidFiles(skip_invalid)
    classes = mat_strings(source / "action_names.mat", "action_names")
    names = mat_strings(source / "files_used.mat", "files_used")
    folder = source / "real_world_coordinates"
    read_files = (invalid.read(name, _read_sequence, folder / f"{name}_skeleton3D.txt", name) for name in names)
    entries = [entry for entry in read_files if entry is not None]
    protocols = {"xsub": XSUB, **read_tr_te_splits(source / "tr_te_splits.mat")}
    return build_sample_set(entries, source=source, layout=LAYOUT, classes=classes, protocols=protocols,
                            invalid=invalid)


def _read_sequence(path: Path, name: str) -> tuple[Sample, Path]:
    """One `aAA_sSS_eEE_skeleton3D.txt` file as a one-person sample (confidences dropped)."""
    action, subject, episode = parse_name(_NAME, name, path, "aAA_sSS_eEE")
    table = read_table(path, 4)
    if len(table) % NUM_JOINTS:
        raise InputError(f"{path}: {len(table)} lines, not a whole number of {NUM_JOINTS}-joint frames")
    keypoint = table[:, :3].reshape(1, -1, NUM_JOINTS, 3)
    return Sample(name, keypoint, action - 1, meta={"subject": subject, "sequence": episode}), path
