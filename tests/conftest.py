"""Fixtures shared by the test modules: tiny trained runs (what is tested is the plumbing, not the accuracy)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark_script(name: str) -> Iterator[ModuleType]:
    """A script of benchmarks/ imported as a module for the length of a fixture (`yield from` it)."""
    spec = importlib.util.spec_from_file_location(f"{name}_suite", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    if str(BENCHMARKS) not in sys.path:  # the scripts import each other, as when run from their folder
        sys.path.insert(0, str(BENCHMARKS))
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def suite(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The benchmark script named by the test module's `BENCHMARK`, imported as a module."""
    yield from benchmark_script(request.module.BENCHMARK)

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
