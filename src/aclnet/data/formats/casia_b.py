"""CASIA-B 2D poses as used by GaitGraph: CSV rows `image_name,x0,y0,c0,...,x16,y16,c16`.

Source: one CSV file or a folder of them (GaitGraph ships `casia-b_pose_train_valid.csv` and
`casia-b_pose_test.csv`); each file starts with one header line. `image_name` is
`DIR/sss-cc-nn-vvv/FRAME.jpg`: subject 001-124, condition nm/bg/cl, sequence number, view 000-180.
Rows are grouped by sequence id (over all files) and ordered by frame number; a frame given twice is
an error. Each sequence is one sample: id `sss-cc-nn-vvv`, keypoint (1, T, 17, 2) and score (1, T, 17)
in the `coco` layout, label = subject - 1 (classes '001'..'124', so labels are the same whatever
subjects are present), meta subject, condition, sequence, view.
Splits (GaitGraph protocol): `train` subjects 1-74, `test` subjects 75-124.
A row with the wrong number of values, a malformed image name or a non-numeric value is an error
naming the file and line; with `skip_invalid` such rows are dropped and reported as one logging warning,
and so are files that cannot be read as text.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from aclnet.data.checks import plain_number
from aclnet.data.formats import InvalidFiles
from aclnet.data.sample import Sample, SampleSet, validate_sample
from aclnet.errors import InputError

logger = logging.getLogger(__name__)

NUM_JOINTS = 17
NUM_SUBJECTS = 124
TRAIN_SUBJECTS = range(1, 75)
CONDITIONS = ("nm", "bg", "cl")
VIEWS = tuple(range(0, 181, 18))
MAX_LINE = 8192
"""Longest row read (a CASIA-B row of 52 fields has under 1,000 characters)."""
MAX_FRAME_DIGITS = 18
_SEQUENCE = re.compile(r"(\d{3})-(nm|bg|cl)-(\d{2})-(\d{3})")


def read(source: Path, *, skip_invalid: bool = False) -> SampleSet:
    """Read one CSV file or every CSV file of a folder into one sample per walking sequence."""
    source = Path(source)
    invalid = InvalidFiles(skip_invalid)
    files = [source] if source.is_file() else sorted(source.glob("*.csv"))
    if not files:
        raise InputError(f"{source}: no .csv files")
    parts = [p for p in (invalid.read(path.name, _read_csv, path, skip_invalid) for path in files) if p is not None]
    invalid.report(logger, source)
    if not parts:
        raise invalid.nothing_valid(source)
    sequence = np.concatenate([p[0] for p in parts])
    frame = np.concatenate([p[1] for p in parts])
    values = np.concatenate([p[2] for p in parts])
    if len(sequence) == 0:
        raise InputError(f"{source}: no pose rows")
    order = np.lexsort((frame, sequence))
    sequence, frame, values = sequence[order], frame[order], values[order]
    twice = np.flatnonzero((sequence[1:] == sequence[:-1]) & (frame[1:] == frame[:-1]))
    if twice.size:
        k = twice[0]
        raise InputError(f"{source}: sequence '{sequence[k]}' has frame {frame[k]} twice")
    ids, starts = np.unique(sequence, return_index=True)
    classes = [f"{s:03d}" for s in range(1, NUM_SUBJECTS + 1)]
    samples = [
        _sample(str(i), block, str(source), len(classes))
        for i, block in zip(ids, np.split(values, starts[1:]), strict=True)
    ]
    splits = {
        "train": [s.sample_id for s in samples if s.meta["subject"] in TRAIN_SUBJECTS],
        "test": [s.sample_id for s in samples if s.meta["subject"] not in TRAIN_SUBJECTS],
    }
    return SampleSet(samples, splits, "coco", classes)


def _sample(sequence_id: str, rows: np.ndarray, source: str, num_classes: int) -> Sample:
    """One validated sample from the ordered (T, 51) rows of a sequence."""
    subject, condition, number, view = _SEQUENCE.fullmatch(sequence_id).groups()  # type: ignore[union-attr]
    joints = rows.reshape(len(rows), NUM_JOINTS, 3)
    meta: dict[str, int | str] = {
        "subject": int(subject), "condition": condition, "sequence": int(number), "view": int(view),
    }
    sample = Sample(sequence_id, joints[None, ..., :2], int(subject) - 1, score=joints[None, ..., 2], meta=meta)
    return validate_sample(sample, source, num_classes=num_classes, num_joints=NUM_JOINTS)


def _read_csv(path: Path, skip_invalid: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sequence id (N,), frame number (N,) and values (N, 51) of the valid rows of one file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read as text: {exc}") from exc
    lines = lines[1:]
    lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    # The rows go into one fixed-width array: its width is bounded by the typical row (twice the median
    # length), so one long line cannot make every row as wide; longer lines are invalid rows of their own.
    width = int(min(MAX_LINE, 2 * np.median(lengths[lengths > 0]) + 64)) if lengths.any() else 1
    too_long = lengths > width
    rows = np.array(["" if long else line for line, long in zip(lines, too_long)], dtype=f"<U{width}")
    line_numbers = np.arange(2, len(lines) + 2)
    if rows.size:
        kept = (np.char.str_len(np.char.strip(rows)) > 0) | too_long
        rows, line_numbers, lengths, too_long = rows[kept], line_numbers[kept], lengths[kept], too_long[kept]
    if not rows.size:
        return rows, np.zeros(0, dtype=np.int64), np.zeros((0, 3 * NUM_JOINTS), dtype=np.float32)
    name, _, rest = np.char.partition(rows, ",").T
    head, _, frame_file = np.char.rpartition(name, "/").T
    sequence = np.char.rpartition(head, "/")[:, 2]
    stem = np.char.partition(frame_file, ".")[:, 0]
    ok = _valid_rows(rows, name, sequence, stem) & ~too_long
    values, numeric = _parse_values(rest, ok)
    ok &= numeric
    bad = np.flatnonzero(~ok)
    if bad.size:
        problems = [
            f"{path}, line {line_numbers[k]}: "
            + (f"{lengths[k]} characters, longer than twice the file's typical row" if too_long[k]
               else _row_problem(rows[k], name[k], sequence[k], stem[k])) for k in bad[:5]
        ]
        if not skip_invalid:
            raise InputError(problems[0])
        logger.warning("%s: skipped %d invalid rows, e.g.\n  %s", path, bad.size, "\n  ".join(problems))
    return sequence[ok], stem[ok].astype(np.int64), values[ok]


def _valid_rows(rows: np.ndarray, name: np.ndarray, sequence: np.ndarray, stem: np.ndarray) -> np.ndarray:
    """Rows with 52 fields, a three-part image name, a valid sequence id and a numeric frame."""
    ok = (np.char.count(rows, ",") == 3 * NUM_JOINTS) & (np.char.count(name, "/") == 2) & np.char.isdecimal(stem)
    ok &= np.char.str_len(stem) <= MAX_FRAME_DIGITS  # frame numbers are int64
    ids, inverse = np.unique(sequence, return_inverse=True)
    ok &= np.array([_valid_sequence(str(i)) for i in ids], dtype=bool)[inverse]
    return ok


def _valid_sequence(sequence_id: str) -> bool:
    match = _SEQUENCE.fullmatch(sequence_id)
    return match is not None and 1 <= int(match.group(1)) <= NUM_SUBJECTS and int(match.group(4)) in VIEWS


def _parse_values(rest: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 51) float32 values (zeros for rows not ok) and which rows were numeric."""
    values = np.zeros((len(rest), 3 * NUM_JOINTS), dtype=np.float32)
    numeric = np.ones(len(rest), dtype=bool)
    try:
        if ok.any():
            values[ok] = np.loadtxt(rest[ok], delimiter=",", dtype=np.float32, ndmin=2)
    except ValueError:  # find the offending rows (error path only)
        numeric = np.array([_is_numeric(r) for r in rest])
        good = ok & numeric
        if good.any():
            values[good] = np.loadtxt(rest[good], delimiter=",", dtype=np.float32, ndmin=2)
    return values, numeric


def _is_numeric(text: str) -> bool:
    try:
        [plain_number(v) for v in text.split(",")]
    except ValueError:
        return False
    return True


def _row_problem(row: str, name: str, sequence: str, stem: str) -> str:
    """Why a row is invalid, for the error message."""
    fields = row.count(",") + 1
    if fields != 3 * NUM_JOINTS + 1:
        return f"{fields} values; expected 52 (image_name and 17 x (x, y, confidence))"
    if name.count("/") != 2 or not stem.isdecimal() or not _valid_sequence(sequence):
        return f"image name '{name}' is not DIR/sss-cc-nn-vvv/FRAME.jpg (subject 001-124, nm/bg/cl, view 000-180)"
    if len(stem) > MAX_FRAME_DIGITS:
        return f"image name '{name}': frame number {stem[:30]!r} has more than {MAX_FRAME_DIGITS} digits"
    return "a value is not a number"
