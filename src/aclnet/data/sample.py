"""The sample record every reader returns, the collection of samples with splits, and validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aclnet.errors import InputError

META_KEYS = ("subject", "view", "camera", "setup", "performer", "replication", "condition", "sequence")
# Labels without class names must be below this: a larger label is a corrupt file, not a dataset
# (the largest benchmarks here have a few thousand classes or identities), and every consumer sizes
# arrays and classifier heads by the number of classes.
MAX_CLASSES = 100_000
MAX_COORDINATE = 1e6
"""Largest coordinate accepted: pixels of any camera, millimetres or metres of any room are far below it."""


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


def describe(value: Any, limit: int = 60) -> str:
    """A short rendering of a value read from a file, for error messages.

    Never a deep or huge repr (nested containers, integers of thousands of digits): only scalars are
    shown, shortened to `limit` characters; anything else is named by its type.
    """
    if value is None or isinstance(value, (bool, np.bool_)):
        return repr(bool(value)) if value is not None else "None"
    if isinstance(value, (int, np.integer)):
        value = int(value)
        if value.bit_length() > 64:
            return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
        return str(value)
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (str, bytes)):
        text = repr(value[:limit])
        return text + ("..." if len(value) > limit else "")
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} ({value.dtype})"
    return f"a {type(value).__name__}"


def validate_sample(
    sample: Sample,
    source: str,
    *,
    num_classes: int | None = None,
    num_joints: int | None = None,
) -> Sample:
    """Check shape, dtype, finiteness, label range and frame count, score, image shape and meta fields;
    cast keypoints to float32.

    Without `num_classes` labels must be below `MAX_CLASSES`. Meta values must be integers or strings.
    Raises `SampleError` naming `source` (the file), the sample id and the problem.
    """
    if not isinstance(sample.sample_id, str):
        raise SampleError(f"{source}: a sample id is {describe(sample.sample_id)}, expected a string")
    sample.sample_id = str(sample.sample_id)  # a plain str, also for str subclasses such as numpy.str_
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
    largest = float(np.abs(kp).max())
    if largest > MAX_COORDINATE:
        raise SampleError(f"{where}: keypoint has a coordinate of {largest:.3g}, beyond {MAX_COORDINATE:g} (no "
                          "camera or pose estimator gives such values: a corrupt file, or the wrong columns?)")
    score = sample.score
    if score is not None:
        if not isinstance(score, np.ndarray):
            raise SampleError(f"{where}: keypoint_score is {describe(score)}, expected a NumPy array {(m, t, v)}")
        if score.shape != (m, t, v):
            raise SampleError(f"{where}: keypoint_score has shape {score.shape}, expected {(m, t, v)}")
        if not np.issubdtype(score.dtype, np.floating) and not np.issubdtype(score.dtype, np.integer):
            raise SampleError(f"{where}: keypoint_score has dtype {score.dtype}, expected a number type")
        score = score.astype(np.float32, copy=False)
        if not np.isfinite(score).all():
            raise SampleError(f"{where}: keypoint_score has NaN or infinite values")
    label = sample.label
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
        raise SampleError(f"{where}: label {describe(label)} is not an integer")
    label = int(label)
    if label < 0 or (num_classes is not None and label >= num_classes):
        bound = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        raise SampleError(f"{where}: label {describe(label)} is out of range {bound}")
    if num_classes is None and label >= MAX_CLASSES:
        raise SampleError(
            f"{where}: label {describe(label)} is too large: without class names labels must be below "
            f"{MAX_CLASSES} (a larger label would mean that many classes)"
        )
    sample.img_shape = _checked_img_shape(sample.img_shape, where)
    sample.meta = _checked_meta(sample.meta, where)
    sample.keypoint = kp
    sample.score = score
    sample.label = label
    return sample


def _checked_img_shape(img_shape: Any, where: str) -> tuple[int, int] | None:
    """(height, width) as two positive Python ints, or None."""
    if img_shape is None:
        return None
    values = list(img_shape) if isinstance(img_shape, (tuple, list, np.ndarray)) else None
    if (
        values is None
        or len(values) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v > 0 for v in values)
    ):
        shown = describe(img_shape)
        raise SampleError(f"{where}: img_shape is {shown}, expected (height, width): two positive integers")
    return int(values[0]), int(values[1])


def _checked_meta(meta: Any, where: str) -> dict[str, int | str]:
    """Meta fields with integer (NumPy integers become ints) or string values."""
    if not isinstance(meta, dict):
        raise SampleError(f"{where}: meta is {describe(meta)}, expected a dict")
    checked: dict[str, int | str] = {}
    for key, value in meta.items():
        if not isinstance(key, str):
            raise SampleError(f"{where}: a meta field name is {describe(key)}, expected a string")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, str)):
            raise SampleError(f"{where}: meta field '{key}' is {describe(value)}, expected an integer or a string")
        checked[key] = str(value) if isinstance(value, str) else int(value)  # no NumPy scalars in files
    return checked
