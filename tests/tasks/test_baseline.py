"""`aclnet.tasks.baseline`: the bone-length nearest-neighbour baseline, by hand and on generated walks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aclnet.cli import main
from aclnet.config import load_config
from aclnet.data.sample import Sample
from aclnet.skeleton import make_layout
from aclnet.tasks.baseline import baseline_report, bone_lengths, standardised
from aclnet.tasks.registry import make_task

CHAIN = make_layout("chain", ["a", "b", "c"], [(0, 1), (1, 2)], 0)


def _chain(frames: list[list[tuple[float, float, float]]]) -> Sample:
    return Sample("s", np.array(frames, dtype=np.float32)[None], 0)


def test_median_bone_lengths_by_hand() -> None:
    # a-b: 1, 1.5, 3 -> median 1.5; b-c: 2, (c missing), 4 -> median 3
    sample = _chain([[(0, 0, 1), (1, 0, 1), (1, 2, 1)],
                     [(0, 0, 1), (1.5, 0, 1), (0, 0, 0)],
                     [(0, 0, 1), (3, 0, 1), (3, 4, 1)]])
    lengths = bone_lengths([sample], CHAIN, scale_free=False)[0]  # the bones b-a and c-b (not the centre's)
    np.testing.assert_allclose(lengths, [1.5, 3.0])
    np.testing.assert_allclose(bone_lengths([sample], CHAIN, scale_free=True)[0], lengths / 4.5)
    never = _chain([[(0, 0, 1), (1, 0, 1), (0, 0, 0)]])  # c never seen: its bone is unknown
    assert np.isnan(bone_lengths([never], CHAIN, scale_free=False)[0]).sum() == 1


def test_standardised_with_the_training_statistics() -> None:
    train = np.array([[1.0, 10.0], [3.0, 10.0]])  # column 2 has no spread: divided by 1
    test = np.array([[2.0, 12.0], [5.0, np.nan]])
    np.testing.assert_allclose(standardised(train, test), [[0.0, 2.0], [3.0, 0.0]])


def test_body_proportions_find_generated_walkers_far_above_chance() -> None:
    task = make_task(load_config("synthetic-reid-j"))
    report = baseline_report(task)
    assert report["scale_free"] is True and report["method"] == "bone-length nearest neighbour"  # 2D camera views
    # generated walkers differ in their limb proportions: far above chance (about 5 %) in the 20-walker protocol
    # (the data is generated from a fixed seed: 42.9 and 73.3 today)
    assert report["rank1"] > 40 and report["nm-nm_rank1"] > 60


def test_the_command_writes_its_report_and_refuses_classification(tmp_path, capsys) -> None:
    out = tmp_path / "baseline.json"
    assert main(["baseline", "synthetic-gait-j", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bone-length nearest neighbour: no training" in printed and "rank-1" in printed
    report = json.loads(out.read_text())
    assert report["mean"] == pytest.approx(np.mean([report[p] for p in ("nm", "bg", "cl")]))
    assert main(["baseline", "synthetic-gait-j", "--out", str(out)]) == 2  # never overwritten without --force
    assert main(["baseline", "synthetic-j"]) == 2
    assert "is for gait recognition and re-identification" in capsys.readouterr().err
