"""Cutting generated sequences into samples and splitting them by subject."""

from __future__ import annotations

import numpy as np

from aclnet.data.sample import Sample
from aclnet.errors import InputError


def cut_samples(
    ids: list[str],
    labels: np.ndarray,
    keypoint: np.ndarray,
    score: np.ndarray | None,
    lengths: np.ndarray,
    img_shape: tuple[int, int] | None,
    meta: dict[str, np.ndarray],
    persons: int,
) -> list[Sample]:
    """Samples from padded (n * persons, T, V, C) arrays, each cut to its own length, as float32."""
    keypoint = keypoint.reshape(len(ids), persons, *keypoint.shape[1:]).astype(np.float32)
    score = None if score is None else score.reshape(len(ids), persons, *score.shape[1:]).astype(np.float32)
    return [
        Sample(
            sample_id=ids[i],
            keypoint=keypoint[i, :, : lengths[i]].copy(),
            label=int(labels[i]),
            score=None if score is None else score[i, :, : lengths[i]].copy(),
            img_shape=img_shape,
            meta={key: value[i].item() for key, value in meta.items()},
        )
        for i in range(len(ids))
    ]


def subject_splits(ids: list[str], subject: np.ndarray, bounds: dict[str, tuple[int, int]]) -> dict[str, list[str]]:
    """Splits by subject index: split `name` holds the samples with `low <= subject < high`."""
    return {name: [i for i, j in zip(ids, subject) if low <= j < high] for name, (low, high) in bounds.items()}


def split_counts(num_subjects: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    """Numbers of train and val subjects: val and test get at least one unless their fraction is 0."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise InputError(f"split_fractions={tuple(fractions)}: expected three non-negative fractions summing to 1")
    n_val, n_test = (max(1, round(f * num_subjects)) if f > 0 else 0 for f in fractions[1:])
    n_train = num_subjects - n_val - n_test
    if n_train < 1:
        raise InputError(
            f"split_fractions={tuple(fractions)} with {num_subjects} subjects leaves no training subject "
            f"(val {n_val}, test {n_test})"
        )
    return n_train, n_val
