"""NTU RGB+D 60 / 120 raw `.skeleton` files (a folder of them, or one file).

Each file `SsssCcccPpppRrrrAaaa.skeleton` becomes one sample: keypoint (2, T, 25, 3) in the
`nturgb+d` layout (x, y, z in metres), label = action - 1, meta setup/camera/performer/replication.
All T frames of the file are kept; a frame without a body is zeros. Bodies are tracked by their
bodyID; the two with the largest motion (variance of each joint coordinate over the frames where the
body is present, summed over joints and axes) are kept, most active first, and a one-body sample has
a zero second person. Files with no body in any frame are skipped (the dataset's published lists of
samples with missing skeletons): their count and names are reported as one logging warning.
With `skip_invalid`, malformed files (bad name, truncated or corrupt text) are skipped too and reported
the same way; without it the first one is an error naming the file and line.

Declared sizes are checked against the file before anything is allocated for them: a frame count
above the lines that follow or above `MAX_FRAMES` (NTU clips have at most 300 frames; every frame
becomes 2 x 25 x 3 numbers of output, so a short file of empty frames could otherwise fill memory),
a body count above the lines left, and negative counts are errors.

Variant: `ntu60` or `ntu120`; by default NTU-120 when any file has action > 60 or setup > 17.
`ntu60` on a folder that also holds NTU-120 files keeps the NTU-60 part (setups 1-17), with a warning.
Splits: xsub_train/xsub_val by performer, and xview_train/xview_val (NTU-60: cameras 2, 3 train) or
xset_train/xset_val (NTU-120: even setups train).
"""

from __future__ import annotations

import io
import itertools
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aclnet.data.class_names import class_names_for
from aclnet.data.formats import InvalidFiles
from aclnet.data.sample import Sample, SampleSet, validate_sample
from aclnet.errors import InputError

logger = logging.getLogger(__name__)

NUM_JOINTS = 25
NUM_PERSONS = 2
_BODY_VALUES = 10
MAX_FRAMES = 10_000
_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")

NTU60_XSUB_TRAIN = frozenset({1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38})
NTU120_XSUB_TRAIN = NTU60_XSUB_TRAIN | frozenset({
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89,
    91, 92, 93, 94, 95, 97, 98, 100, 103,
})
NTU60_XVIEW_TRAIN_CAMERAS = frozenset({2, 3})
VARIANTS = ("ntu60", "ntu120")


@dataclass(frozen=True)
class NtuName:
    """The fields of a file name SsssCcccPpppRrrrAaaa."""

    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    @property
    def in_ntu60(self) -> bool:
        return self.setup <= 17 and self.action <= 60


def read(source: Path, *, variant: str | None = None, skip_invalid: bool = False) -> SampleSet:
    """Read a folder of `.skeleton` files (or one file) into a validated sample set."""
    source = Path(source)
    invalid = InvalidFiles(skip_invalid)
    files = _skeleton_files(source)
    names = {path: invalid.read(path.name, parse_name, path) for path in files}
    files = [p for p in files if names[p] is not None]
    variant = _resolve_variant(variant, [n for n in names.values() if n is not None])
    if variant == "ntu60":
        outside = [p for p in files if not names[p].in_ntu60]
        if outside:
            logger.warning("%s: variant ntu60: left out %d NTU-120-only files", source, len(outside))
        files = [p for p in files if names[p].in_ntu60]
    classes = class_names_for(variant)
    samples: list[Sample] = []
    empty: list[str] = []
    for path in files:
        sample = invalid.read(path.name, _read_sample, path, names[path], len(classes))
        if sample is None:
            continue
        if sample is _NO_BODY:
            empty.append(path.name)
            continue
        assert isinstance(sample, Sample)
        samples.append(sample)
    if empty:
        logger.warning("%s: skipped %d files with no body in any frame: %s", source, len(empty), ", ".join(empty))
    invalid.report(logger, source)
    if not samples:
        if invalid.skipped:
            raise invalid.nothing_valid(source, "files")
        raise InputError(f"{source}: no .skeleton file with a body in any frame")
    by_id = {path.stem: name for path, name in names.items() if name is not None}
    return SampleSet(samples, _splits([s.sample_id for s in samples], by_id, variant), "nturgb+d", classes)


_NO_BODY = object()  # what `_read_sample` returns for a file without a body in any frame


def _read_sample(path: Path, name: NtuName, num_classes: int) -> Sample | object:
    """One validated sample, or `_NO_BODY`."""
    keypoint = read_skeleton_file(path)
    if keypoint is None:
        return _NO_BODY
    meta: dict[str, int | str] = {
        "setup": name.setup, "camera": name.camera,
        "performer": name.performer, "replication": name.replication,
    }
    sample = Sample(path.stem, keypoint, name.action - 1, meta=meta)
    return validate_sample(sample, str(path), num_classes=num_classes, num_joints=NUM_JOINTS)


def parse_name(path: Path) -> NtuName:
    """Setup, camera, performer, replication and action from SsssCcccPpppRrrrAaaa.skeleton."""
    match = _NAME.fullmatch(path.stem)
    if match is None:
        raise InputError(f"{path}: file name is not SsssCcccPpppRrrrAaaa.skeleton")
    name = NtuName(*(int(g) for g in match.groups()))
    if min(name.setup, name.camera, name.performer, name.replication, name.action) < 1 or name.action > 120:
        raise InputError(f"{path}: file name has a field out of range (action 1..120, others >= 1)")
    return name


def read_skeleton_file(path: Path) -> np.ndarray | None:
    """(2, T, 25, 3) float32 keypoints of the two most active bodies; None when no frame has a body."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    num_frames, frame_of_body, xyz, body_ids = parse_skeleton_text(data, str(path))
    if len(frame_of_body) == 0:
        return None
    return two_most_active(num_frames, frame_of_body, xyz, body_ids)


def parse_skeleton_text(data: bytes, where: str) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Parse the text of a .skeleton file.

    Returns the frame count, the frame of each body record (B,), its joints' x, y, z (B, 25, 3) and
    its bodyID (B,) as bytes (exact: the IDs exceed float precision). The count lines are followed
    frame by frame and body by body; the joint lines are parsed all at once (x, y, z columns only).
    """
    lines = _Lines(data.split(b"\n"), where)
    num_frames = lines.count("the frame count")
    if num_frames > MAX_FRAMES:
        raise InputError(f"{where}, line 1: {num_frames} frames declared; at most {MAX_FRAMES} are accepted")
    lines.need(num_frames, f"{num_frames} frames declared (each needs a body-count line)")
    frames: list[int] = []
    body_ids: list[bytes] = []
    blocks: list[list[bytes]] = []
    for t in range(num_frames):
        bodies = lines.count(f"the body count of frame {t + 1}")
        lines.need(2 * bodies, f"frame {t + 1} declares {bodies} bodies (2 lines or more each)")
        for _ in range(bodies):
            body_ids.append(lines.body_id())
            joints = lines.count("a joint count")
            if joints != NUM_JOINTS:
                raise InputError(f"{where}, line {lines.number - 1}: {joints} joints; NTU bodies have {NUM_JOINTS}")
            blocks.append(lines.take(NUM_JOINTS))
            frames.append(t)
    lines.expect_end()
    xyz = _joint_xyz(blocks, where)
    return num_frames, np.array(frames, dtype=np.int64), xyz, np.array(body_ids, dtype=bytes)


class _Lines:
    """Sequential access to the lines of a .skeleton file; errors name the file and the line."""

    def __init__(self, lines: list[bytes], where: str) -> None:
        while lines and not lines[-1].strip():  # the final newline, trailing blank lines
            lines.pop()
        self._lines = lines
        self._where = where
        self._next = 0

    @property
    def number(self) -> int:
        """1-based number of the next line."""
        return self._next + 1

    def take(self, n: int) -> list[bytes]:
        """The next n lines; a file that ends before them is truncated."""
        if self._next + n > len(self._lines):
            end = len(self._lines)
            raise InputError(f"{self._where}: truncated: the file ends at line {end}, before its declared frames")
        taken = self._lines[self._next : self._next + n]
        self._next += n
        return taken

    def count(self, what: str) -> int:
        """The next line as an integer count >= 0 (frames, bodies or joints)."""
        (line,) = self.take(1)
        text = line.strip()
        if not (text.isdigit() and len(text) <= 18):
            found = line[:40].decode(errors="replace")
            expected = f"expected {what} (a whole number >= 0)"
            raise InputError(f"{self._where}, line {self._next}: {expected}, found '{found}'")
        return int(text)

    def need(self, n: int, what: str) -> None:
        """Refuse a declared size needing more lines than are left, before anything is read for it."""
        left = len(self._lines) - self._next
        if n > left:
            raise InputError(
                f"{self._where}: truncated: the file ends at line {len(self._lines)}, before its declared frames "
                f"(line {self._next}: {what}; {left} lines follow)"
            )

    def body_id(self) -> bytes:
        """The bodyID of the next line, a body line of 10 values."""
        (line,) = self.take(1)
        values = line.split()
        if len(values) != _BODY_VALUES:
            raise InputError(f"{self._where}, line {self._next}: {len(values)} values; a body line has {_BODY_VALUES}")
        return values[0]

    def expect_end(self) -> None:
        """Only blank lines may follow the last declared frame."""
        rest = [k for k, line in enumerate(self._lines[self._next :], start=self.number) if line.strip()]
        if rest:
            raise InputError(f"{self._where}, line {rest[0]}: text after the last declared frame")


def _joint_xyz(blocks: list[list[bytes]], where: str) -> np.ndarray:
    """(B, 25, 3) x, y, z of all joint lines, parsed in one call."""
    if not blocks:
        return np.zeros((0, NUM_JOINTS, 3))
    text = io.BytesIO(b"\n".join(itertools.chain.from_iterable(blocks)))
    try:
        xyz = np.loadtxt(text, usecols=(0, 1, 2), comments=None, ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise InputError(f"{where}: a joint line does not start with x y z numbers: {exc}") from exc
    if len(xyz) != len(blocks) * NUM_JOINTS:
        raise InputError(f"{where}: blank lines among the joint lines")
    return xyz.reshape(len(blocks), NUM_JOINTS, 3)


def two_most_active(num_frames: int, frame_of_body: np.ndarray, xyz: np.ndarray, body_ids: np.ndarray) -> np.ndarray:
    """(2, T, 25, 3) float32: the two bodies with the largest motion, most active first.

    Motion of a body: variance over its frames of each joint coordinate, summed over joints and axes.
    Ties keep the order of first appearance.
    """
    _, first, body = np.unique(body_ids, return_index=True, return_inverse=True)
    count = np.bincount(body)[:, None, None]
    total = np.zeros((len(first), NUM_JOINTS, 3))
    squares = np.zeros_like(total)
    with np.errstate(over="ignore", invalid="ignore"):  # infinite coordinates: refused by validate_sample
        np.add.at(total, body, xyz)
        np.add.at(squares, body, xyz**2)
        motion = (squares / count - (total / count) ** 2).sum(axis=(1, 2))
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.lexsort((first, -motion))] = np.arange(len(first))
    person = rank[body]
    keep = person < NUM_PERSONS
    out = np.zeros((NUM_PERSONS, num_frames, NUM_JOINTS, 3), dtype=np.float32)
    out[person[keep], frame_of_body[keep]] = xyz[keep]
    return out


def _skeleton_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    files = sorted(source.glob("*.skeleton"))
    if not files:
        raise InputError(f"{source}: no .skeleton files in this folder")
    return files


def _resolve_variant(variant: str | None, names: Iterable[NtuName]) -> str:
    """The requested variant, or ntu120 when any file has action > 60 or setup > 17."""
    if variant is not None:
        if variant not in VARIANTS:
            raise InputError(f"unknown NTU variant '{variant}'; valid variants are {', '.join(VARIANTS)}")
        return variant
    return "ntu60" if all(n.in_ntu60 for n in names) else "ntu120"


def _splits(ids: list[str], names: dict[str, NtuName], variant: str) -> dict[str, list[str]]:
    """xsub by performer; xview by camera (NTU-60) or xset by setup parity (NTU-120)."""
    xsub = NTU60_XSUB_TRAIN if variant == "ntu60" else NTU120_XSUB_TRAIN
    second = "xview" if variant == "ntu60" else "xset"
    in_second = {i: _in_second_train(names[i], variant) for i in ids}
    return {
        "xsub_train": [i for i in ids if names[i].performer in xsub],
        "xsub_val": [i for i in ids if names[i].performer not in xsub],
        f"{second}_train": [i for i in ids if in_second[i]],
        f"{second}_val": [i for i in ids if not in_second[i]],
    }


def _in_second_train(name: NtuName, variant: str) -> bool:
    """Training side of X-View (NTU-60: cameras 2 and 3) or X-Set (NTU-120: even setups)."""
    if variant == "ntu60":
        return name.camera in NTU60_XVIEW_TRAIN_CAMERAS
    return name.setup % 2 == 0
