"""The seam between the engine and a task: a task builds its data, its model and its evaluation, and
names the metric that chooses checkpoints. The engine's run loop (`aclnet.engine.run`) receives a task
object and never imports a task module."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from aclnet.config import ExperimentConfig
from aclnet.data.pipeline import Pipeline
from aclnet.data.sample import Sample
from aclnet.engine.distributed import DistInfo
from aclnet.models.skeleton_model import SkeletonModel
from aclnet.skeleton import Layout
from aclnet.tasks import components


@dataclass
class TaskData:
    """The samples of an experiment: training, validation (may be empty) and test; layout; class names
    (the training classes: actions, or identities for gait and re-identification)."""

    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    layout: Layout
    classes: list[str]


@dataclass
class Evaluation:
    """A task's judgement of a model on some samples.

    metrics: numbers (percent) including the task's primary metric; details: further report entries
    (tables, counts); scores (N, C) and sample_ids: per-sample class scores where the task has them.
    """

    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    scores: np.ndarray | None = None
    labels: np.ndarray | None = None
    sample_ids: list[str] | None = None


class Task(ABC):
    """One kind of experiment (action recognition, gait recognition, re-identification).

    Args:
        config: the experiment.
    """

    name: ClassVar[str]
    primary_metric: ClassVar[str]
    """The metric (higher is better) that chooses the validated checkpoint."""
    needs_protocol: ClassVar[bool] = False
    class_scores: ClassVar[bool] = False
    """Whether the test yields per-sample class scores (which streams can be fused from)."""

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config

    @abstractmethod
    def load_data(self, *, for_training: bool = True) -> TaskData:
        """The experiment's samples; validation data is held out only `for_training`."""

    @abstractmethod
    def evaluate(self, model: SkeletonModel, samples: list[Sample], pipeline: Pipeline,
                 device: torch.device) -> Evaluation:
        """Judge `model` on `samples` (the test data, or the validation data during training)."""

    @abstractmethod
    def summary(self, report: dict[str, Any]) -> str:
        """The lines `aclnet train`/`test` print for a test report."""

    def pipeline(self, layout: Layout, *, test_mode: bool, clips: int | None = None) -> Pipeline:
        """The configured pipeline; training draws `data.train_clips` views of each sample."""
        if clips is None:
            clips = 1 if test_mode else self.config.data.train_clips
        return components.make_pipeline(self.config, layout, test_mode=test_mode, clips=clips)

    def build_model(self, data: TaskData, pipeline: Pipeline) -> SkeletonModel:
        """Backbone, classifier over the training classes and the configured auxiliary losses."""
        return components.build_model(self.config, len(data.classes), data.train, pipeline)

    def loader(self, samples: list[Sample], pipeline: Pipeline, *, train: bool,
               dist_info: DistInfo | None = None) -> torch.utils.data.DataLoader:
        """Batches of `samples`: the training order and sampling, or in order for evaluation."""
        return components.make_data_loader(self.config, samples, pipeline, train=train, dist_info=dist_info)

    def use_amp(self, device: torch.device) -> bool:
        """bf16 autocast on CUDA when configured."""
        return self.config.train.amp and device.type == "cuda"
