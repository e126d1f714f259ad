"""`aclnet.losses.scaling`: the small-dataset rule."""

from __future__ import annotations

import warnings

import pytest

from aclnet.errors import InputError
from aclnet.losses import scale_for_small_dataset


def test_scaling_rule_values() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert scale_for_small_dataset(60, 40091, 16, 150) == {
            "k": 10, "overlap_threshold": 4, "memory_size": 512, "start_epoch": 30}
        assert scale_for_small_dataset(120, 63026, 16, 150, default_memory_size=1024)["memory_size"] == 1024
        # 9 classes: K = round(1.5) = 2, threshold round(0.8) = 1; a quarter of 100 is 25 -> 3 batches of 8.
        assert scale_for_small_dataset(9, 100, 8, 10) == {
            "k": 2, "overlap_threshold": 1, "memory_size": 24, "start_epoch": 2}
        assert scale_for_small_dataset(15, 1000, 48, 2) == {
            "k": 3, "overlap_threshold": 1, "memory_size": 240, "start_epoch": 1}


def test_scaling_rule_warnings() -> None:
    with warnings.catch_warnings():  # a loss that never switches on is the configuration's warning, not the rule's
        warnings.simplefilter("error")
        assert scale_for_small_dataset(10, 1000, 16, 1)["start_epoch"] == 1
    with pytest.warns(UserWarning, match="fewer than four batches"):
        assert scale_for_small_dataset(10, 40, 16, 50)["memory_size"] == 16
    with pytest.raises(InputError, match="batch_size"):
        scale_for_small_dataset(10, 40, 0, 50)
