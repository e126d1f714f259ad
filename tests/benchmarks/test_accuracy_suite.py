"""The accuracy suite's bookkeeping (benchmarks/accuracy.py): run listing, configurations, skip/resume, ledger,
ensembles and summary. No training: `train` is replaced by a stub that writes what a finished run writes."""

from __future__ import annotations

import csv
import fcntl
import json
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import yaml

from aclnet.config import dump_config
from aclnet.engine.evaluation import save_scores
from aclnet.errors import InputError

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


BENCHMARK = "accuracy"  # the `suite` fixture (tests/conftest.py) imports benchmarks/accuracy.py


@pytest.fixture
def data_root() -> Path:
    if not (DATA / "SBU-Kinect-Interaction").exists() or not (DATA / "Florence3D").exists():
        pytest.skip(f"the shared datasets are not at {DATA}")
    return DATA


def test_full_plan_counts_every_protocol(suite: ModuleType) -> None:
    runs = suite.plan_runs(suite.FULL)
    counts: dict[tuple[str, str], int] = {}
    for run in runs:
        counts[(run.dataset, run.protocol)] = counts.get((run.dataset, run.protocol), 0) + 1
    # 3 seeds x (5 variants + 3 extra streams); 10 splits x 2; 3 seeds x (2 + 3 streams); 5 folds x 3 seeds x 2
    assert counts == {("msr-action3d", "xsub"): 24, ("msr-action3d", "splits"): 20, ("utd-mhad", "xsub"): 15,
                      ("sbu", "folds"): 30, ("florence3d", "splits"): 20, ("utkinect", "splits"): 20}
    assert len({r.relpath for r in runs}) == len(runs) == 129
    msr = [r for r in runs if r.protocol == "xsub" and r.dataset == "msr-action3d"]
    assert {(r.variant, r.modality) for r in msr} == {
        ("ce", "j"), ("ce+inter", "j"), ("ce+inter+fat", "j"), ("ce+intra", "j"), ("aclnet", "j"),
        ("aclnet", "b"), ("aclnet", "jm"), ("aclnet", "bm")}
    assert {r.seed for r in msr} == {0, 1, 2}
    assert {r.seed for r in runs if r.protocol == "splits"} == {0}
    assert sorted({r.part for r in runs if r.dataset == "sbu"}) == ["fold1", "fold2", "fold3", "fold4", "fold5"]


def test_quick_plan_is_one_seed_first_part_two_variants(suite: ModuleType) -> None:
    runs = suite.plan_runs(suite.QUICK, ["sbu", "florence3d"])
    assert [(r.dataset, r.part, r.seed, r.variant, r.modality) for r in runs] == [
        ("sbu", "fold1", 0, "ce", "j"), ("sbu", "fold1", 0, "aclnet", "j"),
        ("florence3d", "split01", 0, "ce", "j"), ("florence3d", "split01", 0, "aclnet", "j")]
    with pytest.raises(InputError, match="unknown datasets"):
        suite.plan_runs(suite.QUICK, ["ntu60"])


def test_protocols_and_variants_keep_a_subset(suite: ModuleType) -> None:
    runs = suite.plan_runs(suite.FULL, ["msr-action3d", "utd-mhad"], ["xsub"], ["ce", "ce+intra"])
    assert [(r.dataset, r.seed, r.variant, r.modality) for r in runs] == [
        ("msr-action3d", s, v, "j") for s in (0, 1, 2) for v in ("ce", "ce+intra")] + [
        ("utd-mhad", s, "ce", "j") for s in (0, 1, 2)]  # no ensemble streams without aclnet
    streams = suite.plan_runs(suite.FULL, ["utd-mhad"], ["xsub"], ["aclnet"])
    assert [r.modality for r in streams if r.seed == 0] == ["j", "b", "jm", "bm"]
    with pytest.raises(InputError, match="unknown protocols"):
        suite.plan_runs(suite.FULL, ["sbu"], ["xview"])
    with pytest.raises(InputError, match="unknown variants"):
        suite.plan_runs(suite.FULL, ["sbu"], ["folds"], ["supcon"])


def test_run_config_applies_protocol_settings_variant_and_steps(suite: ModuleType, data_root: Path) -> None:
    run = suite.Run("sbu", "folds", "fold3", 2, "ce+inter", "j")
    config = suite.run_config(run, suite.FULL, data_root)
    assert (config.data.train_split, config.data.test_split) == ("fold3_train", "fold3_test")
    assert config.data.path == data_root / "SBU-Kinect-Interaction"
    assert (config.train.seed, config.data.clip_len, config.data.test_clips) == (2, suite.FULL.clip_len,
                                                                                 suite.FULL.test_clips)
    assert (config.loss.inter.enabled, config.loss.inter.fat, config.loss.intra.enabled) == (True, False, False)
    assert config.model.preset == "small" and config.loss.small_dataset_scaling
    assert (config.model.backbone, config.model.embedding_input) == ("stgcn", "pooled")
    assert config.data.num_workers == 0 and config.data.holdout_key == "subject" and config.train.select_on == "last"
    # the epochs give about FULL.steps steps over the training samples (nothing is held out by default)
    steps_per_epoch = suite.training_samples(config) // config.optim.batch_size
    assert config.optim.epochs == round(suite.FULL.steps / steps_per_epoch)
    assert config.train.val_interval == config.optim.epochs // suite.FULL.validations
    ce = suite.run_config(suite.Run("florence3d", "splits", "split04", 0, "ce", "bm"), suite.QUICK, data_root,
                          ["optim.batch_size=8"])
    assert (ce.loss.inter.enabled, ce.loss.intra.enabled, ce.data.modality) == (False, False, "bm")
    assert ce.optim.epochs == round(suite.QUICK.steps / (suite.training_samples(ce) // 8))
    assert suite.run_config(run, suite.FULL, data_root, ["optim.epochs=3"]).optim.epochs == 3  # extra wins


class FakeTrain:
    """Stands in for `train`: records its arguments and writes the files of a finished run."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, task, work_dir: Path, *, resume: bool = False, force: bool = False) -> dict:
        self.calls.append({"work_dir": work_dir, "resume": resume, "force": force})
        work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / "config.yaml").write_text(dump_config(task.config))
        (work_dir / "test_report.json").write_text(json.dumps({"top1": 50.0, "mean_class": 40.0}))
        return {}


def test_execute_run_trains_resumes_skips_and_refuses(suite: ModuleType, tmp_path: Path, data_root: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTrain()
    monkeypatch.setattr("aclnet.engine.run.train", fake)
    fresh = suite.Run("florence3d", "splits", "split01", 0, "ce", "j")
    partial = suite.Run("florence3d", "splits", "split01", 0, "aclnet", "j")
    mismatch = suite.Run("florence3d", "splits", "split02", 0, "aclnet", "j")
    for run, settings in ((partial, suite.QUICK), (mismatch, suite.FULL)):  # mismatch: saved with other settings
        (tmp_path / run.relpath).mkdir(parents=True)
        (tmp_path / run.relpath / "config.yaml").write_text(dump_config(suite.run_config(run, settings, data_root)))
    (tmp_path / partial.relpath / "latest.pt").write_bytes(b"")

    assert suite.run_status(tmp_path / fresh.relpath) == "todo"
    assert suite.run_status(tmp_path / partial.relpath) == "partial"
    for run in (fresh, partial):
        assert suite.execute_run(run, suite.QUICK, tmp_path, data_root, (), 1) > 0
    assert [(c["work_dir"], c["resume"], c["force"]) for c in fake.calls] == [
        (tmp_path / fresh.relpath, False, True), (tmp_path / partial.relpath, True, False)]
    assert json.loads((tmp_path / partial.relpath / "suite.json").read_text())["resumed"] is True
    assert suite.run_status(tmp_path / fresh.relpath) == "done"
    assert suite.execute_run(fresh, suite.QUICK, tmp_path, data_root, (), 1) == 0.0  # done: skipped
    assert len(fake.calls) == 2
    with pytest.raises(InputError, match="different configuration"):
        suite.execute_run(mismatch, suite.QUICK, tmp_path, data_root, (), 1)
    other = suite.Run("florence3d", "splits", "split03", 0, "ce", "j")
    with (tmp_path / other.relpath.parent / f".{other.relpath.name}.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a second suite training this run would
        with pytest.raises(InputError, match="one process per run folder"):
            suite.execute_run(other, suite.QUICK, tmp_path, data_root, (), 1)
    assert len(fake.calls) == 2


def test_run_suite_goes_on_after_a_failed_run(suite: ModuleType, tmp_path: Path, data_root: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTrain()

    def flaky(task, work_dir: Path, **kwargs) -> dict:
        if "split01-ce" in work_dir.name:
            raise RuntimeError("out of memory")
        return fake(task, work_dir, **kwargs)

    monkeypatch.setattr("aclnet.engine.run.train", flaky)
    runs = suite.plan_runs(suite.QUICK, ["florence3d", "utkinect"])
    done: list[int] = []
    failures = suite.run_suite(runs, suite.QUICK, tmp_path, data_root, (), jobs=1, threads=1,
                               on_done=lambda: done.append(1))
    assert [(run.dataset, run.variant, error) for run, error in failures] == [
        ("florence3d", "ce", "RuntimeError('out of memory')"), ("utkinect", "ce", "RuntimeError('out of memory')")]
    assert len(fake.calls) == len(done) == 2
    assert [suite.run_status(tmp_path / r.relpath) for r in runs] == ["todo", "done", "todo", "done"]


# Four streams scoring three samples (labels 0, 1, 1) of two classes: j and b alone get samples 0 and 2
# right (66.67 %); the 2:2:1:1 fusion 4 j + 2 jm = [4.4, 1.6], [2.4, 3.6], [1.6, 4.4] gets all three.
STREAM_SCORES = {
    "j": [[0.6, 0.4], [0.6, 0.4], [0.4, 0.6]], "b": [[0.6, 0.4], [0.6, 0.4], [0.4, 0.6]],
    "jm": [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], "bm": [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]],
}


def write_finished(suite: ModuleType, root: Path, run, top1: float, val: list[float], wall: float) -> None:
    """The files of a finished run: config, report, metrics, scores and the suite's wall time."""
    work_dir = root / run.relpath
    work_dir.mkdir(parents=True)
    (work_dir / "config.yaml").write_text(yaml.safe_dump({"optim": {"epochs": 7 + run.seed}}))
    report = {"top1": top1, "mean_class": top1 - 1, "selected_epoch": 4}
    (work_dir / "test_report.json").write_text(json.dumps(report))
    (work_dir / "metrics.csv").write_text("epoch,train_loss,val_top1\n" + "".join(
        f"{i + 1},1.0,{v}\n" if not math.isnan(v) else f"{i + 1},1.0,\n" for i, v in enumerate(val)))
    (work_dir / "suite.json").write_text(json.dumps({"wall_s": wall, "resumed": False}))
    save_scores(work_dir / "test_scores.npz", ["a", "b", "c"], np.array([0, 1, 1]),
                np.array(STREAM_SCORES[run.modality], dtype=np.float32), ["x", "y"])


def test_ledger_ensemble_and_summary(suite: ModuleType, tmp_path: Path) -> None:
    runs = [suite.Run("utd-mhad", "xsub", "xsub", seed, variant, modality)
            for seed in (0, 1) for variant, modality in (("ce", "j"), ("aclnet", "j"), ("aclnet", "b"),
                                                         ("aclnet", "jm"), ("aclnet", "bm"))]
    top1 = {("ce", "j", 0): 60.0, ("ce", "j", 1): 70.0, ("aclnet", "j", 0): 80.0, ("aclnet", "j", 1): 90.0}
    for run in runs:
        if (run.seed, run.modality) == (1, "bm"):
            continue  # seed 1's ensemble is incomplete: no ensemble row for it
        write_finished(suite, tmp_path, run, top1.get((run.variant, run.modality, run.seed), 66.0),
                       [10.0, math.nan, 30.0, 20.0], wall=100.0 + run.seed)
    rows = suite.ledger_rows(runs, tmp_path)
    assert len(rows) == 9 + 1
    ensemble = [r for r in rows if r["modality"] == suite.ENSEMBLE]
    assert len(ensemble) == 1 and ensemble[0]["seed"] == 0
    assert ensemble[0]["top1"] == pytest.approx(100.0) and ensemble[0]["wall_s"] == pytest.approx(400.0)
    first = next(r for r in rows if r["variant"] == "ce" and r["seed"] == 0)
    assert (first["best_val_top1"], first["selected_epoch"], first["epochs"]) == (30.0, 4, 7)

    summary = {(s["variant"], s["modality"]): s for s in suite.summary_rows(rows, suite_wall=1234.0)}
    ce = summary[("ce", "j")]
    assert (ce["runs"], ce["top1_mean"], ce["mean_class_mean"]) == (2, 65.0, 64.0)
    assert ce["top1_std"] == pytest.approx(math.sqrt(50.0))  # sample std of 60 and 70
    assert ce["wall_s"] == pytest.approx(201.0) and ce["epochs"] == 7.5 and math.isnan(ce["published"])
    assert summary[("aclnet", suite.ENSEMBLE)]["top1_std"] == 0.0
    assert summary[("total wall time", "")]["wall_s"] == 1234.0 and summary[("total wall time", "")]["runs"] == 9

    outputs = suite.Outputs.for_settings(tmp_path / "results", suite.QUICK)
    table = suite.write_results(runs, tmp_path, outputs, suite.QUICK, suite_wall=1234.0)
    assert "| UTD-MHAD | cross-subject | 2 | 65.00 ± 7.07 | 85.00 ± 7.07 | +20.00 | 100.00 ± 0.00 | - |" in table
    assert outputs.table.read_text() == table and outputs.plot.read_bytes()[:4] == b"\x89PNG"
    with outputs.runs_csv.open() as handle:
        ledger = list(csv.DictReader(handle))
    assert len(ledger) == 10 and ledger[0]["top1"] == "60" and ledger[0]["variant"] == "ce"


def test_wall_clock_accumulates_across_invocations(suite: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "suite_wall.json").write_text(json.dumps({"elapsed_s": 100.0}))
    clock = suite.WallClock(tmp_path)
    saved = clock.save()
    assert 100.0 <= saved < 110.0
    assert json.loads((tmp_path / "suite_wall.json").read_text())["elapsed_s"] == saved
