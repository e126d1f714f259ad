"""Several streams of one experiment trained one after another, then fused: the paper's multi-stream
numbers from one command (`aclnet train-streams`).

Each stream trains into its own run folder under the work folder (`WORK/j`, `WORK/b`, ...). A stream
whose run is finished is not trained again and one with a checkpoint is resumed, so an interrupted
command continues where it stopped. The fused result is written to `WORK/ensemble.json`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aclnet.config import ExperimentConfig, load_config
from aclnet.engine.ensemble import ensemble
from aclnet.engine.run import train
from aclnet.engine.run_folder import RunFolder
from aclnet.engine.seam import RunnableTask
from aclnet.errors import InputError
from aclnet.fileio import atomic_write_bytes

PAPER_WEIGHTS: dict[tuple[str, ...], tuple[float, ...]] = {
    ("j", "b"): (1, 1),
    ("j", "b", "jm", "bm"): (2, 2, 1, 1),
    ("j", "b", "k", "jm", "bm", "km"): (2, 2, 2, 1, 1, 1),
}
"""The paper's ensemble weights for its stream sets."""

ENSEMBLE_REPORT = "ensemble.json"


def stream_weights(streams: list[str], weights: list[float] | None) -> list[float]:
    """The given weights, else the paper's for its stream sets, else equal weights."""
    if weights is not None:
        if len(weights) != len(streams):
            raise InputError(f"--weights has {len(weights)} values for {len(streams)} streams")
        return weights
    return list(PAPER_WEIGHTS.get(tuple(streams), (1.0,) * len(streams)))


def train_streams(template: str, streams: list[str], work_dir: Path,
                  make_task: Callable[[ExperimentConfig], RunnableTask],
                  *, overrides: list[str] | None = None, weights: list[float] | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train `TEMPLATE-STREAM` for every stream (resuming or skipping what was done), then fuse their test scores.

    Args:
        template: a shipped template name such as `ntu60-xsub` (the experiments are `ntu60-xsub-j`, ...).
        streams: the streams in order, e.g. ["j", "b", "jm", "bm"].
        work_dir: the folder that holds one run folder per stream and the fused report.
        make_task: the task factory (`aclnet.tasks.registry.make_task`).
        overrides: `--set` values applied to every stream.
        weights: fusion weights (default: the paper's for its stream sets, else equal).
    """
    if len(set(streams)) != len(streams) or not streams:
        raise InputError(f"--streams {','.join(streams)}: give each stream once")
    fused_weights = stream_weights(streams, weights)
    configs = {s: load_config(f"{template}-{s}", overrides) for s in streams}  # every name checked first
    unscored = [c.task for c in configs.values() if make_task(c).output != "class_scores"]
    if unscored:
        raise InputError(f"{template}: streams are fused from class scores; task '{unscored[0]}' has none")
    reports: dict[str, dict[str, Any]] = {}
    for index, (stream, config) in enumerate(configs.items(), start=1):
        run = RunFolder(work_dir / stream)
        if run.finished:
            log(f"== stream {stream} ({index}/{len(streams)}): done earlier, {run.path}")
            reports[stream] = run.read_report()
            continue
        resume = run.latest.exists()
        log(f"== stream {stream} ({index}/{len(streams)}): {'resuming' if resume else 'training'} in {run.path}")
        reports[stream] = train(make_task(config), run.path, resume=resume, force=not resume)
        log(f"   stream {stream}: top1 {reports[stream]['top1']:.2f}")
    values, _ = ensemble([RunFolder(work_dir / s).test_scores for s in streams], fused_weights)
    report = {"template": template, "streams": streams, "weights": fused_weights,
              "per_stream": {s: {k: reports[s][k] for k in ("top1", "top5", "mean_class")} for s in streams},
              "ensemble": values}
    atomic_write_bytes(work_dir / ENSEMBLE_REPORT, json.dumps(report, indent=2).encode())
    return report
