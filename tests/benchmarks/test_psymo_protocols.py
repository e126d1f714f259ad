"""benchmarks/psymo_protocols.py: the chance levels of random rankings, against hand counts and brute force."""

from __future__ import annotations

import itertools
from types import ModuleType

import numpy as np
import pytest

from aclnet.data.sample import Sample

BENCHMARK = "psymo_protocols"  # the `suite` fixture (tests/conftest.py) imports benchmarks/psymo_protocols.py


def test_gait_chance_by_hand(suite: ModuleType) -> None:
    # gallery view 0: walkers 1, 1, 2; view 90: 1, 2, 3, 4. Probes of view 0: walkers 1, 2; of view 90: walker 3.
    args = (np.array([1, 2, 3]), np.array([0, 0, 90]), np.array([1, 1, 2, 1, 2, 3, 4]),
            np.array([0, 0, 0, 90, 90, 90, 90]))
    # identical view excluded: view-0 probes against view 90: 1/4 each; the view-90 probe against view 0: 0/3
    assert suite.gait_chance(*args) == pytest.approx(100 * (0.25 + 0.0) / 2)
    # included: row 0 = mean(mean(2/3, 1/3), 1/4) = 0.375; row 90 = mean(0, 1/4) = 0.125
    assert suite.gait_chance(*args, exclude_identical_view=False) == pytest.approx(25.0)


def _brute_force_ap(matches: int, size: int) -> float:
    """Mean AP over every placement of the true matches in a ranking of `size`."""
    aps = []
    for positions in itertools.combinations(range(1, size + 1), matches):
        aps.append(np.mean([(k + 1) / rank for k, rank in enumerate(positions)]))
    return float(np.mean(aps))


def test_reid_chance_by_hand(suite: ModuleType) -> None:
    for matches, size in ((1, 1), (1, 2), (2, 4), (3, 7), (5, 9)):
        assert suite.random_ap(matches, size) == pytest.approx(_brute_force_ap(matches, size))
    assert suite.random_ap(1, 2) == pytest.approx(0.75)  # first (AP 1) or second (AP 1/2)
    # self setting: walkers 1, 1, 2. Each walker-1 probe keeps 1 match among 2; the walker-2 probe has no match
    # left and is left out (as rank_k_and_map does).
    rank1, mean_ap = suite.reid_chance(np.array([1, 1, 2]), np.array([1, 1, 2]), same_set=True)
    assert (rank1, mean_ap) == (pytest.approx(50.0), pytest.approx(75.0))
    # cross setting: probes 1 and 2 against gallery 1, 1, 2, 3: 2/4 and 1/4
    rank1, mean_ap = suite.reid_chance(np.array([1, 2]), np.array([1, 1, 2, 3]), same_set=False)
    assert rank1 == pytest.approx(37.5)
    assert mean_ap == pytest.approx(100 * (_brute_force_ap(2, 4) + _brute_force_ap(1, 4)) / 2)
    # through the protocol: selections and the probe's own gallery
    samples = [Sample(f"s{i}", np.zeros((1, 1, 17, 2), np.float32), 0,
                      meta={"subject": subject, "view": 0, "condition": condition, "sequence": 1})
               for i, (subject, condition) in enumerate([(1, "nm"), (1, "nm"), (2, "nm"), (3, "nm"), (1, "bg"),
                                                         (2, "bg"), (9, "cl")])]
    protocol = {"test": {"sequence": 1}, "gallery": {"condition": "nm"},
                "probes": {"nm-nm": {"select": {"condition": "nm"}, "gallery": "self"},
                           "bg-nm": {"select": {"condition": "bg"}, "gallery": None}}}
    chance = suite.chance_levels("reid", protocol, samples)
    # nm-nm: only walker 1's two probes have a match, 1 among 3 each; bg-nm: 2/4 and 1/4
    assert chance["nm-nm_rank1"] == pytest.approx(100 / 3) and chance["bg-nm_rank1"] == pytest.approx(37.5)
    assert chance["rank1"] == pytest.approx((100 / 3 + 37.5) / 2)
    assert chance["nm-nm_map"] == pytest.approx(100 * _brute_force_ap(1, 3))
