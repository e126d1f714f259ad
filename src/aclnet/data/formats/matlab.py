"""MATLAB v5 files read where a crash of the reader cannot take the program down.

scipy's `loadmat` dies with a segmentation fault on some corrupt files (a damaged compressed element of a
file of a few hundred bytes is enough), which no `try` can catch. Files are therefore read in a worker
process, forked once and reused: a file that kills the worker is named in an `InputError`, and the next
read forks a new one. Where `fork` is not available the file is read in this process.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import signal
import struct
import zlib
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import scipy.io
from scipy.io.matlab import MatReadError

from aclnet.array_files import MAX_EXPANSION, SLACK
from aclnet.errors import InputError

COMPRESSED = 15  # miCOMPRESSED: a zlib stream holding one element

# What scipy raises for truncated or corrupt .mat files (measured on truncated copies of the real files).
MAT_ERRORS = (OSError, ValueError, TypeError, IndexError, KeyError, EOFError, MatReadError, zlib.error,
              NotImplementedError)  # MATLAB v7.3 files are HDF5, which loadmat does not read

_worker: ProcessPoolExecutor | None = None


def _expanded_size(data: bytes) -> int:
    """The bytes a MATLAB v5 file's top-level elements take once decompressed, streamed in 1 MB pieces and
    stopped as soon as they pass what the file can justify (zlib bombs expand a thousandfold)."""
    limit = MAX_EXPANSION * len(data) + SLACK
    order = "<" if data[126:128] == b"IM" else ">"
    total, pos = 0, 128
    while pos + 8 <= len(data) and total <= limit:
        kind, size = struct.unpack(order + "II", data[pos:pos + 8])
        if kind == COMPRESSED:
            stream, rest = zlib.decompressobj(), data[pos + 8:pos + 8 + size]
            while rest and total <= limit:
                total += len(stream.decompress(rest, 1 << 20))
                rest = stream.unconsumed_tail
            pos += 8 + size
        else:
            total += size
            pos += 8 + size + (-size) % 8
    return total


def _read(path: str) -> dict[str, Any] | str:
    """In the worker: the file's variables (structs as attribute objects, no squeezing), or the error's text."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        expanded = _expanded_size(data)
        if expanded > MAX_EXPANSION * len(data) + SLACK:
            return (f"its compressed elements expand to more than {MAX_EXPANSION} times its {len(data)} bytes "
                    "(a zlib bomb?)")
        return scipy.io.loadmat(path, struct_as_record=False, squeeze_me=False)
    except MAT_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"


def _start_worker() -> None:
    """Ctrl-C reaches the whole process group, and the parent decides what it means; a crash is the parent's
    to report (no fault handler dump from the worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.disable()


def read_mat(path: Path) -> dict[str, Any]:
    """The variables of the MATLAB file `path`; a corrupt file (one that scipy refuses or that crashes it)
    is an `InputError` naming the file."""
    global _worker
    if "fork" not in multiprocessing.get_all_start_methods():
        result: dict[str, Any] | str = _read(str(path))
    else:
        if _worker is None:
            _worker = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"),
                                          initializer=_start_worker)
        try:
            result = _worker.submit(_read, str(path)).result()
        except BrokenProcessPool:
            _worker = None
            raise InputError(f"{path}: not a readable MATLAB file: it crashed the MATLAB reader (scipy.io.loadmat); "
                             "the file is corrupt") from None
    if isinstance(result, str):
        raise InputError(f"{path}: not a readable MATLAB file (truncated or corrupt): {result}")
    return result
