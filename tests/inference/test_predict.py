"""`aclnet predict`: tables, --out files (never overwritten without --force), timelines, galleries, errors."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest

import aclnet
from aclnet.data.annotations import write_annotations
from aclnet.data.sample import SampleSet
from aclnet.data.synthetic import make_action_dataset, make_gait_dataset
from aclnet.errors import InputError
from aclnet.inference.predict import TIMELINE_COLUMNS, add_predict_parser


def predict(*argv: str) -> None:
    """Parse `aclnet predict ARGV` with a parser that has only `predict`, and run its handler."""
    parser = argparse.ArgumentParser(prog="aclnet")
    add_predict_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["predict", *map(str, argv)])
    args.run(args)


@pytest.fixture(scope="module")
def arrays(tmp_path_factory) -> dict[str, Path]:
    """Two action sequences of different classes as .npy files, and their concatenation."""
    folder = tmp_path_factory.mktemp("arrays")
    samples = make_action_dataset(num_classes=12, samples_per_class=1, num_subjects=3, seed=3).samples
    first, second = samples[0], samples[9]
    np.save(folder / "first.npy", first.keypoint[0])
    np.save(folder / "second.npy", second.keypoint)
    np.save(folder / "long.npy", np.concatenate([first.keypoint[0], second.keypoint[0]]))
    return {"first": folder / "first.npy", "second": folder / "second.npy", "long": folder / "long.npy"}


@pytest.fixture(scope="module")
def walks(tmp_path_factory) -> dict[str, Path]:
    """A gallery pickle of generated walks and one of its walks as an x, y, score array."""
    folder = tmp_path_factory.mktemp("walks")
    data = make_gait_dataset(num_subjects=3, views=[0], seed=1)
    write_annotations(SampleSet(data.samples, {}, data.layout, data.classes), folder / "gallery.pkl")
    walk = data.samples[7]
    np.save(folder / "walk.npy", np.concatenate([walk.keypoint, walk.score[..., None]], -1))
    return {"gallery": folder / "gallery.pkl", "walk": folder / "walk.npy", "id": walk.sample_id,
            "subject": data.classes[walk.label]}


def test_action_table_json_and_csv(runs, arrays, tmp_path, capsys) -> None:
    model = aclnet.load(runs["action"])
    expected = model.predict([str(arrays["first"]), str(arrays["second"])], top_k=3)
    out = tmp_path / "predictions.json"
    predict(runs["action"], arrays["first"], arrays["second"], "--top-k", 3, "--out", out)
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["input", "top-1", "top-2", "top-3"]
    assert table[1].split()[:3] == ["first.npy", expected[0].top_k[0].name, f"{expected[0].top_k[0].probability:.3f}"]
    saved = json.loads(out.read_text())
    assert saved["task"] == "action" and [p["input"] for p in saved["predictions"]] == ["first.npy", "second.npy"]
    for entry, prediction in zip(saved["predictions"], expected):
        assert [c["class"] for c in entry["top_k"]] == [c.name for c in prediction.top_k]
        assert [c["probability"] for c in entry["top_k"]] == pytest.approx([c.probability for c in prediction.top_k])
    predict(runs["action"], arrays["first"], "--out", tmp_path / "p.csv")
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "5"] and rows[0]["input"] == "first.npy"
    assert float(rows[0]["probability"]) == pytest.approx(expected[0].top_k[0].probability, abs=1e-6)


def test_out_is_never_overwritten_without_force(runs, arrays, tmp_path, capsys) -> None:
    out = tmp_path / "p.json"
    out.write_text("keep me")
    with pytest.raises(InputError, match="already exists; pass --force"):
        predict(runs["action"], arrays["first"], "--out", out)
    assert out.read_text() == "keep me" and capsys.readouterr().out == ""
    predict(runs["action"], arrays["first"], "--out", out, "--force")
    assert json.loads(out.read_text())["predictions"][0]["input"] == "first.npy"
    timeline = tmp_path / "t.csv"
    timeline.with_suffix(".png").write_bytes(b"old plot")  # the plot beside --out is protected too
    with pytest.raises(InputError, match=r"t\.png: already exists"):
        predict(runs["action"], arrays["long"], "--window", 20, "--out", timeline)
    assert not timeline.exists()


def test_window_timeline_csv_json_and_plot(runs, arrays, tmp_path, capsys) -> None:
    t = len(np.load(arrays["long"]))
    n, s = 20, 6
    out = tmp_path / "timeline.csv"
    predict(runs["action"], arrays["long"], arrays["first"], "--window", n, "--stride", s, "--out", out)
    printed = capsys.readouterr().out
    count = (t - n) // s + 1  # from frame 0 while a window fits, then one ending at the last frame
    assert (t - n) % s and f"long.npy: {t} frames, {count + 1} window(s) of {n} frames, stride {s}" in printed
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == TIMELINE_COLUMNS
    long_rows = [r for r in rows if r["input"] == "long.npy"]
    assert len(long_rows) == count + 1
    assert [int(r["start_frame"]) for r in long_rows] == [i * s for i in range(count)] + [t - n]
    assert [int(r["end_frame"]) for r in long_rows] == [i * s + n - 1 for i in range(count)] + [t - 1]
    [timeline] = aclnet.load(runs["action"]).timeline(str(arrays["long"]), window=n, stride=s)
    assert [r["class"] for r in long_rows] == [w.label for w in timeline.windows]
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    predict(runs["action"], arrays["long"], "--window", n, "--out", tmp_path / "t2.json")  # stride n // 2
    saved = json.loads((tmp_path / "t2.json").read_text())["timelines"][0]
    assert saved["stride"] == n // 2 and saved["windows"][-1]["end_frame"] == t - 1
    assert len(saved["windows"]) == (t - n) // (n // 2) + 1 + bool((t - n) % (n // 2))
    assert saved["windows"][1]["start_frame"] == n // 2 and (tmp_path / "t2.png").exists()


def test_gait_embeddings_gallery_file_and_matching(runs, walks, tmp_path, capsys) -> None:
    gallery = tmp_path / "gallery.npz"
    predict(runs["gait"], walks["gallery"], "--out", gallery)
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["input", "dimension", "norm"] and table[1].split()[1] == "8"
    with np.load(gallery) as data:
        assert data["embeddings"].shape == (len(data["names"]), 8)
        assert walks["id"] in data["names"].tolist() and walks["subject"] in data["identities"].tolist()
        np.testing.assert_allclose(np.linalg.norm(data["embeddings"], axis=1), 1.0, atol=1e-5)
    for source in (gallery, walks["gallery"]):  # a gallery file, or the gallery's sequences
        out = tmp_path / f"matches_{source.suffix[1:]}.csv"
        predict(runs["gait"], walks["walk"], "--gallery", source, "--top-k", 2, "--out", out)
        rows = list(csv.DictReader(out.open()))
        assert [r["rank"] for r in rows] == ["1", "2"]
        assert rows[0]["sequence"] == walks["id"] and rows[0]["identity"] == walks["subject"]
        assert float(rows[0]["distance"]) < 1e-3 < float(rows[1]["distance"])
    assert f"walk.npy  {walks['subject']} 0.0000" in capsys.readouterr().out
    predict(runs["gait"], walks["walk"], "--out", tmp_path / "e.json")
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved["dimension"] == 8 and saved["embeddings"][0]["identity"] == "walk.npy"


@pytest.mark.parametrize(("task", "argv", "pattern"), [
    ("gait", ["--window", "10"], "--window needs a checkpoint that predicts classes"),
    ("action", ["--gallery", "g.npz"], "--gallery needs a checkpoint that embeds sequences"),
    ("action", ["--stride", "3"], "--stride needs --window"),
    ("action", ["--top-k", "0"], "--top-k must be >= 1"),
    ("action", ["--window", "0"], "--window must be >= 1"),
    ("action", ["--out", "x.npz"], "--out x.npz: the file type is given by its suffix, one of .json, .csv"),
    ("gait", ["--out", "x.txt"], "one of .json, .csv, .npz"),
])
def test_bad_options_are_input_errors(runs, arrays, task, argv, pattern) -> None:
    with pytest.raises(InputError, match=pattern):
        predict(runs[task], arrays["first"], *argv)


def test_input_that_does_not_fit_the_checkpoint(runs, arrays, tmp_path) -> None:
    with pytest.raises(InputError, match=r"input 'first.npy': 25 joints, but the model's layout 'coco' has 17 "
                                         r"joints: expected .*\(T, 17, 3\).*given shape \(\d+, 25, 3\)"):
        predict(runs["gait"], arrays["first"])
    np.save(tmp_path / "zeros.npy", np.zeros((40, 25, 3)))
    with pytest.raises(InputError, match="every frame is all zeros"):
        predict(runs["action"], tmp_path / "zeros.npy")
    with pytest.raises(InputError, match="no such file"):
        predict(runs["action"], tmp_path / "missing.npy")


def test_short_sequences_get_a_note(runs, arrays, tmp_path, capsys) -> None:
    np.save(tmp_path / "short.npy", np.load(arrays["first"])[:5])
    predict(runs["action"], tmp_path / "short.npy")
    assert "short.npy: fewer frames than the model's 16-frame clips; uniform_sample" in capsys.readouterr().err


def test_the_main_command_line_runs_predict_when_wired(runs, arrays, capsys) -> None:
    from aclnet.cli import build_parser, main

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    if "predict" not in commands:
        pytest.skip("`predict` is not wired into aclnet.cli yet")
    assert main(["predict", str(runs["action"]), str(arrays["first"])]) == 0
    assert main(["predict", str(runs["gait"]), str(arrays["first"])]) == 2
    assert "25 joints, but the model's layout 'coco' has 17 joints" in capsys.readouterr().err


def test_huge_coordinates_and_numbers_that_are_not_plain_are_refused(runs, arrays, tmp_path) -> None:
    np.save(tmp_path / "huge.npy", np.full((40, 25, 3), 1e30))
    with pytest.raises(InputError, match=r"input 'huge.npy': a coordinate of 1e\+30, beyond 1e\+06"):
        predict(runs["action"], tmp_path / "huge.npy")
    row = ",".join(["0.5"] * 75)
    for cell in ("1_0", "\u0661\u0662"):  # Python's float reads both; no data file means them as numbers
        (tmp_path / "odd.csv").write_text(f"{row}\n{cell},{row[4:]}\n")
        with pytest.raises(InputError, match=r"odd.csv: line 2: a cell is not a number"):
            predict(runs["action"], tmp_path / "odd.csv")


def test_top_k_must_be_a_whole_number(runs, arrays) -> None:
    from aclnet import load

    with pytest.raises(InputError, match=r"top_k must be a whole number >= 1, got 2.5"):
        load(runs["action"]).predict(str(arrays["first"]), top_k=2.5)


def test_control_characters_in_messages_are_escaped(runs, tmp_path, capsys) -> None:
    from aclnet.cli import main

    name = tmp_path / "evil\x1b[31mred\x07.npy"
    assert main(["predict", str(runs["action"]), str(name)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "evil\\x1b[31mred\\x07.npy" in err
