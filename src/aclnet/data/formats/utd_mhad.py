"""UTD-MHAD skeleton modality (Chen, Jafari, Kehtarnavaz, ICIP 2015).

`source` is the dataset folder with `Skeleton/aA_sS_tT_skeleton.mat` (action 1-27, subject 1-8,
trial 1-4; variable `d_skel`, 20 joints x 3 x T, Kinect v1 world coordinates in metres, y up,
z depth). Joints are in the order of `Skeleton/Skeleton_joint_order.txt`; when that file is
present the reader checks that it names the joints of the `utd-mhad` layout in the same order.
The release has 861 files (three trials are absent from it: a8_s1_t4, a23_s6_t4, a27_s8_t4).

Class names are those of the dataset's README (the files carry none). Split: `xsub_train` /
`xsub_test` (subjects 1, 3, 5, 7 train; 2, 4, 6, 8 test). Sample ids `aA_sS_tT`; meta: subject,
sequence (the trial). With `skip_invalid`, badly named or unreadable files are skipped and reported
(count and names) as one logging warning.
"""

from __future__ import annotations

import re
from pathlib import Path

from aclnet.data.class_names import UTD_MHAD_CLASSES
from aclnet.data.formats import InvalidFiles
from aclnet.data.formats.small_kinect import build_sample_set, load_mat, mat_sequence, parse_name, require_dir
from aclnet.data.sample import Sample, SampleSet
from aclnet.errors import InputError
from aclnet.skeleton import get_layout

LAYOUT = "utd-mhad"
NUM_JOINTS = 20
XSUB = ((1, 3, 5, 7), (2, 4, 6, 8))
JOINT_ORDER_FILE = "Skeleton_joint_order.txt"
_NAME = re.compile(r"a(\d+)_s(\d+)_t(\d+)_skeleton\.mat")
_JOINT_LINE = re.compile(r"\s*\d+\.\s*([A-Za-z_ ]+?)\s*;?\s*")


def read(source: Path, *, skip_invalid: bool = False) -> SampleSet:
    """All `aA_sS_tT_skeleton.mat` files, ordered by action, subject and trial, with the x-sub split."""
    invalid = InvalidFiles(skip_invalid)
    folder = require_dir(Path(source) / "Skeleton")
    if (folder / JOINT_ORDER_FILE).is_file():
        check_joint_order(folder / JOINT_ORDER_FILE)
    files = sorted(folder.glob("a*_skeleton.mat"))
    named = ((invalid.read(p.name, parse_name, _NAME, p.name, p, "aA_sS_tT_skeleton.mat"), p) for p in files)
    numbered = sorted((numbers, p) for numbers, p in named if numbers is not None)
    read_files = (invalid.read(path.name, _read_file, path, *numbers) for numbers, path in numbered)
    entries = [entry for entry in read_files if entry is not None]
    return build_sample_set(entries, source=Path(source), layout=LAYOUT, classes=list(UTD_MHAD_CLASSES),
                            protocols={"xsub": XSUB}, invalid=invalid)


def check_joint_order(path: Path) -> None:
    """Refuse a joint order file whose numbered names differ from the `utd-mhad` layout's joints."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc
    names = [m.group(1).strip().lower().replace(" ", "_") for m in map(_JOINT_LINE.fullmatch, lines) if m]
    expected = list(get_layout(LAYOUT).joint_names)
    if names != expected:
        raise InputError(f"{path}: joint order {names} differs from the '{LAYOUT}' layout's {expected}")


def _read_file(path: Path, action: int, subject: int, trial: int) -> tuple[Sample, Path]:
    """One `.mat` file as a one-person sample."""
    d_skel = mat_sequence(load_mat(path, "d_skel")["d_skel"], NUM_JOINTS, 3, f"{path}: 'd_skel'")
    meta: dict[str, int | str] = {"subject": subject, "sequence": trial}
    return Sample(f"a{action}_s{subject}_t{trial}", d_skel.transpose(2, 0, 1)[None], action - 1, meta=meta), path
