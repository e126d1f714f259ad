"""Gait recognition and re-identification end to end on generated walks, protocols as data, own data."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from aclnet.cli import main
from aclnet.config import config_as_dict, load_config, validate_config
from aclnet.data.annotations import write_annotations
from aclnet.data.sample import Sample, SampleSet
from aclnet.data.synthetic import make_gait_dataset
from aclnet.engine.run_folder import RunFolder
from aclnet.errors import InputError
from aclnet.tasks.registry import TASKS, make_task

# Two views, few epochs of a few steps: seconds on a CPU.
QUICK = ["optim.epochs=2", "train.max_steps_per_epoch=3", "data.synthetic.views=[0,90]", "data.clip_len=24",
         "optim.batch_size=8", "train.deterministic=true"]


def _run(args: list[str]) -> None:
    assert main(args) == 0


def test_registry_knows_each_task_once() -> None:
    assert sorted(TASKS) == ["action", "gait", "reid"]
    assert {name: task.primary_metric for name, task in TASKS.items()} == {
        "action": "top1", "gait": "mean", "reid": "rank1"}


@pytest.mark.parametrize(("experiment", "keys"), [
    ("synthetic-gait-j", ["nm", "bg", "cl", "mean"]),
    ("synthetic-reid-j", [f"{p}_{m}" for p in ("nm-nm", "bg-bg", "cl-cl", "cl-nm", "bg-nm")
                          for m in ("rank1", "rank5", "rank10", "map")] + ["rank1", "map"]),
])
def test_generated_walks_train_and_test(tmp_path: Path, capsys, experiment: str, keys: list[str]) -> None:
    run = RunFolder(tmp_path / "run")
    _run(["train", experiment, "--work-dir", str(run.path), "--set", *QUICK])
    report = run.read_report()
    assert report["task"] == experiment.split("-")[1] and report["selection"] == "final epoch"
    assert all(key in report for key in keys)
    if "mean" in report:  # gait: the mean over the probe sets
        assert report["mean"] == pytest.approx(np.mean([report[p] for p in ("nm", "bg", "cl")]))
    else:  # re-identification: rank-k grows with k; the means are over the settings
        settings = ("nm-nm", "bg-bg", "cl-cl", "cl-nm", "bg-nm")
        assert all(report[f"{p}_rank1"] <= report[f"{p}_rank5"] <= report[f"{p}_rank10"] for p in settings)
        assert report["rank1"] == pytest.approx(np.mean([report[f"{p}_rank1"] for p in settings]))
    assert not run.test_scores.exists()  # retrieval has no class scores to ensemble
    out = capsys.readouterr().out
    assert "rank-1" in out and "checkpoint chosen on the final epoch" in out
    if experiment.startswith("synthetic-gait"):
        table = report["view_tables"]["nm"]
        assert table["views"] == [0, 90] and len(table["matrix"]) == 2
        # The identical view is left out: each probe view's mean is its one other gallery view.
        assert table["per_probe_view"] == [table["matrix"][0][1], table["matrix"][1][0]]
        assert report["mean"] == pytest.approx(np.mean([report[k] for k in ("nm", "bg", "cl")]))
    else:
        assert report["rank1"] == pytest.approx(np.mean([report[f"{p}_rank1"] for p in
                                                        ("nm-nm", "bg-bg", "cl-cl", "cl-nm", "bg-nm")]))
    # `aclnet test` on the trained checkpoint gives the same numbers.
    _run(["test", experiment, "--set", *QUICK, "--checkpoint", str(run.latest)])
    assert f"{report[keys[-1]]:.2f}" in capsys.readouterr().out


def test_validation_on_held_out_identities_picks_best_on_the_primary_metric(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    _run(["train", "synthetic-gait-j", "--work-dir", str(run.path), "--set", *QUICK, "train.select_on=val",
          "data.holdout_fraction=0.3"])
    report = run.read_report()
    history = load_metrics(run)
    best = max(range(len(history)), key=lambda i: (float(history[i]["val_mean"]), -i))
    assert report["selected_epoch"] == best + 1 and report["checkpoint"] == str(run.best)
    data = make_task(load_config("synthetic-gait-j", [*QUICK, "train.select_on=val", "data.holdout_fraction=0.3"]))
    split = data.load_data()
    held = {s.meta["subject"] for s in split.val}
    assert held and held.isdisjoint({s.meta["subject"] for s in split.train})
    assert sorted({s.label for s in split.train}) == list(range(len(split.classes)))  # contiguous identities


def load_metrics(run: RunFolder) -> list[dict[str, str]]:
    import csv

    with open(run.metrics) as handle:
        return list(csv.DictReader(handle))


def test_no_training_sequence_is_a_probe_or_gallery_sequence() -> None:
    for experiment in ("synthetic-gait-j", "synthetic-reid-j"):
        data = make_task(load_config(experiment, QUICK)).load_data()
        train = {s.sample_id for s in data.train}
        test = {s.sample_id for s in data.test}
        assert train and test and train.isdisjoint(test)
    reid = make_task(load_config("synthetic-reid-j", QUICK)).load_data()
    # Re-identification: the same people, other walks.
    assert {s.meta["subject"] for s in reid.train} == {s.meta["subject"] for s in reid.test}
    assert {(s.meta["condition"], s.meta["sequence"]) for s in reid.test} == {
        ("nm", 4), ("nm", 5), ("nm", 6), ("bg", 2), ("cl", 2)}


def test_overlapping_train_and_test_selections_are_refused() -> None:
    config = load_config("synthetic-gait-j", [*QUICK, "protocol.test={subject: {min: 10, max: 16}}"])
    with pytest.raises(InputError, match=r"selected for both training and test, e.g. '010-"):
        make_task(config).load_data()


@pytest.mark.parametrize(("override", "message"), [
    ("protocol.probes.bg.select={condition: xx}", r"the probe of probe set 'bg' \(condition=xx\) selects none"),
    ("protocol.gallery={condition: nm, sequence: [5, 6]}", r"probe set 'nm' and its gallery share"),
    ("protocol.identity_field=person", r"has no field 'person'"),
])
def test_protocol_problems_are_named(tmp_path: Path, capsys, override: str, message: str) -> None:
    assert main(["train", "synthetic-gait-j", "--work-dir", str(tmp_path / "r"), "--set", *QUICK, override]) == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize(("overrides", "message"), [
    (["protocol=null"], r"task 'gait' needs a protocol"),
    (["task=walking"], r"unknown task 'walking'; valid: action, gait, reid"),
    (["protocol.probes.nm.select.sequence={max: 2}", "protocol.probes.nm.gallery=none"], r"protocol.probes.nm"),
])
def test_bad_task_configurations_are_named(overrides: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_config("synthetic-gait-j", overrides)


def test_a_protocol_without_probe_sets_is_refused() -> None:
    raw = config_as_dict(load_config("synthetic-gait-j"))
    raw["protocol"]["probes"] = {}
    with pytest.raises(InputError, match=r"protocol.probes: Value error, a protocol needs at least one probe set"):
        validate_config(raw, "test")


def test_identities_as_action_classes_are_refused() -> None:
    config = load_config("synthetic-j", ["data.synthetic.kind=gait", "data.synthetic.views=[0]",
                                         "data.val_split=null", "data.pipeline=gaitgraph"])
    with pytest.raises(InputError, match="use task: gait or reid"):
        make_task(config).load_data()


def _walks_on_a_small_layout(tmp_path: Path, *, depth: bool) -> tuple[Path, Path]:
    """A PYSKL pickle of generated walks on a 15-joint layout of one's own, 2D with scores or 3D."""
    layout = tmp_path / "body15.yaml"
    joints = ["head", "neck", "pelvis", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder",
              "right_elbow", "right_wrist", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee",
              "right_ankle"]
    edges = [["head", "neck"], ["neck", "pelvis"], ["neck", "left_shoulder"], ["left_shoulder", "left_elbow"],
             ["left_elbow", "left_wrist"], ["neck", "right_shoulder"], ["right_shoulder", "right_elbow"],
             ["right_elbow", "right_wrist"], ["pelvis", "left_hip"], ["left_hip", "left_knee"],
             ["left_knee", "left_ankle"], ["pelvis", "right_hip"], ["right_hip", "right_knee"],
             ["right_knee", "right_ankle"]]
    layout.write_text(yaml.safe_dump({"name": "body15", "joints": joints, "edges": edges, "center": "pelvis"}))
    walks = make_gait_dataset(8, views=[0, 90], layout=str(layout), seed=1)
    samples = walks.samples
    if depth:  # a third coordinate instead of the score
        samples = [Sample(s.sample_id, np.concatenate([s.keypoint, s.score[..., None]], -1), s.label,
                          meta=dict(s.meta)) for s in samples]
    path = tmp_path / "walks.pkl"
    write_annotations(SampleSet(samples, {"all": [s.sample_id for s in samples]}, "body15", walks.classes), path)
    return path, layout


@pytest.mark.parametrize("depth", [False, True])
@pytest.mark.parametrize("task", ["gait", "reid"])
def test_own_skeletons_need_only_a_config(tmp_path: Path, depth: bool, task: str) -> None:
    data, layout = _walks_on_a_small_layout(tmp_path, depth=depth)
    if task == "gait":
        protocol = {"train": {"subject": {"max": 5}}, "test": {"subject": {"min": 6}},
                    "gallery": {"condition": "nm", "sequence": [1, 2, 3, 4]},
                    "probes": {"nm": {"select": {"condition": "nm", "sequence": [5, 6]}},
                               "cl": {"select": {"condition": "cl"}}}}
    else:
        protocol = {"train": [{"condition": "nm", "sequence": [1, 2, 3]}, {"condition": "bg"}],
                    "test": {"condition": "nm", "sequence": [4, 5, 6]},
                    "probes": {"nm-nm": {"select": {"condition": "nm"}, "gallery": "self"}}}
    experiment = {
        "task": task,
        "data": {"format": "pyskl", "path": str(data), "layout": str(layout), "pipeline": "plain", "clip_len": 16,
                 "test_clips": 1, "num_workers": 0, "sequences_per_identity": 2},
        "protocol": protocol,
        "model": {"backbone": "stgcn", "preset": "small", "embedding_input": "pooled"},
        "loss": {"small_dataset_scaling": True},
        "optim": {"epochs": 2, "batch_size": 8},
        "train": {"select_on": "last", "max_steps_per_epoch": 2},
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    run = RunFolder(tmp_path / "run")
    _run(["train", str(path), "--work-dir", str(run.path)])
    report = run.read_report()
    assert report["task"] == task and report["sequences"] == (60 if task == "gait" else 48)


def test_the_shipped_gaitgraph_protocols_reproduce_its_code_no_flip_and_61_frames() -> None:
    for name in ("casia-b-gaitgraph-j", "casia-b-gait-j"):
        protocol = load_config(name, ["data.path=x"]).section("protocol")
        assert protocol.test_flip is False and protocol.min_frames == 61


def test_sequences_shorter_than_min_frames_are_left_out_and_counted() -> None:
    config = load_config("synthetic-gait-j", [*QUICK, "protocol.min_frames=60"])
    task = make_task(config)
    data = task.load_data(for_training=False)
    everything = make_task(load_config("synthetic-gait-j", QUICK)).load_data(for_training=False)
    short = {part: sum(s.num_frames < 60 for s in getattr(everything, part)) for part in ("train", "test")}
    assert short["train"] > 0 and short["test"] > 0  # the generated walks have 50-70 frames
    assert task.too_short == short and len(data.test) == len(everything.test) - short["test"]
    assert min(s.num_frames for s in data.train + data.test) >= 60
    evaluation = task.evaluate_embeddings(np.random.default_rng(0).normal(size=(len(data.test), 8)), data.test)
    assert evaluation.details["too_short"] == short and evaluation.details["sequences"] == len(data.test)


def test_the_gaitgraph_baseline_uses_gaitgraphs_coco_graph() -> None:
    from aclnet.models.backbones.resgcn import hop_distances
    from aclnet.skeleton import get_layout

    # GaitGraph's src/datasets/graph.py, 'coco': its neighbour links
    gaitgraph = {(0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11),
                 (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16)}
    layout = get_layout(load_config("casia-b-gaitgraph-j", ["data.path=x"]).data.layout)
    assert {tuple(sorted(e)) for e in layout.edges} == gaitgraph
    assert layout.joint_names == get_layout("coco").joint_names
    hops = hop_distances(layout)
    assert (hops[3, 5], hops[5, 6], hops[11, 12], hops[0, 5]) == (1, 1, 1, 3)  # ear-shoulder ... nose-shoulder


def test_tracklets_are_probes_of_their_own_and_their_siblings_stay_in_a_self_gallery() -> None:
    from aclnet.tasks.retrieval import tracklets

    sample = Sample("001-nm-04-090", np.arange(100 * 17 * 2, dtype=np.float32).reshape(1, 100, 17, 2), 0,
                    score=np.ones((1, 100, 17), np.float32), meta={"subject": 1, "condition": "nm"})
    pieces = tracklets(sample, 40)  # frames 0-39 and 40-79; the last 20 are dropped
    assert [p.sample_id for p in pieces] == ["001-nm-04-090#0", "001-nm-04-090#1"]
    np.testing.assert_array_equal(pieces[1].keypoint, sample.keypoint[:, 40:80])
    assert pieces[1].score.shape == (1, 40, 17) and pieces[1].meta == {"subject": 1, "condition": "nm", "tracklet": 1}
    assert tracklets(dataclasses.replace(sample, keypoint=sample.keypoint[:, :30], score=None), 40)[0].num_frames == 30
    task = make_task(load_config("synthetic-reid-j", [*QUICK, "protocol.tracklets=20"]))
    whole = make_task(load_config("synthetic-reid-j", QUICK)).load_data(for_training=False).test
    test = task.load_data(for_training=False).test
    assert len(test) == sum(max(1, s.num_frames // 20) for s in whole)
    # one probe set against itself: a probe's sibling tracklets (same sequence) are true matches, not left out
    ids = [s.sample_id.split("#")[0] for s in test]
    features = np.eye(len(test))[[ids.index(i) for i in ids]]  # siblings share one embedding, sequences differ
    evaluation = task.evaluate_embeddings(features, test)
    assert evaluation.metrics["nm-nm_rank1"] == 100.0
    assert load_config("casia-b-reid-j", ["data.path=x"]).section("protocol").tracklets == 40


def test_the_training_score_of_retrieval_is_leave_one_out_rank1(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import aclnet.tasks.retrieval as retrieval

    task = make_task(load_config("synthetic-gait-j"))
    rng = np.random.default_rng(3)
    subjects = [1, 1, 1, 2, 2, 3, 3, 3, 3, 4]
    samples = [Sample(f"s{i}", np.zeros((1, 4, 17, 2), np.float32), 0, meta={"subject": s})
               for i, s in enumerate(subjects)]
    features = rng.normal(size=(len(samples), 5)) + np.repeat(np.eye(5)[:4], [3, 2, 4, 1], axis=0)
    order = rng.permutation(len(samples))  # the loader's order differs from the samples'
    monkeypatch.setattr(retrieval, "run_model", lambda *a, **k: SimpleNamespace(features=features[order],
                                                                                  indices=order))
    monkeypatch.setattr(task, "loader", lambda *a, **k: None)
    score = task.training_score(None, samples, None, __import__("torch").device("cpu"))
    # Plain reference: each sequence's nearest other sequence by Euclidean distance of L2-normalised rows.
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    hits = []
    for i in range(len(samples)):
        if subjects.count(subjects[i]) == 1:
            continue  # subject 4 has no other sequence to be found
        others = [j for j in range(len(samples)) if j != i]
        nearest = min(others, key=lambda j: np.linalg.norm(unit[i] - unit[j]))
        hits.append(subjects[nearest] == subjects[i])
    assert score.metric == "leave-one-out rank1"
    assert score.value == pytest.approx(100 * np.mean(hits))
    same = [sum(t == s for t in subjects) - 1 for s in subjects if subjects.count(s) > 1]
    assert score.chance == pytest.approx(100 * np.mean([n / 9 for n in same]))


def test_reid_validation_holds_out_sequences_of_every_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import aclnet.tasks.retrieval as retrieval

    task = make_task(load_config("synthetic-reid-j", ["train.select_on=val", "data.holdout_fraction=0.3"]))
    data = task.load_data()
    trained = {s.meta["subject"] for s in data.train}
    assert {s.meta["subject"] for s in data.val} == trained  # every identity keeps training and is validated
    assert not {s.sample_id for s in data.val} & {s.sample_id for s in data.train}
    held, kept = {}, {}
    for part, counts in ((data.val, held), (data.train, kept)):
        for s in part:
            counts[s.meta["subject"]] = counts.get(s.meta["subject"], 0) + 1
    for subject, count in held.items():
        assert count == round(0.3 * (count + kept[subject]))  # 8 of the 25 (5 sequences in 5 views)
    # The validation metric: each held-out sequence's nearest training sequence has its identity.
    rng = np.random.default_rng(0)
    rows = {id(s): rng.normal(size=4) for s in data.val + data.train}

    def run_model(model, loader, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        order = np.arange(len(loader))[::-1]
        return SimpleNamespace(features=np.array([rows[id(loader[i])] for i in order]), indices=order)

    monkeypatch.setattr(retrieval, "run_model", run_model)
    monkeypatch.setattr(task, "loader", lambda samples, *a, **k: samples)
    metrics = task.validate(None, data, None, __import__("torch").device("cpu"))
    unit = {k: v / np.linalg.norm(v) for k, v in rows.items()}
    hits = [min(data.train, key=lambda g: np.linalg.norm(unit[id(p)] - unit[id(g)])).meta["subject"]
            == p.meta["subject"] for p in data.val]
    assert metrics == {"rank1": pytest.approx(100 * np.mean(hits))}
    # Gait tests new identities: its validation still holds out whole ones.
    gait = make_task(load_config("synthetic-gait-j", ["train.select_on=val"])).load_data()
    assert not {s.meta["subject"] for s in gait.val} & {s.meta["subject"] for s in gait.train}
