"""Argument checks of the generators and the datasets (each raises InputError naming the argument), and the
strict reading of numbers written in text files."""

from __future__ import annotations

import re

import numpy as np

from aclnet.errors import InputError


def require_int(name: str, value: object, minimum: int) -> None:
    """Raise InputError unless value is an integer >= minimum (shared with `aclnet.data.datasets`)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name}={value!r}: expected an integer >= {minimum}")


def check_choice(name: str, value: object, choices: tuple[int, ...]) -> None:
    """Raise InputError unless value is one of choices."""
    if isinstance(value, bool) or value not in choices:
        raise InputError(f"{name}={value!r}: expected one of {list(choices)}")


def check_range(name: str, value: object, low: float, high: float) -> None:
    """Raise InputError unless value is a finite number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not low <= float(value) <= high:
        raise InputError(f"{name}={value!r}: expected a number in [{low}, {high}]")


def check_frames(frames: object) -> None:
    """Raise InputError unless frames is (min, max) with 2 <= min <= max."""
    ok = isinstance(frames, (tuple, list)) and len(frames) == 2
    if not ok or any(isinstance(f, bool) or not isinstance(f, (int, np.integer)) for f in frames):
        raise InputError(f"frames={frames!r}: expected (min, max) frame counts")
    if not 2 <= frames[0] <= frames[1]:
        raise InputError(f"frames={tuple(frames)}: expected 2 <= min <= max")


_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|inf|infinity)", re.ASCII | re.IGNORECASE)


def plain_number(text: str) -> float:
    """A number written as in a CSV file: ASCII digits, an optional sign, point and exponent (Python's `float`
    also takes '1_000' and non-ASCII digits, which no data file means as numbers); else ValueError."""
    if not _NUMBER.fullmatch(text.strip()):
        raise ValueError(f"not a number: {text[:40]!r}")
    return float(text)
