"""The run folder: the one place that names a run's files, writes them atomically and says which
checkpoint a run tests.

    config.yaml         the resolved configuration of the run
    latest.pt           checkpoint after the last finished epoch (what `--resume` continues)
    best.pt             checkpoint of the best validation epoch (only when `train.select_on` is not `last`)
    metrics.csv         one row per epoch: loss terms, learning rate, validation metrics
    tensorboard/        the same scalars for TensorBoard
    test_report.json    the test result; written last, so its presence marks a finished run
    test_scores.npz     per-sample test scores (action runs; `aclnet ensemble` reads them)
    embeddings_epochNNN.npz  test embeddings saved at chosen epochs (t-SNE)
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from aclnet.errors import InputError
from aclnet.fileio import atomic_write_bytes

CONFIG = "config.yaml"
LATEST = "latest.pt"
BEST = "best.pt"
METRICS = "metrics.csv"
TENSORBOARD = "tensorboard"
TEST_REPORT = "test_report.json"
TEST_SCORES = "test_scores.npz"
_EMBEDDINGS = re.compile(r"embeddings_epoch(\d+)\.npz")


class RunFolder:
    """The files of one training run under `path`.

    Args:
        path: the run folder (created by `prepare`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def latest(self) -> Path:
        return self.path / LATEST

    @property
    def best(self) -> Path:
        return self.path / BEST

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def test_report(self) -> Path:
        return self.path / TEST_REPORT

    @property
    def test_scores(self) -> Path:
        return self.path / TEST_SCORES

    def embeddings(self, epoch: int) -> Path:
        """The file of the test embeddings saved at `epoch`."""
        return self.path / f"embeddings_epoch{epoch:03d}.npz"

    def embedding_epochs(self) -> list[int]:
        """Epochs whose embeddings the run saved, ascending."""
        found = (_EMBEDDINGS.fullmatch(p.name) for p in self.path.glob("embeddings_epoch*.npz"))
        return sorted(int(m.group(1)) for m in found if m)

    @property
    def finished(self) -> bool:
        """Whether the run was tested (its report is the last file a run writes)."""
        return self.test_report.is_file()

    def tested_checkpoint(self) -> Path:
        """The checkpoint a run tests: `best.pt` when validation chose one, else `latest.pt`."""
        for path in (self.best, self.latest):
            if path.is_file():
                return path
        raise InputError(f"{self.path}: no {BEST} or {LATEST} in this run folder")

    def prepare(self, *, resume: bool, force: bool) -> None:
        """Create the folder; refuse to overwrite an earlier run unless `resume` or `force` says what to do."""
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{self.path}: exists and is not a folder")
        if self.path.exists() and any(self.path.iterdir()) and not (resume or force):
            raise InputError(f"{self.path}: holds an earlier run; pass --resume to continue it "
                             "or --force to replace it")
        if force and not resume and self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)

    def write_config(self, text: str) -> None:
        atomic_write_bytes(self.config, text.encode())

    def write_report(self, report: dict[str, Any]) -> None:
        atomic_write_bytes(self.test_report, json.dumps(report, indent=2).encode())

    def read_report(self) -> dict[str, Any]:
        try:
            return json.loads(self.test_report.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.test_report}: not a readable test report ({exc})") from exc


def resolve_checkpoint(run_dir_or_checkpoint: str | Path) -> Path:
    """A checkpoint file as given, or the checkpoint a run folder tests."""
    path = Path(run_dir_or_checkpoint)
    return RunFolder(path).tested_checkpoint() if path.is_dir() else path
