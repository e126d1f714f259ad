"""`aclnet.progress`: loops of files, sequences or windows say how far they are, also when output is piped."""

from __future__ import annotations

import pytest

from aclnet import progress


def test_a_piped_loop_prints_a_line_every_ten_seconds_and_a_short_one_nothing(monkeypatch, capsys) -> None:
    clock = iter([0.0] + [1.5 * k for k in range(1, 40)])  # the start, then one step every 1.5 s
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    loop = progress.Progress("files read", total=30)
    for _ in range(30):
        loop.step()
    loop.close()
    lines = capsys.readouterr().err.splitlines()
    # at 10.5 s, 21 s, 31.5 s and 42 s: 2/3 of a file per second, (30 - done) x 1.5 s left (34.5 and 13.5 round to even)
    assert lines == ["files read: 7/30 (0.7/s, about 34 s left)", "files read: 14/30 (0.7/s, about 24 s left)",
                     "files read: 21/30 (0.7/s, about 14 s left)", "files read: 28/30 (0.7/s, about 3 s left)"]
    monkeypatch.setattr(progress.time, "monotonic", lambda: 100.0)  # a loop that ends within QUIET seconds
    quick = progress.Progress("windows")
    for _ in range(1000):
        quick.step()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("total", [None, 5])
def test_a_terminal_gets_a_bar_that_goes(monkeypatch, capsys, total) -> None:
    clock = iter([0.0, 3.0, 4.0, 5.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: True)
    loop = progress.Progress("sequences", total=total)
    for _ in range(3):
        loop.step()
    assert loop.bar is not None and loop.bar.n == 3
    loop.close()
    assert loop.bar is None and "sequences" in capsys.readouterr().err
