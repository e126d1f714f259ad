"""Occlusion robustness: test a checkpoint with the joints of one body part zeroed in every frame."""

from __future__ import annotations

from pathlib import Path

from aclnet.data.sample import Sample
from aclnet.engine.run import test
from aclnet.errors import InputError
from aclnet.skeleton import Layout
from aclnet.tasks.base import Task


def occluded(samples: list[Sample], layout: Layout, part: str) -> list[Sample]:
    """Copies of `samples` with the joints of body part `part` zeroed in every frame."""
    if part not in layout.parts:
        raise InputError(f"unknown body part '{part}' for layout {layout.name}; parts: {sorted(layout.parts)}")
    joints = list(layout.parts[part])
    copies = []
    for s in samples:
        keypoint = s.keypoint.copy()
        keypoint[:, :, joints] = 0
        score = None if s.score is None else s.score.copy()
        if score is not None:
            score[:, :, joints] = 0
        copies.append(Sample(s.sample_id, keypoint, s.label, score, s.img_shape, dict(s.meta)))
    return copies


def test_occluded(task: Task, checkpoint: Path, part: str, *, clips: int | None = None,
                  scores_out: Path | None = None, force: bool = False) -> dict:
    """The test report with body part `part` occluded."""
    data = task.load_data(for_training=False)
    report = test(task, checkpoint, clips=clips, data=data, scores_out=scores_out, force=force,
                  transform=lambda samples: occluded(samples, data.layout, part))
    report["occluded"] = part
    return report


def occlusion_table(task: Task, checkpoint: Path, *, clips: int | None = None) -> str:
    """The task's primary metric with each body part of the layout zeroed, beside the unoccluded one."""
    data = task.load_data(for_training=False)
    metric = task.primary_metric
    rows = [("none", test(task, checkpoint, clips=clips, data=data)[metric])]
    rows += [(part, test(task, checkpoint, clips=clips, data=data,
                         transform=lambda s, p=part: occluded(s, data.layout, p))[metric])
             for part in data.layout.parts]
    width = max(len(name) for name, _ in [*rows, ("occluded part", 0)])
    lines = [f"{'occluded part'.ljust(width)}  {metric}", *(f"{name.ljust(width)}  {acc:6.2f}" for name, acc in rows)]
    return "\n".join(lines)
