"""Retrieval metrics: re-ID Rank-k / mAP and cross-view gait Rank-1, by hand and against loop references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aclnet.engine.retrieval import (
    _stable_argsort,
    cross_view_rank1,
    euclidean_distances,
    rank_k_and_map,
)
from aclnet.errors import InputError

# ---------------------------------------------------------------------------------------------------------------
# Plain Python references (one probe at a time, lists, no numpy in the logic).


def reference_rank_map(distances, probe_labels, gallery_labels, ks, exclude=None):
    """Rank-k (%), mAP (%), probes scored, probes without a match, AP per probe (None when no match)."""
    hits = {k: 0 for k in ks}
    aps, per_probe, without = [], [], 0
    for i, row in enumerate(distances):
        entries = sorted((float(row[j]), j) for j in range(len(row)) if exclude is None or not exclude[i][j])
        matches = [gallery_labels[j] == probe_labels[i] for _, j in entries]
        if not any(matches):
            without += 1
            per_probe.append(None)
            continue
        first = matches.index(True)
        for k in ks:
            hits[k] += first < k
        found, precisions = 0, []
        for position, match in enumerate(matches):
            if match:
                found += 1
                precisions.append(found / (position + 1))
        aps.append(sum(precisions) / len(precisions))
        per_probe.append(aps[-1])
    n = len(aps)
    rank = {k: 100.0 * hits[k] / n if n else math.nan for k in ks}
    return rank, (100.0 * sum(aps) / n if n else math.nan), n, without, per_probe


def reference_cross_view(distances, probe_labels, probe_views, gallery_labels, gallery_views, views,
                         exclude_identical_view=True):
    """Matrix (lists, None for empty cells), per-probe-view means and overall mean."""
    matrix = []
    for pv in views:
        row = []
        for gv in views:
            probes = [i for i in range(len(probe_labels)) if probe_views[i] == pv]
            gallery = [j for j in range(len(gallery_labels)) if gallery_views[j] == gv]
            if not probes or not gallery:
                row.append(None)
                continue
            correct = 0
            for i in probes:
                _, nearest = min((float(distances[i][j]), j) for j in gallery)
                correct += gallery_labels[nearest] == probe_labels[i]
            row.append(100.0 * correct / len(probes))
        matrix.append(row)
    per_view = []
    for a, row in enumerate(matrix):
        cells = [c for b, c in enumerate(row) if c is not None and not (exclude_identical_view and a == b)]
        per_view.append(sum(cells) / len(cells) if cells else None)
    present = [v for v in per_view if v is not None]
    return matrix, per_view, (sum(present) / len(present) if present else None)


def as_nan(values):
    return np.array([math.nan if v is None else v for v in values], dtype=float)


# ---------------------------------------------------------------------------------------------------------------
# Re-identification by hand.


def test_rank_k_and_map_by_hand():
    # Gallery labels 1 2 1 3 2.
    # Probe 0 (label 1): order g1 .1 (2), g4 .2 (2), g3 .3 (3), g0 .5 (1), g2 .9 (1): matches at ranks 4 and 5.
    #   Rank-1 no, Rank-3 no, Rank-5 yes; AP = (1/4 + 2/5) / 2 = 0.325.
    # Probe 1 (label 2): order g1 .2 (2), g4 .3 (2), g0, g2, g3: matches at ranks 1 and 2; AP = 1.
    # Probe 2 (label 3): order g0 .1 (1), g2 .2 (1), g4 .3 (2), g3 .5 (3), g1 .7 (2): match at rank 4; AP = 0.25.
    # Rank-1 = 1/3, Rank-3 = 1/3, Rank-5 = 3/3; mAP = (0.325 + 1 + 0.25) / 3 = 0.525.
    distances = np.array([[0.5, 0.1, 0.9, 0.3, 0.2],
                          [0.4, 0.2, 0.6, 0.8, 0.3],
                          [0.1, 0.7, 0.2, 0.5, 0.3]])
    scores = rank_k_and_map(distances, np.array([1, 2, 3]), np.array([1, 2, 1, 3, 2]), ks=(1, 3, 5))
    assert scores.rank[1] == pytest.approx(100 / 3, abs=1e-12)
    assert scores.rank[3] == pytest.approx(100 / 3, abs=1e-12)
    assert scores.rank[5] == 100.0
    assert scores.map == pytest.approx(52.5, abs=1e-12)
    np.testing.assert_allclose(scores.average_precision, [0.325, 1.0, 0.25], rtol=0, atol=1e-15)
    assert scores.num_probes == 3 and scores.probes_without_match == 0
    assert set(rank_k_and_map(distances, np.array([1, 2, 3]), np.array([1, 2, 1, 3, 2])).rank) == {1, 5, 10}


@pytest.mark.parametrize(("probe_label", "rank1", "ap"), [(8, 0.0, 0.5), (7, 100.0, 1.0)])
def test_ties_follow_gallery_order(probe_label, rank1, ap):
    # Two gallery entries at the same distance: the first in gallery order (label 7) is ranked first.
    scores = rank_k_and_map(np.array([[0.5, 0.5]]), np.array([probe_label]), np.array([7, 8]), ks=(1, 2))
    assert scores.rank[1] == rank1 and scores.rank[2] == 100.0
    assert scores.map == pytest.approx(100 * ap)


def test_exact_ties_from_identical_gallery_embeddings():
    gallery = np.array([[1.0, 2.0, 3.0], [0.3, 0.1, 0.2], [0.3, 0.1, 0.2]])  # entries 1 and 2 identical
    distances = euclidean_distances(np.array([[0.0, 0.0, 0.0]]), gallery)
    assert distances[0, 1] == distances[0, 2]
    assert rank_k_and_map(distances, np.array([5]), np.array([4, 6, 5]), ks=(1,)).rank[1] == 0.0
    assert rank_k_and_map(distances, np.array([6]), np.array([4, 6, 5]), ks=(1,)).rank[1] == 100.0


def test_probe_without_true_match_is_left_out():
    # Probe 0 (label 1) finds g0 first: hit. Probe 1 (label 9) has no label-9 entry: left out and counted.
    scores = rank_k_and_map(np.array([[0.1, 0.2], [0.3, 0.1]]), np.array([1, 9]), np.array([1, 2]), ks=(1,))
    assert scores.rank == {1: 100.0} and scores.map == 100.0
    assert scores.num_probes == 1 and scores.probes_without_match == 1
    assert scores.average_precision[0] == 1.0 and np.isnan(scores.average_precision[1])
    none = rank_k_and_map(np.array([[0.1, 0.2]]), np.array([3]), np.array([1, 2]), ks=(1,))
    assert none.num_probes == 0 and none.probes_without_match == 1
    assert math.isnan(none.rank[1]) and math.isnan(none.map)


def test_single_condition_excludes_only_the_probe_itself():
    # Labels 1 2 1, probe set = gallery set.
    # Probe 0 (label 1): own g0 left out although at 0; g1 (label 2) also at 0 ranks first, g2 (label 1) second:
    #   Rank-1 miss, AP 1/2. (Without the exclusion g0 would be first: a hit.)
    # Probe 1 (label 2): its only label-2 entry is itself: no true match.
    # Probe 2 (label 1): own g2 left out; g0 (label 1) at .4 first: hit, AP 1.
    distances = np.array([[0.0, 0.0, 0.5],
                          [0.0, 0.0, 0.3],
                          [0.4, 0.9, 0.0]])
    labels = np.array([1, 2, 1])
    scores = rank_k_and_map(distances, labels, labels, ks=(1, 2), same_set=True)
    assert scores.rank == {1: 50.0, 2: 100.0} and scores.map == 75.0
    assert scores.num_probes == 2 and scores.probes_without_match == 1
    masked = rank_k_and_map(distances, labels, labels, ks=(1, 2), exclude=np.eye(3, dtype=bool))
    assert masked.rank == scores.rank and masked.map == scores.map
    # Without exclusion probe 0 ranks g0 (itself), g1, g2: hit, AP (1 + 2/3) / 2; probe 1 finds g0 (label 1)
    # before itself (same distance, lower index): miss; probe 2 finds itself: hit.
    unmasked = rank_k_and_map(distances, labels, labels, ks=(1, 2))
    assert unmasked.average_precision[0] == pytest.approx(5 / 6) and unmasked.probes_without_match == 0
    assert unmasked.rank[1] == pytest.approx(200 / 3, abs=1e-12)


def test_self_exclusion_keeps_a_duplicate_sequence():
    # Sequence 1 duplicates sequence 0 (same subject): with itself left out, sequence 0 still finds it first.
    x = np.array([[1.0, 2.0], [1.0, 2.0], [5.0, 5.0], [5.5, 4.0]])
    labels = np.array([0, 0, 1, 1])
    distances = euclidean_distances(x, x)
    scores = rank_k_and_map(distances, labels, labels, ks=(1,), same_set=True)
    assert scores.rank[1] == 100.0 and scores.map == 100.0


# ---------------------------------------------------------------------------------------------------------------
# Cross-view gait by hand.

# 1-D embeddings; subjects A = 0, B = 1; views 0, 18, 36.
GALLERY_X = [0.0, 20.0, 1.0, 11.0, 5.0, 6.0]          # view 0: A 0, B 20; view 18: A 1, B 11; view 36: A 5, B 6
GALLERY_SUBJECTS = [0, 1, 0, 1, 0, 1]
GALLERY_VIEWS = [0, 0, 18, 18, 36, 36]
PROBE_X = [0.2, 20.2, 1.2, 7.0, 5.6]
PROBE_SUBJECTS = [0, 1, 0, 1, 0]
PROBE_VIEWS = [0, 0, 18, 18, 36]
# Probe view 0: A at .2 and B at 20.2 are nearest to their own subject in every gallery view: 100 100 100.
# Probe view 18: A at 1.2 is right everywhere; B at 7 is nearer A (0, at 7) than B (20, at 13) in view 0, right
#   in view 18 (11 at 4 vs 1 at 6) and in view 36 (6 at 1 vs 5 at 2): 50 100 100.
# Probe view 36: A at 5.6 is right in view 0 (0 at 5.6 vs 20) and 18 (1 at 4.6 vs 11 at 5.4), wrong in view 36
#   (B 6 at .4 vs A 5 at .6): 100 100 0.
EXPECTED_MATRIX = [[100, 100, 100], [50, 100, 100], [100, 100, 0]]


def _hand_case(**kwargs):
    distances = euclidean_distances(np.array(PROBE_X)[:, None], np.array(GALLERY_X)[:, None])
    return cross_view_rank1(distances, np.array(PROBE_SUBJECTS), np.array(PROBE_VIEWS), np.array(GALLERY_SUBJECTS),
                            np.array(GALLERY_VIEWS), **kwargs)


def test_cross_view_by_hand_identical_view_excluded():
    scores = _hand_case()
    assert scores.views == (0, 18, 36)
    np.testing.assert_array_equal(scores.matrix, EXPECTED_MATRIX)
    np.testing.assert_allclose(scores.per_probe_view, [100, 75, 100], rtol=0, atol=1e-12)
    assert scores.mean == pytest.approx(275 / 3, abs=1e-12)
    # With the diagonal the numbers change: rows 100, 83.33, 66.67 and mean 83.33.
    included = _hand_case(exclude_identical_view=False)
    np.testing.assert_array_equal(included.matrix, EXPECTED_MATRIX)
    np.testing.assert_allclose(included.per_probe_view, [100, 250 / 3, 200 / 3], rtol=0, atol=1e-12)
    assert included.mean == pytest.approx(250 / 3, abs=1e-12)


def test_cross_view_empty_cells_are_nan_and_left_out():
    scores = _hand_case(views=[0, 18, 36, 54])  # nothing at 54: its row and column are NaN
    assert np.isnan(scores.matrix[3]).all() and np.isnan(scores.matrix[:, 3]).all()
    np.testing.assert_array_equal(scores.matrix[:3, :3], EXPECTED_MATRIX)
    assert np.isnan(scores.per_probe_view[3])
    assert scores.mean == pytest.approx(275 / 3, abs=1e-12)
    only_36 = _hand_case(views=[36])  # one view, diagonal excluded: nothing left
    assert only_36.matrix.tolist() == [[0.0]] and np.isnan(only_36.per_probe_view[0]) and math.isnan(only_36.mean)


def test_cross_view_subject_missing_from_gallery_view_is_a_miss():
    # Gallery view 0 has only subject A; the B probe of view 90 matches A there: a miss, not skipped.
    distances = euclidean_distances(np.array([[0.0], [10.0]]), np.array([[0.0], [0.5], [10.5]]))
    scores = cross_view_rank1(distances, np.array([0, 1]), np.array([90, 90]), np.array([0, 0, 1]),
                              np.array([0, 90, 90]))
    np.testing.assert_array_equal(scores.matrix, [[math.nan, math.nan], [50.0, 100.0]])
    assert scores.per_probe_view[1] == 50.0 and scores.mean == 50.0


def test_cross_view_ties_follow_gallery_order():
    # Two view-18 gallery entries at equal distance; the other view's entry sits between them in gallery order.
    distances = np.array([[1.0, 0.0, 1.0]])
    gallery_views = np.array([18, 0, 18])
    first = cross_view_rank1(distances, np.array([3]), np.array([0]), np.array([3, 3, 4]), gallery_views)
    second = cross_view_rank1(distances, np.array([4]), np.array([0]), np.array([3, 3, 4]), gallery_views)
    assert first.matrix[0, 1] == 100.0 and second.matrix[0, 1] == 0.0


# ---------------------------------------------------------------------------------------------------------------
# Vectorised against the loop references on random data.


def _random_set(rng, subjects, views, per_view, dim=8):
    labels = np.repeat(np.arange(subjects), len(views) * per_view)
    view_of = np.tile(np.repeat(np.array(views), per_view), subjects)
    centres = rng.normal(size=(subjects, dim))
    x = centres[labels] + 0.9 * rng.normal(size=(len(labels), dim))
    return x, labels, view_of


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_k_and_map_matches_reference(seed):
    rng = np.random.default_rng(seed)
    probe, probe_labels, _ = _random_set(rng, 7, [0, 1, 2], 2)
    gallery, gallery_labels, _ = _random_set(rng, 9, [0, 1], 3)
    probe_labels = probe_labels + 1  # subjects 1..7 vs 0..8: probes of subject 8 absent, subject 0 has none
    ks = (1, 3, 5, 10, 1000)
    for distances in (euclidean_distances(probe, gallery),
                      rng.integers(0, 4, size=(len(probe), len(gallery))).astype(float)):  # many ties
        exclude = rng.random(distances.shape) < 0.3
        for mask in (None, exclude):
            scores = rank_k_and_map(distances, probe_labels, gallery_labels, ks=ks, exclude=mask)
            rank, mean_ap, n, without, per_probe = reference_rank_map(
                distances.tolist(), probe_labels.tolist(), gallery_labels.tolist(), ks,
                None if mask is None else mask.tolist())
            assert n > 0 and n + without == len(probe)
            assert scores.num_probes == n and scores.probes_without_match == without
            for k in ks:
                assert scores.rank[k] == pytest.approx(rank[k], abs=1e-9)
            assert scores.map == pytest.approx(mean_ap, abs=1e-9)
            np.testing.assert_allclose(scores.average_precision, as_nan(per_probe), rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_same_set_matches_reference(seed):
    rng = np.random.default_rng(seed)
    x, labels, _ = _random_set(rng, 6, [0, 1, 2], 2)
    labels[-1] = 99  # a subject with one sequence: no true match once it is excluded
    distances = euclidean_distances(x, x)
    scores = rank_k_and_map(distances, labels, labels, same_set=True)
    rank, mean_ap, n, without, _ = reference_rank_map(distances.tolist(), labels.tolist(), labels.tolist(),
                                                      (1, 5, 10), np.eye(len(x), dtype=bool).tolist())
    assert without == 1 and scores.probes_without_match == 1 and scores.num_probes == n
    assert all(scores.rank[k] == pytest.approx(rank[k], abs=1e-9) for k in (1, 5, 10))
    assert scores.map == pytest.approx(mean_ap, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("exclude_identical_view", [True, False])
def test_cross_view_matches_reference(seed, exclude_identical_view):
    rng = np.random.default_rng(seed)
    views = [0, 18, 36, 54, 72]
    gallery, gallery_labels, gallery_views = _random_set(rng, 6, views, 2)
    probe, probe_labels, probe_views = _random_set(rng, 6, views, 1)
    keep = rng.random(len(gallery)) > 0.2  # some subjects lose some gallery views
    gallery, gallery_labels, gallery_views = gallery[keep], gallery_labels[keep], gallery_views[keep]
    probe_views = np.where(probe_views == 72, 90, probe_views)  # view 90 has no gallery, view 72 no probe
    all_views = [0, 18, 36, 54, 72, 90]
    for distances in (euclidean_distances(probe, gallery),
                      rng.integers(0, 3, size=(len(probe), len(gallery))).astype(float)):
        scores = cross_view_rank1(distances, probe_labels, probe_views, gallery_labels, gallery_views,
                                  exclude_identical_view=exclude_identical_view)
        matrix, per_view, mean = reference_cross_view(distances.tolist(), probe_labels.tolist(),
                                                      probe_views.tolist(), gallery_labels.tolist(),
                                                      gallery_views.tolist(), all_views, exclude_identical_view)
        assert scores.views == tuple(all_views)
        np.testing.assert_allclose(scores.matrix, np.array([as_nan(r) for r in matrix]), rtol=0, atol=1e-9)
        np.testing.assert_allclose(scores.per_probe_view, as_nan(per_view), rtol=0, atol=1e-9)
        assert scores.mean == pytest.approx(mean, abs=1e-9)


def test_fast_argsort_equals_stable_sort_with_ties():
    rng = np.random.default_rng(4)
    keys = rng.integers(0, 5, size=(40, 300)).astype(float)
    keys[::3] = rng.random((14, 300))  # rows without ties take the fast path
    keys[1, :50] = np.inf  # ties between excluded entries do not matter but finite ones after them do
    expected = np.argsort(keys, axis=1, kind="stable")
    np.testing.assert_array_equal(np.take_along_axis(keys, _stable_argsort(keys), axis=1),
                                  np.take_along_axis(keys, expected, axis=1))
    finite = np.isfinite(keys).all(1)
    np.testing.assert_array_equal(_stable_argsort(keys)[finite], expected[finite])


def test_euclidean_distances_matches_direct_formula():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(7, 5)), rng.normal(size=(9, 5))
    direct = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(euclidean_distances(a, b), direct, rtol=1e-9, atol=1e-9)
    from_torch = euclidean_distances(torch.from_numpy(a).float().requires_grad_(), torch.from_numpy(b))
    np.testing.assert_allclose(from_torch, direct, rtol=1e-5, atol=1e-5)
    assert euclidean_distances(a, a).min() >= 0.0


def test_bad_input_is_refused():
    d = np.zeros((2, 3))
    with pytest.raises(InputError, match="probe_labels has 3 entries but there are 2 probes"):
        rank_k_and_map(d, np.array([0, 1, 2]), np.array([0, 1, 2]))
    with pytest.raises(InputError, match="gallery_labels has 2 entries"):
        rank_k_and_map(d, np.array([0, 1]), np.array([0, 1]))
    with pytest.raises(InputError, match="NaN"):
        euclidean_distances(np.array([[0.0, np.nan]]), np.zeros((2, 2)))
    with pytest.raises(InputError, match="gallery: embeddings contain NaN or infinite"):
        euclidean_distances(np.zeros((2, 2)), np.array([[0.0, 1.0], [np.inf, 0.0]]))
    with pytest.raises(InputError, match="must be 2-D"):
        euclidean_distances(np.zeros(4), np.zeros((2, 4)))
    with pytest.raises(InputError, match="4 dimensions but gallery embeddings 3"):
        euclidean_distances(np.zeros((2, 4)), np.zeros((2, 3)))
    with pytest.raises(InputError, match="distances contain NaN"):
        rank_k_and_map(np.array([[0.0, np.nan]]), np.array([0]), np.array([0, 1]))
    with pytest.raises(InputError, match="exclude has shape"):
        rank_k_and_map(d, np.array([0, 1]), np.array([0, 1, 2]), exclude=np.zeros((3, 2), dtype=bool))
    with pytest.raises(InputError, match="boolean"):
        rank_k_and_map(d, np.array([0, 1]), np.array([0, 1, 2]), exclude=np.zeros((2, 3)))
    with pytest.raises(InputError, match="same_set needs"):
        rank_k_and_map(d, np.array([0, 1]), np.array([0, 1, 2]), same_set=True)
    with pytest.raises(InputError, match="ks must be positive"):
        rank_k_and_map(d, np.array([0, 1]), np.array([0, 1, 2]), ks=(0,))
    with pytest.raises(InputError, match="probe_views has 1 entries"):
        cross_view_rank1(d, np.array([0, 1]), np.array([0]), np.array([0, 1, 2]), np.array([0, 0, 0]))
    with pytest.raises(InputError, match="gallery_views has 2 entries"):
        cross_view_rank1(d, np.array([0, 1]), np.array([0, 0]), np.array([0, 1, 2]), np.array([0, 0]))
    with pytest.raises(InputError, match="repeats a view"):
        cross_view_rank1(d, np.array([0, 1]), np.array([0, 0]), np.array([0, 1, 2]), np.array([0, 0, 0]),
                         views=[0, 0])
    x = np.random.default_rng(0).normal(size=(8, 3))
    x[5, 2] = np.nan
    with pytest.raises(InputError, match="contain NaN or infinite values \\(first at row 5\\)"):
        euclidean_distances(x[:2], x)
