"""`aclnet.plain_yaml`: configurations and layouts are read without aliases and with bounded nesting."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aclnet import plain_yaml
from aclnet.cli import main

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + k)}: &{chr(98 + k)} [{', '.join(['*' + chr(97 + k)] * 9)}]\n" for k in range(8))
"""A billion laughs: nine levels of nine aliases stand for 9**9 (387 million) strings in 380 bytes."""


def test_plain_documents_read() -> None:
    assert plain_yaml.load("a: 1\nb: [x, {c: 2.5}]\n") == {"a": 1, "b": ["x", {"c": 2.5}]}


def test_aliases_are_refused() -> None:
    assert len(LAUGHS) < 400
    with pytest.raises(yaml.YAMLError, match="aliases"):
        plain_yaml.load(LAUGHS)


def test_deep_nesting_is_refused() -> None:
    assert plain_yaml.load("[" * 60 + "]" * 60) is not None
    with pytest.raises(yaml.YAMLError, match="nested more than 64 levels deep"):
        plain_yaml.load("[" * 100 + "]" * 100)


def test_a_configuration_with_a_billion_laughs_in_its_reader_options_exits_2(tmp_path: Path, capsys) -> None:
    body = "\n".join("    " + line for line in LAUGHS.splitlines())
    config = tmp_path / "laughs.yaml"
    config.write_text(f"data:\n  format: pyskl\n  path: x.pkl\n  options:\n{body}\n")
    assert main(["train", str(config), "--work-dir", str(tmp_path / "run")]) == 2
    assert "laughs.yaml: not valid YAML" in capsys.readouterr().err and not (tmp_path / "run").exists()
    deep = tmp_path / "deep.yaml"
    deep.write_text("data: " + "[" * 5000 + "]" * 5000 + "\n")
    assert main(["train", str(deep), "--work-dir", str(tmp_path / "run")]) == 2
    assert "nested more than 64 levels deep" in capsys.readouterr().err
    assert main(["train", "synthetic-j", "--set", "data.options=" + "[" * 5000 + "]" * 5000]) == 2
    assert "nested more than 64 levels deep" in capsys.readouterr().err
