"""`aclnet train-streams`: streams trained one after another, resumably, and fused with the paper's weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aclnet.cli import main
from aclnet.engine.evaluation import load_scores, metrics
from aclnet.engine.streams import stream_weights, train_streams
from aclnet.errors import InputError
from aclnet.tasks.registry import make_task

QUICK = ["optim.epochs=1", "train.max_steps_per_epoch=2", "data.test_clips=1", "data.clip_len=16",
         "data.synthetic.samples_per_class=12"]


def test_streams_train_resume_and_fuse(tmp_path: Path, capsys) -> None:
    assert main(["train-streams", "synthetic", "--streams", "j,b", "--work-dir", str(tmp_path), "--set", *QUICK]) == 0
    report = json.loads((tmp_path / "ensemble.json").read_text())
    assert report["streams"] == ["j", "b"] and report["weights"] == [1, 1]
    j, b = (load_scores(tmp_path / s / "test_scores.npz") for s in ("j", "b"))
    expected = metrics(j["scores"] + b["scores"], j["labels"])  # an independent fusion
    assert report["ensemble"] == pytest.approx(expected)
    assert "2-stream ensemble (j,b at 1:1)" in capsys.readouterr().out
    # A second call trains nothing: both runs are finished.
    lines: list[str] = []
    again = train_streams("synthetic", ["j", "b"], tmp_path, make_task, overrides=QUICK, weights=[2, 1],
                          log=lines.append)
    assert [line.split(":")[1].strip() for line in lines] == [f"done earlier, {tmp_path / 'j'}",
                                                              f"done earlier, {tmp_path / 'b'}"]
    assert again["ensemble"] == pytest.approx(metrics(2 * j["scores"] + b["scores"], j["labels"]))
    assert np.isclose(again["per_stream"]["j"]["top1"], report["per_stream"]["j"]["top1"])


def test_paper_weights_and_bad_requests(tmp_path: Path) -> None:
    assert stream_weights(["j", "b", "jm", "bm"], None) == [2, 2, 1, 1]
    assert stream_weights(["j", "b", "k", "jm", "bm", "km"], None) == [2, 2, 2, 1, 1, 1]
    assert stream_weights(["j", "jm"], None) == [1.0, 1.0]
    with pytest.raises(InputError, match="2 values for 3 streams"):
        stream_weights(["j", "b", "k"], [1, 2])
    with pytest.raises(InputError, match="give each stream once"):
        train_streams("synthetic", ["j", "j"], tmp_path, make_task)
    with pytest.raises(InputError, match="task 'gait' has none"):
        train_streams("synthetic-gait", ["j"], tmp_path, make_task)
    with pytest.raises(InputError, match="modality 'x'"):
        train_streams("synthetic", ["j", "x"], tmp_path, make_task)
    assert not any(tmp_path.iterdir())  # nothing trained or written
