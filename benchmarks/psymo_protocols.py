"""The PsyMo benchmark's protocols as data (gait folds, re-identification, the validation protocol inside fold
A's training walkers) and what a random ranking scores on them (chance levels, computed exactly)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from aclnet.config import ExperimentConfig

# ---- protocols --------------------------------------------------------------------------------

VARIATIONS = ["ph", "txt", "wss", "wsf"]
GAIT_FOLDS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {"A": ((0, 4), (5, 9)), "B": ((5, 9), (0, 4))}
"""Fold: (training walkers, test walkers), inclusive ranges."""
GAIT_PROBES = ("nm", "bg", "cl")
REID_PROBES = ("nm-nm", "bg-bg", "cl-cl", "cl-nm", "bg-nm")


def _walkers(span: tuple[int, int]) -> dict[str, int]:
    return {"min": span[0], "max": span[1]}


def gait_protocol(fold: str) -> dict[str, Any]:
    """GaitGraph's CASIA-B protocol on 10 walkers: train on one half (every walk), test on the other."""
    train, test = GAIT_FOLDS[fold]
    return {
        "train": {"subject": _walkers(train)},
        "test": {"subject": _walkers(test)},
        "gallery": {"condition": "nm", "sequence": [1, 3]},
        "probes": {"nm": {"select": {"condition": "nm", "sequence": [2, 4]}},
                   "bg": {"select": {"condition": "bg"}},
                   "cl": {"select": {"condition": "cl"}}},
        "exclude_identical_view": True,
    }


def reid_protocol() -> dict[str, Any]:
    """TranSG's CASIA-B re-ID settings on 10 walkers: every walker trains and is tested, on other sequences."""
    return {
        "train": [{"condition": "nm", "sequence": [1, 3]},
                  {"condition": ["bg", "cl"], "direction": 0},
                  {"condition": list(VARIATIONS)}],
        "test": [{"condition": "nm", "sequence": [2, 4]},
                 {"condition": ["bg", "cl"], "direction": 1}],
        "gallery": {"condition": "nm"},
        "probes": {"nm-nm": {"select": {"condition": "nm"}, "gallery": "self"},
                   "bg-bg": {"select": {"condition": "bg"}, "gallery": "self"},
                   "cl-cl": {"select": {"condition": "cl"}, "gallery": "self"},
                   "cl-nm": {"select": {"condition": "cl"}},
                   "bg-nm": {"select": {"condition": "bg"}}},
    }


VALIDATION_PROBES = ("bg", "cl")


def validation_protocol() -> dict[str, Any]:
    """The protocol that chose the hyper-parameters: inside gait fold A's training walkers (0-4) and inside the
    re-ID training sequences only, so neither fold A's test walkers nor any re-ID test sequence was looked at.

    Train on the ph/txt/wss/wsf walks (both directions); gallery nm run 0 (sequences 1 and 3, both directions);
    probes bg and cl of direction 0 (conditions not trained on). Scored as gait (cross-view rank-1, identical
    view excluded) with the walkers seen in training; chance 20 % (2 of the 10 sequences of a gallery view).
    """
    walkers = _walkers(GAIT_FOLDS["A"][0])
    return {
        "train": {"subject": walkers, "condition": list(VARIATIONS)},
        "test": [{"subject": walkers, "condition": "nm", "sequence": [1, 3]},
                 {"subject": walkers, "condition": ["bg", "cl"], "direction": 0}],
        "gallery": {"condition": "nm"},
        "probes": {"bg": {"select": {"condition": "bg"}},
                   "cl": {"select": {"condition": "cl"}}},
        "exclude_identical_view": True,
    }



# ---- chance levels --------------------------------------------------------------------------


def gait_chance(probe_ids: np.ndarray, probe_views: np.ndarray, gallery_ids: np.ndarray, gallery_views: np.ndarray,
                *, exclude_identical_view: bool = True) -> float:
    """Rank-1 (%) of a random ranking under `cross_view_rank1`: for each (probe view, gallery view) cell the
    mean over its probes of (gallery sequences of that view with the probe's walker) / (gallery sequences of
    that view); cells averaged over gallery views (the identical view left out when asked), then probe views."""
    probe_ids, probe_views = np.asarray(probe_ids), np.asarray(probe_views)
    gallery_ids, gallery_views = np.asarray(gallery_ids), np.asarray(gallery_views)
    views = sorted(set(probe_views.tolist()) | set(gallery_views.tolist()))
    rows = []
    for v in views:
        probes = probe_ids[probe_views == v]
        cells = []
        for w in views:
            gallery = gallery_ids[gallery_views == w]
            if probes.size == 0 or gallery.size == 0 or (exclude_identical_view and v == w):
                continue
            cells.append(np.mean([(gallery == p).sum() / gallery.size for p in probes]))
        if cells:
            rows.append(np.mean(cells))
    return 100.0 * float(np.mean(rows)) if rows else math.nan


def random_ap(matches: int, size: int) -> float:
    """Expected average precision of a uniformly random ranking of `size` entries, `matches` of them true:
    H_N / N + (R - 1) / (N - 1) * (1 - H_N / N), with H_N the N-th harmonic number."""
    if matches < 1 or size < matches:
        raise ValueError(f"random_ap needs 1 <= matches <= size, got {matches} and {size}")
    if size == 1:
        return 1.0
    harmonic = float(np.sum(1.0 / np.arange(1, size + 1)))
    return harmonic / size + (matches - 1) / (size - 1) * (1.0 - harmonic / size)


def reid_chance(probe_ids: np.ndarray, gallery_ids: np.ndarray, *, same_set: bool) -> tuple[float, float]:
    """Rank-1 and mAP (%) of a random ranking under `rank_k_and_map`: per probe, rank-1 = true matches / gallery
    size and AP = `random_ap`, the probe's own entry left out when the probe set is its gallery; probes without
    a true match are left out, as the metric does."""
    probe_ids, gallery_ids = np.asarray(probe_ids), np.asarray(gallery_ids)
    rank1, ap = [], []
    for p in probe_ids:
        matches = int((gallery_ids == p).sum()) - int(same_set)  # same set: probe i is gallery entry i
        size = gallery_ids.size - int(same_set)
        if matches > 0:
            rank1.append(matches / size)
            ap.append(random_ap(matches, size))
    if not rank1:
        return math.nan, math.nan
    return 100.0 * float(np.mean(rank1)), 100.0 * float(np.mean(ap))


def chance_levels(task: str, protocol: Mapping[str, Any], samples: list[Any]) -> dict[str, float]:
    """What a random ranking scores on every number of a task's test report, from the samples the protocol
    selects (`protocol` as `ProtocolConfig.model_dump()`; gait: per probe set and `mean`; reid: `<probe>_rank1`,
    `<probe>_map`, `rank1`, `map`)."""
    from aclnet.data.selection import field_value, select

    test = select(samples, protocol["test"])
    identity, view = protocol.get("identity_field", "subject"), protocol.get("view_field", "view")

    def ids(part: list[Any], field: str) -> np.ndarray:
        return np.array([field_value(s, field) for s in part])

    values: dict[str, float] = {}
    for name, probe in protocol["probes"].items():
        probes = select(test, probe["select"])
        same_set = probe.get("gallery") == "self"
        gallery = probes if same_set else select(test, probe.get("gallery") or protocol.get("gallery") or {})
        if task == "reid":
            values[f"{name}_rank1"], values[f"{name}_map"] = reid_chance(ids(probes, identity), ids(gallery, identity),
                                                                         same_set=same_set)
        else:
            values[name] = gait_chance(ids(probes, identity), ids(probes, view), ids(gallery, identity),
                                       ids(gallery, view),
                                       exclude_identical_view=protocol.get("exclude_identical_view", True))
    names = list(protocol["probes"])
    if task == "reid":
        values["rank1"] = float(np.mean([values[f"{n}_rank1"] for n in names]))
        values["map"] = float(np.mean([values[f"{n}_map"] for n in names]))
    else:
        values["mean"] = float(np.mean([values[n] for n in names]))
    return values


_SAMPLES: dict[str, list[Any]] = {}


def config_chance(config: ExperimentConfig) -> dict[str, float]:
    """`chance_levels` of an experiment on its data (read once per data path)."""
    from aclnet.tasks.components import load_sample_set

    key = str(config.data.path)
    if key not in _SAMPLES:
        _SAMPLES[key] = load_sample_set(config).samples
    return chance_levels(config.task, config.section("protocol").model_dump(), _SAMPLES[key])
