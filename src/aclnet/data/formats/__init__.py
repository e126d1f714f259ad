"""One reader per dataset file format; every reader returns a validated `SampleSet`.

Each module named here defines `read(source: Path, **options) -> SampleSet`. Modules are imported
when used, so a format's optional needs never slow the others down.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from aclnet.data.sample import SampleSet
from aclnet.errors import InputError

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
}


def read_format(name: str, source: str | Path, **options: Any) -> SampleSet:
    """Read `source` with the reader of format `name`; unknown names list the valid ones."""
    if name not in FORMATS:
        raise InputError(f"unknown format '{name}'; valid formats are {', '.join(FORMATS)}")
    source = Path(source)
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    module = importlib.import_module(f"aclnet.data.formats.{FORMATS[name]}")
    accepted = reader_options(name)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InputError(f"format '{name}' takes no option {unknown}; its options are {sorted(accepted) or 'none'}")
    return module.read(source, **options)


def reader_options(name: str) -> set[str]:
    """The options the reader of format `name` takes."""
    module = importlib.import_module(f"aclnet.data.formats.{FORMATS[name]}")
    return set(inspect.signature(module.read).parameters) - {"source"}
