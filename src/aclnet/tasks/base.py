"""A task: one kind of experiment, and everything that differs between kinds. It builds its data, its model
and its evaluation, names the metric that chooses checkpoints, and answers for itself what the rest of the
package would otherwise ask its name for: what its model outputs (`output`), the sections of the
configuration it owns, what its classes mean, its report's tables and sections. The engine's run loop
(`aclnet.engine.run`) receives a task object and never imports a task module."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import BaseModel

from aclnet.config import ExperimentConfig
from aclnet.data.datasets import SkeletonDataset, make_loader
from aclnet.data.pipeline import Pipeline
from aclnet.data.sample import Sample
from aclnet.engine.distributed import DistInfo
from aclnet.engine.seam import Evaluation, TaskData, TaskOutput, TrainingScore
from aclnet.models.skeleton_model import SkeletonModel
from aclnet.skeleton import Layout
from aclnet.tasks import components

REPORT_SECTIONS = ("confusion", "per_class", "samples")
"""The report sections a task may have beyond the common ones: the confusion matrix, the per-class
comparison with a baseline, and animated test samples with their predictions (all need class scores)."""


@dataclass
class ReportTable:
    """A table of a task's test result in the report: a title, the header, rows of cells (numbers, text, or
    (value, css class) pairs) and which columns hold numbers; or, without rows, a note."""

    title: str
    header: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    numeric: set[int] = field(default_factory=set)
    note: str | None = None


class Task(ABC):
    """One kind of experiment (action recognition, gait recognition, re-identification, or one's own).

    Args:
        config: the experiment (validated with the task's own sections).
    """

    name: ClassVar[str]
    primary_metric: ClassVar[str]
    """The metric (higher is better) that chooses the validated checkpoint."""
    output: ClassVar[TaskOutput]
    """What the model gives for a sequence: class scores (predicted classes, fused across streams) or
    embeddings (matched by distance)."""
    sections: ClassVar[Mapping[str, type[BaseModel]]] = {}
    """The configuration's top-level sections the task owns, each validated by its model."""
    classes_meaning: ClassVar[str] = "classes"
    """What the classes of training are, in words (for export metadata and reports)."""
    report_sections: ClassVar[frozenset[str]] = frozenset()
    """Which of `REPORT_SECTIONS` the task's report has."""

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config

    @abstractmethod
    def load_data(self, *, for_training: bool = True) -> TaskData:
        """The experiment's samples; validation data is held out only `for_training`."""

    @abstractmethod
    def evaluate(self, model: SkeletonModel, samples: list[Sample], pipeline: Pipeline,
                 device: torch.device) -> Evaluation:
        """Judge `model` on `samples` (the test data, or the validation data during training)."""

    def training_score(self, model: SkeletonModel, samples: list[Sample], pipeline: Pipeline,
                       device: torch.device) -> TrainingScore | None:
        """How well `model` fits these training samples, shown beside the test result (None: not measured)."""
        return None

    def validate(self, model: SkeletonModel, data: TaskData, pipeline: Pipeline,
                 device: torch.device) -> dict[str, float]:
        """The validation metrics of an epoch: `evaluate` on the validation samples."""
        return self.evaluate(model, data.val, pipeline, device).metrics

    def summary(self, report: dict[str, Any]) -> str:
        """The lines `aclnet train`/`test` print for a test report: its metrics."""
        values = "  ".join(f"{k} {report[k]:.2f}" for k in metric_keys(report))
        return f"test ({report['samples']} samples): {values}  [{chosen(report)}]"

    def result_tables(self, report: dict[str, Any]) -> list[ReportTable]:
        """The report's tables of a test result: every metric."""
        return metric_tables(report)

    @property
    def time_flip(self) -> bool:
        """Whether each test clip's features are averaged with those of its time reversal."""
        return False

    def pipeline(self, layout: Layout, *, test_mode: bool, clips: int | None = None) -> Pipeline:
        """The configured pipeline; training draws `data.train_clips` views of each sample."""
        if clips is None:
            clips = 1 if test_mode else self.config.data.train_clips
        return components.make_pipeline(self.config, layout, test_mode=test_mode, clips=clips)

    def loss_constants(self, data: TaskData) -> dict[str, int]:
        """K, the overlap threshold, the start epoch and the memory size the losses use for this data."""
        return components.loss_constants(self.config, len(data.classes), len(data.train))

    def build_model(self, data: TaskData, pipeline: Pipeline) -> SkeletonModel:
        """Backbone, classifier over the training classes and the configured auxiliary losses."""
        return components.build_model(self.config, len(data.classes), data.train, pipeline,
                                      self.loss_constants(data))

    def loader(self, samples: list[Sample], pipeline: Pipeline, *, train: bool,
               dist_info: DistInfo | None = None) -> torch.utils.data.DataLoader:
        """Training batches (shuffled, balanced or identity-balanced as configured) or evaluation batches in
        order."""
        config = self.config
        return make_loader(
            SkeletonDataset(samples, pipeline, seed=config.train.seed), config.optim.batch_size, shuffle=train,
            balanced=train and config.data.balanced_sampling, seed=config.train.seed,
            num_workers=config.data.num_workers, distributed=train and dist_info is not None and dist_info.enabled,
            drop_last=False,  # as the release
            pin_memory=torch.cuda.is_available() and config.train.device != "cpu",
            sequences_per_identity=config.data.sequences_per_identity if train else None,
        )

    def use_amp(self, device: torch.device) -> bool:
        """bf16 autocast on CUDA when configured."""
        return self.config.train.amp and device.type == "cuda"


REPORT_META = frozenset({"task", "checkpoint", "clips", "samples", "sequences", "selection", "selected_epoch",
                         "split"})
"""Entries of a test report that are not metrics."""


def metric_keys(report: dict[str, Any]) -> list[str]:
    """The report's metrics: its numeric entries that are not `REPORT_META`."""
    return [k for k, v in report.items() if k not in REPORT_META and isinstance(v, int | float)
            and not isinstance(v, bool)]


def metric_tables(report: dict[str, Any]) -> list[ReportTable]:
    """One table of every metric of a test report (what a task shows unless it says more)."""
    return [ReportTable("Metrics", ["metric", "value"], [[key, float(report[key])] for key in metric_keys(report)],
                        {1})]


def chosen(report: dict[str, Any]) -> str:
    """How the tested model was chosen, for the summary line: the checkpoint rule, or the report's own note
    (a baseline that was not trained)."""
    return str(report.get("note") or f"checkpoint chosen on the {report['selection']}")
