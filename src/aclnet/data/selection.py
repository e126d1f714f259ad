"""Samples selected by the values of their fields: how retrieval protocols (CASIA-B gait, re-ID) say
which sequences train and which form the gallery and each probe set.

A selection maps field names (`subject`, `condition`, `view`, `sequence`, any meta field) to what
the field must hold: one value, a list of values, or a range `{"min": a, "max": b}` (inclusive, either
end optional). A sample is selected when every named field matches; an empty selection takes all. A list
of such mappings selects their union (e.g. normal walks 1-3 together with bag walk 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from aclnet.data.sample import Sample
from aclnet.errors import InputError


class ValueRange(BaseModel):
    """An inclusive range of numeric field values, e.g. subjects {min: 75, max: 124}."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = Field(None, description="lowest value selected (None: no lower bound)")
    max: float | None = Field(None, description="highest value selected (None: no upper bound)")


FieldSelection = int | str | list[int | str] | ValueRange
"""What a selection asks of one sample field: one value, a list of values, or a range."""

Selection = dict[str, FieldSelection] | list[dict[str, FieldSelection]]
"""Samples whose fields match every entry; a list of such mappings selects their union."""

_SELECTION: TypeAdapter[Selection] = TypeAdapter(Selection)


def as_selection(value: object, where: str = "selection") -> Selection:
    """A selection from its written form (mappings and ranges as dicts, or already typed); errors name `where`."""
    try:
        return _SELECTION.validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(f"{where}: not a selection of sample fields ({first['msg']}), e.g. "
                         "{subject: [1, 2], condition: nm} or {subject: {min: 75, max: 124}}") from None


def field_value(sample: Sample, name: str) -> int | str:
    """The value of field `name` of a sample (a meta field); a missing field is an error naming the sample."""
    if name not in sample.meta:
        raise InputError(f"sample '{sample.sample_id}' has no field '{name}' (its fields: {sorted(sample.meta)}); "
                         "retrieval protocols select samples by such fields")
    return sample.meta[name]


def _matches(value: int | str, wanted: FieldSelection) -> bool:
    if isinstance(wanted, ValueRange):
        if isinstance(value, str):
            return False
        return (wanted.min is None or value >= wanted.min) and (wanted.max is None or value <= wanted.max)
    if isinstance(wanted, list | tuple):
        return any(_same(value, w) for w in wanted)
    return _same(value, wanted)


def _same(value: int | str, wanted: int | str) -> bool:
    """Equal values; a number and its decimal text are the same (YAML may read '01' as a string)."""
    if isinstance(value, str) != isinstance(wanted, str):
        return str(value) == str(wanted)
    return value == wanted


def _selected(sample: Sample, selection: Selection) -> bool:
    """Whether the sample's fields match every entry of `selection` (of one of them, for a list)."""
    if isinstance(selection, list):
        return any(_selected(sample, part) for part in selection)
    return all(_matches(field_value(sample, k), v) for k, v in selection.items())


def selection_mask(samples: list[Sample], selection: object) -> np.ndarray:
    """Which of `samples` a selection (written or typed) keeps, as a boolean array."""
    checked = as_selection(selection)
    return np.array([_selected(s, checked) for s in samples], dtype=bool)


def select(samples: list[Sample], selection: object) -> list[Sample]:
    """The samples (in their order) that a selection (written or typed) selects."""
    return [s for s, keep in zip(samples, selection_mask(samples, selection)) if keep]


def describe(selection: object) -> str:
    """A selection as short text, for messages and reports."""
    selection = as_selection(selection)
    if isinstance(selection, list):
        return " or ".join(f"({describe(part)})" for part in selection) or "no samples"
    if not selection:
        return "all samples"

    def text(wanted: Any) -> str:
        if isinstance(wanted, ValueRange):
            return f"{_number(wanted.min)}..{_number(wanted.max)}"
        if isinstance(wanted, list | tuple):
            return ",".join(map(str, wanted))
        return str(wanted)

    return " ".join(f"{k}={text(v)}" for k, v in selection.items())


def _number(value: float | None) -> str:
    """A range bound as written: 75.0 -> '75', None -> ''."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)
