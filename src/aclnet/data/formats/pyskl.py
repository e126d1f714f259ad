"""PYSKL / mmaction2 annotation pickles (2D and 3D), re-validated, including the Kinetics style.

Kinetics-style annotations (PYSKL's `k400_hrnet.pkl`, mmaction2's pose samples) carry no `keypoint`
array. Their skeletons live in separate "kpfiles": pickles mapping `frame_dir` to
`{'keypoint': N x V x 3}` (x, y, score; one row per detected skeleton); the annotation names its kpfile
in `raw_file` and gives each row's frame in `frame_inds` (N,). They are decompressed as PYSKL's
`DecompressPose(squeeze=True)` does: frames without skeletons are dropped, the persons of a frame are
ordered by their summed keypoint score, and M is the largest number of persons in one frame.
`box_score` and `valid` (PYSKL's box-threshold filter) are not applied: every skeleton is kept.

Where a kpfile is looked for: with `keypoint_dir`, `keypoint_dir / basename(raw_file)` (or
`keypoint_dir / f"{frame_dir}.pkl"` when there is no `raw_file`); otherwise the `raw_file` path itself,
relative paths taken from the annotation file's folder. A kpfile may also hold `{'keypoint': ...}` for
one sample directly. Every pickle is read with the restricted unpickler.

Invalid samples skipped with `skip_invalid` are reported as one logging warning (count and reasons);
a file with no valid sample is an error.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np

from aclnet.data.annotations import read_annotations
from aclnet.data.safe_pickle import safe_load_pickle
from aclnet.data.sample import SampleError, SampleSet
from aclnet.errors import InputError

logger = logging.getLogger(__name__)


def read(
    source: Path,
    *,
    skip_invalid: bool = False,
    layout: str | None = None,
    keypoint_dir: str | Path | None = None,
) -> SampleSet:
    """Read and validate a PYSKL annotation pickle; Kinetics-style samples load their kpfiles."""
    source = Path(source)
    loader = KpfileLoader(source, Path(keypoint_dir) if keypoint_dir is not None else None)
    sample_set, problems = read_annotations(
        source, layout=layout, skip_invalid=skip_invalid, keypoint_loader=loader
    )
    if problems:
        logger.warning("%s: skipped %d invalid samples:\n  %s", source, len(problems), "\n  ".join(problems))
    if not sample_set.samples:
        first = f"; first problem: {problems[0]}" if problems else ""
        raise InputError(f"{source}: nothing valid to read: no valid sample ({len(problems)} invalid){first}")
    return sample_set


MAX_FILL = 64
"""Most skeletons (persons x frames, zeros included) decompressed per detection row: PYSKL pads every frame to
the most persons of one frame, so a crowd in one frame of a long clip would multiply the memory."""


def stack_by_frame(
    frame: np.ndarray,
    order_key: np.ndarray,
    rows: np.ndarray,
    num_frames: int,
    max_persons: int | None = None,
) -> np.ndarray:
    """Place detection rows into an (M, T, ...) array, zeros where a frame has fewer persons.

    Row i goes to frame `frame[i]`; within a frame, persons are ordered by descending `order_key`
    (ties keep row order). M is the most rows in one frame, or exactly `max_persons` (extra persons
    dropped, missing ones zero) when given.
    """
    order = np.lexsort((-order_key, frame))
    sorted_frame = frame[order]
    slot = np.arange(len(order)) - np.searchsorted(sorted_frame, sorted_frame, side="left")
    persons = int(slot.max()) + 1 if len(order) else 0
    if max_persons is not None:
        persons = max_persons
    keep = slot < persons
    out = np.zeros((persons, num_frames) + rows.shape[1:], dtype=rows.dtype)
    out[slot[keep], sorted_frame[keep]] = rows[order[keep]]
    return out


class KpfileLoader:
    """`keypoint_loader` for `read_annotations`: fills in keypoints kept in separate kpfiles."""

    def __init__(self, annotation_file: Path, keypoint_dir: Path | None) -> None:
        self._source = str(annotation_file)
        self._base = annotation_file.parent
        self._keypoint_dir = keypoint_dir
        # Consecutive annotations usually share a kpfile (which can be large): keep the last one loaded.
        self._load = functools.lru_cache(maxsize=1)(safe_load_pickle)

    def __call__(self, ann: dict[str, Any]) -> dict[str, Any]:
        """keypoint (M, T, V, 2), keypoint_score (M, T, V) and total_frames of one annotation."""
        sample_id = str(ann.get("frame_dir", "?"))
        where = f"{self._source}: sample '{sample_id}'"
        path = self._kpfile_path(ann, sample_id, where)
        if not path.is_file():
            raise SampleError(f"{where}: keypoint file {path} not found (from raw_file / keypoint_dir)")
        content = self._load(path)
        rows = _kpfile_entry(content, sample_id, path, where)
        frame_inds = _frame_inds(ann, len(rows), where)
        frames, frame = np.unique(frame_inds, return_inverse=True)
        persons = int(np.bincount(frame).max()) if len(frame) else 0
        if persons * len(frames) > MAX_FILL * len(rows):
            raise SampleError(f"{where}: one frame holds {persons} persons, so {len(frames)} frames would take "
                              f"{persons} x {len(frames)} skeletons for {len(rows)} rows (more than {MAX_FILL} x the "
                              "rows); keep the persons of crowded frames apart or drop them")
        stacked = stack_by_frame(frame, rows[:, :, 2].sum(axis=1), rows, len(frames))
        return {
            "keypoint": stacked[..., :2],
            "keypoint_score": stacked[..., 2],
            "total_frames": len(frames),
        }

    def _kpfile_path(self, ann: dict[str, Any], sample_id: str, where: str) -> Path:
        """Where the sample's kpfile is: see the module's documentation."""
        raw_file = ann.get("raw_file")
        if raw_file is not None and not isinstance(raw_file, str):
            raise SampleError(f"{where}: raw_file is {type(raw_file).__name__}, expected a path string")
        if self._keypoint_dir is not None:
            name = Path(raw_file).name if raw_file else f"{sample_id}.pkl"
            return self._keypoint_dir / name
        if not raw_file:
            raise SampleError(
                f"{where}: no 'keypoint' array and no 'raw_file' naming the file that holds its keypoints; "
                "give the folder of the keypoint files (keypoint_dir)"
            )
        path = Path(raw_file)
        return path if path.is_absolute() else self._base / path


def _kpfile_entry(content: Any, sample_id: str, path: Path, where: str) -> np.ndarray:
    """The (N, V, 3) keypoint rows of one sample from a loaded kpfile."""
    if isinstance(content, dict) and sample_id in content:
        content = content[sample_id]
    if not isinstance(content, dict) or "keypoint" not in content:
        raise SampleError(f"{where}: keypoint file {path} has no entry for this sample")
    rows = content["keypoint"]
    if not isinstance(rows, np.ndarray) or rows.ndim != 3 or rows.shape[2] != 3:
        shape = getattr(rows, "shape", type(rows).__name__)
        raise SampleError(f"{where}: keypoint file {path} holds keypoints of shape {shape}, expected N x V x 3")
    if not (np.issubdtype(rows.dtype, np.floating) or np.issubdtype(rows.dtype, np.integer)):
        raise SampleError(f"{where}: keypoint file {path} holds keypoints of dtype {rows.dtype}")
    return rows.astype(np.float32)


def _frame_inds(ann: dict[str, Any], num_rows: int, where: str) -> np.ndarray:
    """The frame of each keypoint row, checked against the number of rows."""
    frame_inds = ann.get("frame_inds")
    if not (
        isinstance(frame_inds, np.ndarray) and frame_inds.ndim == 1 and np.issubdtype(frame_inds.dtype, np.integer)
    ):
        raise SampleError(f"{where}: 'frame_inds' must be a 1-D integer array (one frame per keypoint row)")
    if len(frame_inds) != num_rows:
        raise SampleError(f"{where}: {len(frame_inds)} frame_inds for {num_rows} keypoint rows")
    return frame_inds
