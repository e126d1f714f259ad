"""Motion Families (docs/method.md, sections 2.2-2.5 and 2.7): confusion statistics, neighbours, overlaps,
families, affinity weights and family-aware temperatures, all as whole-matrix tensor operations."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

FAMILY_MODES = ("released", "paper")
EMPTY_FAMILY_TAU = 0.125  # paper mode: an empty family falls back to CE over all prototypes at this tau


def confusion_increment(labels: torch.Tensor, preds: torch.Tensor, num_classes: int, mode: str) -> torch.Tensor:
    """What one batch adds to H (C x C, int64), counted with scatter_add so that nothing syncs.

    Rule 1 (both modes): H[y_a, p_a] += 1 for each misclassified a. Rule 2 (released): for each ordered
    pair (a, b) with p_b == y_a != y_b, H[y_a, y_b] += 1, i.e. H[i, j] += n_i * #{b: y_b = j, p_b = i}.
    """
    flat = labels * num_classes + preds
    outcome = torch.zeros(num_classes * num_classes, dtype=torch.long, device=labels.device)
    outcome = outcome.scatter_add_(0, flat, torch.ones_like(flat)).view(num_classes, num_classes)
    diagonal = torch.eye(num_classes, dtype=torch.bool, device=labels.device)
    increment = outcome.masked_fill(diagonal, 0)  # outcome[j, i]: samples of class j predicted as i
    if mode == "released":
        class_counts = outcome.sum(dim=1)
        increment = increment + class_counts[:, None] * increment.T
    return increment


def neighbours(confusion: torch.Tensor, k: int, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """N_K(i) of every row: (C x min(K, C)) class indices and a boolean mask (same shape) of those kept.

    Released: the first K classes of row i sorted by count in descending order with ties in class-index
    order (a stable sort), zeros and i itself allowed. Paper: the K largest counts among j != i, zero
    counts left out. The unique key count * C - j makes top-k select exactly what the stable sort does.
    """
    num_classes = confusion.shape[0]
    key = torch.add(-torch.arange(num_classes, device=confusion.device), confusion, alpha=num_classes)
    if mode == "paper":  # i itself ranks last and is then left out with the zero counts
        key.fill_diagonal_(-num_classes)
    order = torch.topk(key, min(k, num_classes), dim=1).indices
    if mode == "released":
        return order, torch.ones_like(order, dtype=torch.bool)
    rows = torch.arange(num_classes, device=confusion.device)[:, None]
    return order, (confusion.gather(1, order) > 0) & (order != rows)


def build_families(
    confusion: torch.Tensor, k: int, overlap_threshold: float, mode: str, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Families (C x C bool, row i = W(i)) and affinity weights (C x C) from the statistics H.

    M(i, j) = |N_K(i) & N_K(j)|. Released: W(i) = N_K(i) united with {j != i: M > threshold}, affinity
    0.5 [j in N_K(i)] + M / K (it only orders members). Paper (Eq. 5-6): w = (0.5 [j in N_K(i)] + M) / K
    and W(i) = {j != i: w > n_tau / K}. M is the product N N^T of the one-hot neighbour matrices, computed
    as sums of K columns of N (embedding_bag); M is symmetric, so the work is done on N^T (contiguous) and
    the results are returned as transposed views.
    """
    order, keep = neighbours(confusion, k, mode)
    weights = keep.to(dtype)
    neighbours_t = torch.zeros(confusion.shape, dtype=dtype, device=confusion.device).scatter_(0, order.T, weights.T)
    per_sample = None if mode == "released" else weights
    overlap = F.embedding_bag(order, neighbours_t, per_sample_weights=per_sample, mode="sum")
    if mode == "released":
        affinity_t = (overlap / k).add_(neighbours_t, alpha=0.5)
        families_t = (overlap > overlap_threshold).fill_diagonal_(False).scatter_(0, order.T, True)
    else:
        affinity_t = torch.add(overlap, neighbours_t, alpha=0.5).div_(k)
        families_t = (affinity_t > overlap_threshold / k).fill_diagonal_(False)
    return families_t.T, affinity_t.T


def family_temperatures(
    families: torch.Tensor, k: int, temperatures: Sequence[float], fat: bool, fixed_tau: float, dtype: torch.dtype
) -> torch.Tensor:
    """tau per class (C,): FAT tiers by family size (<= K, <= 2K, more) or a fixed tau; empty -> 0.125.

    The size counts every member, so in released mode the class itself when it is in its own family.
    Released families are never empty (N_K(i) has K >= 1 members); the fallback serves paper mode.
    """
    size = families.sum(dim=1)
    if fat:
        tau = torch.full(size.shape, temperatures[2], dtype=dtype, device=size.device)
        tau = torch.where(size <= 2 * k, temperatures[1], tau)
        tau = torch.where(size <= k, temperatures[0], tau)
    else:
        tau = torch.full(size.shape, fixed_tau, dtype=dtype, device=size.device)
    return torch.where(size == 0, EMPTY_FAMILY_TAU, tau)
