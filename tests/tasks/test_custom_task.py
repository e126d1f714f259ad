"""A task defined outside the package: registered, then trained, tested, predicted, exported and reported
through the command line with no change to the package (the seam between the engine and the tasks)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from pydantic import Field

from aclnet.cli import main
from aclnet.config import config_as_dict, load_config
from aclnet.config.schema import Section
from aclnet.config.tasks import TASKS
from aclnet.data.pipeline import Pipeline
from aclnet.data.sample import Sample
from aclnet.engine.evaluation import confusion_matrix
from aclnet.engine.forward import run_model
from aclnet.engine.seam import Evaluation, TaskData
from aclnet.models.skeleton_model import SkeletonModel
from aclnet.skeleton import get_layout
from aclnet.tasks import register_task
from aclnet.tasks.base import Task
from aclnet.tasks.components import load_sample_set
from conftest import TINY_MODEL


class ParityOptions(Section):
    """How the parity task groups the action classes."""

    offset: int = Field(0, ge=0, description="added to a class index before its parity is taken")


class ParityTask(Task):
    """Whether a generated action's class index (plus an offset) is even or odd: two classes, judged by the
    share of hits."""

    name = "parity"
    primary_metric = "hit"
    output = "class_scores"
    sections = {"parity": ParityOptions}
    classes_meaning = "even or odd action classes"
    report_sections = frozenset({"confusion"})

    def load_data(self, *, for_training: bool = True) -> TaskData:
        sample_set = load_sample_set(self.config)
        offset = self.config.section("parity").offset

        def relabel(samples: list[Sample]) -> list[Sample]:
            return [dataclasses.replace(s, label=(s.label + offset) % 2) for s in samples]

        return TaskData(relabel(sample_set.split("train")), [], relabel(sample_set.split("test")),
                        get_layout(sample_set.layout), ["even", "odd"])

    def evaluate(self, model: SkeletonModel, samples: list[Sample], pipeline: Pipeline,
                 device: torch.device) -> Evaluation:
        out = run_model(model, self.loader(samples, pipeline, train=False), device, False)
        predictions = out.scores.argmax(1)
        details = {"confusion_matrix": confusion_matrix(predictions, out.labels, 2).tolist()}
        return Evaluation({"hit": 100.0 * float((predictions == out.labels).mean())}, details, out.scores,
                          out.labels, [samples[i].sample_id for i in out.indices])


@pytest.fixture(scope="module")
def parity() -> Iterator[type[Task]]:
    register_task(ParityTask)
    yield ParityTask
    del TASKS["parity"]


def test_an_unregistered_task_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "parity.yaml"
    config.write_text(yaml.safe_dump({"task": "parity", "data": {"format": "synthetic"}}))
    assert main(["train", str(config), "--work-dir", str(tmp_path / "run")]) == 2
    assert "task: Value error, unknown task 'parity'; valid: action, gait, reid" in capsys.readouterr().err


def test_a_task_section_is_validated_by_the_task(parity: type[Task], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "parity.yaml"
    config.write_text(yaml.safe_dump({"task": "parity", "data": {"format": "synthetic"},
                                      "parity": {"offset": -1, "colour": "red"}}))
    assert main(["train", str(config), "--work-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "parity.offset: Input should be greater than or equal to 0" in err and "parity.colour: unknown key" in err
    assert not (tmp_path / "run").exists()


def test_a_task_defined_outside_the_package_trains_tests_predicts_exports_and_reports(
        parity: type[Task], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = config_as_dict(load_config("synthetic-j", ["data.synthetic.samples_per_class=10", "data.test_clips=2",
                                                     *TINY_MODEL]))
    raw.update(task="parity", parity={"offset": 1}, name="parity")
    config = tmp_path / "parity.yaml"
    config.write_text(yaml.safe_dump(raw))
    run = tmp_path / "run"

    assert main(["train", str(config), "--work-dir", str(run)]) == 0
    report = json.loads((run / "test_report.json").read_text())
    matrix = np.array(report["confusion_matrix"])
    assert report["task"] == "parity" and matrix.shape == (2, 2) and matrix.sum() == report["samples"]
    assert report["hit"] == pytest.approx(100 * np.trace(matrix) / matrix.sum())
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["parity"] == {"offset": 1} and list(saved).index("parity") == list(saved).index("data") + 1

    assert main(["test", str(config), "--checkpoint", str(run / "latest.pt"), "--clips", "1"]) == 0
    assert "hit" in capsys.readouterr().out

    sequence = tmp_path / "walk.npy"
    np.save(sequence, np.random.default_rng(0).normal(size=(20, 25, 3)).astype(np.float32) * 0.3)
    assert main(["predict", str(run), str(sequence), "--top-k", "2"]) == 0
    table = capsys.readouterr().out
    assert "walk.npy" in table and "even" in table and "odd" in table

    onnx = pytest.importorskip("onnx")
    assert main(["export", str(run), str(tmp_path / "parity.onnx")]) == 0
    metadata = json.loads((tmp_path / "parity.onnx.json").read_text())
    assert metadata["task"] == "parity" and metadata["classes"] == ["even", "odd"]
    assert metadata["classes_meaning"] == "even or odd action classes"
    assert [o["name"] for o in metadata["outputs"]] == ["logits"]
    assert onnx.load(str(tmp_path / "parity.onnx")).graph.output[0].name == "logits"

    page = tmp_path / "parity.html"
    assert main(["report", str(run), "--out", str(page), "--samples", "0"]) == 0
    html = page.read_text()
    assert "parity run in" in html and "<td>hit</td>" in html and 'id="confusion"' in html
