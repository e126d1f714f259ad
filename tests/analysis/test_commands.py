"""`aclnet analyze`: the families, per-class and t-SNE commands and their exit status for bad input."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from runs_by_hand import PNG_MAGIC, config_text, make_tsne_run, model_state, write_run

from aclnet.analysis.commands import add_analyze_parser, parse_epochs
from aclnet.engine.evaluation import save_scores
from aclnet.errors import InputError


@pytest.fixture
def tsne_run(tmp_path):
    return make_tsne_run(tmp_path)


def _parse(argv):
    parser = argparse.ArgumentParser(prog="aclnet")
    add_analyze_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_families_and_per_class(tmp_path, capsys):
    write_run(tmp_path / "best.pt", model_state(), config_text(inter={"k": 2}))
    args = _parse(["analyze", "families", str(tmp_path)])
    args.run(args)
    assert "sit 1.50, jump 0.90, run 0.70, clap 0.60, kick 0.60" in capsys.readouterr().out
    labels = np.repeat(np.arange(12), 2)
    ids, names = [f"s{i}" for i in range(24)], [f"k{i}" for i in range(12)]
    save_scores(tmp_path / "base.npz", ids, labels, np.eye(12)[labels], names)  # every prediction right
    save_scores(tmp_path / "new.npz", ids, labels, np.eye(12)[np.where(labels == 0, 1, labels)], names)
    out = tmp_path / "fig.png"
    argv = ["analyze", "per-class", str(tmp_path / "base.npz"), str(tmp_path / "new.npz"), "--out", str(out)]
    args = _parse(argv)
    args.run(args)
    printed = capsys.readouterr().out.splitlines()
    # All baseline accuracies tie at 100: class 0 (index order) is the first group, and it is now always wrong.
    assert printed[1].split() == ["1-1", "1", "100.00", "0.00", "-100.00"] and printed[-1] == f"wrote {out}"
    first = out.read_bytes()
    assert first.startswith(PNG_MAGIC)
    with pytest.raises(InputError, match="already exists"):
        args.run(args)
    assert capsys.readouterr().out == ""  # a refused overwrite prints no table
    args = _parse(argv + ["--force"])
    args.run(args)
    assert out.read_bytes().startswith(PNG_MAGIC) and f"wrote {out}" in capsys.readouterr().out


def test_cli_tsne_and_bad_input(tsne_run, tmp_path, capsys):
    out = tmp_path / "t.png"
    args = _parse(["analyze", "tsne", str(tsne_run), "--epochs", "1,5", "--out", str(out), "--max-points", "40"])
    args.run(args)
    assert out.exists() and f"wrote {out}" in capsys.readouterr().out
    with pytest.raises(InputError, match="already exists"):
        args.run(args)
    args = _parse(["analyze", "tsne", str(tsne_run), "--epochs", "1,x", "--out", str(tmp_path / "u.png")])
    with pytest.raises(InputError, match="--epochs '1,x'"):
        args.run(args)
    assert parse_epochs("1,10,30") == [1, 10, 30]
    with pytest.raises(InputError, match="count from 1"):
        parse_epochs("0,5")
    args = _parse(["analyze", "families", str(tmp_path / "missing.pt")])
    with pytest.raises(InputError, match="checkpoint not found"):
        args.run(args)
    with pytest.raises(SystemExit) as exc:
        _parse(["analyze", "tsne", str(tsne_run), "--out", str(tmp_path / "v.png")])  # --epochs is required
    assert exc.value.code == 2


def test_main_cli_exit_status_for_bad_input(tmp_path, capsys):
    """Through `aclnet.cli.main` (which wires `analyze` in): bad input ends with a message and status 2."""
    from aclnet.cli import main

    write_run(tmp_path / "ce.pt", {"cls_head.fc.weight": torch.zeros(6, 4)}, config_text(inter={"enabled": False}))
    assert main(["analyze", "families", str(tmp_path / "ce.pt")]) == 2
    assert "aclnet analyze: error:" in capsys.readouterr().err
