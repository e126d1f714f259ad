"""ST-GCN Kinetics-skeleton JSON (one file per clip, OpenPose 18 joints, 2D + score).

Source, one of:
- a single clip file `CLIP_ID.json`;
- a folder of clip files (`*_label.json` files in it are not clips); its label file is `label_file`
  or, when present, the sibling `FOLDER_label.json` (ST-GCN's `kinetics_train` +
  `kinetics_train_label.json`);
- a folder whose subfolders end in `_train`, `_val` or `_test` (ST-GCN's `kinetics-skeleton/` with
  `kinetics_train/` and `kinetics_val/`): each subfolder is read as above.
Split rule: a clip folder whose name ends in `_train`, `_val` or `_test` gives the split of that name
(`train`, `val`, `test`); other folders and single files give no split.

A label file maps clip ids to `{"has_skeleton", "label", "label_index"}`: labels come from it, and
clips it marks `has_skeleton: false` are skipped. Without one, the clip's own `label_index` is used.
Frames are placed by `frame_index` (1-based, as ST-GCN writes it; T = the largest index, frames not
listed are zeros; entries sharing an index pool their persons). In each frame the persons are ordered
by summed joint score and the first `num_person` kept (M = num_person, zero-padded).
keypoint (M, T, 18, 2) with ST-GCN's normalised coordinates (about [0, 1]), score (M, T, 18); layout
`openpose`. Clips without any person in any frame are skipped; skipped clips are reported as one
logging warning.

Checks: `pose` and `score` hold JSON numbers only (strings such as "0.5" and true/false are refused);
`frame_index` is an integer from 1 to max(300, 2 x the file's entries) (ST-GCN's clips have at most
300 frames, every entry listed; a larger index would only allocate empty frames); `num_person` is
1..100; clip ids (file stems) are unique over all folders read. With `skip_invalid`, malformed clip
files are skipped and reported (count and names) as one logging warning; without it the first one is
an error naming the file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from aclnet.data.formats import InvalidFiles, load_json
from aclnet.data.formats.pyskl import stack_by_frame
from aclnet.data.sample import Sample, SampleSet, describe, validate_sample
from aclnet.errors import InputError

logger = logging.getLogger(__name__)

NUM_JOINTS = 18
SPLIT_SUFFIXES = ("train", "val", "test")
MAX_PERSONS = 100
MIN_FRAME_BOUND = 300  # frame_index may reach max(MIN_FRAME_BOUND, FRAMES_PER_ENTRY x entries)
FRAMES_PER_ENTRY = 2
_NUMBER_TYPES = frozenset({int, float})  # exact types: bool is not a number here


def read(
    source: Path,
    *,
    label_file: str | Path | None = None,
    num_person: int = 2,
    skip_invalid: bool = False,
) -> SampleSet:
    """Read one clip file, a folder of clips, or a folder of `*_train` / `*_val` clip folders."""
    source = Path(source)
    if isinstance(num_person, bool) or not isinstance(num_person, int) or not 1 <= num_person <= MAX_PERSONS:
        raise InputError(f"num_person must be an integer from 1 to {MAX_PERSONS}, got {describe(num_person)}")
    invalid = InvalidFiles(skip_invalid)
    parts = _parts(source, Path(label_file) if label_file is not None else None)
    samples: list[Sample] = []
    splits: dict[str, list[str]] = {}
    skipped: list[str] = []
    first_file: dict[str, Path] = {}
    for split, files, labels in parts:
        part = []
        for path in files:
            if path.stem in first_file:
                invalid.skip(path.name, f"{path}: clip id '{path.stem}' is also the id of {first_file[path.stem]}")
                continue
            sample = invalid.read(path.name, _read_clip, path, labels, num_person, skipped)
            if sample is not None:
                first_file[path.stem] = path
                part.append(sample)
        samples += part
        if split is not None:
            splits.setdefault(split, []).extend(s.sample_id for s in part)
    if skipped:
        logger.warning("%s: skipped %d clips without skeletons: %s", source, len(skipped), ", ".join(skipped))
    invalid.report(logger, source, "clip files")
    if not samples:
        if invalid.skipped:
            raise invalid.nothing_valid(source, "clip files")
        raise InputError(f"{source}: no clip with a skeleton")
    return SampleSet(samples, splits, "openpose", None)


def _parts(source: Path, label_file: Path | None) -> list[tuple[str | None, list[Path], dict[str, Any] | None]]:
    """(split name, clip files, labels) for each clip folder of the source."""
    if source.is_file():
        return [(None, [source], _read_label_file(label_file))]
    subfolders = sorted(p for p in source.iterdir() if p.is_dir() and _split_of(p) is not None)
    if not subfolders:
        return [_folder_part(source, label_file)]
    if label_file is not None:
        raise InputError(f"{source}: label_file applies to one clip folder; here each *_train/*_val folder has its own")
    return [_folder_part(folder, None) for folder in subfolders]


def _folder_part(folder: Path, label_file: Path | None) -> tuple[str | None, list[Path], dict[str, Any] | None]:
    files = sorted(p for p in folder.glob("*.json") if not p.name.endswith("_label.json"))
    if not files:
        raise InputError(f"{folder}: no clip .json files")
    sibling = folder.parent / f"{folder.name}_label.json"
    if label_file is None and sibling.is_file():
        label_file = sibling
    return _split_of(folder), files, _read_label_file(label_file)


def _split_of(folder: Path) -> str | None:
    suffix = folder.name.rsplit("_", 1)[-1]
    return suffix if "_" in folder.name and suffix in SPLIT_SUFFIXES else None


def _read_label_file(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    labels = load_json(path)
    if not isinstance(labels, dict) or not all(isinstance(v, dict) for v in labels.values()):
        raise InputError(f"{path}: expected {{clip_id: {{has_skeleton, label, label_index}}}}")
    return labels


def _read_clip(path: Path, labels: dict[str, Any] | None, num_person: int, skipped: list[str]) -> Sample | None:
    """One validated sample, or None (recorded in `skipped`) for a clip without skeletons."""
    doc = load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise InputError(f"{path}: expected {{'data': [frames], 'label', 'label_index'}} (ST-GCN Kinetics JSON)")
    label = _label_of(path, doc, labels)
    num_frames, frame, pose, score = _detections(path, doc["data"])
    if label is None or len(frame) == 0:
        skipped.append(path.stem)
        return None
    rows = np.concatenate([pose, score[..., None]], axis=-1)
    stacked = stack_by_frame(frame - 1, score.sum(axis=1), rows, num_frames, max_persons=num_person)
    sample = Sample(path.stem, stacked[..., :2], label, score=stacked[..., 2])
    return validate_sample(sample, str(path), num_joints=NUM_JOINTS)


def _label_of(path: Path, doc: dict[str, Any], labels: dict[str, Any] | None) -> int | None:
    """The clip's label_index; None when the label file marks it without skeleton."""
    entry = doc
    if labels is not None:
        if path.stem not in labels:
            raise InputError(f"{path}: clip '{path.stem}' is not in the label file")
        entry = labels[path.stem]
        if entry.get("has_skeleton") is False:
            return None
    label = entry.get("label_index")
    if isinstance(label, bool) or not isinstance(label, int):
        raise InputError(f"{path}: clip '{path.stem}' has no integer label_index (got {describe(label)})")
    return label


def _detections(path: Path, frames: list[Any]) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Frame count (the largest frame_index), then frame index (N,), pose (N, 18, 2) and score (N, 18)
    of every person in every frame."""
    index: list[int] = []
    poses: list[Any] = []
    scores: list[Any] = []
    num_frames = 0
    bound = max(MIN_FRAME_BOUND, FRAMES_PER_ENTRY * len(frames))
    for k, entry in enumerate(frames):
        frame_index = _frame_index(path, k, entry)
        if frame_index > bound:
            raise InputError(
                f"{path}: data[{k}]: frame_index {describe(frame_index)} is beyond {bound}, the largest accepted for "
                f"{len(frames)} entries (max({MIN_FRAME_BOUND}, {FRAMES_PER_ENTRY} x entries))"
            )
        num_frames = max(num_frames, frame_index)
        for person in entry["skeleton"]:
            pose, score = _person(path, frame_index, person)
            index.append(frame_index)
            poses.append(pose)
            scores.append(score)
    pose_array = _as_array(path, poses).reshape(-1, NUM_JOINTS, 2)
    score_array = _as_array(path, scores).reshape(-1, NUM_JOINTS)
    return num_frames, np.array(index, dtype=np.int64), pose_array, score_array


def _as_array(path: Path, rows: list[list[Any]]) -> np.ndarray:
    """float32 (N, len) of checked number lists (values beyond float32 become infinite, which
    `validate_sample` refuses); an integer beyond float range is an error."""
    try:
        values = np.array(rows, dtype=np.float64)
    except OverflowError:
        raise InputError(f"{path}: pose and score must hold numbers: an integer is too large for a number") from None
    with np.errstate(over="ignore"):
        return values.astype(np.float32)


def _frame_index(path: Path, k: int, entry: Any) -> int:
    """The checked frame_index of data[k]."""
    if not isinstance(entry, dict) or not isinstance(entry.get("skeleton"), list):
        raise InputError(f"{path}: data[{k}] is not {{'frame_index', 'skeleton': [...]}}")
    frame_index = entry.get("frame_index")
    if isinstance(frame_index, bool) or not isinstance(frame_index, int) or frame_index < 1:
        raise InputError(f"{path}: data[{k}]: frame_index {describe(frame_index)} is not an integer >= 1")
    return frame_index


def _person(path: Path, frame_index: int, person: Any) -> tuple[list[Any], list[Any]]:
    """The checked 'pose' (36 numbers) and 'score' (18 numbers) lists of one person."""
    pose = person.get("pose") if isinstance(person, dict) else None
    score = person.get("score") if isinstance(person, dict) else None
    if not (isinstance(pose, list) and isinstance(score, list) and len(pose) == 2 * NUM_JOINTS
            and len(score) == NUM_JOINTS):
        raise InputError(
            f"{path}: frame_index {frame_index}: a person needs 'pose' ({2 * NUM_JOINTS} numbers) "
            f"and 'score' ({NUM_JOINTS} numbers)"
        )
    for name, values in (("pose", pose), ("score", score)):
        if not set(map(type, values)) <= _NUMBER_TYPES:
            k, value = next((k, v) for k, v in enumerate(values) if type(v) not in _NUMBER_TYPES)
            raise InputError(
                f"{path}: frame_index {frame_index}: '{name}' value {k} is {describe(value)} "
                f"({type(value).__name__}), expected a number"
            )
    return pose, score
