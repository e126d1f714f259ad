"""The run folder: the one place that names a run's files, writes them atomically and says which
checkpoint a run tests.

    config.yaml         the resolved configuration of the run
    latest.pt           checkpoint after the last finished epoch, or mid-epoch after Ctrl-C (what `--resume` continues)
    best.pt             checkpoint of the best validation epoch (only when `train.select_on` is not `last`)
    metrics.csv         one row per epoch: loss terms, learning rate, validation metrics
    tensorboard/        the same scalars for TensorBoard
    test_report.json    the test result; written last, so its presence marks a finished run
    test_scores.npz     per-sample test scores (action runs; `aclnet ensemble` reads them)
    embeddings_epochNNN.npz  test embeddings saved at chosen epochs (t-SNE)
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from aclnet.errors import InputError, TrainingStopped
from aclnet.fileio import atomic_write_bytes

CONFIG = "config.yaml"
LATEST = "latest.pt"
BEST = "best.pt"
METRICS = "metrics.csv"
TENSORBOARD = "tensorboard"
TEST_REPORT = "test_report.json"
TEST_SCORES = "test_scores.npz"
_EMBEDDINGS = re.compile(r"embeddings_epoch(\d+)\.npz")
_HELD: set[Path] = set()  # lock files this process holds


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
    def holds_run(self) -> bool:
        """Whether an earlier run left a checkpoint or a report here (a folder with only the configuration
        of a run that failed before its first checkpoint holds none)."""
        return any(p.is_file() for p in (self.latest, self.best, self.test_report))

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

    def run_entries(self) -> list[Path]:
        """What a run writes that is present here: its files, its TensorBoard folder, saved embeddings and
        temporary files of interrupted writes (what `--force` removes; nothing else is ever removed)."""
        named = [self.path / name for name in (CONFIG, LATEST, BEST, METRICS, TENSORBOARD, TEST_REPORT, TEST_SCORES)]
        patterns = [*self.path.glob("embeddings_epoch*.npz"), *self.path.glob(".*.tmp")]
        return [p for p in named if p.exists() or p.is_symlink()] + patterns

    def check_start(self, *, resume: bool, force: bool) -> None:
        """Refuse, before anything is written, what would lose an earlier run, or files that are not a run's,
        or cannot be done."""
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{self.path}: exists and is not a folder")
        if force and not resume and self.path.is_dir() and not (self.holds_run or self.config.is_file()):
            others = sorted(p.name + "/" * p.is_dir() for p in self.path.iterdir() if p not in self.run_entries())
            if others:
                shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
                raise InputError(f"{self.path}: holds no run (no {CONFIG}, checkpoint or report) but {len(others)} "
                                 f"other entr{'y' if len(others) == 1 else 'ies'} ({shown}); --force replaces runs "
                                 "only: choose a new or empty folder for the run")
        if resume and not self.latest.is_file():
            raise InputError(f"{self.path}: nothing to resume (no {LATEST}); start the run without --resume")
        if self.holds_run and not (resume or force):
            raise InputError(f"{self.path}: holds an earlier run; pass --resume to continue it "
                             "or --force to replace it")

    def prepare(self, *, resume: bool, force: bool) -> None:
        """Create the folder and remove temporary files that a killed process left (a checkpoint not yet
        renamed). A new run starts with `force` from the folder less every file of the earlier run; without
        it, less the run files of an earlier attempt that wrote no checkpoint. Other files are left alone."""
        self.check_start(resume=resume, force=force)
        if force and not resume and self.path.exists():
            for entry in self.run_entries():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink(missing_ok=True)
        elif not resume and self.path.exists():
            for leftover in (self.config, self.metrics, *self.path.glob("embeddings_epoch*.npz")):
                leftover.unlink(missing_ok=True)
            shutil.rmtree(self.tensorboard, ignore_errors=True)
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in self.path.glob(".*.tmp"):
            stale.unlink()

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run folder for this process: a second process (a second --resume, or --force deleting
        the folder under a run) is refused. The lock file lies beside the folder while the run holds it and is
        removed when the lock ends; the lock ends with the process, so a killed run leaves no stale lock (its
        file is taken over and removed by the next run)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        folder = self.path.resolve()  # one lock per folder, whichever link or relative path names it
        lock_path = folder.parent / f".{folder.name}.lock"
        if lock_path in _HELD:  # this process holds it already (a caller around `train`)
            yield
            return
        handle = _locked(lock_path, self.path)
        with handle:
            handle.seek(0)
            handle.truncate()
            handle.write(f"process {os.getpid()}")
            handle.flush()
            _HELD.add(lock_path)
            try:
                yield
            finally:
                _HELD.discard(lock_path)
                lock_path.unlink(missing_ok=True)  # before the unlock: a waiting process then sees a new file
                fcntl.flock(handle, fcntl.LOCK_UN)

    def write_config(self, text: str) -> None:
        atomic_write_bytes(self.config, text.encode())

    def write_report(self, report: dict[str, Any]) -> None:
        atomic_write_bytes(self.test_report, json.dumps(report, indent=2).encode())

    def read_report(self) -> dict[str, Any]:
        try:
            return json.loads(self.test_report.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.test_report}: not a readable test report ({exc})") from exc


def _locked(lock_path: Path, folder: Path) -> IO[str]:
    """The lock file, opened and locked by this process; InputError naming the holder when another holds it.
    A file removed by its holder between our open and our lock is not the lock any more: open the new one."""
    while True:
        handle = lock_path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise InputError(f"{folder}: in use by {owner}; one process per run folder") from None
        try:
            same = os.stat(lock_path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()


@contextmanager
def stop_on_write_error(what: str, path: Path) -> Iterator[None]:
    """A failed write of a run's file (full disk, read-only folder, file size limit) stops with a message that
    names it; the writes are atomic, so what was there before is intact."""
    try:
        yield
    except OSError as exc:
        raise TrainingStopped(f"cannot write {what} to {path} ({exc.strerror or exc}); what the folder held "
                              "before is intact. Free space or make the folder writable, then run the command "
                              "again (`aclnet test` tests a checkpoint again)") from exc


def resolve_checkpoint(run_dir_or_checkpoint: str | Path) -> Path:
    """A checkpoint file as given, or the checkpoint a run folder tests."""
    path = Path(run_dir_or_checkpoint)
    return RunFolder(path).tested_checkpoint() if path.is_dir() else path
