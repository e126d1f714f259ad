"""Fusion of several streams' softmax scores with weights, as the paper's multi-stream ensembles."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aclnet.engine.evaluation import load_aligned_scores, metrics
from aclnet.errors import InputError


def ensemble(paths: list[str | Path], weights: list[float] | None = None) -> tuple[dict[str, float], np.ndarray]:
    """Weighted sum of the streams' scores; streams whose sample ids or labels differ are refused."""
    if len(paths) < 1:
        raise InputError("ensemble needs at least one scores file")
    weights = weights if weights is not None else [1.0] * len(paths)
    if len(weights) != len(paths):
        raise InputError(f"--weights has {len(weights)} values for {len(paths)} scores files")
    streams = load_aligned_scores(paths)
    fused = sum(w * s["scores"] for w, s in zip(weights, streams))
    return metrics(fused, streams[0]["labels"]), fused
