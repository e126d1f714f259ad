"""One pass of a model over a loader: clip-averaged softmax scores and pooled features per sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from aclnet.models.skeleton_model import SkeletonModel, clip_averaged
from aclnet.progress import Progress


@dataclass
class Outputs:
    """Scores (N, C) or None (a model without classifier), pooled features (N, D), labels (N,) and the
    indices (N,) of the samples in the loader's dataset."""

    scores: np.ndarray | None
    features: np.ndarray
    labels: np.ndarray
    indices: np.ndarray


@torch.no_grad()
def run_model(model: SkeletonModel, loader: DataLoader, device: torch.device, amp: bool, *,
              time_flip: bool = False) -> Outputs:
    """Clip-averaged outputs of every sample of `loader`; with `time_flip` the features of each clip and of
    its time reversal are averaged (a test-time option)."""
    model.eval()
    parts: list[tuple[torch.Tensor | None, ...]] = []
    progress = Progress("batches evaluated", total=len(loader) if hasattr(loader, "__len__") else None)
    for data, labels, indices in loader:
        progress.step()
        data = data.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            scores, features = clip_averaged(model, data)
            if time_flip:  # (N, clips, M, T, V, C): time is dimension 3
                features = (features + clip_averaged(model, data.flip(3))[1]) / 2
        parts.append((scores, features, labels, indices))
    progress.close()
    scores = None if parts[0][0] is None else torch.cat([p[0].cpu() for p in parts]).numpy()
    features, labels, indices = (torch.cat([p[i].cpu() for p in parts]).numpy() for i in range(1, 4))
    return Outputs(scores, features, labels, indices)
