"""`aclnet.analysis.per_class`: per-class accuracy differences, group boundaries and difficulty levels, by hand."""

from __future__ import annotations

import numpy as np
import pytest
from runs_by_hand import PNG_MAGIC, write_scores

from aclnet.analysis.per_class import (
    difficulty_levels,
    format_difficulty_table,
    group_ends,
    per_class_difference,
    plot_per_class_difference,
)
from aclnet.errors import InputError


def test_per_class_difference_values(tmp_path):
    write_scores(tmp_path / "base.npz", [0, 1, 1, 1, 0, 0])  # class a 2/3, class b 2/3
    write_scores(tmp_path / "new.npz", [0, 0, 1, 0, 0, 0])  # class a 3/3, class b 1/3
    names, base, new = per_class_difference(tmp_path / "base.npz", tmp_path / "new.npz")
    assert names == ["a", "b", "c"]
    np.testing.assert_allclose(base, [200 / 3, 200 / 3, np.nan])  # class c has no test sample
    np.testing.assert_allclose(new, [100, 100 / 3, np.nan])


def test_misaligned_scores_are_refused(tmp_path):
    write_scores(tmp_path / "base.npz", [0, 1, 1, 1, 0, 0])
    write_scores(tmp_path / "ids.npz", [0] * 6, ids=[f"t{i}" for i in range(6)])
    write_scores(tmp_path / "labels.npz", [0] * 6, labels=(0, 0, 1, 1, 2, 0))
    write_scores(tmp_path / "classes.npz", [0] * 6, classes=("a", "b", "x"))
    for name, what in (("ids", "sample ids"), ("labels", "labels"), ("classes", "class names")):
        with pytest.raises(InputError, match=f"{name}.npz: {what} differ"):
            per_class_difference(tmp_path / "base.npz", tmp_path / f"{name}.npz")


def test_group_boundaries():
    assert group_ends(60) == [5, 15, 30, 60]
    assert group_ends(12) == [1, 3, 6, 12]
    assert group_ends(27) == [2, 7, 14, 27]  # halves round up
    assert group_ends(9) == [1, 2, 5, 9]
    assert group_ends(4) == [1, 2, 3, 4]  # raised so that each group keeps a class
    with pytest.raises(InputError, match="at least 4 classes"):
        group_ends(3)


def test_difficulty_levels_60_classes():
    rank = np.random.default_rng(0).permutation(60)  # class c is the rank[c]-th hardest
    base = rank.astype(float)
    rows = difficulty_levels(base, 2 * base, [f"c{i}" for i in range(60)])
    assert [(r["first"], r["last"]) for r in rows] == [(1, 5), (6, 15), (16, 30), (31, 60)]
    assert [r["base"] for r in rows] == pytest.approx([2.0, 9.5, 22.0, 44.5])  # means of ranks 0-4, 5-14, ...
    assert [r["new"] for r in rows] == pytest.approx([4.0, 19.0, 44.0, 89.0])
    assert [r["difference"] for r in rows] == pytest.approx([2.0, 9.5, 22.0, 44.5])
    assert rows[0]["classes"] == [f"c{c}" for c in np.argsort(rank)[:5]]


def test_difficulty_levels_12_classes_by_hand():
    base = np.array([50, 10, 90, 30, 70, 20, 80, 40, 60, 0, 100, 55], dtype=float)
    new = np.array([60, 30, 90, 30, 70, 20, 80, 40, 60, 50, 100, 55], dtype=float)
    rows = difficulty_levels(base, new)
    assert [r["classes"] for r in rows] == [["9"], ["1", "5"], ["3", "7", "0"], ["11", "8", "4", "6", "2", "10"]]
    assert [r["base"] for r in rows] == pytest.approx([0, 15, 40, 455 / 6])
    assert [r["new"] for r in rows] == pytest.approx([50, 25, 130 / 3, 455 / 6])
    assert [r["difference"] for r in rows] == pytest.approx([50, 10, 10 / 3, 0])
    lines = format_difficulty_table(rows).splitlines()
    assert len(lines) == 5 and lines[1].split() == ["1-1", "1", "0.00", "50.00", "+50.00"]


def test_difficulty_levels_ties_and_absent_classes():
    base = np.array([50.0, np.nan, 50.0, 50.0, 50.0, 10.0])
    rows = difficulty_levels(base, base + 1)
    assert [r["classes"] for r in rows] == [["5"], ["0"], ["2"], ["3", "4"]]  # ties by class index, 1 left out
    with pytest.raises(InputError, match="do not match"):
        difficulty_levels(base, base[:5])


def test_per_class_plot_written_and_not_overwritten(tmp_path):
    out = tmp_path / "fig6.png"
    base, new = np.array([50.0, 60.0, np.nan, 10.0]), np.array([70.0, 40.0, np.nan, 10.0])
    plot_per_class_difference(["a", "b", "c", "d"], base, new, out)
    first = out.read_bytes()
    assert first.startswith(PNG_MAGIC) and len(first) > 1000
    with pytest.raises(InputError, match="already exists"):
        plot_per_class_difference(["a", "b", "c", "d"], base, new, out)
    assert out.read_bytes() == first
    plot_per_class_difference(["a", "b", "c", "d"], new, base, out, force=True)
    assert out.read_bytes() != first
