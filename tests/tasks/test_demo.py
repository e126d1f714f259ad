"""The demo: both runs, and Motion Families that recover the generator's confusable groups."""

from __future__ import annotations

import pytest
import torch

from aclnet.data.synthetic import confusable_groups
from aclnet.engine.checkpoint import load_checkpoint
from aclnet.engine.run import train
from aclnet.tasks.demo import demo_configs, family_recovery, run_demo
from aclnet.tasks.registry import make_task


def test_family_recovery_by_hand():
    families = torch.zeros(6, 6, dtype=torch.bool)
    families[0, 1] = families[1, 0] = families[2, 0] = True  # group {0, 1, 2}: 3 of 6 ordered pairs
    families[3, 4] = families[4, 3] = families[5, 3] = families[5, 4] = families[3, 5] = families[4, 5] = True
    assert family_recovery(families, [[0, 1, 2], [3, 4, 5]]) == [0.5, 1.0]


@pytest.mark.slow
def test_learned_families_recover_confusable_groups(tmp_path):
    config = demo_configs(["optim.epochs=12", "train.val_interval=12"])["aclnet"]
    train(make_task(config), tmp_path / "aclnet")
    families = load_checkpoint(tmp_path / "aclnet" / "latest.pt")["model"]["aux.inter.loss.families"]
    groups = confusable_groups(config.data.synthetic.num_classes, config.data.synthetic.group_size)
    shares = family_recovery(families, groups)
    # Families of two members among 11 other classes would hold a group mate 2/11 of the time by chance.
    assert sum(shares) / len(shares) >= 0.6, shares


@pytest.mark.slow
def test_demo_prints_both_runs(tmp_path, capsys):
    results = run_demo(tmp_path, extra=["optim.epochs=2", "train.max_steps_per_epoch=2", "train.val_interval=2"])
    text = capsys.readouterr().out
    assert "test top-1: CE only" in text and "within-group pairs recovered" in text
    assert set(results) == {"ce", "aclnet", "family_recovery"}
    assert (tmp_path / "ce" / "test_report.json").exists() and (tmp_path / "aclnet" / "latest.pt").exists()


def test_group_errors_by_hand():
    import numpy as np

    from aclnet.tasks.demo import group_errors

    groups = [[0, 1, 2], [3, 4, 5]]
    labels = np.array([0, 0, 1, 3, 4, 5, 2, 3])
    predicted = np.array([0, 1, 2, 3, 0, 4, 5, 3])  # errors: 0->1, 1->2 (in group), 4->0, 2->5 (across), 5->4 (in)
    in_group, inside = group_errors(predicted, labels, groups)
    assert in_group == 6 / 8 and inside == 3 / 5
