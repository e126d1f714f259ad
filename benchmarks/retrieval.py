"""Speed of the retrieval evaluation (aclnet.engine.retrieval) against per-probe loop references, in one run.

The test metadata of CASIA-B is generated without the data: 50 subjects x 110 sequences (NM 1-6, BG 1-2, CL 1-2,
each at the 11 views 0, 18, ..., 180), one 128-d embedding per sequence made of a per-subject centre plus noise
(seeded; more noise for BG and CL, so the numbers are neither 0 nor 100).

1. Gait: GaitGraph's cross-view protocol, gallery NM 1-4 against the probes NM 5-6, BG 1-2 and CL 1-2
   (`casia_b_gait`: 3 x 11 x 11 accuracy matrices, identical view excluded from the means).
2. Re-identification: TranSG's five settings N-N, B-B, C-C (probe set = gallery set, each probe's own entry
   excluded), C-N and B-N, Rank-1/5/10 and mAP (`casia_b_reid`).

Each is timed against a reference that loops over the probes (one distance row, one nearest neighbour per gallery
view or one sort at a time); the two must agree to 1e-9. Run from the repository root:
`python benchmarks/retrieval.py`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from aclnet.engine.retrieval import GAIT_GALLERY, GAIT_PROBES, REID_SETTINGS, casia_b_gait, casia_b_reid

SUBJECTS, DIM = 50, 128
VIEWS = tuple(range(0, 181, 18))
SEQUENCE_TYPES = tuple(f"nm-0{i}" for i in range(1, 7)) + ("bg-01", "bg-02", "cl-01", "cl-02")
NOISE = {"nm": 1.6, "bg": 1.9, "cl": 2.3}  # per dimension, against centres of standard deviation 1
KS = (1, 5, 10)


def casia_b_metadata(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings (5500, 128), subjects, sequence types ("nm-01", ...) and views of a CASIA-B-sized test set."""
    rng = np.random.default_rng(seed)
    subjects = np.repeat(np.arange(SUBJECTS), len(SEQUENCE_TYPES) * len(VIEWS))
    types = np.tile(np.repeat(np.array(SEQUENCE_TYPES), len(VIEWS)), SUBJECTS)
    views = np.tile(np.array(VIEWS), SUBJECTS * len(SEQUENCE_TYPES))
    noise = np.array([NOISE[t[:2]] for t in types])[:, None]
    centres = rng.normal(size=(SUBJECTS, DIM))
    embeddings = centres[subjects] + noise * rng.normal(size=(len(subjects), DIM))
    return embeddings, subjects, types, views


def reference_gait(x: np.ndarray, subjects: np.ndarray, types: np.ndarray, views: np.ndarray) -> dict[str, Any]:
    """Per probe: its distances to the gallery, then the nearest sequence of every gallery view."""
    gallery = np.isin(types, GAIT_GALLERY)
    g_x, g_subjects, g_views = x[gallery], subjects[gallery], views[gallery]
    columns = {v: np.flatnonzero(g_views == v) for v in VIEWS}
    out = {}
    for key, probe_types in GAIT_PROBES.items():
        correct = {(pv, gv): [] for pv in VIEWS for gv in VIEWS}
        for i in np.flatnonzero(np.isin(types, probe_types)):
            row = np.sqrt(((g_x - x[i]) ** 2).sum(1))
            for gv, cols in columns.items():
                nearest = cols[int(np.argmin(row[cols]))]
                correct[(int(views[i]), gv)].append(g_subjects[nearest] == subjects[i])
        matrix = np.array([[100.0 * np.mean(correct[(pv, gv)]) for gv in VIEWS] for pv in VIEWS])
        per_view = [np.mean([matrix[a, b] for b in range(len(VIEWS)) if b != a]) for a in range(len(VIEWS))]
        out[key] = {"matrix": matrix, "mean": float(np.mean(per_view))}
    return out


def reference_reid(x: np.ndarray, subjects: np.ndarray, types: np.ndarray) -> dict[str, Any]:
    """Per probe: its distances, its own entry dropped in single-condition settings, a stable sort, then AP."""
    conditions = np.array([t[:2] for t in types])
    out = {}
    for key, (probe, gallery) in REID_SETTINGS.items():
        p_index, g_index = np.flatnonzero(conditions == probe), np.flatnonzero(conditions == gallery)
        hits, aps, without = dict.fromkeys(KS, 0), [], 0
        for i in p_index:
            keep = g_index[g_index != i] if probe == gallery else g_index
            row = np.sqrt(((x[keep] - x[i]) ** 2).sum(1))
            matches = subjects[keep[np.argsort(row, kind="stable")]] == subjects[i]
            positions = np.flatnonzero(matches)
            if positions.size == 0:
                without += 1
                continue
            for k in KS:
                hits[k] += bool(positions[0] < k)
            aps.append(float(np.mean(np.arange(1, positions.size + 1) / (positions + 1))))
        out[key] = {"rank": {k: 100.0 * hits[k] / len(aps) for k in KS}, "map": 100.0 * float(np.mean(aps)),
                    "without": without}
    return out


def timed(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best seconds of `repeats` calls and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def gait_benchmark(data: tuple[np.ndarray, ...], repeats: int) -> float:
    x, subjects, types, views = data
    fast, scores = timed(lambda: casia_b_gait(x, subjects, types, views), repeats)
    slow, expected = timed(lambda: reference_gait(x, subjects, types, views), 1)
    for key in GAIT_PROBES:
        np.testing.assert_allclose(scores[key].matrix, expected[key]["matrix"], rtol=0, atol=1e-9)
        assert abs(scores[key].mean - expected[key]["mean"]) <= 1e-9, key
    means = ", ".join(f"{key} {scores[key].mean:.2f}%" for key in GAIT_PROBES)
    print(f"gait cross-view Rank-1 ({len(x)} sequences, gallery NM 1-4, 3 probe conditions x {len(VIEWS)}^2 views): "
          f"{means}")
    print(f"  gait vectorised: {fast * 1e3:8.1f} ms")
    print(f"  gait reference : {slow * 1e3:8.1f} ms (per-probe loop)")
    print(f"  gait ratio {slow / fast:.1f}x; matrices and means agree to 1e-9")
    return slow / fast


def reid_benchmark(data: tuple[np.ndarray, ...], repeats: int) -> float:
    x, subjects, types, _ = data
    fast, scores = timed(lambda: casia_b_reid(x, subjects, types, ks=KS), repeats)
    slow, expected = timed(lambda: reference_reid(x, subjects, types), 1)
    for key in REID_SETTINGS:
        for k in KS:
            assert abs(scores[key].rank[k] - expected[key]["rank"][k]) <= 1e-9, (key, k)
        assert abs(scores[key].map - expected[key]["map"]) <= 1e-9, key
        assert scores[key].probes_without_match == expected[key]["without"], key
    print(f"re-ID Rank-1/5/10 and mAP ({len(x)} sequences, settings {', '.join(REID_SETTINGS)}):")
    for key, s in scores.items():
        print(f"  {key}: Rank-1 {s.rank[1]:6.2f}%  Rank-5 {s.rank[5]:6.2f}%  Rank-10 {s.rank[10]:6.2f}%  "
              f"mAP {s.map:6.2f}%  ({s.num_probes} probes, {s.probes_without_match} without a match)")
    print(f"  re-ID vectorised: {fast * 1e3:8.1f} ms")
    print(f"  re-ID reference : {slow * 1e3:8.1f} ms (per-probe loop)")
    print(f"  re-ID ratio {slow / fast:.1f}x; Rank-k, mAP and unmatched counts agree to 1e-9")
    return slow / fast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="timed calls of the vectorised code (best kept)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated embeddings")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    print(f"numpy {np.__version__}; {SUBJECTS} subjects x {len(SEQUENCE_TYPES) * len(VIEWS)} sequences, {DIM}-d")
    data = casia_b_metadata(args.seed)
    gait_benchmark(data, args.repeats)
    reid_benchmark(data, args.repeats)


if __name__ == "__main__":
    main()
