"""Action recognition: classes of actions, judged by top-k and mean class accuracy of clip-averaged
softmax scores.

Checkpoints are chosen on a validation split that is not the test split. Where a protocol has none,
part of the training subjects is held out; training on the whole training split and testing the final
epoch (`select_on: last`) and choosing on the test split (the release's practice, labelled so in the
report) are options.
"""

from __future__ import annotations

from typing import Any

import torch

from aclnet.data.pipeline import Pipeline
from aclnet.data.sample import Sample
from aclnet.data.splits import hold_out
from aclnet.engine.evaluation import confusion_matrix, metrics
from aclnet.engine.forward import run_model
from aclnet.engine.seam import Evaluation, TaskData, TrainingScore
from aclnet.errors import InputError
from aclnet.models.skeleton_model import SkeletonModel
from aclnet.skeleton import get_layout
from aclnet.tasks.base import REPORT_SECTIONS, ReportTable, Task, chosen
from aclnet.tasks.components import load_sample_set


class ActionTask(Task):
    """Action recognition on the configured splits (`data.train_split`, `val_split`, `test_split`)."""

    name = "action"
    primary_metric = "top1"
    output = "class_scores"
    classes_meaning = "actions"
    report_sections = frozenset(REPORT_SECTIONS)

    def load_data(self, *, for_training: bool = True) -> TaskData:
        config = self.config
        data = config.data
        sample_set = load_sample_set(config)
        layout = get_layout(data.layout or sample_set.layout)
        train = sample_set.split(data.train_split)
        test = sample_set.split(data.test_split)
        select_on = config.train.select_on
        val: list[Sample] = []
        if for_training:  # testing never holds out
            if select_on == "test":
                val = test
            elif data.val_split is not None:
                val = sample_set.split(data.val_split)
            elif select_on != "last":
                train, val = hold_out(train, data.holdout_key, data.holdout_fraction, config.train.seed)
        parts = [("training", data.train_split, train), ("test", data.test_split, test)]
        if for_training and (val or select_on != "last"):
            parts.append(("validation", data.val_split, val))
        for role, name, part in parts:
            if not part:
                raise InputError(f"the {role} data (split '{name or data.train_split}') has no samples")
        unseen = sorted({s.label for s in test} - {s.label for s in train})
        if unseen:
            raise InputError(f"the test data (split '{data.test_split}') has {len(unseen)} class(es) that no training "
                             f"sample has (labels {unseen[:5]}...); a classifier cannot predict them. If the classes "
                             "are identities (gait, re-identification), use task: gait or reid with a protocol")
        classes = sample_set.classes or [str(i) for i in range(sample_set.num_classes)]
        return TaskData(train, val, test, layout, classes)

    def evaluate(self, model: SkeletonModel, samples: list[Sample], pipeline: Pipeline,
                 device: torch.device) -> Evaluation:
        outputs = run_model(model, self.loader(samples, pipeline, train=False), device, self.use_amp(device))
        if outputs.scores is None:
            raise InputError("action recognition needs the classifier: set loss.ce to true")
        num_classes = outputs.scores.shape[1]
        details = {
            "split": self.config.data.test_split,
            "confusion_matrix": confusion_matrix(outputs.scores.argmax(1), outputs.labels, num_classes).tolist(),
        }
        ids = [samples[i].sample_id for i in outputs.indices]
        return Evaluation(metrics(outputs.scores, outputs.labels), details, outputs.scores, outputs.labels, ids)

    def training_score(self, model: SkeletonModel, samples: list[Sample], pipeline: Pipeline,
                       device: torch.device) -> TrainingScore:
        """Top-1 on training samples (chance: one over the classes)."""
        evaluation = self.evaluate(model, samples, pipeline, device)
        classes = len(evaluation.details["confusion_matrix"])
        return TrainingScore("top1", evaluation.metrics["top1"], 100.0 / max(classes, 1))

    def summary(self, report: dict[str, Any]) -> str:
        values = "  ".join(f"{k} {report[k]:.2f}" for k in ("top1", "top5", "mean_class"))
        extra = f", occluded: {report['occluded']}" if "occluded" in report else ""
        where = f"{report['split']}, {report['clips']} clips, {report['samples']} samples{extra}"
        return f"test ({where}): {values}  [{chosen(report)}]"

    def result_tables(self, report: dict[str, Any]) -> list[ReportTable]:
        labels = {"top1": "top-1 (%)", "top5": "top-5 (%)", "mean_class": "mean class accuracy (%)"}
        rows = [[label, float(report[key])] for key, label in labels.items() if key in report]
        tables = [ReportTable("Metrics", ["metric", "value"], rows, {1})]
        if "occluded" in report:
            tables.append(ReportTable("Occlusion", note=f"Occluded: {report['occluded']}"))
        return tables
