"""Pose-estimator output in the COCO keypoint-results style (AlphaPose and others), format `pose-json`.

A file is a JSON list of detections, one per person per image:
`{"image_id": "12.jpg", "category_id": 1, "keypoints": [17 x (x, y, score)], "score": s, "box": [...], "idx": i}`
in the COCO-17 keypoint order. Only `keypoints` and `image_id` are required; `score` is used when every
detection of the file has one; `box`, `category_id` and `idx` (AlphaPose's person index, often
meaningless) are ignored.

Source: one JSON file, or a folder searched recursively for `*.json` (sorted by relative path). One file
is one sequence and one sample: id = the file's relative path without `.json` (posix), or the stem for
a single file.

Frames: the frame number is the integer in `image_id` (an int >= 0, or the digits that end the name
before its extension: "12.jpg", "000012.png", "frame_12.jpg" -> 12). Frames are ordered by that number
and only the frames present are kept: a gap in the numbering is dropped, not filled (walking sequences
are continuous; 48 of PsyMo's 480 files skip numbers), so memory follows the number of detections,
never the numbers written in the file.

One track per file: frames with several detections are "ambiguous"; their count is the sample's
`meta["ambiguous_frames"]` and one summary line per read is logged. The track starts at the anchor,
the file's most confident detection (highest `score`, or the mean keypoint score when some detection
has no `score`; ties: the earliest frame, then the first in the file), and runs from there forwards and
backwards through the frames: in each frame the detection whose centre (confidence-weighted mean of its
keypoints; the plain mean when all its keypoint scores are 0) is nearest to the centre of the detection
kept in the neighbouring frame is kept. A frame with one detection keeps it, whoever it is.
Why an anchor and not the first frame: in PsyMo's view-0 walks the walker enters the image from the
bottom while a bystander stands in the background; seeding the track on the first frame changes 344
frames in 11 of the 480 files and follows the bystander (all 68 frames of `8/008_00_0_0_cl`), while the
walker is the most confident detection. Frames are never dropped: where the only detection of a frame
is someone else (PsyMo: the first frames of a few view-0 walks, before the walker enters), it is kept.

Output: keypoint (1, T, 17, 2) float32 pixels, score (1, T, 17), layout `coco`; `img_shape` is the
`img_shape` option ((height, width) of the video) or None.

Meta and labels from the file name: the `name_pattern` option (`aclnet.data.formats.file_names`), e.g.
`name_pattern="psymo"` for PsyMo's names (meta subject, view, direction, run, condition, sequence; PsyMo's
variations: nm, bg, cl, ph, txt, wsf, wss; `nm` has sequences 1-4, the others 1 and 3). Without a pattern the
meta holds only `ambiguous_frames`, and samples are labelled by their folder (PsyMo's `<ID>/` folders give the
identities).
Splits: one split `all` with every sample; protocols select samples by meta fields elsewhere.

Errors name the file (and the detection index): not JSON (or nested too deeply), not a list, no
detections, a detection that is not an object, `keypoints` not a list of exactly 51 finite numbers
(booleans and strings are not numbers), a missing or unreadable `image_id`, a `score` that is not a
finite number. With `skip_invalid` such files are dropped and reported (count and names) as one
logging warning.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from aclnet.data.formats.file_names import (
    NamedFile,
    NamePattern,
    compile_pattern,
    label_files,
    meta_from_name,
    named_file,
)
from aclnet.data.sample import Sample, SampleSet, validate_sample
from aclnet.errors import InputError

logger = logging.getLogger(__name__)

NUM_JOINTS = 17
NUM_VALUES = 3 * NUM_JOINTS
_NUMBER_TYPES = frozenset({int, float})  # exact types: bool is not a number here
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FRAME = re.compile(r"(?<!\d)(\d{1,18})(?:\.[A-Za-z0-9]*)?\Z")  # digits ending the name, before its extension


def read(
    source: Path,
    *,
    name_pattern: str | None = None,
    skip_invalid: bool = False,
    img_shape: tuple[int, int] | list[int] | None = None,
) -> SampleSet:
    """Read one detections file or a folder of them (recursively) into one single-person sample per file."""
    source = Path(source)
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    pattern = compile_pattern(name_pattern)
    shape = _img_shape(img_shape)
    sequences: list[NamedFile] = []
    skipped: list[tuple[str, str]] = []
    for path, sample_id, folder in _files(source):
        try:
            sequences.append(_read_file(path, sample_id, folder, pattern, shape))
        except InputError as exc:
            if not skip_invalid:
                raise
            skipped.append((sample_id, str(exc)))
    if skipped:
        logger.warning(
            "%s: skipped %d invalid pose files: %s; first problem: %s",
            source, len(skipped), ", ".join(name for name, _ in skipped), skipped[0][1],
        )
    if not sequences:
        raise InputError(f"{source}: no valid pose file (all {len(skipped)} skipped); first problem: {skipped[0][1]}")
    classes = label_files(sequences, pattern)
    samples = [s.sample for s in sequences]
    frames = sum(s.num_frames for s in samples)
    ambiguous = sum(int(s.meta["ambiguous_frames"]) for s in samples)
    log = logger.warning if ambiguous else logger.info
    log(
        "%s: %d sequences, %d frames; %d frames held several detections (one track kept per sequence)",
        source, len(samples), frames, ambiguous,
    )
    return SampleSet(samples, {"all": [s.sample_id for s in samples]}, "coco", classes)


def _img_shape(img_shape: Any) -> tuple[int, int] | None:
    if img_shape is None:
        return None
    if (
        not isinstance(img_shape, (list, tuple))
        or len(img_shape) != 2
        or not all(type(v) is int and v > 0 for v in img_shape)
    ):
        raise InputError(f"img_shape must be (height, width), two positive integers, got {img_shape!r}")
    return int(img_shape[0]), int(img_shape[1])


def _files(source: Path) -> list[tuple[Path, str, str]]:
    """(path, sample id, relative folder) of each file to read."""
    if source.is_file():
        return [(source, source.stem, ".")]
    found = [(p.relative_to(source).as_posix(), p) for p in source.rglob("*.json") if p.is_file()]
    if not found:
        raise InputError(f"{source}: no .json files")
    found.sort()
    return [(p, rel[: -len(".json")], p.parent.relative_to(source).as_posix()) for rel, p in found]


def _read_file(
    path: Path, sample_id: str, folder: str, pattern: NamePattern | None, img_shape: tuple[int, int] | None
) -> NamedFile:
    meta, subject_text = meta_from_name(path, pattern)
    values, frame_numbers, det_score = _detections(path, _load(path))
    keep, ambiguous = _track(values, frame_numbers, det_score)
    joints = values[keep].reshape(len(keep), NUM_JOINTS, 3).astype(np.float32)
    meta["ambiguous_frames"] = ambiguous
    sample = Sample(sample_id, joints[None, ..., :2], 0, score=joints[None, ..., 2], img_shape=img_shape, meta=meta)
    validate_sample(sample, str(path), num_joints=NUM_JOINTS)
    return named_file(sample, folder, subject_text)


def _load(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    except RecursionError as exc:
        raise InputError(f"{path}: not valid JSON: nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, and integers with too many digits
        raise InputError(f"{path}: not valid JSON: {exc}") from exc


def _detections(path: Path, doc: Any) -> tuple[np.ndarray, list[int], np.ndarray]:
    """Values (N, 51) float64, frame number (N,) and confidence (N,) of each checked detection."""
    if not isinstance(doc, list):
        raise InputError(
            f"{path}: expected a JSON list of detections (COCO keypoint results), got {type(doc).__name__}"
        )
    if not doc:
        raise InputError(f"{path}: no detections")
    rows: list[list[Any]] = []
    frames: list[int] = []
    scores: list[float | None] = []
    for k, det in enumerate(doc):
        where = f"{path}: detection {k}"
        if not isinstance(det, dict):
            raise InputError(f"{where}: is a {type(det).__name__}, expected an object with 'image_id' and 'keypoints'")
        keypoints = det.get("keypoints")
        numbers = isinstance(keypoints, list) and len(keypoints) == NUM_VALUES
        if not (numbers and set(map(type, keypoints)) <= _NUMBER_TYPES):
            raise InputError(f"{where}: 'keypoints' {_keypoints_problem(keypoints)}")
        rows.append(keypoints)
        frames.append(_frame_number(det.get("image_id"), where))
        scores.append(_score(det, where))
    values = _as_array(path, rows)
    bad = np.flatnonzero(~(np.abs(values) <= _FLOAT32_MAX).all(axis=1))
    if bad.size:
        raise InputError(f"{path}: detection {bad[0]}: 'keypoints' has a NaN, infinite or too large value")
    if all(s is not None for s in scores):
        confidence = np.array(scores, dtype=np.float64)
    else:
        confidence = values[:, 2::3].mean(axis=1)
    return values, frames, confidence


def _keypoints_problem(keypoints: Any) -> str:
    expected = f"must be a list of {NUM_VALUES} numbers (17 x (x, y, score))"
    if keypoints is None:
        return f"is missing; it {expected}"
    if not isinstance(keypoints, list):
        return f"is a {type(keypoints).__name__}; it {expected}"
    if len(keypoints) != NUM_VALUES:
        return f"has {len(keypoints)} values; it {expected}"
    j, value = next((j, v) for j, v in enumerate(keypoints) if type(v) not in _NUMBER_TYPES)
    return f"value {j} is {value!r} ({type(value).__name__}); it {expected}"


def _frame_number(image_id: Any, where: str) -> int:
    if type(image_id) is int and image_id >= 0:
        return image_id
    if isinstance(image_id, str):
        name = image_id.replace("\\", "/").rsplit("/", 1)[-1]
        match = _FRAME.search(name)
        if match is not None:
            return int(match.group(1))
    raise InputError(
        f"{where}: image_id {image_id!r} holds no frame number (expected an integer >= 0 or a name like '12.jpg')"
    )


def _score(det: dict[str, Any], where: str) -> float | None:
    score = det.get("score")
    if score is None:
        return None
    try:
        ok = type(score) in _NUMBER_TYPES and math.isfinite(score)
    except OverflowError:
        ok = False
    if not ok:
        raise InputError(f"{where}: 'score' {score!r} is not a finite number")
    return float(score)


def _as_array(path: Path, rows: list[list[Any]]) -> np.ndarray:
    try:
        return np.array(rows, dtype=np.float64)
    except OverflowError:  # an integer beyond float range: find it (error path only)
        for k, row in enumerate(rows):
            try:
                np.array(row, dtype=np.float64)
            except OverflowError:
                raise InputError(f"{path}: detection {k}: 'keypoints' has a value too large for a number") from None
        raise


def _track(values: np.ndarray, frames: list[int], confidence: np.ndarray) -> tuple[list[int], int]:
    """Index of the detection kept in each frame (frames in number order) and the count of ambiguous frames."""
    order = sorted(range(len(frames)), key=lambda k: (frames[k], k))
    groups: list[list[int]] = []
    for k in order:
        if groups and frames[groups[-1][0]] == frames[k]:
            groups[-1].append(k)
        else:
            groups.append([k])
    ambiguous = sum(len(g) > 1 for g in groups)
    keep = [g[0] for g in groups]
    if not ambiguous:
        return keep, 0
    centre = _centres(values)
    frame_of = {k: t for t, g in enumerate(groups) for k in g}
    anchor = min(range(len(frames)), key=lambda k: (-confidence[k], frame_of[k], k))
    t0 = frame_of[anchor]
    keep[t0] = anchor
    for step in (1, -1):
        previous = anchor
        t = t0 + step
        while 0 <= t < len(groups):
            group = groups[t]
            if len(group) > 1:
                distance = ((centre[group] - centre[previous]) ** 2).sum(axis=1)
                keep[t] = group[int(np.argmin(distance))]
            previous = keep[t]
            t += step
    return keep, ambiguous


def _centres(values: np.ndarray) -> np.ndarray:
    """(N, 2) confidence-weighted mean keypoint of each detection (plain mean where all scores are 0)."""
    joints = values.reshape(len(values), NUM_JOINTS, 3)
    weight = np.clip(joints[..., 2], 0.0, None)
    total = weight.sum(axis=1, keepdims=True)
    weighted = (joints[..., :2] * weight[..., None]).sum(axis=1) / np.where(total > 0, total, 1.0)
    return np.where(total > 0, weighted, joints[..., :2].mean(axis=1))
