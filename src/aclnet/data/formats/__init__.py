"""One reader per dataset file format; every reader returns a validated `SampleSet`.

Each module named here defines `read(source: Path, **options) -> SampleSet`. Modules are imported
when used, so a format's optional needs never slow the others down.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from aclnet.data.sample import SampleSet, describe
from aclnet.errors import InputError
from aclnet.fileio import require_readable
from aclnet.progress import Progress

T = TypeVar("T")

FORMATS: dict[str, str] = {
    "pyskl": "pyskl",
    "ntu": "ntu",
    "pku-mmd": "pku_mmd",
    "kinetics-json": "kinetics_json",
    "pose-json": "pose_detections",
    "casia-b": "casia_b",
    "nw-ucla": "nw_ucla",
    "msr-action3d": "msr_action3d",
    "florence3d": "florence3d",
    "utkinect": "utkinect",
    "utd-mhad": "utd_mhad",
    "sbu": "sbu",
    "video": "video",
}


def read_format(name: str, source: str | Path, **options: Any) -> SampleSet:
    """Read `source` with the reader of format `name`; unknown names list the valid ones."""
    if name not in FORMATS:
        raise InputError(f"unknown format '{name}'; valid formats are {', '.join(FORMATS)}")
    source = require_readable(Path(source), folder_too=True)
    module = importlib.import_module(f"aclnet.data.formats.{FORMATS[name]}")
    accepted = reader_options(name)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InputError(f"format '{name}' takes no option {unknown}; its options are {sorted(accepted) or 'none'}")
    check_option_types(options)
    return module.read(source, **options)


# Options that name files or folders, options that are names or patterns, and switches.
PATH_OPTIONS = frozenset({"label_file", "keypoint_dir", "label_dir"})
TEXT_OPTIONS = frozenset({"layout", "name_pattern", "variant", "coordinates"})
BOOL_OPTIONS = frozenset({"skip_invalid"})


def check_option_types(options: dict[str, Any]) -> None:
    """Refuse option values of the wrong type, naming the option: paths must be strings (or paths),
    names strings, switches true or false. Other options are checked by their reader."""
    for key, value in options.items():
        if value is None:
            continue
        if key in PATH_OPTIONS and not (isinstance(value, (str, os.PathLike)) and str(value)):
            raise InputError(f"option {key} is a path and must be a non-empty string, got {describe(value)}")
        if key in TEXT_OPTIONS and not isinstance(value, (str, os.PathLike)):
            raise InputError(f"option {key} must be a string, got {describe(value)}")
        if key in BOOL_OPTIONS and not isinstance(value, bool):
            raise InputError(f"option {key} must be true or false, got {describe(value)}")


def load_json(path: Path) -> Any:
    """A JSON file's content; every failure (unreadable, not UTF-8, not JSON, nested too deeply,
    integers too long to parse) is an `InputError` naming the file."""
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except RecursionError:
        raise InputError(f"{path}: not valid JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, and integers with too many digits
        raise InputError(f"{path}: not valid JSON: {exc}") from None


MAX_COVER = 4
"""How many times the segments cut from one recording may cover its frames: labelled segments barely
overlap, and copies beyond this would let a small label file allocate gigabytes."""


def check_cover(segment_frames: int, num_frames: int, where: str) -> None:
    """Refuse segments whose frames add up to more than `MAX_COVER` times the recording's."""
    if segment_frames > MAX_COVER * max(num_frames, 1):
        raise InputError(f"{where}: the labelled segments hold {segment_frames} frames, more than {MAX_COVER} times "
                         f"the recording's {num_frames}; segments may overlap only a little")


class InvalidFiles:
    """The files a reader skips with `skip_invalid`: without it, a file's first problem is raised.

    `read(name, func, *args)` returns `func(*args)`, or None when it raised an `InputError` and invalid
    files are skipped; `report` logs the count and names as one warning; `nothing_valid` is the error
    for a read that kept nothing.
    """

    def __init__(self, skip_invalid: Any) -> None:
        if not isinstance(skip_invalid, bool):
            raise InputError(f"option skip_invalid must be true or false, got {describe(skip_invalid)}")
        self.skip_invalid = skip_invalid
        self.skipped: list[tuple[str, str]] = []
        self.progress = Progress("files read")

    def read(self, name: str | Path, func: Callable[..., T], *args: Any) -> T | None:
        try:
            return func(*args)
        except InputError as exc:
            if not self.skip_invalid:
                raise
            self.skipped.append((str(name), str(exc)))
            return None
        finally:
            self.progress.step()

    def skip(self, name: str | Path, problem: str | InputError) -> None:
        """Record a problem found outside `read`; raises it unless invalid files are skipped."""
        error = problem if isinstance(problem, InputError) else InputError(problem)
        if not self.skip_invalid:
            raise error
        self.skipped.append((str(name), str(error)))

    def report(self, logger: logging.Logger, source: Path, what: str = "files") -> None:
        self.progress.close()
        if self.skipped:
            logger.warning(
                "%s: skipped %d invalid %s: %s; first problem: %s",
                source, len(self.skipped), what, ", ".join(n for n, _ in self.skipped), self.skipped[0][1],
            )

    def nothing_valid(self, source: Path, what: str = "files") -> InputError:
        first = f"; first problem: {self.skipped[0][1]}" if self.skipped else ""
        return InputError(f"{source}: nothing valid to read: all {len(self.skipped)} {what} were invalid{first}")


def reader_options(name: str) -> set[str]:
    """The options the reader of format `name` takes."""
    module = importlib.import_module(f"aclnet.data.formats.{FORMATS[name]}")
    return set(inspect.signature(module.read).parameters) - {"source"}
