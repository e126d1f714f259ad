"""Checkpoints written by the version before the task seam moved (aclnet 0.1.0 at commit fb88371: tiny
generated-data runs, optimizer state stripped) still load, predict and embed as they did then."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import aclnet
from aclnet.cli import main

LEGACY = Path(__file__).parent / "legacy"


def test_a_legacy_action_checkpoint_predicts_what_it_predicted() -> None:
    expected = np.load(LEGACY / "expected.npz")
    model = aclnet.load(LEGACY / "action.pt")
    assert model.output == "class_scores" and len(model.classes) == 12
    probabilities = model.predict(expected["action_input"])[0].probabilities
    np.testing.assert_allclose(probabilities, expected["action_probabilities"], atol=1e-6)


def test_a_legacy_gait_checkpoint_embeds_what_it_embedded_with_its_protocol() -> None:
    expected = np.load(LEGACY / "expected.npz")
    model = aclnet.load(LEGACY / "gait.pt")
    assert model.output == "embeddings" and model.task.time_flip  # its protocol set test_flip
    np.testing.assert_allclose(model.embed(expected["gait_input"])[0], expected["gait_embedding"], atol=1e-6)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: p.update(config=p["config"].replace("test_clips: 2", "test_clips: 20000")),
     "data.test_clips: Input should be less than or equal to 100"),
    (lambda p: p["inference"]["layout"].update(joints=10_000_000), "'joints' must be a count from 1 to 1000"),
    (lambda p: p.update(config=p["config"].replace("clip_len: 16", "clip_len: 10000").replace(
        "test_clips: 2", "test_clips: 100").replace("num_persons: 1", "num_persons: 2")),
     r"the pipeline would make 100 clip\(s\) x 2 person\(s\) x 10000 frames x 25 joints = 50,000,000"),
])
def test_a_checkpoint_is_validated_as_strictly_as_a_users_configuration(tmp_path: Path, capsys, edit, message) -> None:
    payload = torch.load(LEGACY / "action.pt", weights_only=True)
    edit(payload)
    torch.save(payload, tmp_path / "edited.pt")
    np.save(tmp_path / "x.npy", np.ones((20, 25, 3), np.float32))
    assert main(["predict", str(tmp_path / "edited.pt"), str(tmp_path / "x.npy")]) == 2
    assert re.search(message, capsys.readouterr().err)
