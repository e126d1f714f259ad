"""The sample record every reader returns, the collection of samples with splits, and validation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aclnet.errors import InputError

META_KEYS = ("subject", "view", "camera", "setup", "performer", "replication", "condition", "sequence")


class SampleError(InputError):
    """A sample is invalid; the message names the file, the sample id and the problem."""


@dataclass
class Sample:
    """One skeleton sequence.

    keypoint: float32 (M, T, V, C) persons, frames, joints, channels; missing joints are zeros.
    score: optional float32 (M, T, V) detection confidences (2D data).
    meta: subject, view, camera, setup, performer, replication, condition, sequence where known.
    """

    sample_id: str
    keypoint: np.ndarray
    label: int
    score: np.ndarray | None = None
    img_shape: tuple[int, int] | None = None
    meta: dict[str, int | str] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.keypoint.shape[1])


@dataclass
class SampleSet:
    """Samples with named splits (lists of sample ids), class names and the layout they use."""

    samples: list[Sample]
    splits: dict[str, list[str]]
    layout: str
    classes: list[str] | None = None

    def split(self, name: str) -> list[Sample]:
        """The samples of one split, in the split's order."""
        if name not in self.splits:
            raise InputError(f"unknown split '{name}'; this data has splits {sorted(self.splits)}")
        by_id = {s.sample_id: s for s in self.samples}
        return [by_id[i] for i in self.splits[name]]

    @property
    def num_classes(self) -> int:
        if self.classes is not None:
            return len(self.classes)
        return max((s.label for s in self.samples), default=-1) + 1


def validate_sample(
    sample: Sample,
    source: str,
    *,
    num_classes: int | None = None,
    num_joints: int | None = None,
) -> Sample:
    """Check shape, dtype, finiteness, label range and frame count; cast keypoints to float32.

    Raises `SampleError` naming `source` (the file), the sample id and the problem.
    """
    where = f"{source}: sample '{sample.sample_id}'"
    kp = sample.keypoint
    if not isinstance(kp, np.ndarray):
        raise SampleError(f"{where}: keypoint is {type(kp).__name__}, expected a NumPy array")
    if kp.ndim != 4:
        raise SampleError(
            f"{where}: keypoint has shape {kp.shape}, expected 4 axes (persons, frames, joints, channels)"
        )
    if not np.issubdtype(kp.dtype, np.floating) and not np.issubdtype(kp.dtype, np.integer):
        raise SampleError(f"{where}: keypoint has dtype {kp.dtype}, expected a number type")
    m, t, v, c = kp.shape
    if m < 1 or t < 1:
        raise SampleError(f"{where}: keypoint has shape {kp.shape}: no persons or no frames")
    if c not in (2, 3):
        raise SampleError(f"{where}: keypoint has {c} channels, expected 2 (x, y) or 3 (x, y, z)")
    if num_joints is not None and v != num_joints:
        raise SampleError(f"{where}: keypoint has {v} joints, the layout has {num_joints}")
    kp = kp.astype(np.float32, copy=False)
    if not np.isfinite(kp).all():
        raise SampleError(f"{where}: keypoint has NaN or infinite values (missing joints must be zeros)")
    score = sample.score
    if score is not None:
        if not isinstance(score, np.ndarray) or score.shape != (m, t, v):
            shape = getattr(score, "shape", type(score).__name__)
            raise SampleError(f"{where}: keypoint_score has shape {shape}, expected {(m, t, v)}")
        score = score.astype(np.float32, copy=False)
        if not np.isfinite(score).all():
            raise SampleError(f"{where}: keypoint_score has NaN or infinite values")
    label = sample.label
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
        raise SampleError(f"{where}: label {label!r} is not an integer")
    if label < 0 or (num_classes is not None and label >= num_classes):
        bound = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        raise SampleError(f"{where}: label {label} is out of range {bound}")
    sample.keypoint = kp
    sample.score = score
    sample.label = int(label)
    return sample
