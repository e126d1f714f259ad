"""The seam between the engine and a task: what the run loop asks of a task object and what the task hands
back. The engine receives task objects (`aclnet.tasks`) and imports no task module; this is all it knows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import torch

from aclnet.config import ExperimentConfig
from aclnet.data.pipeline import Pipeline
from aclnet.data.sample import Sample
from aclnet.engine.distributed import DistInfo
from aclnet.models.skeleton_model import SkeletonModel
from aclnet.skeleton import Layout

TaskOutput = Literal["class_scores", "embeddings"]
"""What a task's model gives for a sequence: clip-averaged softmax scores over its classes (fused across
streams by averaging, post-processed by arg-max), or pooled features (L2-normalised, matched by distance)."""


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


@dataclass(frozen=True)
class TrainingScore:
    """How well a model fits (a spread subset of) its own training data, shown beside the test result: the
    metric's name, its value and what guessing gets, both in percent."""

    metric: str
    value: float
    chance: float


class RunnableTask(Protocol):
    """What the run loop (`aclnet.engine.run`) calls on a task."""

    name: str
    primary_metric: str
    output: TaskOutput
    config: ExperimentConfig

    def load_data(self, *, for_training: bool = True) -> TaskData: ...

    def pipeline(self, layout: Layout, *, test_mode: bool, clips: int | None = None) -> Pipeline: ...

    def build_model(self, data: TaskData, pipeline: Pipeline) -> SkeletonModel: ...

    def loss_constants(self, data: TaskData) -> dict[str, int]: ...

    def loader(self, samples: list[Sample], pipeline: Pipeline, *, train: bool,
               dist_info: DistInfo | None = None) -> torch.utils.data.DataLoader: ...

    def evaluate(self, model: SkeletonModel, samples: list[Sample], pipeline: Pipeline,
                 device: torch.device) -> Evaluation: ...

    def training_score(self, model: SkeletonModel, samples: list[Sample], pipeline: Pipeline,
                       device: torch.device) -> TrainingScore | None: ...

    def validate(self, model: SkeletonModel, data: TaskData, pipeline: Pipeline,
                 device: torch.device) -> dict[str, float]: ...
