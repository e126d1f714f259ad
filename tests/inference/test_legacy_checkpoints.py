"""Checkpoints written by the version before the task seam moved (aclnet 0.1.0 at commit fb88371: tiny
generated-data runs, optimizer state stripped) still load, predict and embed as they did then."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import aclnet

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
