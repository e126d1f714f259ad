"""Fixtures shared by the test modules: tiny trained runs (what is tested is the plumbing, not the accuracy)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

# Tiny models: 1 epoch of 2 steps, two narrow blocks.
TINY_MODEL = ["optim.epochs=1", "train.max_steps_per_epoch=2", "optim.batch_size=8", "data.clip_len=16",
              "model.options.base_channels=8", "model.options.num_stages=2", "model.options.inflate_stages=[]",
              "model.options.down_stages=[]", "train.device=cpu"]
TINY = {
    "action": ["synthetic-j", "data.synthetic.samples_per_class=10", "data.test_clips=2"],
    "gait": ["synthetic-gait-j", "data.synthetic.views=[0,90]"],
}


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny action and gait runs, trained once per test session."""
    from aclnet.cli import main

    found = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # faster on shared cores
    try:
        for task, (experiment, *settings) in TINY.items():
            run = tmp_path_factory.getbasetemp() / "aclnet_tiny_runs" / task
            if not (run / "test_report.json").exists():
                assert main(["train", experiment, "--work-dir", str(run), "--force", "--set", *TINY_MODEL,
                             *settings]) == 0
            found[task] = run
    finally:
        torch.set_num_threads(threads)
    return found
