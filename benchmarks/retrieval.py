"""Speed of the gait and re-identification evaluation against per-probe loop references, in one run.

The test set of CASIA-B is generated without the data: 50 subjects x 110 sequences (NM 1-6, BG 1-2, CL 1-2,
each at the 11 views 0, 18, ..., 180), one 128-d embedding per sequence made of a per-subject centre plus noise
(seeded; more noise for BG and CL, so the numbers are neither 0 nor 100).

What is timed is the tasks' own evaluation from embeddings (`RetrievalTask.evaluate_embeddings`: protocol
selections, one distance matrix per probe set, the metrics of `aclnet.engine.retrieval`), with the protocols of
the shipped experiments `casia-b-gait-j` (gallery NM 1-4 against the probes NM 5-6, BG 1-2 and CL 1-2,
cross-view, identical view excluded) and `casia-b-reid-j` (single-condition settings with each probe's own entry
excluded, and cross-condition settings). Each is timed against a reference that loops over the probes (one
distance row, one nearest neighbour per gallery view or one sort at a time) on the same selections; the two
must agree to 1e-9. Run from the repository root: `python benchmarks/retrieval.py`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from aclnet.config import load_config
from aclnet.data.sample import Sample
from aclnet.data.selection import selection_mask
from aclnet.engine.retrieval import normalised_rows
from aclnet.tasks.registry import make_task
from aclnet.tasks.retrieval import RetrievalTask

SUBJECTS, DIM = 50, 128
VIEWS = tuple(range(0, 181, 18))
SEQUENCES = {"nm": 6, "bg": 2, "cl": 2}
NOISE = {"nm": 1.6, "bg": 1.9, "cl": 2.3}  # per dimension, against centres of standard deviation 1
KS = (1, 5, 10)


def casia_b_test_set(seed: int) -> tuple[np.ndarray, list[Sample]]:
    """Embeddings (5500, 128) and samples (fields only) of a CASIA-B-sized test set, subjects 75-124."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(SUBJECTS, DIM))
    empty = np.zeros((1, 1, 17, 2), np.float32)
    samples, rows = [], []
    for s in range(SUBJECTS):
        for condition, count in SEQUENCES.items():
            for number in range(1, count + 1):
                for view in VIEWS:
                    meta = {"subject": 75 + s, "condition": condition, "sequence": number, "view": view}
                    samples.append(Sample(f"{75 + s:03d}-{condition}-{number:02d}-{view:03d}", empty, 0, meta=meta))
                    rows.append(centres[s] + NOISE[condition] * rng.normal(size=DIM))
    return np.array(rows), samples


def _probe_sets(task: RetrievalTask, samples: list[Sample]) -> dict[str, tuple[np.ndarray, np.ndarray, bool]]:
    """Probe mask, gallery mask and whether the probe set is its own gallery, per probe set of the protocol."""
    protocol = task.protocol
    sets = {}
    for name, probe in protocol.probes.items():
        in_probe = selection_mask(samples, probe.select)
        same = probe.gallery == "self"
        gallery = protocol.gallery if probe.gallery is None else probe.gallery
        sets[name] = (in_probe, in_probe if same else selection_mask(samples, gallery), same)
    return sets


def reference_gait(task: RetrievalTask, x: np.ndarray, samples: list[Sample]) -> dict[str, float]:
    """Per probe: its distances to the gallery, then the nearest sequence of every gallery view."""
    x = normalised_rows(x)
    subjects = np.array([s.meta["subject"] for s in samples])
    views = np.array([s.meta["view"] for s in samples])
    out = {}
    for name, (in_probe, in_gallery, _) in _probe_sets(task, samples).items():
        g_x, g_subjects, g_views = x[in_gallery], subjects[in_gallery], views[in_gallery]
        columns = {v: np.flatnonzero(g_views == v) for v in VIEWS}
        correct: dict[tuple[int, int], list[bool]] = {(pv, gv): [] for pv in VIEWS for gv in VIEWS}
        for i in np.flatnonzero(in_probe):
            row = np.sqrt(((g_x - x[i]) ** 2).sum(1))
            for gv, cols in columns.items():
                nearest = cols[int(np.argmin(row[cols]))]
                correct[(int(views[i]), gv)].append(g_subjects[nearest] == subjects[i])
        matrix = np.array([[100.0 * np.mean(correct[(pv, gv)]) for gv in VIEWS] for pv in VIEWS])
        out[name] = float(np.mean([np.mean([matrix[a, b] for b in range(len(VIEWS)) if b != a])
                                   for a in range(len(VIEWS))]))
    return out


def reference_reid(task: RetrievalTask, x: np.ndarray, samples: list[Sample]) -> dict[str, float]:
    """Per probe: its distances, its own entry dropped in single-condition settings, a stable sort, then AP."""
    x = normalised_rows(x)
    subjects = np.array([s.meta["subject"] for s in samples])
    out = {}
    for name, (in_probe, in_gallery, same) in _probe_sets(task, samples).items():
        g_index = np.flatnonzero(in_gallery)
        hits, aps = dict.fromkeys(KS, 0), []
        for i in np.flatnonzero(in_probe):
            keep = g_index[g_index != i] if same else g_index
            row = np.sqrt(((x[keep] - x[i]) ** 2).sum(1))
            positions = np.flatnonzero(subjects[keep[np.argsort(row, kind="stable")]] == subjects[i])
            if positions.size == 0:
                continue
            for k in KS:
                hits[k] += bool(positions[0] < k)
            aps.append(float(np.mean(np.arange(1, positions.size + 1) / (positions + 1))))
        out.update({f"{name}_rank{k}": 100.0 * hits[k] / len(aps) for k in KS})
        out[f"{name}_map"] = 100.0 * float(np.mean(aps))
    return out


def timed(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best seconds of `repeats` calls and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def compare(name: str, task: RetrievalTask, reference: Callable[..., dict[str, float]], x: np.ndarray,
            samples: list[Sample], repeats: int) -> float:
    """Time the task's evaluation and the reference, check they agree, print both; returns the ratio."""
    fast, evaluation = timed(lambda: task.evaluate_embeddings(x, samples), repeats)
    slow, expected = timed(lambda: reference(task, x, samples), 1)
    for key, value in expected.items():
        assert abs(evaluation.metrics[key] - value) <= 1e-9, (key, evaluation.metrics[key], value)
    values = "  ".join(f"{key} {value:.2f}" for key, value in evaluation.metrics.items())
    print(f"{name} ({len(samples)} sequences, protocol of {task.config.name}): {values}")
    print(f"  {name} task evaluation: {fast * 1e3:8.1f} ms")
    print(f"  {name} reference      : {slow * 1e3:8.1f} ms (per-probe loop)")
    print(f"  {name} ratio {slow / fast:.1f}x; all {len(expected)} numbers agree to 1e-9")
    return slow / fast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="timed calls of the task's evaluation (best kept)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated embeddings")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    print(f"numpy {np.__version__}; {SUBJECTS} subjects x {sum(SEQUENCES.values()) * len(VIEWS)} sequences, {DIM}-d")
    x, samples = casia_b_test_set(args.seed)
    gait = make_task(load_config("casia-b-gait-j"))
    compare("gait", gait, reference_gait, x, samples, args.repeats)
    reid = make_task(load_config("casia-b-reid-j"))
    test = np.flatnonzero(selection_mask(samples, reid.protocol.test))
    compare("re-ID", reid, reference_reid, x[test], [samples[i] for i in test], args.repeats)


if __name__ == "__main__":
    main()
