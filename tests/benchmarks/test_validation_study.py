"""The validation study's reading of a run's metrics.csv (benchmarks/validation_study.py); no training."""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARK = "validation_study"  # the `suite` fixture (tests/conftest.py) imports benchmarks/validation_study.py

METRICS = """epoch,train_ce,train_inter,lr,val_top1,inter_family_size
1.0,3.0,0.0,0.1,,
2.0,2.0,0.0,0.1,40.0,
3.0,1.5,0.9,0.1,,4.5
4.0,1.0,0.7,0.1,62.5,3.5
5.0,0.8,0.5,0.1,,3.0
6.0,0.5,0.4,0.1,55.0,3.0
"""


def test_curve_reads_final_and_late_validation_and_values_along_the_schedule(suite: ModuleType, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "metrics.csv").write_text(METRICS)
    curve = suite.Curve.read(tmp_path)
    assert curve.final_val() == 55.0  # the last validated epoch, not the best
    assert curve.late_val() == (40.0 + 62.5 + 55.0) / 3  # fewer than LATE validations: all of them
    monkeypatch.setattr(suite, "LATE", 2)
    assert curve.late_val() == (62.5 + 55.0) / 2
    assert curve.at("train_ce", 0.0) == 3.0 and curve.at("train_ce", 1.0) == 0.5
    assert curve.at("train_inter", 0.5) == 0.7  # row 0.5 * 5 = 2.5 rounds up to 3 (epoch 4)
    assert math.isnan(curve.at("inter_family_size", 0.0)) and curve.at("inter_family_size", 0.8) == 3.0
    assert math.isnan(curve.at("val_loss", 0.5))  # a column the run did not log


@pytest.mark.parametrize("values, expected", [([80.0, 82.0, 84.0], "82.00 ± 2.00"), ([70.0], "70.00 ± 0.00")])
def test_mean_and_sample_std(suite: ModuleType, values: list[float], expected: str) -> None:
    assert suite._format_mean_std(values) == expected
