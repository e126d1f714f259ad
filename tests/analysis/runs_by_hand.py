"""Runs built by hand for the analysis tests: a checkpoint with hand-made Motion Families, score files whose
predictions are given, and saved test embeddings."""

from __future__ import annotations

import numpy as np
import torch

from aclnet.config import dump_config, validate_config
from aclnet.engine.checkpoint import save_checkpoint
from aclnet.engine.evaluation import save_scores

NAMES = ["wave", "clap", "kick", "jump", "sit", "run"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Hand-made families of 6 classes (row i = W(i)) and affinity weights; sizes 1, 2, 3, 4, 5, 0.
FAMILIES = [
    [0, 1, 0, 0, 0, 0],
    [1, 0, 1, 0, 0, 0],
    [1, 0, 0, 1, 1, 0],
    [1, 1, 0, 1, 1, 0],
    [0, 1, 1, 1, 1, 1],
    [0, 0, 0, 0, 0, 0],
]
AFFINITY = [
    [1.5, 0.7, 0.0, 0.0, 0.0, 0.0],
    [0.2, 1.0, 0.9, 0.0, 0.0, 0.0],
    [0.5, 0.0, 1.0, 0.5, 0.8, 0.0],  # tie between classes 0 and 3: index order
    [0.1, 0.4, 0.0, 1.5, 0.3, 0.0],
    [0.0, 0.6, 0.6, 0.9, 1.5, 0.7],
    [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
]


def config_text(**loss) -> str:
    return dump_config(validate_config({"data": {"format": "synthetic"}, "loss": loss}, "test"))


def model_state(families=FAMILIES, affinity=AFFINITY) -> dict[str, torch.Tensor]:
    c = len(families)
    return {
        "cls_head.fc.weight": torch.zeros(c, 4),
        "aux.inter.loss.confusion": torch.zeros(c, c, dtype=torch.long),
        "aux.inter.loss.prototypes": torch.randn(c, 8),
        "aux.inter.loss.families": torch.tensor(families, dtype=torch.bool),
        "aux.inter.loss.affinity": torch.tensor(affinity, dtype=torch.float32),
    }


def write_run(path, model, config_text, names=NAMES) -> None:
    save_checkpoint(path, {"model": model, "class_names": names, "config": config_text, "epoch": 7, "history": []})


def scores_for(predictions, num_classes):
    """Softmax-like rows whose argmax is the given prediction."""
    scores = np.full((len(predictions), num_classes), 0.1, dtype=np.float32)
    scores[np.arange(len(predictions)), predictions] = 0.8
    return scores


def write_scores(path, predictions, labels=(0, 0, 1, 1, 1, 0), ids=None, classes=("a", "b", "c")):
    ids = ids or [f"s{i}" for i in range(len(labels))]
    save_scores(path, ids, np.array(labels), scores_for(predictions, len(classes)), list(classes))


def write_embeddings(run, epoch, spread, labels=None):
    rng = np.random.default_rng(epoch)
    labels = np.repeat(np.arange(3), 20) if labels is None else labels
    features = spread * np.eye(3, 8)[labels] + rng.normal(size=(len(labels), 8))
    np.savez(run / f"embeddings_epoch{epoch:03d}.npz", features=features.astype(np.float32), labels=labels,
             indices=np.arange(len(labels)))


def make_tsne_run(tmp_path):
    """A run folder with test embeddings at epochs 1 (no structure) and 5 (three clear clusters) and scores."""
    run = tmp_path / "run"
    run.mkdir()
    write_embeddings(run, 1, 0.0)
    write_embeddings(run, 5, 10.0)
    save_scores(run / "test_scores.npz", [f"s{i}" for i in range(60)], np.repeat(np.arange(3), 20),
                np.full((60, 3), 1 / 3), ["wave", "clap", "kick"])
    return run
