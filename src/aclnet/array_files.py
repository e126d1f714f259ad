"""NumPy `.npy` and `.npz` files from outside, read only after what they declare is checked against what they
hold: an array header may declare any shape, and a compressed archive member may expand a thousandfold, so
a small file could otherwise allocate gigabytes. Every problem is an `InputError` naming the file."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from aclnet.errors import InputError
from aclnet.fileio import require_readable

MAX_EXPANSION = 100
"""Most bytes an archive may expand to per byte stored (NumPy's own archives: 1 uncompressed, a few with
`savez_compressed` of real data); beyond it, archives are refused as zip bombs."""
SLACK = 1 << 20


def _declared_bytes(handle: IO[bytes], where: str) -> int:
    """The data bytes an `.npy` stream's header declares (the stream is left at the start of the data)."""
    try:
        version = np.lib.format.read_magic(handle)
        shape, _, dtype = (np.lib.format.read_array_header_1_0(handle) if version == (1, 0)
                           else np.lib.format.read_array_header_2_0(handle))
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise InputError(f"{where}: not a NumPy array file ({exc})") from None
    if dtype.hasobject:
        raise InputError(f"{where}: holds Python objects; only arrays of numbers and text are read")
    return math.prod(shape) * dtype.itemsize


def read_npy(path: Path) -> np.ndarray:
    """The array of an `.npy` file whose header declares no more data than the file holds."""
    require_readable(path)
    with path.open("rb") as handle:
        declared = _declared_bytes(handle, str(path))
        present = path.stat().st_size - handle.tell()
    if declared > present:
        raise InputError(f"{path}: its header declares {declared:,} bytes of data, the file holds {present:,} "
                         "(truncated or forged)")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: cannot read as a NumPy array ({exc})") from None


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an `.npz` archive whose members expand at most `MAX_EXPANSION`-fold and declare no more
    data than they hold."""
    require_readable(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            _check_expansion(path, members, "")
            for member in members:
                with archive.open(member) as handle:
                    declared = _declared_bytes(handle, f"{path}: {member.filename}")
                if declared > member.file_size:
                    raise InputError(f"{path}: {member.filename} declares {declared:,} bytes of data and holds "
                                     f"{member.file_size:,} (truncated or forged)")
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except InputError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise InputError(f"{path}: not a readable NumPy .npz archive ({type(exc).__name__}: {exc})") from None


def check_zip_expansion(path: Path, what: str) -> None:
    """Refuse a zip file (a torch checkpoint is one) whose members expand beyond `MAX_EXPANSION`-fold."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise InputError(f"{path}: not a readable {what} ({type(exc).__name__}: {exc})") from None
    _check_expansion(path, members, f"not a readable {what}: ")


def _check_expansion(path: Path, members: list[zipfile.ZipInfo], prefix: str) -> None:
    """Refuse an archive whose members expand beyond `MAX_EXPANSION` times its size."""
    total, size = sum(m.file_size for m in members), path.stat().st_size
    if total > MAX_EXPANSION * size + SLACK:
        raise InputError(f"{path}: {prefix}its members expand to {total:,} bytes from {size:,} "
                         f"(more than {MAX_EXPANSION}-fold: a zip bomb?)")



