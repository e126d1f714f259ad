"""The PsyMo gait / re-ID benchmark's bookkeeping (benchmarks/gait_psymo.py): configurations, protocols on the real
data, chance levels, skip/resume and the summary tables. No training: `train` is replaced by a stub."""

from __future__ import annotations

import csv
import fcntl
import json
import math
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import yaml

from aclnet.config import dump_config
from aclnet.data.sample import Sample
from aclnet.data.selection import select
from aclnet.errors import InputError
from conftest import benchmark_script

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"


BENCHMARK = "gait_psymo"  # the `suite` fixture (tests/conftest.py) imports benchmarks/gait_psymo.py


@pytest.fixture(scope="module")
def protocols() -> Iterator[ModuleType]:
    """benchmarks/psymo_protocols.py, which the suite imports its protocols and chance levels from."""
    yield from benchmark_script("psymo_protocols")


@pytest.fixture(scope="module")
def psymo(suite: ModuleType) -> list[Sample]:
    """PsyMo's 480 walks, read in place (never copied)."""
    if not (DATA / suite.SKELETONS).is_dir():
        pytest.skip(f"PsyMo-subset is not at {DATA / 'PsyMo-subset'}")
    from aclnet.data.formats.pose_detections import read

    return read(DATA / suite.SKELETONS, name_pattern="psymo").samples


# ---- plans and configurations -------------------------------------------------------------------


def test_plans(suite: ModuleType) -> None:
    full = suite.plan_runs(suite.FULL)  # three experiments x (three seeds of each learned method + the baseline)
    assert len(full) == len({r.relpath for r in full}) == 3 * (3 * 3 + 1)
    assert {(r.experiment, r.task) for r in full} == {("gait-A", "gait"), ("gait-B", "gait"), ("reid", "reid")}
    assert {r.seed for r in full} == {0, 1, 2}
    assert {r.method for r in full} == {"baseline", "ce", "aclnet", "gaitgraph"}
    assert {r.seed for r in full if r.method == "baseline"} == {0}  # it does not train: one run
    quick = suite.plan_runs(suite.QUICK)
    assert [(r.experiment, r.seed) for r in quick] == [("gait-A", 0)] * 4 + [("reid", 0)] * 4
    assert suite.QUICK.epochs < suite.FULL.epochs
    tagged = suite.plan_runs(suite.VALIDATION, ["gaitgraph"], suite.overrides_tag(["optim.lr=0.001"]))
    assert [str(r.relpath) for r in tagged] == ["val/gaitgraph-seed0-optim.lr=0.001"]
    with pytest.raises(InputError, match="unknown methods"):
        suite.plan_runs(suite.FULL, ["svm"])


def test_configs_validate_with_the_methods_and_protocol_settings(suite: ModuleType, tmp_path: Path) -> None:
    for settings in (suite.FULL, suite.QUICK, suite.VALIDATION):
        configs = {r: suite.run_config(r, settings, tmp_path) for r in suite.plan_runs(settings)}
        for run, config in configs.items():
            data = config.data
            assert (data.format, data.path, data.options) == ("pose-json", tmp_path / suite.SKELETONS,
                                                              {"name_pattern": "psymo"})
            assert (data.pipeline, data.num_persons, data.test_clips, data.num_workers) == ("gaitgraph", 1, 1, 0)
            assert data.clip_len == (40 if run.experiment == "reid" else 60)
            assert (data.sequences_per_identity, config.optim.batch_size) == (4, 16)
            assert config.task == run.task and config.train.seed == run.seed
            assert config.optim.epochs == settings.epochs  # one budget for every method
            assert config.optim.warmup_epochs == pytest.approx(suite.WARMUP_FRACTION * settings.epochs, abs=0.01)
            assert config.train.select_on == ("test" if settings.validation else "last")
            loss, model = config.loss, config.model
            if run.method == "baseline":
                continue  # it trains nothing: the base configuration names data and protocol only
            if run.method == "gaitgraph":
                assert (model.backbone, model.preset, loss.ce, loss.supcon.enabled, loss.supcon.temperature) == (
                    "resgcn", None, False, True, 0.01)
                assert (data.train_clips, config.optim.optimizer) == (2, "adam")
                assert not loss.inter.enabled and not loss.intra.enabled
            else:
                assert (model.backbone, model.preset, model.embedding_input) == ("stgcn", "small", "pooled")
                assert loss.ce and not loss.supcon.enabled and loss.small_dataset_scaling
                assert (data.train_clips, config.optim.optimizer) == (1, "sgd")
                assert loss.inter.enabled == loss.intra.enabled == (run.method == "aclnet")
    gait_a = suite.run_config(suite.Run("gait-A", 0, "ce"), suite.FULL, tmp_path).section("protocol")
    assert gait_a.model_dump()["train"] == {"subject": {"min": 0.0, "max": 4.0}} and gait_a.exclude_identical_view
    assert list(gait_a.probes) == ["nm", "bg", "cl"]
    reid = suite.run_config(suite.Run("reid", 0, "ce"), suite.FULL, tmp_path).section("protocol")
    assert list(reid.probes) == ["nm-nm", "bg-bg", "cl-cl", "cl-nm", "bg-nm"]
    assert [reid.probes[p].gallery for p in reid.probes] == ["self", "self", "self", None, None]
    # --set overrides come last; the warm-up follows the epochs they set
    trial = suite.run_config(suite.Run("val", 0, "gaitgraph"), suite.VALIDATION, tmp_path,
                             ["optim.epochs=40", "optim.lr=0.001"])
    assert (trial.optim.epochs, trial.optim.warmup_epochs, trial.optim.lr) == (40, 4.0, 0.001)
    assert trial.train.val_interval == 4


# ---- the protocols on the real data ------------------------------------------------------------


def _selected(suite: ModuleType, samples: list[Sample], experiment: str) -> tuple[list[Sample], list[Sample], dict]:
    config = suite.run_config(suite.Run(experiment, 0, "ce"), suite.FULL, DATA)
    protocol = config.section("protocol").model_dump()
    return select(samples, protocol["train"]), select(samples, protocol["test"]), protocol


def _ids(samples: list[Sample]) -> set[str]:
    return {s.sample_id for s in samples}


def test_protocols_select_disjoint_sequences_of_psymo(suite: ModuleType, psymo: list[Sample]) -> None:
    assert len(psymo) == 480
    for experiment, (train_walkers, test_walkers) in (("gait-A", (range(5), range(5, 10))),
                                                       ("gait-B", (range(5, 10), range(5)))):
        train, test, protocol = _selected(suite, psymo, experiment)
        assert len(train) == len(test) == 240 and not _ids(train) & _ids(test)
        assert {s.meta["subject"] for s in train} == set(train_walkers)  # every walk of the training walkers
        assert {s.meta["subject"] for s in test} == set(test_walkers)  # identities disjoint
        gallery = select(test, protocol["gallery"])
        assert len(gallery) == 30 and {s.meta["run"] for s in gallery} == {0}
        assert {s.meta["direction"] for s in gallery} == {0, 1} and {s.meta["condition"] for s in gallery} == {"nm"}
        for name, count in (("nm", 30), ("bg", 30), ("cl", 30)):
            probes = select(test, protocol["probes"][name]["select"])
            assert len(probes) == count and not _ids(probes) & _ids(gallery)
    train, test, protocol = _selected(suite, psymo, "reid")
    assert (len(train), len(test)) == (360, 120) and not _ids(train) & _ids(test)
    assert {s.meta["subject"] for s in train} == {s.meta["subject"] for s in test} == set(range(10))
    assert {(s.meta["condition"], s.meta["direction"]) for s in test if s.meta["condition"] != "nm"} == {
        ("bg", 1), ("cl", 1)}
    assert {s.meta["run"] for s in test if s.meta["condition"] == "nm"} == {1}
    reid_test = _ids(test)
    val_train, val_test, _ = _selected(suite, psymo, "val")
    assert (len(val_train), len(val_test)) == (120, 60) and not _ids(val_train) & _ids(val_test)
    # the validation protocol never touches gait fold A's test walkers nor a re-ID test sequence
    assert {s.meta["subject"] for s in val_train + val_test} == set(range(5))
    assert not (_ids(val_train) | _ids(val_test)) & reid_test


def test_chance_levels_of_psymo(suite: ModuleType, protocols: ModuleType, psymo: list[Sample]) -> None:
    for experiment in ("gait-A", "gait-B", "val"):
        _, _, protocol = _selected(suite, psymo, experiment)
        task = "val" if experiment == "val" else "gait"
        chance = protocols.chance_levels("gait", protocol, psymo)
        assert set(chance) == set(suite.CHANCE_METRICS[task])
        assert all(value == pytest.approx(20.0) for value in chance.values())  # 2 of 10 (1 of 5) per gallery view
    _, _, protocol = _selected(suite, psymo, "reid")
    chance = protocols.chance_levels("reid", protocol, psymo)
    # self settings: 5 other sequences of the walker among 59 (nm), 2 among 29 (bg, cl); nm gallery: 6 of 60
    rank1 = {"nm-nm": 5 / 59, "bg-bg": 2 / 29, "cl-cl": 2 / 29, "cl-nm": 6 / 60, "bg-nm": 6 / 60}
    for name, value in rank1.items():
        assert chance[f"{name}_rank1"] == pytest.approx(100 * value)
    assert chance["rank1"] == pytest.approx(100 * np.mean(list(rank1.values())))
    assert chance["nm-nm_map"] == pytest.approx(100 * protocols.random_ap(5, 59))
    assert chance["map"] == pytest.approx(np.mean([chance[f"{n}_map"] for n in rank1]))


# ---- chance levels by hand -----------------------------------------------------------------------


# ---- running and results -------------------------------------------------------------------------


class FakeTrain:
    """Stands in for `train`: records its arguments and writes the files of a finished run."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, bool, bool]] = []

    def __call__(self, task, work_dir: Path, *, resume: bool = False, force: bool = False, log=print) -> dict:
        self.calls.append((work_dir, resume, force))
        log(f"epoch 1/{task.config.optim.epochs}")
        work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / "config.yaml").write_text(dump_config(task.config))
        (work_dir / "test_report.json").write_text(json.dumps({"nm": 50.0, "bg": 40.0, "cl": 30.0, "mean": 40.0}))
        return {}


def test_execute_run_trains_resumes_skips_and_refuses(suite: ModuleType, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTrain()
    monkeypatch.setattr("aclnet.engine.run.train", fake)
    fresh, partial, other = (suite.Run("gait-A", 0, m) for m in ("ce", "aclnet", "gaitgraph"))
    (tmp_path / partial.relpath).mkdir(parents=True)
    saved = dump_config(suite.run_config(partial, suite.FULL, tmp_path))
    (tmp_path / partial.relpath / "config.yaml").write_text(saved)
    (tmp_path / partial.relpath / "latest.pt").write_bytes(b"")
    (tmp_path / other.relpath).mkdir(parents=True)
    (tmp_path / other.relpath / "config.yaml").write_text(dump_config(suite.run_config(other, suite.QUICK, tmp_path)))
    assert [suite.run_status(tmp_path / r.relpath) for r in (fresh, partial, other)] == ["todo", "partial", "todo"]
    for run in (fresh, partial):
        assert suite.execute_run(run, suite.FULL, tmp_path, tmp_path, []) > 0
    assert fake.calls == [(tmp_path / fresh.relpath, False, True), (tmp_path / partial.relpath, True, False)]
    assert (tmp_path / fresh.relpath / "train.log").read_text() == f"epoch 1/{suite.FULL.epochs}\n"
    assert set(json.loads((tmp_path / fresh.relpath / "suite.json").read_text())) == {"wall_s", "cpu_s", "resumed"}
    assert suite.execute_run(fresh, suite.FULL, tmp_path, tmp_path, []) == 0.0  # done: skipped
    with pytest.raises(InputError, match="different configuration"):
        suite.execute_run(other, suite.FULL, tmp_path, tmp_path, [])
    busy = suite.Run("reid", 0, "ce")
    (tmp_path / busy.relpath.parent).mkdir(parents=True)
    with (tmp_path / busy.relpath.parent / f".{busy.relpath.name}.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a second suite training this run would
        with pytest.raises(InputError, match="one process per run folder"):
            suite.execute_run(busy, suite.FULL, tmp_path, tmp_path, [])
    assert len(fake.calls) == 2


def _finished(root: Path, run, report: dict, wall: float, epochs: int = 100) -> None:
    work_dir = root / run.relpath
    work_dir.mkdir(parents=True)
    (work_dir / "config.yaml").write_text(yaml.safe_dump({"model": {"backbone": "stgcn"},
                                                          "optim": {"epochs": epochs, "lr": 0.1}}))
    (work_dir / "test_report.json").write_text(json.dumps(report))
    (work_dir / "suite.json").write_text(json.dumps({"wall_s": wall, "cpu_s": wall / 2, "resumed": False}))


def test_summary_tables_from_hand_written_runs(suite: ModuleType, tmp_path: Path) -> None:
    gait = {("gait-A", 0, "ce"): (20.0, 30.0, 10.0), ("gait-B", 0, "ce"): (40.0, 50.0, 30.0),
            ("gait-A", 0, "aclnet"): (60.0, 40.0, 20.0)}
    for (experiment, seed, method), (nm, bg, cl) in gait.items():
        _finished(tmp_path, suite.Run(experiment, seed, method),
                  {"nm": nm, "bg": bg, "cl": cl, "mean": (nm + bg + cl) / 3}, wall=100.0)
    reid_numbers = {0: 10.0, 1: 30.0}
    for seed, value in reid_numbers.items():
        report = {f"{p}_{k}": value for p in suite.REID_PROBES for k in ("rank1", "rank5", "rank10", "map")}
        _finished(tmp_path, suite.Run("reid", seed, "gaitgraph"), {**report, "rank1": value, "map": value / 2},
                  wall=300.0)
    runs = [suite.Run(e, s, m) for e, s, m in gait] + [suite.Run("reid", s, "gaitgraph") for s in (0, 1, 2)]
    chance = {"gait": {"nm": 20.0, "bg": 20.0, "cl": 20.0, "mean": 20.0},
              "reid": {**{f"{p}_rank1": 10.0 for p in suite.REID_PROBES},
                       **{f"{p}_map": 5.0 for p in suite.REID_PROBES}, "rank1": 10.0, "map": 5.0}}
    rows = suite.ledger_rows(runs, tmp_path, lambda run: chance[run.task])
    assert [len(rows["gait"]), len(rows["reid"])] == [3, 2]  # reid seed 2 is not finished
    assert rows["gait"][0]["epochs"] == 100 and rows["gait"][0]["chance_nm"] == 20.0

    summary = {(r["kind"], r["method"], r["metric"]): r for r in suite.summary_rows(rows)}
    ce_nm = summary[("gait", "ce", "nm")]
    assert (ce_nm["runs"], ce_nm["mean"], ce_nm["chance"], ce_nm["wall_s"], ce_nm["cpu_s"]) == (2, 30.0, 20.0, 200.0,
                                                                                               100.0)
    assert ce_nm["std"] == pytest.approx(math.sqrt(200.0))  # sample std of 20 and 40
    assert summary[("gait", "aclnet", "cl")]["std"] == 0.0  # one run
    assert summary[("reid", "gaitgraph", "map")]["mean"] == 10.0
    assert summary[("reid", "gaitgraph", "map")]["std"] == pytest.approx(math.sqrt(50.0))

    outputs = suite.Outputs.for_settings(tmp_path / "results", suite.QUICK)
    tables = suite.write_results(rows, outputs, suite.QUICK, suite_wall=600.0)
    assert "Suite wall time 10.0 min; CPU time of the runs 7.5 min" in tables  # (3 x 100 + 2 x 300 s) / 2
    assert "| CE only (small ST-GCN) | 2 | 30.00 ± 14.14 | 40.00 ± 14.14 | 20.00 ± 14.14 | 30.00 ± 14.14 | 100 / 50 |" \
        in tables
    assert "| ACLNet (small ST-GCN, CE + Inter + Intra) | 1 | 60.00 ± 0.00 | 40.00 ± 0.00 | 20.00 ± 0.00 | " \
           "40.00 ± 0.00 | 100 / 50 |" in tables
    assert "| chance (random ranking) | | 20.00 | 20.00 | 20.00 | 20.00 | |" in tables
    assert "| CE only (small ST-GCN) | 20.00 ± 0.00 | 40.00 ± 0.00 |" in tables  # by fold: A, B
    cells = " | ".join(["20.00 ± 14.14"] * 6)
    assert f"| GaitGraph (ResGCN-N39-R8, SupCon) | 2 | {cells} | 10.00 ± 7.07 | 300 / 150 |" in tables
    assert "| chance (random ranking) | | 10.00 | 10.00 | 10.00 | 10.00 | 10.00 | 10.00 | 5.00 | |" in tables
    assert outputs.table.read_text() == tables
    with outputs.runs_csv("gait").open() as handle:
        ledger = list(csv.DictReader(handle))
    assert list(ledger[0])[:10] == ["experiment", "seed", "method", "tag", "setting", "nm", "bg", "cl", "mean",
                                    "chance_nm"]
    assert [ledger[0][k] for k in ("experiment", "seed", "method", "setting", "nm", "mean", "chance_nm", "cpu_s")] == [
        "gait-A", "0", "ce", "stgcn, lr 0.1, 100 epochs", "20", "20", "20", "50"]
    assert outputs.summary_csv.exists() and outputs.runs_csv("reid").exists()


def test_validation_rows_read_the_curve(suite: ModuleType, tmp_path: Path) -> None:
    run = suite.Run("val", 1, "ce", "optim.epochs=4")
    _finished(tmp_path, run, {"bg": 99.0, "cl": 99.0, "mean": 99.0}, wall=10.0, epochs=4)  # the best epoch's report
    (tmp_path / run.relpath / "metrics.csv").write_text(
        "epoch,train_loss,val_bg,val_cl,val_mean\n1.0,2.0,,,\n2.0,1.5,40.0,20.0,30.0\n3.0,1.2,,,\n4.0,1.0,30.0,20.0,25.0\n")
    rows = suite.ledger_rows([run], tmp_path, lambda _: {"bg": 20.0, "cl": 20.0, "mean": 20.0})
    row = rows["val"][0]
    assert (row["bg"], row["cl"], row["mean"]) == (30.0, 20.0, 25.0)  # the final epoch, not the report
    assert (row["best_mean"], row["best_epoch"], row["curve"]) == (30.0, 2, "2:30.0;4:25.0")
    assert row["setting"] == "stgcn, lr 0.1, 4 epochs"
    tables = suite.markdown_tables(suite.summary_rows(rows), suite.VALIDATION, 10.0, rows)
    assert "| CE only (small ST-GCN) [stgcn, lr 0.1, 4 epochs] | 1 | 30.00 ± 0.00 | 20.00 ± 0.00 | 25.00 ± 0.00 | " \
           "30.00 ± 0.00 | 10 / 5 |" in tables
    assert [r.relpath for r in suite.discover_validation_runs(tmp_path)] == [run.relpath]
