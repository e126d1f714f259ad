"""Validation hold-outs: whole groups, or samples within every group."""

from __future__ import annotations

import numpy as np
import pytest

from aclnet.data.sample import Sample
from aclnet.data.splits import hold_out, hold_out_within
from aclnet.errors import InputError


def _samples(counts: dict[int, int]) -> list[Sample]:
    return [Sample(f"p{person}_{k}", np.zeros((1, 2, 3, 2), np.float32), 0, meta={"subject": person})
            for person, count in counts.items() for k in range(count)]


def test_within_groups_every_group_keeps_training_and_one_sample_groups_are_not_split() -> None:
    samples = _samples({1: 1, 2: 2, 3: 5, 4: 10})
    train, val = hold_out_within(samples, "subject", 0.3, seed=0)
    held = {p: sum(s.meta["subject"] == p for s in val) for p in (1, 2, 3, 4)}
    assert held == {1: 0, 2: 1, 3: 2, 4: 3}  # at least one, at most n - 1, else round(0.3 n)
    assert {s.meta["subject"] for s in train} == {1, 2, 3, 4}
    assert sorted(s.sample_id for s in train + val) == sorted(s.sample_id for s in samples)
    # Seeded: the same draw for the same seed whatever the input order; another seed draws others.
    again = hold_out_within(samples[::-1], "subject", 0.3, seed=0)[1]
    assert {s.sample_id for s in again} == {s.sample_id for s in val}
    other = hold_out_within(samples, "subject", 0.3, seed=1)[1]
    assert {s.sample_id for s in other} != {s.sample_id for s in val}


def test_within_groups_needs_a_group_of_two() -> None:
    with pytest.raises(InputError, match="no 'subject' has two training samples"):
        hold_out_within(_samples({1: 1, 2: 1}), "subject", 0.5, seed=0)


def test_whole_groups_leave_no_person_in_both() -> None:
    train, val = hold_out(_samples({1: 3, 2: 3, 3: 3, 4: 3}), "subject", 0.25, seed=0)
    assert len({s.meta["subject"] for s in val}) == 1
    assert not {s.meta["subject"] for s in val} & {s.meta["subject"] for s in train}
