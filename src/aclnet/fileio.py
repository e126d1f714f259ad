"""File helpers shared by every stage: atomic writes of user-visible files, and the check that a path given
to be read is an ordinary file or folder."""

from __future__ import annotations

import csv
import io
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, then rename it over `path`.

    A reader (or a crash) never sees a half-written file: `path` is either the old or the new one.
    The file gets the permissions of an ordinary new file (0666 less the umask), not mkstemp's 0600.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> None:
    """A header of `columns` and one line per row (missing keys as empty cells), written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode())


def require_readable(path: Path, *, folder_too: bool = False) -> Path:
    """`path`, or an `InputError` when it is missing or is not a regular file (or, with `folder_too`, a
    folder): a FIFO blocks a reader and a device such as /dev/zero never ends."""
    from aclnet.errors import InputError

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{path}: no such file{' or folder' if folder_too else ''}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if not (stat.S_ISREG(mode) or (folder_too and stat.S_ISDIR(mode))):
        raise InputError(f"{path}: not a regular file{' or folder' if folder_too else ''} (a FIFO, socket or "
                         "device cannot be read as data)")
    return path
