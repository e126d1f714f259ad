"""`aclnet prepare` and `aclnet inspect` end to end."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from aclnet.cli import main

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture()
def kinetics_json() -> Path:
    path = SHARED / "Kinetics-skeleton-sample" / "--33Lscn6sk.json"
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data not laid out)")
    return path


@pytest.mark.slow
def test_prepare_inspect_and_animate(tmp_path, kinetics_json, capsys):
    out = tmp_path / "k.pkl"
    assert main(["prepare", "kinetics-json", str(kinetics_json), str(out)]) == 0
    assert "1 samples" in capsys.readouterr().out
    before = out.read_bytes()
    assert main(["prepare", "kinetics-json", str(kinetics_json), str(out)]) == 2  # never overwrites
    assert "--force" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "layout: openpose" in text and "frames: min 189" in text and "joints: {18: 1}" in text
    gif = tmp_path / "s.gif"
    assert main(["inspect", str(out), "--show=--33Lscn6sk", "--out", str(gif)]) == 0
    assert gif.read_bytes()[:6] == b"GIF89a"
    assert main(["inspect", str(out), "--show", "nope", "--out", str(tmp_path / "n.gif")]) == 2
    assert "no valid sample with id 'nope'" in capsys.readouterr().err


def test_inspect_lists_invalid_samples(tmp_path, capsys):
    good = {"frame_dir": "good", "label": 0, "keypoint": np.zeros((1, 4, 25, 3), np.float32)}
    bad = {"frame_dir": "bad", "label": 0, "keypoint": np.full((1, 4, 25, 3), np.nan, np.float32)}
    path = tmp_path / "a.pkl"
    path.write_bytes(pickle.dumps({"split": {"train": ["good", "bad"]}, "annotations": [good, bad]}))
    assert main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert "samples: 1" in text and "invalid samples: 1" in text and "sample 'bad': keypoint has NaN" in text


def test_prepare_bad_input_exits_2(tmp_path, capsys):
    assert main(["prepare", "ntu", str(tmp_path / "missing"), str(tmp_path / "o.pkl")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["prepare", "ntu", str(tmp_path), str(tmp_path / "o.pkl"), "--option", "nonsense"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["prepare", "avi", str(tmp_path), str(tmp_path / "o.pkl")])
    assert exc.value.code == 2
    assert not (tmp_path / "o.pkl").exists()
