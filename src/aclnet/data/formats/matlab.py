"""MATLAB v5 files read where a crash of the reader cannot take the program down.

scipy's `loadmat` dies with a segmentation fault on some corrupt files (a damaged compressed element of a
file of a few hundred bytes is enough), which no `try` can catch. Files are therefore read in a worker
process, forked once and reused: a file that kills the worker is named in an `InputError`, and the next
read forks a new one. Where `fork` is not available the file is read in this process.
"""

from __future__ import annotations

import multiprocessing
import signal
import zlib
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import scipy.io
from scipy.io.matlab import MatReadError

from aclnet.errors import InputError

# What scipy raises for truncated or corrupt .mat files (measured on truncated copies of the real files).
MAT_ERRORS = (OSError, ValueError, TypeError, IndexError, KeyError, EOFError, MatReadError, zlib.error)

_worker: ProcessPoolExecutor | None = None


def _read(path: str) -> dict[str, Any] | str:
    """In the worker: the file's variables (structs as attribute objects, no squeezing), or the error's text."""
    try:
        return scipy.io.loadmat(path, struct_as_record=False, squeeze_me=False)
    except MAT_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"


def _ignore_interrupts() -> None:
    """Ctrl-C reaches the whole process group; the parent decides what it means."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def read_mat(path: Path) -> dict[str, Any]:
    """The variables of the MATLAB file `path`; a corrupt file (one that scipy refuses or that crashes it)
    is an `InputError` naming the file."""
    global _worker
    if "fork" not in multiprocessing.get_all_start_methods():
        result: dict[str, Any] | str = _read(str(path))
    else:
        if _worker is None:
            _worker = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"),
                                          initializer=_ignore_interrupts)
        try:
            result = _worker.submit(_read, str(path)).result()
        except BrokenProcessPool:
            _worker = None
            raise InputError(f"{path}: not a readable MATLAB file: it crashed the MATLAB reader (scipy.io.loadmat); "
                             "the file is corrupt") from None
    if isinstance(result, str):
        raise InputError(f"{path}: not a readable MATLAB file (truncated or corrupt): {result}")
    return result
