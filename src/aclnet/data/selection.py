"""Samples selected by the values of their fields: how retrieval protocols (CASIA-B gait, re-ID) say
which sequences train and which form the gallery and each probe set.

A selection maps field names (`subject`, `condition`, `view`, `sequence`, any meta field) to what
the field must hold: one value, a list of values, or a range `{"min": a, "max": b}` (inclusive, either
end optional). A sample is selected when every named field matches; an empty selection takes all. A list
of such mappings selects their union (e.g. normal walks 1-3 together with bag walk 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aclnet.data.sample import Sample
from aclnet.errors import InputError

Selection = Mapping[str, Any] | list[Mapping[str, Any]]


def field_value(sample: Sample, name: str) -> int | str:
    """The value of field `name` of a sample (a meta field); a missing field is an error naming the sample."""
    if name not in sample.meta:
        raise InputError(f"sample '{sample.sample_id}' has no field '{name}' (its fields: {sorted(sample.meta)}); "
                         "retrieval protocols select samples by such fields")
    return sample.meta[name]


def _matches(value: int | str, wanted: Any) -> bool:
    if isinstance(wanted, Mapping):
        if isinstance(value, str):
            return False
        low, high = wanted.get("min"), wanted.get("max")
        return (low is None or value >= low) and (high is None or value <= high)
    if isinstance(wanted, list | tuple):
        return any(_same(value, w) for w in wanted)
    return _same(value, wanted)


def _same(value: int | str, wanted: int | str) -> bool:
    """Equal values; a number and its decimal text are the same (YAML may read '01' as a string)."""
    if isinstance(value, str) != isinstance(wanted, str):
        return str(value) == str(wanted)
    return value == wanted


def selected(sample: Sample, selection: Selection) -> bool:
    """Whether the sample's fields match every entry of `selection` (of one of them, for a list)."""
    if isinstance(selection, list):
        return any(selected(sample, part) for part in selection)
    return all(_matches(field_value(sample, k), v) for k, v in selection.items())


def select(samples: list[Sample], selection: Selection) -> list[Sample]:
    """The samples (in their order) that `selection` selects."""
    return [s for s in samples if selected(s, selection)]


def describe(selection: Selection) -> str:
    """A selection as short text, for messages and reports."""
    if isinstance(selection, list):
        return " or ".join(f"({describe(part)})" for part in selection) or "no samples"
    if not selection:
        return "all samples"

    def text(wanted: Any) -> str:
        if isinstance(wanted, Mapping):
            return f"{wanted.get('min', '')}..{wanted.get('max', '')}"
        if isinstance(wanted, list | tuple):
            return ",".join(map(str, wanted))
        return str(wanted)

    return " ".join(f"{k}={text(v)}" for k, v in selection.items())
