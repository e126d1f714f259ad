"""The paper's analyses: Motion Family tables, per-class differences, difficulty levels, t-SNE plots and
the `aclnet analyze` commands, on small runs built by hand."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from aclnet.analysis.commands import add_analyze_parser, parse_epochs
from aclnet.analysis.families import family_table, format_family_table
from aclnet.analysis.per_class import (
    difficulty_levels,
    format_difficulty_table,
    group_ends,
    per_class_difference,
    plot_per_class_difference,
)
from aclnet.analysis.tsne import embed_2d, plot_tsne
from aclnet.config import dump_config, validate_config
from aclnet.engine.checkpoint import save_checkpoint
from aclnet.engine.evaluation import save_scores
from aclnet.errors import InputError
from aclnet.losses import InterClassAffinityLoss

NAMES = ["wave", "clap", "kick", "jump", "sit", "run"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Hand-made families of 6 classes (row i = W(i)) and affinity weights; sizes 1, 2, 3, 4, 5, 0.
FAMILIES = [
    [0, 1, 0, 0, 0, 0],
    [1, 0, 1, 0, 0, 0],
    [1, 0, 0, 1, 1, 0],
    [1, 1, 0, 1, 1, 0],
    [0, 1, 1, 1, 1, 1],
    [0, 0, 0, 0, 0, 0],
]
AFFINITY = [
    [1.5, 0.7, 0.0, 0.0, 0.0, 0.0],
    [0.2, 1.0, 0.9, 0.0, 0.0, 0.0],
    [0.5, 0.0, 1.0, 0.5, 0.8, 0.0],  # tie between classes 0 and 3: index order
    [0.1, 0.4, 0.0, 1.5, 0.3, 0.0],
    [0.0, 0.6, 0.6, 0.9, 1.5, 0.7],
    [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
]


def _config_text(**loss) -> str:
    return dump_config(validate_config({"data": {"format": "synthetic"}, "loss": loss}, "test"))


def _model_state(families=FAMILIES, affinity=AFFINITY) -> dict[str, torch.Tensor]:
    c = len(families)
    return {
        "cls_head.fc.weight": torch.zeros(c, 4),
        "aux.inter.loss.confusion": torch.zeros(c, c, dtype=torch.long),
        "aux.inter.loss.prototypes": torch.randn(c, 8),
        "aux.inter.loss.families": torch.tensor(families, dtype=torch.bool),
        "aux.inter.loss.affinity": torch.tensor(affinity, dtype=torch.float32),
    }


def _write_run(path, model, config_text, names=NAMES) -> None:
    save_checkpoint(path, {"model": model, "class_names": names, "config": config_text, "epoch": 7, "history": []})


# ---- Motion Families -----------------------------------------------------------------------------

def test_family_table_members_weights_and_temperatures(tmp_path):
    _write_run(tmp_path / "latest.pt", _model_state(), _config_text(inter={"k": 2}))
    rows = family_table(tmp_path)  # a run folder without best.pt: latest.pt
    members = [[(m["name"], pytest.approx(m["affinity"])) for m in row["members"]] for row in rows]
    assert members == [
        [("clap", 0.7)],
        [("kick", 0.9), ("wave", 0.2)],
        [("sit", 0.8), ("wave", 0.5), ("jump", 0.5)],
        [("jump", 1.5), ("clap", 0.4), ("sit", 0.3), ("wave", 0.1)],
        [("sit", 1.5), ("jump", 0.9), ("run", 0.7), ("clap", 0.6), ("kick", 0.6)],
        [],
    ]
    assert [row["name"] for row in rows] == NAMES
    assert [row["size"] for row in rows] == [1, 2, 3, 4, 5, 0]
    # K = 2: size <= 2 -> 0.1, <= 4 -> 0.5, more -> 1.0; an empty family falls back to 0.125.
    assert [row["temperature"] for row in rows] == pytest.approx([0.1, 0.1, 0.5, 0.5, 1.0, 0.125])
    text = format_family_table(rows)
    assert "kick 0.90, wave 0.20" in text and "(empty)" in text
    assert len(text.splitlines()) == len(NAMES) + 1


def test_family_temperatures_follow_the_run_configuration(tmp_path):
    _write_run(tmp_path / "k10.pt", _model_state(), _config_text(inter={"k": 10}))
    assert [r["temperature"] for r in family_table(tmp_path / "k10.pt")] == pytest.approx([0.1] * 5 + [0.125])
    # Without an explicit K, the small-dataset rule gives K = max(2, round(6 / 6)) = 2 ...
    _write_run(tmp_path / "scaled.pt", _model_state(), _config_text(small_dataset_scaling=True))
    assert [r["temperature"] for r in family_table(tmp_path / "scaled.pt")] == pytest.approx(
        [0.1, 0.1, 0.5, 0.5, 1.0, 0.125])
    # ... and a K the configuration gives wins over the rule.
    _write_run(tmp_path / "given.pt", _model_state(), _config_text(inter={"k": 10}, small_dataset_scaling=True))
    assert [r["temperature"] for r in family_table(tmp_path / "given.pt")] == pytest.approx([0.1] * 5 + [0.125])
    _write_run(tmp_path / "nofat.pt", _model_state(), _config_text(inter={"k": 2, "fat": False, "fixed_tau": 0.2}))
    assert [r["temperature"] for r in family_table(tmp_path / "nofat.pt")] == pytest.approx([0.2] * 5 + [0.125])


# Confusion statistics of 6 classes, written by hand (zero diagonal, as the statistics always have).
CONFUSION = [
    [0, 5, 0, 0, 0, 0],  # N_2(0) = {1, 0}: the zero counts follow in index order, so 0 itself
    [0, 0, 4, 3, 0, 0],  # N_2(1) = {2, 3}
    [6, 2, 0, 0, 0, 0],  # N_2(2) = {0, 1}
    [1, 3, 0, 0, 0, 0],  # N_2(3) = {1, 0}
    [2, 2, 0, 0, 0, 0],  # N_2(4) = {0, 1}: a tie, kept in index order
    [0, 0, 0, 0, 7, 0],  # N_2(5) = {4, 0}
]


def test_family_table_reads_a_real_loss_state(tmp_path):
    """A state dict written by InterClassAffinityLoss itself (with its extra state) after it built families
    from hand-written statistics, read back as the family table worked out by hand.

    Released rules, K = 2, n_tau = 1. Classes 0, 2, 3, 4 share the neighbours {0, 1} (overlap 2), class 1
    has {2, 3} (overlap 0 with them) and class 5 {0, 4} (overlap 1 with them, 0 with class 1).
    W(i) = N(i) + {j != i: M(i, j) > 1}; affinity 0.5 [j in N(i)] + M(i, j) / 2 orders the members.
    Sizes 5, 2, 4, 4, 4, 2 give tau 1.0 (> 2K), 0.1 (<= K), 0.5 (<= 2K), ...
    """
    loss = InterClassAffinityLoss(6, 8, k=2, overlap_threshold=1, start_epoch=1)
    loss.set_epoch(2)
    loss.confusion.copy_(torch.tensor(CONFUSION))
    loss.rebuild_families()
    model = {f"aux.inter.loss.{key}": value for key, value in loss.state_dict().items()}
    assert model["aux.inter.loss._extra_state"] == {"epoch": 2, "rebuilt_epoch": 2}
    _write_run(tmp_path / "best.pt", model, _config_text(inter={"k": 2, "overlap_threshold": 1}))
    rows = family_table(tmp_path)
    members = [[(m["name"], pytest.approx(m["affinity"])) for m in row["members"]] for row in rows]
    assert members == [
        [("wave", 1.5), ("kick", 1.0), ("jump", 1.0), ("sit", 1.0), ("clap", 0.5)],  # wave is in its own family
        [("kick", 0.5), ("jump", 0.5)],
        [("wave", 1.5), ("jump", 1.0), ("sit", 1.0), ("clap", 0.5)],
        [("wave", 1.5), ("kick", 1.0), ("sit", 1.0), ("clap", 0.5)],
        [("wave", 1.5), ("kick", 1.0), ("jump", 1.0), ("clap", 0.5)],
        [("wave", 1.0), ("sit", 1.0)],
    ]
    assert [row["name"] for row in rows] == NAMES
    assert [row["size"] for row in rows] == [5, 2, 4, 4, 4, 2]
    assert [row["temperature"] for row in rows] == pytest.approx([1.0, 0.1, 0.5, 0.5, 0.5, 0.1])


def test_family_table_prefers_best_checkpoint(tmp_path):
    _write_run(tmp_path / "latest.pt", _model_state(), _config_text(inter={"k": 2}))
    _write_run(tmp_path / "best.pt", _model_state(), _config_text(inter={"k": 2}), names=list("ABCDEF"))
    assert [row["name"] for row in family_table(tmp_path)] == list("ABCDEF")


def test_family_table_refuses_runs_without_families(tmp_path):
    _write_run(tmp_path / "ce.pt", {"cls_head.fc.weight": torch.zeros(6, 4)}, _config_text(inter={"enabled": False}))
    with pytest.raises(InputError, match="no inter loss"):
        family_table(tmp_path / "ce.pt")
    _write_run(tmp_path / "early.pt", _model_state(families=[[0] * 6] * 6), _config_text())
    with pytest.raises(InputError, match="no class has a Motion Family"):
        family_table(tmp_path / "early.pt")
    state = _model_state()
    del state["aux.inter.loss.affinity"]
    _write_run(tmp_path / "partial.pt", state, _config_text())
    with pytest.raises(InputError, match="lacks aux.inter.loss.affinity"):
        family_table(tmp_path / "partial.pt")
    _write_run(tmp_path / "names.pt", _model_state(), _config_text(), names=NAMES[:5])
    with pytest.raises(InputError, match="class_names must be 6"):
        family_table(tmp_path / "names.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no best.pt or latest.pt"):
        family_table(tmp_path / "empty")


# ---- per-class differences and difficulty levels -------------------------------------------------

def _scores_for(predictions, num_classes):
    """Softmax-like rows whose argmax is the given prediction."""
    scores = np.full((len(predictions), num_classes), 0.1, dtype=np.float32)
    scores[np.arange(len(predictions)), predictions] = 0.8
    return scores


def _write_scores(path, predictions, labels=(0, 0, 1, 1, 1, 0), ids=None, classes=("a", "b", "c")):
    ids = ids or [f"s{i}" for i in range(len(labels))]
    save_scores(path, ids, np.array(labels), _scores_for(predictions, len(classes)), list(classes))


def test_per_class_difference_values(tmp_path):
    _write_scores(tmp_path / "base.npz", [0, 1, 1, 1, 0, 0])  # class a 2/3, class b 2/3
    _write_scores(tmp_path / "new.npz", [0, 0, 1, 0, 0, 0])  # class a 3/3, class b 1/3
    names, base, new = per_class_difference(tmp_path / "base.npz", tmp_path / "new.npz")
    assert names == ["a", "b", "c"]
    np.testing.assert_allclose(base, [200 / 3, 200 / 3, np.nan])  # class c has no test sample
    np.testing.assert_allclose(new, [100, 100 / 3, np.nan])


def test_misaligned_scores_are_refused(tmp_path):
    _write_scores(tmp_path / "base.npz", [0, 1, 1, 1, 0, 0])
    _write_scores(tmp_path / "ids.npz", [0] * 6, ids=[f"t{i}" for i in range(6)])
    _write_scores(tmp_path / "labels.npz", [0] * 6, labels=(0, 0, 1, 1, 2, 0))
    _write_scores(tmp_path / "classes.npz", [0] * 6, classes=("a", "b", "x"))
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


# ---- t-SNE ---------------------------------------------------------------------------------------

def _write_embeddings(run, epoch, spread, labels=None):
    rng = np.random.default_rng(epoch)
    labels = np.repeat(np.arange(3), 20) if labels is None else labels
    features = spread * np.eye(3, 8)[labels] + rng.normal(size=(len(labels), 8))
    np.savez(run / f"embeddings_epoch{epoch:03d}.npz", features=features.astype(np.float32), labels=labels,
             indices=np.arange(len(labels)))


@pytest.fixture
def tsne_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    _write_embeddings(run, 1, 0.0)
    _write_embeddings(run, 5, 10.0)
    save_scores(run / "test_scores.npz", [f"s{i}" for i in range(60)], np.repeat(np.arange(3), 20),
                np.full((60, 3), 1 / 3), ["wave", "clap", "kick"])
    return run


def test_tsne_plot_written_and_errors(tsne_run, tmp_path):
    out = tmp_path / "fig5.png"
    plot_tsne(tsne_run, [1, 5], out, max_points=50)
    assert out.read_bytes().startswith(PNG_MAGIC) and out.stat().st_size > 1000
    with pytest.raises(InputError, match="already exists"):
        plot_tsne(tsne_run, [1, 5], out)
    with pytest.raises(InputError, match="epochs available in .*: 1, 5"):
        plot_tsne(tsne_run, [1, 3], tmp_path / "other.png")
    _write_embeddings(tsne_run, 7, 1.0, labels=np.repeat(np.arange(3), 20)[::-1].copy())
    with pytest.raises(InputError, match="not of the same samples"):
        plot_tsne(tsne_run, [1, 7], tmp_path / "other.png")
    assert not (tmp_path / "other.png").exists()


def test_tsne_is_seeded_and_separates_clear_clusters():
    labels = np.repeat(np.arange(3), 20)
    features = 10.0 * np.eye(3, 8)[labels] + np.random.default_rng(0).normal(size=(60, 8))
    first, again = embed_2d(features, seed=3), embed_2d(features, seed=3)
    np.testing.assert_array_equal(first, again)
    centres = np.stack([first[labels == c].mean(0) for c in range(3)])
    spread = max(np.linalg.norm(first[labels == c] - centres[c], axis=1).max() for c in range(3))
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(3, 1)]
    assert gaps.min() > spread  # every class stays apart from the others


# ---- the `aclnet analyze` commands ---------------------------------------------------------------

def _parse(argv):
    parser = argparse.ArgumentParser(prog="aclnet")
    add_analyze_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_families_and_per_class(tmp_path, capsys):
    _write_run(tmp_path / "best.pt", _model_state(), _config_text(inter={"k": 2}))
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

    _write_run(tmp_path / "ce.pt", {"cls_head.fc.weight": torch.zeros(6, 4)}, _config_text(inter={"enabled": False}))
    assert main(["analyze", "families", str(tmp_path / "ce.pt")]) == 2
    assert "aclnet analyze: error:" in capsys.readouterr().err
