"""The training loop: SGD + cosine schedule, bf16 autocast on GPU, DDP, validation, checkpoints, resume.

The trainer owns the epoch counter and tells the losses (`set_epoch`), so the affinity loss never
depends on whether validation runs. Nothing in a training step reads a tensor back to the host:
running loss sums stay on the device until the epoch ends.
"""

from __future__ import annotations

import io
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from aclnet.config import ExperimentConfig, dump_config
from aclnet.engine.callbacks import MetricsLog
from aclnet.engine.checkpoint import (
    check_finite_weights,
    check_model_fits,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from aclnet.engine.distributed import DistInfo, barrier
from aclnet.engine.forward import run_model
from aclnet.engine.run_folder import RunFolder, stop_on_write_error
from aclnet.errors import InputError, TrainingInterrupted, TrainingStopped
from aclnet.fileio import atomic_write_bytes
from aclnet.models.skeleton_model import SkeletonModel

Validator = Callable[[SkeletonModel], dict[str, float]]
"""Validation metrics of the model on the validation data (the task's evaluation)."""


@dataclass
class TrainState:
    """What a resumed run needs besides the modules: the last finished epoch and the history."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_metric: float = -math.inf
    best_epoch: int = 0


@dataclass
class Position:
    """Where an interrupted epoch stopped: its number, the steps done and the running sums of the loss terms
    (so that the resumed epoch reports the same means as an uninterrupted one)."""

    epoch: int
    step: int
    sums: dict[str, torch.Tensor]


class InterruptRequest:
    """Turns the first Ctrl-C into a request that the loop honours after the current step (the checkpoint
    then holds a consistent position); a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def catching(self, enabled: bool) -> Iterator[None]:
        """Catch SIGINT while the block runs (only in the main thread, only when `enabled`)."""
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def request(signum: int, frame: object) -> None:
            self.requested = True
            signal.signal(signal.SIGINT, previous)
            print("stopping after this step and saving the position (Ctrl-C again to stop at once)",
                  file=sys.stderr, flush=True)

        signal.signal(signal.SIGINT, request)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def cosine_schedule(total_steps: int, warmup_steps: int):
    """Multiplier of the base learning rate at each step: linear warm-up, then cosine down to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def progress_line(row: dict[str, float], epochs: int, elapsed: float, done: int, left: int) -> str:
    """One epoch in one line: losses, learning rate, validation metrics, elapsed and estimated time left."""
    epoch = int(row["epoch"])
    terms = [k[len("train_"):] for k in row if k.startswith("train_") and k != "train_loss"]
    losses = f"loss {row['train_loss']:.4f}" + (
        " (" + ", ".join(f"{t} {row['train_' + t]:.4f}" for t in terms) + ")" if terms else "")
    values = "".join(f", {k} {v:.2f}" for k, v in row.items() if k.startswith("val_"))
    remaining = elapsed / done * left
    return (f"epoch {epoch}/{epochs}: {losses}, lr {row['lr']:.3g}{values} | {_clock(elapsed)} elapsed, "
            f"~{_clock(remaining)} left")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class FiniteWatch:
    """Remembers, on the device, the first step of an epoch whose loss terms were not all finite."""

    def __init__(self, device: torch.device) -> None:
        self.step = torch.full((), -1, dtype=torch.long, device=device)
        self.names: list[str] = []
        self.finite: torch.Tensor | None = None

    def update(self, losses: dict[str, torch.Tensor], step: int) -> None:
        """Take in one step's loss terms (no host read)."""
        finite = torch.stack([torch.isfinite(value.detach()).all() for value in losses.values()])
        if self.finite is None:
            self.names, self.finite = list(losses), torch.ones_like(finite)
        first = (self.step < 0) & ~finite.all()
        self.step = torch.where(first, step, self.step)
        self.finite = torch.where(first, finite, self.finite)

    def first_bad(self) -> tuple[int, list[str]] | None:
        """(step, names of the non-finite terms) of the first bad step, or None (one host read)."""
        step = int(self.step)
        if step < 0 or self.finite is None:
            return None
        return step, [name for name, ok in zip(self.names, self.finite.tolist()) if not ok]


class Trainer:
    """Runs the epochs of one experiment in a run folder (single process or one rank of DDP).

    Args:
        config: the experiment.
        model: the model with its auxiliary losses.
        train_loader: epoch-seeded training batches.
        validator: the task's validation metrics of a model, or None (no validation).
        run: the run folder (checkpoints, metrics).
        device: where the model trains.
        dist_info: rank and world size.
        primary_metric: the validation metric that picks `best.pt` (higher is better).
        class_names: names of the training classes, saved in checkpoints.
        embedding_loader: test batches whose pooled features are saved at `train.save_embeddings_at`.
        inference: what a checkpoint needs besides the configuration to be used alone (task, input
            layout and channels), saved in every checkpoint.
        loss_constants: the losses' resolved constants (K, overlap threshold, start epoch, memory size), saved
            in every checkpoint for the analyses.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        model: SkeletonModel,
        train_loader: DataLoader,
        validator: Validator | None,
        run: RunFolder,
        device: torch.device,
        dist_info: DistInfo,
        *,
        primary_metric: str,
        class_names: list[str],
        embedding_loader: DataLoader | None = None,
        inference: dict[str, Any] | None = None,
        loss_constants: dict[str, int] | None = None,
    ) -> None:
        self.config = config
        self.inference = inference or {}
        self.loss_constants = loss_constants or {}
        self.log_progress: Callable[[str], None] | None = None  # one line per epoch (set by the run loop)
        self.class_names = class_names
        self.model = model.to(device)
        self.train_loader = train_loader
        self.validator = validator
        self.primary_metric = primary_metric
        self.embedding_loader = embedding_loader
        self.run = run
        self.device = device
        self.dist = dist_info
        self.amp = config.train.amp and device.type == "cuda"
        optim = config.optim
        # Linear scaling rule: `optim.lr` is the rate of one process with `optim.batch_size`.
        lr = optim.lr * dist_info.world_size
        if optim.optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
                self.model.parameters(), lr=lr, weight_decay=optim.weight_decay)
        else:
            self.optimizer = torch.optim.SGD(
                self.model.parameters(), lr=lr, momentum=optim.momentum, nesterov=optim.nesterov,
                weight_decay=optim.weight_decay,
            )
        self.steps_per_epoch = self._steps_per_epoch()
        total = self.steps_per_epoch * optim.epochs
        warmup = int(round(optim.warmup_epochs * self.steps_per_epoch))
        self.scheduler: torch.optim.lr_scheduler.LRScheduler
        if optim.schedule == "onecycle":  # PyTorch's defaults, as GaitGraph uses it; the rising phase may be set
            rising = min(0.99, warmup / total) if warmup else 0.3
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(self.optimizer, lr, total_steps=total,
                                                                 pct_start=rising)
        else:
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, cosine_schedule(total, warmup))
        self.net: nn.Module = self.model
        if dist_info.enabled:
            # Loss buffers are kept equal by the losses' own all-reduce; the memory is per process.
            self.net = DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False
            )
        self.state = TrainState()
        self.position: Position | None = None  # set by `resume` from a checkpoint saved mid-epoch
        self.interrupt = InterruptRequest()
        self.log = MetricsLog(run, enabled=dist_info.is_main)

    def _steps_per_epoch(self) -> int:
        steps = len(self.train_loader)
        cap = self.config.train.max_steps_per_epoch
        return min(steps, cap) if cap is not None else steps

    # ---- checkpoints -------------------------------------------------------------------------
    def checkpoint_payload(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.state.epoch,
            "history": self.state.history,
            "best_metric": self.state.best_metric,
            "best_epoch": self.state.best_epoch,
            "rng": rng_state(),
            "config": dump_config(self.config),
            "class_names": self.class_names,
            "inference": self.inference,
            "loss_constants": self.loss_constants,
        }

    def resume(self, path: Path) -> None:
        """Continue exactly where the checkpoint at `path` stopped (refused, naming the problem, when it is a
        checkpoint of another model or holds the weights only)."""
        payload = load_checkpoint(path, map_location=self.device)
        lacking = [k for k in ("optimizer", "scheduler", "epoch", "history", "rng") if k not in payload]
        if lacking:
            raise InputError(f"{path}: cannot resume from it: it holds the model's weights only "
                             f"(no {', '.join(lacking)})")
        check_finite_weights(payload["model"], path)
        check_model_fits(self.model.state_dict(), payload["model"], path)
        try:
            self.model.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
            self.scheduler.load_state_dict(payload["scheduler"])
            self.state = TrainState(int(payload["epoch"]), list(payload["history"]), float(payload["best_metric"]),
                                    int(payload["best_epoch"]))
            self.position = self._saved_position(payload.get("position"), path)
            set_rng_state(payload["rng"])
        except InputError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
            raise InputError(f"{path}: cannot resume from it: its training state is damaged ({type(exc).__name__}: "
                             f"{str(exc)[:200]}); start again with --force, or resume from a copy of the run") from None
        self.log.write(self.state.history)

    def _saved_position(self, saved: dict[str, Any] | None, path: Path) -> Position | None:
        """The mid-epoch position of a checkpoint, checked against this run (None: it ends an epoch)."""
        if saved is None:
            return None
        position = Position(int(saved["epoch"]), int(saved["step"]),
                            {k: v.to(self.device) for k, v in saved["sums"].items()})
        if position.epoch != self.state.epoch + 1 or not 0 < position.step < self.steps_per_epoch:
            raise InputError(f"{path}: saved at epoch {position.epoch}, step {position.step}, which this run "
                             f"({self.steps_per_epoch} steps per epoch) cannot continue; resume with the run's "
                             "data and optim.batch_size")
        return position

    # ---- loop --------------------------------------------------------------------------------
    def fit(self, until_epoch: int | None = None) -> TrainState:
        """Train from `state.epoch + 1` to `until_epoch` (default: the configured number of epochs).

        Ctrl-C (one process) stops after the current step: `latest.pt` then holds that position, from which
        `resume` continues exactly, and `TrainingInterrupted` says where it stopped. Under DDP Ctrl-C stops
        at once and `latest.pt` keeps the last finished epoch.
        """
        with self.interrupt.catching(enabled=not self.dist.enabled):
            return self._fit(until_epoch)

    def _fit(self, until_epoch: int | None) -> TrainState:
        last = self.config.optim.epochs if until_epoch is None else min(until_epoch, self.config.optim.epochs)
        started, first = time.monotonic(), self.state.epoch + 1
        for epoch in range(first, last + 1):
            row = {"epoch": float(epoch), **self.train_epoch(epoch)}
            self.state.epoch = epoch
            self.state.history.append(row)
            if self.validator is not None and (
                epoch % self.config.train.val_interval == 0 or epoch == self.config.optim.epochs
            ):
                self.validate(epoch)
            if epoch in self.config.train.save_embeddings_at and self.embedding_loader is not None:
                self.save_embeddings(epoch)
            if self.dist.is_main:
                self._save_latest()
                if self.log_progress is not None:
                    self.log_progress(progress_line(self.state.history[-1], self.config.optim.epochs,
                                                    time.monotonic() - started, epoch - first + 1, last - epoch))
            barrier(self.dist)
            if self.interrupt.requested and epoch < last:
                raise TrainingInterrupted(epoch)
        self.log.close()
        return self.state

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training data (the rest of it when resuming mid-epoch); returns the mean of each
        loss term and the lr."""
        self.model.train()
        position, self.position = self.position, None  # `resume` checked that it is inside this first epoch
        steps, sums = (position.step, dict(position.sums)) if position else (0, {})
        if position is None:  # a resumed epoch's losses were told already (their state is in the checkpoint)
            self.model.set_epoch(epoch)
        self.train_loader.set_epoch(epoch, steps)  # reseeds order, augmentation and workers from (seed, epoch)
        watch = FiniteWatch(self.device)
        bar = tqdm(total=self.steps_per_epoch, initial=steps, desc=f"epoch {epoch}", leave=False, disable=None)
        for data, labels, _ in self.train_loader:
            if steps == self.steps_per_epoch:
                break
            losses = self.train_step(data, labels)
            steps += 1
            watch.update(losses, steps)
            if self.device.type == "cpu":  # a host read costs nothing here: stop at the step itself
                self._stop_if_not_finite(watch, epoch)
            for key, value in losses.items():
                sums[key] = sums.get(key, 0) + value.detach()
            bar.update()
            if self.interrupt.requested and steps < self.steps_per_epoch:
                bar.close()
                self._stop_if_not_finite(watch, epoch)
                self._save_latest(Position(epoch, steps, sums))
                raise TrainingInterrupted(epoch, steps)
        bar.close()
        self._stop_if_not_finite(watch, epoch)  # on a GPU: one host read per epoch
        means = {f"train_{k}": float(v) / steps for k, v in sums.items()}  # one host read per epoch
        means["lr"] = self.optimizer.param_groups[0]["lr"]
        means.update(self.model.diagnostics())
        if self.dist.is_main:
            self.log.scalars(means, epoch)
        return means

    def _save_latest(self, position: Position | None = None) -> None:
        """The metrics and `latest.pt` of the finished epoch, or of a `position` inside the next one; a failed
        write (full disk, read-only folder, file size limit) stops the run, and the previous checkpoint is
        intact (writes are atomic)."""
        payload = self.checkpoint_payload()
        if position is not None:
            payload["position"] = {"epoch": position.epoch, "step": position.step,
                                   "sums": {k: v.detach().cpu() for k, v in position.sums.items()}}
        try:
            self.log.write(self.state.history)
            save_checkpoint(self.run.latest, payload)
        except OSError as exc:
            what = f"epoch {position.epoch}, step {position.step}" if position else f"epoch {self.state.epoch}"
            previous = self.state.epoch if position else self.state.epoch - 1
            kept = f"epoch {previous} in {self.run.latest}" if previous >= 1 else "none"
            raise TrainingStopped(f"cannot write the checkpoint of {what} in {self.run.path} "
                                  f"({exc.strerror or exc}); the previous checkpoint is intact ({kept}). Free space "
                                  "or make the folder writable, then continue with --resume") from exc

    def _stop_if_not_finite(self, watch: FiniteWatch, epoch: int) -> None:
        """Stop the run when a loss term was NaN or infinite; the last good checkpoint stays as it is."""
        found = watch.first_bad()
        if found is None:
            return
        step, terms = found
        kept = (f"{self.run.latest.name} (epoch {self.state.epoch}) is the last good checkpoint"
                if self.state.epoch else "no checkpoint was written")
        raise TrainingStopped(
            f"epoch {epoch}, step {step}: loss term(s) {', '.join(terms)} not finite (NaN or infinite); the run "
            f"stopped and {kept}. Lower optim.lr (now {self.config.optim.lr:g}), set optim.clip_grad, or check "
            "the data for NaN values")

    def train_step(self, data: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Forward, backward and update on one batch (N, clips, M, T, V, C); no host syncs."""
        data = data.to(self.device, non_blocking=True).flatten(0, 1)
        labels = labels.to(self.device, non_blocking=True)
        clips = data.shape[0] // labels.shape[0]
        if clips > 1:
            labels = labels.repeat_interleave(clips)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            losses = self.net(data, labels)
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        for parameter in self.model.idle_parameters():  # no gradient: no weight decay, no momentum
            parameter.grad = None
        if self.config.optim.clip_grad is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.clip_grad)
        self.optimizer.step()
        self.scheduler.step()
        return losses

    def validate(self, epoch: int) -> dict[str, float]:
        """Validation metrics (main process); keeps `best.pt` on the primary metric unless the final epoch
        is the tested one (`select_on: last`), so that no run folder holds an untested "best".

        Call after `state` holds this epoch, so that `best.pt` is a complete checkpoint of it.
        """
        values: dict[str, float] = {}
        if self.dist.is_main:
            values = {f"val_{k}": v for k, v in self.validator(self.model).items()}
            self.state.history[-1].update(values)
            self.log.scalars(values, epoch)
            value = values[f"val_{self.primary_metric}"]
            if self.config.train.select_on != "last" and value > self.state.best_metric:
                self.state.best_metric, self.state.best_epoch = value, epoch
                with stop_on_write_error(f"the best checkpoint (epoch {epoch})", self.run.best):
                    save_checkpoint(self.run.best, self.checkpoint_payload())
        barrier(self.dist)
        return values

    def save_embeddings(self, epoch: int) -> None:
        """Pooled features and labels of the embedding split at this epoch (for t-SNE)."""
        if self.dist.is_main:
            result = run_model(self.model, self.embedding_loader, self.device, self.amp)
            buffer = io.BytesIO()
            np.savez(buffer, features=result.features, labels=result.labels, indices=result.indices)
            with stop_on_write_error(f"the embeddings of epoch {epoch}", self.run.embeddings(epoch)):
                atomic_write_bytes(self.run.embeddings(epoch), buffer.getvalue())
        barrier(self.dist)
