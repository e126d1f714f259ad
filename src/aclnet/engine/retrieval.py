"""Retrieval metrics from sequence embeddings: cross-view gait accuracy and re-identification Rank-k / mAP.

Two protocols are covered, both on Euclidean distances between one embedding per sequence:

* Gait recognition, GaitGraph's CASIA-B protocol (`cross_view_rank1`): gallery NM 1-4, probes
  NM 5-6, BG 1-2 and CL 1-2; for every (probe view, gallery view) pair a probe is correct when its nearest
  gallery sequence of that gallery view has its subject. The result is a V x V accuracy matrix in percent.
* Person re-identification, TranSG's settings (`rank_k_and_map`): Rank-1/5/10 and mAP, with
  single-condition settings (probe set = gallery set, each probe's own entry left out) and cross-condition ones.

Rules shared by both:

* Ranking is a stable sort of the distances: equal distances are ordered by gallery index, lower first. The
  nearest neighbour of a gait probe is likewise the first gallery sequence (in gallery order) at the smallest
  distance.
* Everything is vectorised over probes (one matrix product for the distances, one sort); only the gallery views
  are looped over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aclnet.errors import InputError
from aclnet.losses.common import NORM_EPS

__all__ = [
    "CrossViewScores",
    "RetrievalScores",
    "cross_view_rank1",
    "euclidean_distances",
    "rank_k_and_map",
]



@dataclass(frozen=True)
class RetrievalScores:
    """Re-identification scores of one probe / gallery setting.

    Attributes:
        rank: Rank-k accuracy in percent for every requested k (NaN when no probe has a true match).
        map: Mean average precision in percent over the probes with a true match (NaN when there is none).
        num_probes: Probes that were scored, i.e. that have at least one true match in the gallery.
        probes_without_match: Probes with no true match in the (remaining) gallery; they are left out of Rank-k
            and mAP, as the common re-ID evaluation codes do.
        average_precision: (P,) AP of every probe in [0, 1]; NaN for the probes without a true match.
    """

    rank: dict[int, float]
    map: float
    num_probes: int
    probes_without_match: int
    average_precision: np.ndarray


@dataclass(frozen=True)
class CrossViewScores:
    """Cross-view gait accuracy of one probe condition.

    Attributes:
        views: The V views, in the order of the rows and columns of `matrix`.
        matrix: (V, V) accuracy in percent, rows probe view, columns gallery view; NaN where the pair has no
            probe or no gallery sequence.
        per_probe_view: (V,) mean of every row over the gallery views (the identical view left out when asked),
            NaN cells ignored; NaN when the row has no number.
        mean: Mean of `per_probe_view` over the probe views that have a number (NaN when none has).
    """

    views: tuple[int, ...]
    matrix: np.ndarray
    per_probe_view: np.ndarray
    mean: float


def normalised_rows(features: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm plus 1e-12: the embeddings retrieval compares (as the losses normalise)."""
    return features / (np.linalg.norm(features, axis=1, keepdims=True) + NORM_EPS)


def _as_array(value: Any, name: str) -> np.ndarray:
    """A numpy copy-free view of an array-like (torch tensors are detached and moved to the CPU)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: not an array ({exc})") from exc


def _embeddings(value: Any, name: str) -> np.ndarray:
    array = _as_array(value, name)
    if array.ndim != 2:
        raise InputError(f"{name}: embeddings must be 2-D (sequences x dimensions), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InputError(f"{name}: embeddings must be real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise InputError(f"{name}: embeddings contain NaN or infinite values "
                         f"(first at row {int(np.argwhere(~np.isfinite(array))[0, 0])})")
    return array


def _distances(value: Any) -> np.ndarray:
    array = _as_array(value, "distances")
    if array.ndim != 2:
        raise InputError(f"distances must be 2-D (probes x gallery), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InputError(f"distances must be real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise InputError("distances contain NaN or infinite values")
    return array


def _vector(value: Any, name: str, length: int, what: str) -> np.ndarray:
    array = _as_array(value, name)
    if array.ndim != 1:
        raise InputError(f"{name} must be 1-D, got shape {array.shape}")
    if len(array) != length:
        raise InputError(f"{name} has {len(array)} entries but there are {length} {what}")
    return array


def euclidean_distances(probe: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Euclidean distances between every probe and every gallery embedding, as one matrix product.

    Computed in float64 as sqrt(max(||a||^2 + ||b||^2 - 2 a.b, 0)). Identical vectors therefore get exactly
    equal distances to any probe (ties), but a vector's distance to itself may be a tiny positive number
    rather than 0.

    Args:
        probe: (P, D) embeddings (numpy or a torch tensor).
        gallery: (G, D) embeddings.

    Returns:
        (P, G) float64 distances.

    Raises:
        InputError: When an input is not 2-D, the dimensions differ or a value is not finite.
    """
    a = _embeddings(probe, "probe")
    b = _embeddings(gallery, "gallery")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"probe embeddings have {a.shape[1]} dimensions but gallery embeddings {b.shape[1]}")
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(squared, 0.0))


def _stable_argsort(keys: np.ndarray) -> np.ndarray:
    """Row-wise argsort with equal keys in index order, as kind="stable" but about twice as fast.

    The default (SIMD quicksort) sort is exact wherever a row has no two equal finite keys; the rows that do
    are sorted again with the stable sort. Ties between infinite keys (excluded entries) are left as they are.
    """
    order = np.argsort(keys, axis=1)
    ranked = np.take_along_axis(keys, order, axis=1)
    tied = np.flatnonzero(((ranked[:, 1:] == ranked[:, :-1]) & (ranked[:, 1:] < np.inf)).any(axis=1))
    if tied.size:
        order[tied] = np.argsort(keys[tied], axis=1, kind="stable")
    return order


def rank_k_and_map(distances: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray, *,
                   ks: Sequence[int] = (1, 5, 10), exclude: np.ndarray | None = None,
                   same_set: bool = False) -> RetrievalScores:
    """Rank-k accuracy and mean average precision of a re-identification setting.

    Every probe ranks the gallery by a stable sort of its distances: equal distances keep gallery order
    (lower gallery index first). Excluded entries are removed from the ranking. A gallery entry is a true
    match when its label equals the probe's. Rank-k of a probe is 1 when a true match is among the first k of
    its ranking; its AP is the mean, over its true matches, of the precision at each true match's rank. A probe
    with no true match in the remaining gallery is left out of Rank-k and mAP and counted in
    `probes_without_match` (the rule of the common re-ID evaluation codes).

    Args:
        distances: (P, G) distances, e.g. from `euclidean_distances`; must be finite.
        probe_labels: (P,) identity of every probe.
        gallery_labels: (G,) identity of every gallery entry.
        ks: The k of the Rank-k numbers, each >= 1 (a k beyond the gallery size counts the whole ranking).
        exclude: (P, G) boolean mask, True for the gallery entries a probe must not see (for instance the
            probe itself when probe set and gallery set are the same).
        same_set: The probe set is the gallery set (P == G, same order): probe i's entry i is excluded, on top
            of `exclude`. Only the diagonal is excluded; another entry at distance 0 stays in the ranking.

    Returns:
        The scores: Rank-k and mAP in percent, probes scored and probes without a true match.

    Raises:
        InputError: When shapes disagree, a value is not finite or a k is not a positive integer.
    """
    d = _distances(distances)
    num_probes, num_gallery = d.shape
    p_labels = _vector(probe_labels, "probe_labels", num_probes, "probes (rows of distances)")
    g_labels = _vector(gallery_labels, "gallery_labels", num_gallery, "gallery entries (columns of distances)")
    ks = tuple(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise InputError(f"ks must be positive integers, got {ks}")
    mask = np.zeros(d.shape, dtype=bool)
    if exclude is not None:
        given = _as_array(exclude, "exclude")
        if given.shape != d.shape:
            raise InputError(f"exclude has shape {given.shape} but distances {d.shape}")
        if given.dtype != np.bool_:
            raise InputError(f"exclude must be a boolean mask, got dtype {given.dtype}")
        mask |= given
    if same_set:
        if num_probes != num_gallery:
            raise InputError(f"same_set needs as many probes as gallery entries, got {num_probes} and {num_gallery}")
        np.fill_diagonal(mask, True)

    # Excluded entries go to the end of the ranking (after every kept one, whatever its distance) and are
    # never matches, so the positions of the kept entries are those of the ranking without them.
    keyed = np.where(mask, np.inf, d)
    order = _stable_argsort(keyed)
    ranked = np.take_along_axis(keyed, order, axis=1)
    matches = (g_labels[order] == p_labels[:, None]) & (ranked < np.inf)
    counts = matches.sum(1)
    scored = counts > 0
    first = np.argmax(matches, axis=1)  # 0-based position of the first true match (0 when there is none)
    # Precision at every true match: (matches up to and including it) / (its 1-based rank).
    rows, positions = np.nonzero(matches)
    hits = np.cumsum(matches, axis=1, dtype=np.int32)[rows, positions]
    summed = np.bincount(rows, weights=hits / (positions + 1.0), minlength=num_probes)
    ap = np.full(num_probes, np.nan)
    ap[scored] = summed[scored] / counts[scored]

    n = int(scored.sum())
    if n:
        rank = {int(k): 100.0 * float(np.mean(first[scored] < k)) for k in ks}
        mean_ap = 100.0 * float(np.mean(ap[scored]))
    else:
        rank = {int(k): float("nan") for k in ks}
        mean_ap = float("nan")
    return RetrievalScores(rank=rank, map=mean_ap, num_probes=n, probes_without_match=num_probes - n,
                           average_precision=ap)


def cross_view_rank1(distances: np.ndarray, probe_labels: np.ndarray, probe_views: np.ndarray,
                     gallery_labels: np.ndarray, gallery_views: np.ndarray, *, views: Sequence[int] | None = None,
                     exclude_identical_view: bool = True) -> CrossViewScores:
    """Cross-view Rank-1 accuracy matrix of one probe condition (GaitGraph's CASIA-B protocol).

    For every gallery view, a probe is correct when its nearest gallery sequence among those of that view (the
    first in gallery order at the smallest distance) has the probe's subject. A probe whose subject has no
    gallery sequence of that view therefore counts as a miss. Cell (i, j) is the accuracy of the probes of view
    `views[i]` against the gallery of view `views[j]`; a cell with no probe or no gallery sequence is NaN and is
    left out of the means. With `exclude_identical_view` the diagonal is left out of the per-probe-view means
    (the matrix keeps it). Probes and gallery sequences of views not in `views` are ignored.

    Args:
        distances: (P, G) distances, e.g. from `euclidean_distances`; must be finite.
        probe_labels: (P,) subject of every probe.
        probe_views: (P,) view of every probe (an integer, e.g. the angle in degrees).
        gallery_labels: (G,) subject of every gallery sequence.
        gallery_views: (G,) view of every gallery sequence.
        views: The views of the rows and columns, in that order; by default the sorted views present in probes
            or gallery.
        exclude_identical_view: Leave the diagonal (probe view = gallery view) out of the means.

    Returns:
        The V x V matrix in percent, its per-probe-view means and the overall mean.

    Raises:
        InputError: When shapes disagree, a value is not finite or `views` repeats a view.
    """
    d = _distances(distances)
    num_probes, num_gallery = d.shape
    p_labels = _vector(probe_labels, "probe_labels", num_probes, "probes (rows of distances)")
    p_views = _vector(probe_views, "probe_views", num_probes, "probes (rows of distances)")
    g_labels = _vector(gallery_labels, "gallery_labels", num_gallery, "gallery entries (columns of distances)")
    g_views = _vector(gallery_views, "gallery_views", num_gallery, "gallery entries (columns of distances)")
    if views is None:
        view_list = sorted(set(p_views.tolist()) | set(g_views.tolist()))
    else:
        view_list = list(_as_array(views, "views").tolist())
        if len(set(view_list)) != len(view_list):
            raise InputError(f"views repeats a view: {view_list}")
    num_views = len(view_list)
    if num_views == 0:
        raise InputError("no view to evaluate: views is empty and so are probes and gallery")

    # Row index of every probe (-1 when its view is not evaluated).
    row = np.full(num_probes, -1, dtype=np.int64)
    for i, view in enumerate(view_list):
        row[p_views == view] = i
    kept = row >= 0
    probes_per_view = np.bincount(row[kept], minlength=num_views)

    matrix = np.full((num_views, num_views), np.nan)
    for j, view in enumerate(view_list):
        columns = np.flatnonzero(g_views == view)
        if columns.size == 0 or not kept.any():
            continue
        nearest = columns[np.argmin(d[np.ix_(kept, columns)], axis=1)]  # argmin: first minimum, gallery order
        correct = g_labels[nearest] == p_labels[kept]
        right = np.bincount(row[kept], weights=correct.astype(np.float64), minlength=num_views)
        with np.errstate(invalid="ignore", divide="ignore"):
            matrix[:, j] = np.where(probes_per_view > 0, 100.0 * right / np.maximum(probes_per_view, 1), np.nan)

    used = ~np.isnan(matrix)
    if exclude_identical_view:
        np.fill_diagonal(used, False)
    counts = used.sum(1)
    sums = np.where(used, matrix, 0.0).sum(1)
    per_probe_view = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    present = ~np.isnan(per_probe_view)
    mean = float(per_probe_view[present].mean()) if present.any() else float("nan")
    return CrossViewScores(views=tuple(view_list), matrix=matrix, per_probe_view=per_probe_view, mean=mean)
