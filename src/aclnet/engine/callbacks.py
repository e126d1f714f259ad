"""Run logging: a metrics CSV rewritten atomically each epoch, and TensorBoard scalars."""

from __future__ import annotations

from aclnet.engine.run_folder import RunFolder
from aclnet.fileio import atomic_write_csv


class MetricsLog:
    """`metrics.csv` (one row per epoch) and TensorBoard logs of a run folder."""

    def __init__(self, run: RunFolder, *, enabled: bool = True) -> None:
        self.path = run.metrics
        self.enabled = enabled
        self._writer = None
        self._tb_dir = run.tensorboard

    def write(self, history: list[dict[str, float]]) -> None:
        """Rewrite the CSV from the whole history, so a resumed run's file equals an unbroken one's."""
        if not self.enabled or not history:
            return
        columns: list[str] = []
        for row in history:
            columns += [k for k in row if k not in columns]
        atomic_write_csv(self.path, columns, history)

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Add scalars to TensorBoard at `step` (the epoch)."""
        if not self.enabled:
            return
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self._tb_dir))
        for key, value in values.items():
            self._writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
