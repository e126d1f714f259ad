"""UTKinect-Action3D (Xia et al. 2012): 20 continuous recordings cut into labelled action segments.

`source` is the dataset folder: `action_names.mat` (10 class names), `tr_te_splits.mat` and
`joints/`: `joints_sSS_eEE.txt` (per line a frame id then 20 joints x (x, y, z) in metres, Kinect
SDK order: the `kinect-sdk` layout) and the label files.

Labels come from `joints/actionLabel_modified.txt`, Vemulapalli's corrected bounds (they equal his
`frame_indices.mat`). The original `actionLabel.txt` differs in 7 bounds, among them a typo
(s03_e01 push 2556-3622 for 3556-3622, which swallows the throw segment) and an end frame id
absent from the recording (s01_e02 walk 154-192 for 154-270).
Each line `action: startFrame endFrame` gives frame ids, not row numbers: the ids skip frames and
repeat (consecutive captures can share an id), so a segment is every row whose frame id lies in
[start, end], in file order. Entries with NaN bounds (one in the release: s10_e02 carry) have no
segment and are skipped, giving 199 samples.

Splits: `split01_train` ... `split10_test` from `tr_te_splits.mat`, whose rows list subjects
(5 training, 5 test). Sample ids `sSS_eEE_aAA`; meta: subject, sequence (the episode eEE).
With `skip_invalid`, a recording whose joints file is missing or invalid is skipped with its segments
and reported (count and names) as one logging warning.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from aclnet.data.formats import InvalidFiles, check_cover
from aclnet.data.formats.small_kinect import (
    build_sample_set,
    mat_strings,
    parse_name,
    read_table,
    read_tr_te_splits,
    require_file,
)
from aclnet.data.sample import Sample, SampleSet
from aclnet.errors import InputError

LAYOUT = "kinect-sdk"
NUM_JOINTS = 20
LABEL_FILE = "actionLabel_modified.txt"
_RECORDING = re.compile(r"s(\d+)_e(\d+)")

# (label, first frame id, last frame id) of each segment of a recording.
Segments = list[tuple[int, int, int]]


def read(source: Path, *, skip_invalid: bool = False) -> SampleSet:
    """The 199 labelled segments of the 20 recordings, with class names and the 10 published splits."""
    source = Path(source)
    invalid = InvalidFiles(skip_invalid)
    classes = mat_strings(source / "action_names.mat", "action_names")
    recordings = read_labels(source / "joints" / LABEL_FILE, classes)
    entries = []
    for recording, segments in recordings.items():
        path = source / "joints" / f"joints_{recording}.txt"
        entries += invalid.read(path.name, _recording_entries, path, recording, segments) or []
    protocols = read_tr_te_splits(source / "tr_te_splits.mat")
    return build_sample_set(entries, source=source, layout=LAYOUT, classes=classes, protocols=protocols,
                            invalid=invalid)


def _recording_entries(path: Path, recording: str, segments: Segments) -> list[tuple[Sample, Path]]:
    """(sample, file) of each labelled segment of one recording."""
    subject, episode = parse_name(_RECORDING, recording, path, "sSS_eEE")
    meta: dict[str, int | str] = {"subject": subject, "sequence": episode}
    return [(Sample(sample_id, keypoint, label, meta=dict(meta)), path)
            for sample_id, keypoint, label in _cut(path, recording, segments)]


def read_labels(path: Path, classes: list[str]) -> dict[str, Segments]:
    """The segments of each recording in a label file; entries with NaN bounds are skipped.

    Action names are matched to `classes` ignoring case and underscores (`sitDown` = `sit_down`).
    """
    try:
        text = require_file(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc
    index = {_key(name): k for k, name in enumerate(classes)}
    recordings: dict[str, Segments] = {}
    segments: Segments | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        where = f"{path}: line {number}"
        if not line:
            continue
        if _RECORDING.fullmatch(line):
            segments = recordings.setdefault(line, [])
            continue
        name, colon, bounds = line.partition(":")
        values = bounds.split()
        if not colon or len(values) != 2 or segments is None:
            raise InputError(f"{where}: expected 'sSS_eEE' or, after one, 'action: start end'; got {line!r}")
        if _key(name) not in index:
            raise InputError(f"{where}: unknown action '{name.strip()}'; the classes are {classes}")
        try:
            start, end = float(values[0]), float(values[1])
        except ValueError as exc:
            raise InputError(f"{where}: frame ids {values} are not numbers") from exc
        if math.isnan(start) or math.isnan(end):
            continue  # no segment was labelled for this action
        if not (start.is_integer() and end.is_integer() and 0 <= start <= end):
            raise InputError(f"{where}: frame ids {values} must be whole numbers with start <= end")
        segments.append((index[_key(name)], int(start), int(end)))
    if not recordings:
        raise InputError(f"{path}: no recordings (lines 'sSS_eEE') found")
    return recordings


def _cut(path: Path, recording: str, segments: Segments) -> list[tuple[str, np.ndarray, int]]:
    """(sample id, keypoint (1, T, 20, 3), label) of each segment of the recording in `path`."""
    table = read_table(path, 1 + NUM_JOINTS * 3)
    frame_ids = table[:, 0]
    back = np.flatnonzero(np.diff(frame_ids) < 0)
    if back.size:
        raise InputError(f"{path}: frame ids decrease at line {back[0] + 2}; they must be in recording order")
    joints = table[:, 1:].reshape(1, -1, NUM_JOINTS, 3)
    bounds = []
    for label, start, end in segments:
        lo, hi = np.searchsorted(frame_ids, start, side="left"), np.searchsorted(frame_ids, end, side="right")
        if hi <= lo:
            raise InputError(
                f"{path}: no frame with id in [{start}, {end}] for segment {label + 1} of {recording} "
                f"(the ids run from {frame_ids[0]:.0f} to {frame_ids[-1]:.0f})"
            )
        bounds.append((label, lo, hi))
    check_cover(sum(hi - lo for _, lo, hi in bounds), len(frame_ids), f"{path} ({recording})")
    return [(f"{recording}_a{label + 1:02d}", joints[:, lo:hi].copy(), label) for label, lo, hi in bounds]


def _key(name: str) -> str:
    """An action name compared without case, spaces and underscores."""
    return re.sub(r"[\s_]", "", name).lower()
