"""Metrics, scores files, ensembles and checkpoints."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from aclnet.cli import main
from aclnet.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from aclnet.engine.ensemble import ensemble
from aclnet.engine.evaluation import confusion_matrix, metrics, save_scores, top_k_accuracy
from aclnet.errors import InputError


def test_metrics_by_hand():
    scores = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.5, 0.1, 0.4], [0.1, 0.2, 0.7]])
    labels = np.array([0, 2, 2, 2])
    assert top_k_accuracy(scores, labels, 1) == 0.5
    assert top_k_accuracy(scores, labels, 2) == 1.0
    np.testing.assert_array_equal(confusion_matrix(scores.argmax(1), labels, 3), [[1, 0, 0], [0, 0, 0], [1, 1, 1]])
    values = metrics(scores, labels)
    assert values["top1"] == 50.0 and values["top5"] == 100.0
    assert values["mean_class"] == pytest.approx(100 * (1 + 1 / 3) / 2)  # class 1 has no sample


def _write(path, ids, labels, scores, classes=("a", "b", "c")):
    save_scores(path, list(ids), np.array(labels), np.array(scores, dtype=np.float32), list(classes))


def test_ensemble_weights_and_alignment(tmp_path):
    # Stream j leans to class 0, stream b to class 1; which stream wins depends on the weights.
    ids, labels = ["s1", "s2", "s3"], [0, 1, 1]
    _write(tmp_path / "j.npz", ids, labels, [[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.7, 0.3, 0.0]])
    _write(tmp_path / "b.npz", ids, labels, [[0.2, 0.8, 0.0], [0.3, 0.7, 0.0], [0.2, 0.8, 0.0]])
    # j:b = 2:1 -> s1 [2.0, 1.0] class 0 (right), s2 [1.9, 1.1] class 0 (wrong), s3 [1.6, 1.4] class 0 (wrong).
    values, fused = ensemble([tmp_path / "j.npz", tmp_path / "b.npz"], [2, 1])
    np.testing.assert_allclose(fused, [[2.0, 1.0, 0.0], [1.9, 1.1, 0.0], [1.6, 1.4, 0.0]], rtol=1e-6)
    assert values["top1"] == pytest.approx(100 / 3)
    assert values["mean_class"] == pytest.approx(50.0)  # class 0: 1/1, class 1: 0/2
    # j:b = 1:2 -> s1 [1.3, 1.7] class 1 (wrong), s2 [1.4, 1.6] class 1 (right), s3 [1.1, 1.9] class 1 (right).
    values, fused = ensemble([tmp_path / "j.npz", tmp_path / "b.npz"], [1, 2])
    np.testing.assert_allclose(fused, [[1.3, 1.7, 0.0], [1.4, 1.6, 0.0], [1.1, 1.9, 0.0]], rtol=1e-6)
    assert values["top1"] == pytest.approx(200 / 3)
    assert values["mean_class"] == pytest.approx(50.0)  # class 0: 0/1, class 1: 2/2
    # No weights means 1:1 -> s1 [1.1, 0.9] right, s2 [1.1, 0.9] wrong, s3 [0.9, 1.1] right.
    values, _ = ensemble([tmp_path / "j.npz", tmp_path / "b.npz"])
    assert values["top1"] == pytest.approx(200 / 3)
    assert values["mean_class"] == pytest.approx(75.0)  # class 0: 1/1, class 1: 1/2
    _write(tmp_path / "other.npz", ["s2", "s1", "s3"], labels, [[1, 0, 0]] * 3)
    with pytest.raises(InputError, match="sample ids differ"):
        ensemble([tmp_path / "j.npz", tmp_path / "other.npz"])
    _write(tmp_path / "lab.npz", ids, [1, 1, 1], [[1, 0, 0]] * 3)
    with pytest.raises(InputError, match="labels differ"):
        ensemble([tmp_path / "j.npz", tmp_path / "lab.npz"])
    with pytest.raises(InputError, match="--weights has 1 values for 2"):
        ensemble([tmp_path / "j.npz", tmp_path / "b.npz"], [1])


def test_cli_ensemble(tmp_path, capsys):
    _write(tmp_path / "j.npz", ["s1"], [1], [[0.2, 0.8, 0.0]])
    assert main(["ensemble", str(tmp_path / "j.npz"), str(tmp_path / "j.npz"), "--weights", "2,1"]) == 0
    assert "top1 100.00" in capsys.readouterr().out
    assert main(["ensemble", str(tmp_path / "j.npz"), "--weights", "a"]) == 2
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert main(["ensemble", str(tmp_path / "bad.npz")]) == 2
    assert "bad.npz: not a readable scores file" in capsys.readouterr().err


def test_checkpoint_round_trip_with_rng_state(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    payload = {"model": {"w": torch.arange(3.0)}, "rng": rng_state(), "history": [{"epoch": 1.0}]}
    expected = (random.random(), np.random.rand(), torch.rand(1))
    save_checkpoint(tmp_path / "c.pt", payload)
    loaded = load_checkpoint(tmp_path / "c.pt")  # weights_only=True inside
    set_rng_state(loaded["rng"])
    assert (random.random(), np.random.rand()) == expected[:2]
    assert torch.equal(torch.rand(1), expected[2])
    assert loaded["history"] == [{"epoch": 1.0}]
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_checkpoint_refuses_code_and_junk(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="evil.pt: refused: it holds objects other than tensors") as refused:
        load_checkpoint(tmp_path / "evil.pt")
    assert "weights_only" not in str(refused.value)  # not torch's advice to load it anyway
    (tmp_path / "junk.pt").write_bytes(b"garbage bytes here")
    with pytest.raises(InputError, match=r"junk.pt: not a readable checkpoint \(truncated, corrupt"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(InputError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_atomic_files_get_ordinary_permissions(tmp_path):
    import os

    from aclnet.fileio import atomic_write_bytes

    umask = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "f.bin", b"x")
    finally:
        os.umask(umask)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o644
