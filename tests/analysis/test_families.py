"""`aclnet.analysis.families`: the Motion Family table of a run, its weights and temperatures, and its refusals."""

from __future__ import annotations

import pytest
import torch
from runs_by_hand import NAMES, config_text, model_state, write_run

from aclnet.analysis.families import family_table, format_family_table
from aclnet.errors import InputError
from aclnet.losses import InterClassAffinityLoss


def test_family_table_members_weights_and_temperatures(tmp_path):
    write_run(tmp_path / "latest.pt", model_state(), config_text(inter={"k": 2}))
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
    write_run(tmp_path / "k10.pt", model_state(), config_text(inter={"k": 10}))
    assert [r["temperature"] for r in family_table(tmp_path / "k10.pt")] == pytest.approx([0.1] * 5 + [0.125])
    # Without an explicit K, the small-dataset rule gives K = max(2, round(6 / 6)) = 2 ...
    write_run(tmp_path / "scaled.pt", model_state(), config_text(small_dataset_scaling=True))
    assert [r["temperature"] for r in family_table(tmp_path / "scaled.pt")] == pytest.approx(
        [0.1, 0.1, 0.5, 0.5, 1.0, 0.125])
    # ... and a K the configuration gives wins over the rule.
    write_run(tmp_path / "given.pt", model_state(), config_text(inter={"k": 10}, small_dataset_scaling=True))
    assert [r["temperature"] for r in family_table(tmp_path / "given.pt")] == pytest.approx([0.1] * 5 + [0.125])
    write_run(tmp_path / "nofat.pt", model_state(), config_text(inter={"k": 2, "fat": False, "fixed_tau": 0.2}))
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
    write_run(tmp_path / "best.pt", model, config_text(inter={"k": 2, "overlap_threshold": 1}))
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
    write_run(tmp_path / "latest.pt", model_state(), config_text(inter={"k": 2}))
    write_run(tmp_path / "best.pt", model_state(), config_text(inter={"k": 2}), names=list("ABCDEF"))
    assert [row["name"] for row in family_table(tmp_path)] == list("ABCDEF")


def test_family_table_refuses_runs_without_families(tmp_path):
    write_run(tmp_path / "ce.pt", {"cls_head.fc.weight": torch.zeros(6, 4)}, config_text(inter={"enabled": False}))
    with pytest.raises(InputError, match="no inter loss"):
        family_table(tmp_path / "ce.pt")
    write_run(tmp_path / "early.pt", model_state(families=[[0] * 6] * 6), config_text())
    with pytest.raises(InputError, match="no class has a Motion Family"):
        family_table(tmp_path / "early.pt")
    state = model_state()
    del state["aux.inter.loss.affinity"]
    write_run(tmp_path / "partial.pt", state, config_text())
    with pytest.raises(InputError, match="lacks aux.inter.loss.affinity"):
        family_table(tmp_path / "partial.pt")
    write_run(tmp_path / "names.pt", model_state(), config_text(), names=NAMES[:5])
    with pytest.raises(InputError, match="class_names must be 6"):
        family_table(tmp_path / "names.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no best.pt or latest.pt"):
        family_table(tmp_path / "empty")
