"""Metrics from score matrices: top-k accuracy, mean class accuracy, confusion matrix."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from aclnet.array_files import read_npz
from aclnet.errors import InputError
from aclnet.fileio import atomic_write_bytes


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of samples whose label is among the k highest scores."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts C x C, rows true class, columns predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Recall of every class (NaN for classes with no sample)."""
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(matrix) / totals


def metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """top1, top5 and mean class accuracy (over classes present), in percent."""
    matrix = confusion_matrix(scores.argmax(1), labels, scores.shape[1])
    return {
        "top1": 100 * top_k_accuracy(scores, labels, 1),
        "top5": 100 * top_k_accuracy(scores, labels, 5),
        "mean_class": 100 * float(np.nanmean(per_class_accuracy(matrix))),
    }


def save_scores(path: Path, sample_ids: list[str], labels: np.ndarray, scores: np.ndarray,
                class_names: list[str]) -> None:
    """Write a scores file (.npz) that `aclnet ensemble` can align with other streams."""
    buffer = io.BytesIO()
    np.savez(buffer, sample_ids=np.array(sample_ids), labels=labels.astype(np.int64),
             scores=scores.astype(np.float32), class_names=np.array(class_names))
    atomic_write_bytes(path, buffer.getvalue())


def load_scores(path: str | Path) -> dict[str, np.ndarray]:
    """Read a scores file; errors name the file and the missing or inconsistent field."""
    path = Path(path)
    try:
        loaded = read_npz(path)
    except InputError as exc:
        raise InputError(f"{path}: not a readable scores file ({str(exc).removeprefix(f'{path}: ')})") from None
    missing = {"sample_ids", "labels", "scores", "class_names"} - set(loaded)
    if missing:
        raise InputError(f"{path}: scores file lacks {sorted(missing)}")
    if loaded["scores"].shape != (len(loaded["sample_ids"]), len(loaded["class_names"])):
        raise InputError(f"{path}: scores shape {loaded['scores'].shape} does not match ids and classes")
    return loaded


def load_aligned_scores(paths: list[str | Path]) -> list[dict[str, np.ndarray]]:
    """Scores files of the same samples: ids in the same order, labels and class names equal, else refused."""
    streams = [load_scores(p) for p in paths]
    for path, stream in zip(paths[1:], streams[1:]):
        for key, what in (("sample_ids", "sample ids"), ("labels", "labels"), ("class_names", "class names")):
            if not np.array_equal(stream[key], streams[0][key]):
                raise InputError(f"{path}: {what} differ from {paths[0]}; the files must score the same "
                                 "samples in the same order with the same classes")
    return streams
