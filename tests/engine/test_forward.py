"""`aclnet.engine.forward`: one pass of a model over a loader, with progress for long passes."""

from __future__ import annotations

import itertools

import torch

from aclnet import progress
from aclnet.engine.forward import run_model
from aclnet.models.backbones import build_backbone
from aclnet.models.skeleton_model import SkeletonModel


def test_a_long_pass_says_how_far_it_is_when_piped(monkeypatch, capsys) -> None:
    clock = itertools.count(0.0, 6.0)  # every batch takes 6 s: a line at the 2nd batch and every 10 s after
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    model = SkeletonModel(build_backbone("stgcn", layout="coco", in_channels=2, preset="small"), 3)
    batches = [(torch.zeros(2, 1, 1, 8, 17, 2), torch.zeros(2, dtype=torch.long), torch.arange(2) + 2 * k)
               for k in range(5)]
    outputs = run_model(model, batches, torch.device("cpu"), False)
    assert outputs.scores.shape == (10, 3) and outputs.indices.tolist() == list(range(10))
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.startswith("batches evaluated: ") and "/5 (" in line for line in lines)
