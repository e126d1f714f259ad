"""`aclnet report`: the self-contained HTML page of a run, on tiny trained runs (two action runs, one gait
run), its refusals, and a look at the page in a real headless browser (Debian's `chromium`)."""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from aclnet.analysis.report import add_report_parser, build_report, pick_samples
from aclnet.cli import main
from aclnet.engine.evaluation import load_scores, save_scores
from aclnet.errors import InputError

# Tiny runs: a narrow 2-block network, few steps, 6 classes with 2 test samples each.
TINY = ["train.max_steps_per_epoch=2", "optim.batch_size=8", "data.clip_len=16", "data.test_clips=1",
        "train.deterministic=true", "model.options={num_stages: 2, base_channels: 16, inflate_stages: [], "
        "down_stages: [2]}"]
ACTION = [*TINY, "data.synthetic.samples_per_class=12", "data.synthetic.num_classes=6"]
SECTIONS = ["configuration", "result", "curves", "confusion", "families", "baseline", "tsne", "samples"]
DATA_URI = re.compile(r'<img src="data:(image/(?:png|gif));base64,([A-Za-z0-9+/=]+)"')
MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/gif": b"GIF89a"}


def _train(experiment: str, run: Path, settings: list[str]) -> Path:
    assert main(["train", experiment, "--work-dir", str(run), "--set", *settings]) == 0
    return run


def _report(*args: str) -> None:
    """`aclnet report ARGS` through a parser built as the main CLI builds it."""
    parser = argparse.ArgumentParser(prog="aclnet")
    add_report_parser(parser.add_subparsers(dest="command", required=True))
    parsed = parser.parse_args(["report", *args])
    parsed.run(parsed)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """ACLNet (inter + intra, embeddings saved at both epochs), a CE baseline and a gait run."""
    root = tmp_path_factory.mktemp("runs")
    return {
        "aclnet": _train("synthetic-j", root / "aclnet", [*ACTION, "optim.epochs=2", "train.save_embeddings_at=[1,2]"]),
        "ce": _train("synthetic-j", root / "ce", [*ACTION, "optim.epochs=2", "loss.inter.enabled=false",
                                                   "loss.intra.enabled=false"]),
        "gait": _train("synthetic-gait-j", root / "gait", [*TINY, "optim.epochs=2", "data.synthetic.views=[0,90]"]),
    }


@pytest.fixture(scope="module")
def full_report(runs, tmp_path_factory) -> Path:
    """The ACLNet run's page with the CE run as baseline, two animated samples."""
    out = tmp_path_factory.mktemp("reports") / "report.html"
    _report(str(runs["aclnet"]), "--baseline", str(runs["ce"]), "--out", str(out), "--samples", "2",
            "--frames", "6", "--tsne-points", "50")
    return out


def _images(page: str) -> list[tuple[str, bytes]]:
    return [(mime, base64.b64decode(data)) for mime, data in DATA_URI.findall(page)]


def _notes(page: str) -> list[str]:
    return re.findall(r'<p class="note">(.*?)</p>', page)


def _self_contained(page: str) -> None:
    assert "http://" not in page and "https://" not in page
    assert not re.search(r'\s(?:src|href)="(?!data:|#)', page)  # only data URIs and in-page anchors
    assert "<link" not in page and "@import" not in page and "url(" not in page
    images = _images(page)
    assert len(images) == page.count("<img ")
    for mime, data in images:
        assert data.startswith(MAGIC[mime])


def test_action_report_with_baseline(runs, full_report):
    page = full_report.read_text()
    _self_contained(page)
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in page
    assert "could not be built" not in page
    report = json.loads((runs["aclnet"] / "test_report.json").read_text())
    for key in ("top1", "top5", "mean_class"):
        assert f"<td class=\"num\">{report[key]:.2f}</td>" in page
    names = [str(n) for n in load_scores(runs["aclnet"] / "test_scores.npz")["class_names"]]
    assert all(name in page for name in names)
    section = {anchor: page.split(f'<section id="{anchor}">')[1].split("</section>")[0] for anchor in SECTIONS}
    assert len(_images(section["curves"])) == 1 and "train_inter" in section["curves"] \
        and "inter_family_size" in section["curves"] and "val_top1" in section["curves"]
    assert len(_images(section["confusion"])) == 1
    assert len(_images(section["families"])) == 1 and "family members (affinity weight)" in section["families"]
    assert len(_images(section["baseline"])) == 1 and "Accuracy by difficulty level" in section["baseline"]
    assert len(_images(section["tsne"])) == 1 and "Epochs 1, 2" in section["tsne"]
    config = yaml.safe_load((runs["aclnet"] / "config.yaml").read_text())
    for value in (config["optim"]["lr"], config["optim"]["weight_decay"]):  # exact, not rounded to 2 decimals
        assert f"<td>{value}</td>" in section["configuration"]
    constants = report["loss_constants"]  # the constants the run resolved, not the configuration's unset values
    assert (f"K {constants['k']}, n_tau {constants['overlap_threshold']}, from epoch {constants['start_epoch']}"
            in section["configuration"]) and f"memory {constants['memory_size']})" in section["configuration"]
    gifs = [mime for mime, _ in _images(section["samples"])]
    assert gifs == ["image/gif", "image/gif"]
    assert section["samples"].count("true: ") == 2 and section["samples"].count("predicted: ") == 2
    assert _notes(page) == []


def test_report_of_a_ce_run_notes_what_it_lacks(runs, tmp_path, capsys):
    out = tmp_path / "ce.html"
    _report(str(runs["ce"]), "--out", str(out), "--samples", "0")
    assert f"wrote {out}" in capsys.readouterr().out
    page = out.read_text()
    _self_contained(page)
    notes = " ".join(_notes(page))
    assert "no inter loss" in notes and "No baseline given" in notes and "saved no embeddings" in notes \
        and "--samples 0" in notes
    assert len(_images(page)) == 2  # training curves and confusion matrix


def test_gait_report_tables(runs, tmp_path):
    out = tmp_path / "gait.html"
    _report(str(runs["gait"]), "--out", str(out))
    page = out.read_text()
    _self_contained(page)
    report = json.loads((runs["gait"] / "test_report.json").read_text())
    for probe, table in report["view_tables"].items():
        assert f"<td class=\"num\">{report[probe]:.2f}</td>" in page
        assert f"Probe set {probe}: rank-1" in page
        for value in [*np.ravel(np.asarray(table["matrix"], dtype=float)), *table["per_probe_view"]]:
            assert not np.isfinite(value) or f"{value:.2f}</td>" in page
    assert f"{report['mean']:.2f}" in page
    notes = " ".join(_notes(page))
    assert "no confusion matrix" in notes and "a gait run has none" in notes
    assert "could not be built" not in page


def test_reid_report_and_a_bare_run_folder(tmp_path):
    """A folder with only a test report: the result table, and a note for every other piece."""
    report = {"task": "reid", "sequences": 40, "rank1": 61.25, "map": 40.5, "selection": "final epoch",
              "probes_without_match": {"nm-nm": 0, "cl-nm": 2}}
    for setting, base in (("nm-nm", 70.0), ("cl-nm", 52.5)):
        report |= {f"{setting}_rank1": base, f"{setting}_rank5": base + 10, f"{setting}_rank10": base + 15,
                   f"{setting}_map": base - 20}
    (tmp_path / "test_report.json").write_text(json.dumps(report))
    page = build_report(tmp_path)
    for value in ("70.00", "80.00", "85.00", "50.00", "52.50", "32.50", "61.25", "40.50"):
        assert f"{value}</td>" in page
    assert "nm-nm" in page and "cl-nm" in page and "could not be built" not in page
    assert len(_notes(page)) == 7  # configuration, curves, confusion, families, baseline, t-SNE, samples


def test_refusals(runs, tmp_path, full_report):
    with pytest.raises(InputError, match="not a run folder"):
        _report(str(tmp_path / "missing"), "--out", str(tmp_path / "a.html"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a run folder"):
        _report(str(tmp_path / "empty"), "--out", str(tmp_path / "a.html"))
    untested = tmp_path / "untested"
    shutil.copytree(runs["ce"], untested)
    (untested / "test_report.json").unlink()
    with pytest.raises(InputError, match="no test_report.json"):
        _report(str(untested), "--out", str(tmp_path / "a.html"))
    with pytest.raises(InputError, match="no test_report.json"):
        _report(str(runs["aclnet"]), "--baseline", str(untested), "--out", str(tmp_path / "a.html"))
    with pytest.raises(InputError, match="a gait run cannot be compared"):
        _report(str(runs["aclnet"]), "--baseline", str(runs["gait"]), "--out", str(tmp_path / "a.html"))
    other = tmp_path / "other-classes"
    shutil.copytree(runs["ce"], other)
    scores = load_scores(other / "test_scores.npz")
    save_scores(other / "test_scores.npz", list(scores["sample_ids"]), scores["labels"], scores["scores"],
                [f"other{i}" for i in range(len(scores["class_names"]))])
    with pytest.raises(InputError, match="class list"):
        _report(str(runs["aclnet"]), "--baseline", str(other), "--out", str(tmp_path / "a.html"))
    assert not (tmp_path / "a.html").exists()
    # Never overwrite without --force (refused before any work); --force replaces atomically.
    before = full_report.read_bytes()
    with pytest.raises(InputError, match="already exists"):
        _report(str(runs["ce"]), "--out", str(full_report), "--samples", "0")
    assert full_report.read_bytes() == before
    copy = tmp_path / "copy.html"
    copy.write_text("old")
    _report(str(runs["ce"]), "--out", str(copy), "--samples", "0", "--force")
    assert copy.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".copy.html")] == []
    with pytest.raises(InputError, match="must be >= 0"):
        _report(str(runs["ce"]), "--out", str(tmp_path / "b.html"), "--samples", "-1")


def test_pick_samples_mixes_correct_and_wrong():
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    predictions = np.array([0, 1, 1, 1, 0, 2, 2, 3])  # wrong: 1, 4, 6
    chosen = pick_samples(labels, predictions, 4)
    assert chosen == [0, 1, 2, 4]  # two wrong, two right, from different classes
    assert pick_samples(labels, labels, 3) == [0, 2, 4]  # all right: one per class
    assert pick_samples(labels, (labels + 1) % 4, 2) == [0, 2]  # all wrong
    assert pick_samples(labels, predictions, 20) == list(range(8))


# ---- in a real browser -----------------------------------------------------------------------------

def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium binary on PATH: install Debian's package with "
                "`apt-get update && apt-get install -y chromium` to run the browser check")


def _browser(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)


def _render_check(tmp_path: Path, page: Path) -> dict[str, str]:
    """The attributes the page's own check script wrote into #render-check after the load event."""
    dom = _browser(tmp_path, "--dump-dom", page.resolve().as_uri()).stdout
    match = re.search(r'<span id="render-check"([^>]*)>', dom)
    assert match, f"no #render-check in the browser's DOM:\n{dom[:2000]}"
    return dict(re.findall(r'(data-[a-z]+)="([^"]*)"', match.group(1)))


@pytest.mark.slow
def test_page_renders_in_headless_chromium(full_report, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    _browser(tmp_path, f"--screenshot={shot}", "--window-size=1200,3000", full_report.resolve().as_uri())
    assert shot.read_bytes().startswith(MAGIC["image/png"])
    with Image.open(shot) as image:
        assert image.size == (1200, 3000)
        pixels = np.asarray(image.convert("L"))
    assert (pixels < 200).mean() > 0.01 and len(np.unique(pixels)) > 20  # text and figures, not a blank page

    images = len(_images(full_report.read_text()))
    assert _render_check(tmp_path, full_report) == {
        "data-images": str(images), "data-displayed": str(images), "data-problems": ""}

    # The check sees what goes wrong: a broken image and an external one (refused by the page's policy).
    broken = tmp_path / "broken.html"
    broken.write_text(full_report.read_text().replace(
        "</footer>", '<img src="data:image/png;base64,AAAA"><img src="https://example.invalid/x.png"></footer>'))
    check = _render_check(tmp_path, broken)
    assert (check["data-images"], check["data-displayed"]) == (str(images + 2), str(images))
    assert "blocked img-src https://example.invalid/x.png" in check["data-problems"]
