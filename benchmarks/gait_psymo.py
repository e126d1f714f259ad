"""Gait recognition and re-identification on real 2D poses: CE only vs ACLNet vs GaitGraph on PsyMo's 10 walkers.

The data is ../shared/data/PsyMo-subset/skeletons (AlphaPose COCO-17 2D poses of walkers 0-9: views 0/45/90 x
directions 0/1 x walks nm run 0, nm run 1, bg, cl, ph, txt, wss, wsf; read in place with the `pose-json`
reader, `name_pattern: psymo`; licence CC BY-NC-ND: never copy the files or converted copies into the repository).
The protocols mirror CASIA-B's as far as 10 walkers allow:

* Gait recognition (GaitGraph's protocol, identities disjoint), two folds: A trains on walkers 0-4 and tests on
  5-9, B the reverse. Training: every walk of the training walkers. Gallery: nm run 0 (sequences 1 and 3, both
  directions). Probes nm (nm run 1: sequences 2, 4), bg and cl. Rank-1 per (probe view, gallery view) with the
  identical view excluded, averaged as GaitGraph does. Chance: 2 of the 10 sequences of a gallery view are the
  probe's walker: 20 %.
* Re-identification (TranSG's settings, identities shared, sequences disjoint): train nm run 0, bg and cl of
  direction 0 and every ph/txt/wss/wsf walk; test nm run 1 and bg/cl of direction 1; settings nm-nm, bg-bg,
  cl-cl (each probe set its own gallery, the probe itself left out), cl-nm and bg-nm (nm gallery).

Chance levels (what a random ranking scores) are computed exactly from the data (`chance_levels`): rank-1 is
the mean over probes of (true matches) / (gallery size); mAP uses the expected AP of a random ranking.

Methods, one training budget (epochs and P x K identity batches of 4 walkers x 4 sequences) for all:

  ce         small ST-GCN (the CPU preset of the small action templates), classifier over the training
             identities, cross-entropy only
  aclnet     the same model with ACLNet's losses (CE + Inter-ACL with FAT + Intra-ACL), small-dataset scaling
  gaitgraph  GaitGraph's baseline: ResGCN-N39-R8 (published preset), SupCon (temperature 0.01) over two
             augmented views, no classifier, Adam

The tested checkpoint is the final epoch (`train.select_on: last`, fixed before training). The epochs and
learning rates were chosen on a validation protocol inside fold A's training walkers that uses only re-ID
training sequences (`--validation`; see VALIDATION and the notes above `EPOCHS`), never on test data.

Every run is one `train(...)` into its own folder under `--root` (default benchmarks/runs/psymo, git-ignored): a
run with a `test_report.json` is skipped, a run with a `latest.pt` is resumed, so an interrupted suite
continues where it stopped; each run's per-epoch lines go to its train.log. Runs go one at a time in this
process (`--threads` torch threads, default 1). Results
(`--quick` writes `psymo_quick_*`, `--validation` `psymo_validation_*`):

  benchmarks/results/psymo_gait_runs.csv   one row per gait run (fold, seed, method, nm, bg, cl, mean, chance)
  benchmarks/results/psymo_reid_runs.csv   one row per re-ID run (rank-1/5/10 and mAP per setting, means)
  benchmarks/results/psymo_summary.csv     mean, std and chance of every number per task and method
  benchmarks/results/psymo_tables.md       the Markdown tables (also printed)

    python benchmarks/gait_psymo.py --quick          # 1 seed, fold A and re-ID, 6 epochs: under a minute
    python benchmarks/gait_psymo.py                  # 2 folds x 3 seeds x 3 methods + 3 x 3 re-ID runs: 39 min
                                                     # of one core (42.5 min wall on the shared 2-core machine)
    python benchmarks/gait_psymo.py --dry-run
    python benchmarks/gait_psymo.py --validation --methods gaitgraph --set optim.lr=0.001   # a validation trial
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from accuracy import (  # benchmarks/ is the script's folder: shared plumbing
    WallClock,
    checked_status,
    mean_std,
    report_end,
    run_status,
    script_main,
)
from psymo_protocols import (  # the protocols as data and their chance levels
    GAIT_PROBES,
    REID_PROBES,
    VALIDATION_PROBES,
    config_chance,
    gait_protocol,
    reid_protocol,
    validation_protocol,
)

from aclnet.config import ExperimentConfig, dump_config, parse_overrides, validate_config
from aclnet.engine.run_folder import RunFolder
from aclnet.errors import InputError
from aclnet.fileio import atomic_write_bytes, atomic_write_csv
from aclnet.tasks.baseline import baseline_report

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO.parent / "shared" / "data"
SKELETONS = Path("PsyMo-subset") / "skeletons"
RESULTS = REPO / "benchmarks" / "results"
RUNS = REPO / "benchmarks" / "runs" / "psymo"  # benchmarks/runs/ is git-ignored

# ---- methods and budget -----------------------------------------------------------------------

SMALL_STGCN = {"backbone": "stgcn", "preset": "small", "embedding_input": "pooled"}


@dataclass(frozen=True)
class Method:
    """One method: its label, what it changes in the base configuration (a nested dict), and whether it trains
    (the baseline does not: one run per experiment, whatever the seeds)."""

    label: str
    config: Mapping[str, Any]
    trained: bool = True


METHODS: dict[str, Method] = {
    "baseline": Method("bone-length nearest neighbour (no training)", {}, trained=False),
    "ce": Method("CE only (small ST-GCN)", {
        "model": SMALL_STGCN,
        "loss": {"inter": {"enabled": False}, "intra": {"enabled": False}, "small_dataset_scaling": True},
        "optim": {"lr": 0.1},
    }),
    "aclnet": Method("ACLNet (small ST-GCN, CE + Inter + Intra)", {
        "model": SMALL_STGCN,
        "loss": {"small_dataset_scaling": True},
        "optim": {"lr": 0.1},
    }),
    "gaitgraph": Method("GaitGraph (ResGCN-N39-R8, SupCon)", {
        "model": {"backbone": "resgcn"},
        "loss": {"ce": False, "inter": {"enabled": False}, "intra": {"enabled": False},
                 "supcon": {"enabled": True, "temperature": 0.01}},
        "data": {"train_clips": 2},
        "optim": {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.00001},
    }),
}

# Hyper-parameters, chosen on validation data only: `validation_protocol` (fold A's training walkers 0-4 and re-ID
# training sequences only; train on ph/txt/wss/wsf, gallery nm run 0, probes bg and cl of direction 0), cross-view
# rank-1 % at the final epoch, mean of bg and cl [chance 20]; seed 0 unless stated; one process, 1 thread; CPU
# seconds per run with its 10 validations. Each trial: `python benchmarks/gait_psymo.py --validation --methods M
# [--seeds S] --set optim.epochs=E optim.lr=LR [model.backbone=aclnet_gcn]`; all of them in
# benchmarks/results/psymo_validation_*:
#   150 epochs, lr 0.05 (SGD): CE 38.3 (best on the curve 41.7, epoch 90), ACLNet 41.7; GaitGraph Adam lr 0.001: 33.3
#   100 epochs, small ST-GCN, lr 0.05:   CE 38.3 / 33.3 (seeds 0 / 1; 49 s), ACLNet 38.3 (45 s)   mean of 3: 36.7
#               small ST-GCN, lr 0.1:    CE 43.3 / 36.7 (48 s), ACLNet 36.7 (49 s)                mean of 3: 38.9
#               small ACLNet GCN, 0.05:  CE 43.3 / 30.0 (58 s), ACLNet 41.7 (58 s)                mean of 3: 38.3
#               GaitGraph, Adam lr 0.01: 38.3 (184 s); lr 0.001: 33.3 (188 s)
# A first validation protocol (train nm run 0 direction 0 and ph/txt/wss/wsf direction 0; gallery nm run 0 direction 1;
# probes bg/cl direction 0 and ph/txt/wss/wsf direction 1: every match across walking directions) left every
# method near chance (150 epochs: CE 29.4, ACLNet 26.1, GaitGraph 20.6 / 20.8 at lr 0.01 / 0.001) and told no
# setting apart; it was replaced by the one above (the test protocols always have gallery sequences of both
# directions). The validation numbers move by about 5 points between seeds and neighbouring epochs.
# Choice: 100 epochs (150 gains nothing beyond that noise; 100 keeps the suite near 45 minutes of one core); the
# small ST-GCN with lr 0.1 for CE and ACLNet (the best mean of three runs, within the noise of lr 0.05 and of the
# small ACLNet GCN, and the cheapest); GaitGraph's published Adam lr 0.01 (above 0.001).
# The trials above and the recorded results ran while an identity-balanced epoch was one pass over the
# identities (2 steps for gait, 3 for re-ID: 100 epochs = 200 / 300 SGD steps). An epoch now holds about the
# dataset's samples (15 / 23 steps), so 100 epochs train 7.5 times longer: choose EPOCHS again on the
# validation protocol before rerunning the suite.
EPOCHS = 100
WARMUP_FRACTION = 0.1  # GaitGraph's 30 of 300 epochs; the same fraction for every method
BATCH = 16
PER_IDENTITY = 4


@dataclass(frozen=True)
class Settings:
    """Budget and runs of a suite."""

    name: str
    epochs: int
    seeds: tuple[int, ...]
    folds: tuple[str, ...]  # gait folds
    reid: bool
    validation: bool = False  # the hyper-parameter protocol instead of the test protocols

    def describe(self) -> str:
        what = ("the validation protocol (fold A's training walkers)" if self.validation else
                f"gait folds {', '.join(self.folds)}" + (" and re-ID" if self.reid else ""))
        return (f"{self.name}: {self.epochs} epochs of P x K batches ({BATCH // PER_IDENTITY} walkers x "
                f"{PER_IDENTITY} sequences), final epoch tested, seeds {list(self.seeds)}, {what}")


FULL = Settings("full", EPOCHS, (0, 1, 2), ("A", "B"), reid=True)
QUICK = Settings("quick", 6, (0,), ("A",), reid=True)
VALIDATION = Settings("validation", EPOCHS, (0,), (), reid=False, validation=True)


@dataclass(frozen=True)
class Run:
    """One training run."""

    experiment: str  # gait-A, gait-B, reid or val
    seed: int
    method: str
    tag: str = ""  # names extra overrides (validation trials)

    @property
    def task(self) -> str:
        return {"reid": "reid"}.get(self.experiment, "gait")

    @property
    def relpath(self) -> Path:
        return Path(self.experiment) / f"{self.method}-seed{self.seed}{f'-{self.tag}' if self.tag else ''}"


def plan_runs(settings: Settings, methods: list[str] | None = None, tag: str = "") -> list[Run]:
    """Every run of a suite: per experiment, per seed, per method."""
    chosen = list(METHODS) if methods is None else methods
    unknown = sorted(set(chosen) - set(METHODS))
    if unknown:
        raise InputError(f"unknown methods {unknown}; valid: {', '.join(METHODS)}")
    experiments = ["val"] if settings.validation else [f"gait-{f}" for f in settings.folds] + (
        ["reid"] if settings.reid else [])
    return [Run(e, seed, m, tag) for e in experiments for seed in settings.seeds for m in chosen
            if METHODS[m].trained or seed == settings.seeds[0]]


def overrides_tag(extra: list[str]) -> str:
    """A folder-name-safe tag naming `--set` overrides ('' for none)."""
    return "_".join(re.sub(r"[^A-Za-z0-9.=+-]", "-", item) for item in extra)


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def run_config(run: Run, settings: Settings, data_root: Path, extra: list[str] | None = None) -> ExperimentConfig:
    """The experiment of a run, built in code as a dict and validated (`validate_config`); `extra` are
    `--set KEY=VALUE` overrides, applied last (the warm-up follows `optim.epochs` unless they set it too)."""
    update = parse_overrides(extra or [])
    epochs = update.get("optim", {}).get("epochs", settings.epochs)
    if run.experiment == "val":
        protocol = validation_protocol()
    elif run.experiment == "reid":
        protocol = reid_protocol()
    else:
        protocol = gait_protocol(run.experiment.removeprefix("gait-"))
    raw: dict[str, Any] = {
        "name": f"psymo-{run.experiment}-{run.method}",
        "task": run.task,
        "data": {
            "format": "pose-json", "path": str(data_root / SKELETONS), "options": {"name_pattern": "psymo"},
            "pipeline": "gaitgraph", "modality": "j", "clip_len": 40 if run.task == "reid" else 60,
            "num_persons": 1, "test_clips": 1, "num_workers": 0, "sequences_per_identity": PER_IDENTITY,
        },
        "protocol": protocol,
        "optim": {"batch_size": BATCH, "epochs": epochs, "warmup_epochs": round(WARMUP_FRACTION * epochs, 2)},
        "train": {"seed": run.seed, "device": "cpu", "select_on": "last"},
    }
    if settings.validation:  # validate along the way for the curve; the ledger reads the final epoch's numbers
        raw["train"].update({"select_on": "test", "val_interval": max(1, epochs // 10)})
    raw = _merge(_merge(raw, METHODS[run.method].config), update)
    return validate_config(raw, f"benchmarks/gait_psymo.py run {run.relpath}")



# ---- running ----------------------------------------------------------------------------------

class RunLog:
    """Where `train`'s progress lines (one per epoch) go: the run folder's train.log, written as they come once
    the run has written its configuration (a new run empties its folder first), so that a long run can be
    followed with `tail -f`; the suite's own output keeps one line per run."""

    def __init__(self, work_dir: Path) -> None:
        self.folder = RunFolder(work_dir)
        self.pending: list[str] = []

    def __call__(self, line: str) -> None:
        self.pending.append(line)
        if self.folder.config.exists():
            self.flush()

    def flush(self) -> None:
        if self.pending and self.folder.path.is_dir():
            with (self.folder.path / "train.log").open("a") as handle:
                handle.writelines(line + "\n" for line in self.pending)
            self.pending.clear()


def execute_run(run: Run, settings: Settings, root: Path, data_root: Path, extra: list[str]) -> float:
    """Train and test one run unless it is done (resuming a partial one); returns its wall seconds (0 if skipped).
    Its wall and CPU seconds (this process's, so the cost on one core whatever else the machine runs) go to
    `suite.json` in the run folder.
    A folder holding a run of another configuration is refused, so changed settings never mix."""
    from aclnet.engine.run import train
    from aclnet.tasks.registry import make_task

    config = run_config(run, settings, data_root, extra)
    work_dir = root / run.relpath
    with RunFolder(work_dir).lock():  # a second suite never trains the same run (`train` takes it again)
        status = checked_status(work_dir, config)
        if status == "done":
            return 0.0
        log = RunLog(work_dir)
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            if METHODS[run.method].trained:
                train(make_task(config), work_dir, resume=status == "partial", force=status == "todo", log=log)
            else:  # the baseline's report in a run folder of its own, read back like a trained run's
                folder = RunFolder(work_dir)
                folder.prepare(resume=False, force=status == "todo")
                folder.write_config(dump_config(config))
                folder.write_report(baseline_report(make_task(config)))
        finally:
            log.flush()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        (work_dir / "suite.json").write_text(json.dumps({"wall_s": wall, "cpu_s": cpu,
                                                         "resumed": status == "partial"}))
    return wall



# ---- results ----------------------------------------------------------------------------------

METRICS: dict[str, tuple[str, ...]] = {
    "gait": (*GAIT_PROBES, "mean"),
    "reid": (*(f"{p}_{k}" for p in REID_PROBES for k in ("rank1", "rank5", "rank10", "map")), "rank1", "map"),
    "val": (*VALIDATION_PROBES, "mean"),
}
"""The numbers of each kind of run (the keys of its test report)."""
CHANCE_METRICS: dict[str, tuple[str, ...]] = {
    "gait": METRICS["gait"],
    "reid": (*(f"{p}_{k}" for p in REID_PROBES for k in ("rank1", "map")), "rank1", "map"),
    "val": METRICS["val"],
}
"""The numbers whose chance level is computed (rank-5/10 chance is not reported)."""


def kind_of(run: Run) -> str:
    return "val" if run.experiment == "val" else run.task


def _validation_curve(work_dir: Path) -> tuple[dict[str, float], str, float, int]:
    """The final validated epoch's numbers, the curve of `val_mean` ('epoch:value;...'), its best and epoch."""
    with RunFolder(work_dir).metrics.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("val_mean")]
    last = {m: float(rows[-1][f"val_{m}"]) for m in METRICS["val"]}
    curve = [(int(float(r["epoch"])), float(r["val_mean"])) for r in rows]
    best_epoch, best = max(curve, key=lambda item: (item[1], -item[0]))
    return last, ";".join(f"{e}:{v:.1f}" for e, v in curve), best, best_epoch


def run_row(run: Run, work_dir: Path, chance: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The ledger row of a finished run, from the files it wrote, with the chance levels of its experiment
    (`chance_<metric>`; NaN when not given)."""
    folder = RunFolder(work_dir)
    report = folder.read_report()
    config = yaml.safe_load(folder.config.read_text())
    suite = work_dir / "suite.json"
    times = json.loads(suite.read_text()) if suite.exists() else {}
    kind = kind_of(run)
    backbone, lr = config.get("model", {}).get("backbone", ""), config["optim"].get("lr", math.nan)
    row: dict[str, Any] = {"experiment": run.experiment, "seed": run.seed, "method": run.method, "tag": run.tag,
                           "setting": f"{backbone}, lr {lr:g}, {config['optim']['epochs']} epochs",
                           "epochs": config["optim"]["epochs"], "wall_s": times.get("wall_s", math.nan),
                           "cpu_s": times.get("cpu_s", math.nan)}
    if kind == "val":
        last, curve, best, best_epoch = _validation_curve(work_dir)
        row.update(last)
        row.update({"best_mean": best, "best_epoch": best_epoch, "curve": curve})
    else:
        row.update({m: float(report[m]) for m in METRICS[kind]})
    row.update({f"chance_{m}": (chance or {}).get(m, math.nan) for m in CHANCE_METRICS[kind]})
    return row


def ledger_columns(kind: str) -> tuple[str, ...]:
    extra = ("best_mean", "best_epoch", "curve") if kind == "val" else ()
    return ("experiment", "seed", "method", "tag", "setting", *METRICS[kind], *extra,
            *(f"chance_{m}" for m in CHANCE_METRICS[kind]), "epochs", "wall_s", "cpu_s")


def ledger_rows(runs: list[Run], root: Path, chance: Callable[[Run], Mapping[str, float]] | None = None
                ) -> dict[str, list[dict[str, Any]]]:
    """The finished runs' rows by kind (gait, reid, val)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        if run_status(root / run.relpath) == "done":
            rows.setdefault(kind_of(run), []).append(
                run_row(run, root / run.relpath, chance(run) if chance else None))
    return rows


SUMMARY_COLUMNS = ("kind", "method", "tag", "setting", "metric", "runs", "mean", "std", "chance", "wall_s", "cpu_s")


def summary_rows(rows: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Mean and std over runs (folds x seeds) of every number per kind, method and tag, with its chance level
    and the summed wall and CPU time of the runs."""
    summary = []
    for kind, members in rows.items():
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in members:
            groups.setdefault((row["method"], row["tag"], row.get("setting", "")), []).append(row)
        for (method, tag, setting), group in groups.items():
            wall, cpu = (_total([r.get(key, math.nan) for r in group]) for key in ("wall_s", "cpu_s"))
            for metric in METRICS[kind] + (("best_mean",) if kind == "val" else ()):
                mean, std = mean_std([r[metric] for r in group])
                chance = mean_std([r.get(f"chance_{metric}", math.nan) for r in group])[0]
                summary.append({"kind": kind, "method": method, "tag": tag, "setting": setting, "metric": metric,
                                "runs": len(group),
                                "mean": mean, "std": std, "chance": chance, "wall_s": wall, "cpu_s": cpu})
    return summary


def _total(values: list[float]) -> float:
    """Sum ignoring NaNs; NaN when every value is NaN (runs that recorded no time)."""
    return float(np.nansum(values)) if any(not math.isnan(v) for v in values) else math.nan


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def write_csv(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """Rows as CSV (written atomically; NaN as an empty cell)."""
    atomic_write_csv(path, columns, ({c: _format(row.get(c, math.nan)) for c in columns} for row in rows))


def _pm(entry: Mapping[str, Any] | None) -> str:
    if entry is None or math.isnan(entry["mean"]):
        return "-"
    return f"{entry['mean']:.2f} ± {entry['std']:.2f}"


def _chance(entry: Mapping[str, Any] | None) -> str:
    return "-" if entry is None or math.isnan(entry["chance"]) else f"{entry['chance']:.2f}"


def _table(summary: list[dict[str, Any]], kind: str, columns: list[tuple[str, str]], title: str) -> list[str]:
    """One Markdown table: a row per (method, tag, setting) with mean ± std of `columns` (metric, header), the
    chance row and the runs' wall and CPU time; validation rows name their setting (backbone, lr, epochs)."""
    index = {(r["method"], r["tag"], r["setting"], r["metric"]): r for r in summary if r["kind"] == kind}
    groups = list(dict.fromkeys((r["method"], r["tag"], r["setting"]) for r in summary if r["kind"] == kind))
    if not groups:
        return []
    lines = [title, "", "| method | runs | " + " | ".join(h for _, h in columns) + " | s per run (wall / CPU) |",
             "|---|---|" + "---|" * len(columns) + "---|"]
    for method, tag, setting in groups:
        first = index[(method, tag, setting, columns[0][0])]
        label = METHODS[method].label if method in METHODS else method
        cells = " | ".join(_pm(index.get((method, tag, setting, m))) for m, _ in columns)
        note = f" [{setting}]" if kind == "val" else f" [{tag}]" if tag else ""
        per_run = " / ".join("-" if math.isnan(first[k]) else f"{first[k] / first['runs']:.0f}"
                             for k in ("wall_s", "cpu_s"))
        lines.append(f"| {label}{note} | {first['runs']} | {cells} | {per_run} |")
    lines.append("| chance (random ranking) | | " + " | ".join(_chance(index.get((*groups[0], m))) for m, _ in columns)
                 + " | |")
    return [*lines, ""]


def markdown_tables(summary: list[dict[str, Any]], settings: Settings, suite_wall: float,
                    rows: dict[str, list[dict[str, Any]]] | None = None) -> str:
    """The Markdown tables: gait (nm, bg, cl, mean rank-1), gait by fold, re-ID (rank-1 per setting, means) and
    the validation trials; mean ± std over runs, chance levels, wall time."""
    cpu = float(np.nansum([r.get("cpu_s", math.nan) for members in (rows or {}).values() for r in members] or [0.0]))
    described = ("validation trials, settings in brackets" if settings.validation else settings.describe())
    lines = [f"PsyMo walkers 0-9 (AlphaPose COCO-17 2D poses), joint stream. Settings: {described}. "
             f"Suite wall time {suite_wall / 60:.1f} min; CPU time of the runs {cpu / 60:.1f} min (one process, "
             "1 torch thread: the cost on one core; the wall time is longer when the machine is shared).", ""]
    lines += _table(summary, "gait", [("nm", "nm"), ("bg", "bg"), ("cl", "cl"), ("mean", "mean")],
                    "Gait recognition, rank-1 (%) with the identical view excluded, mean ± std over runs "
                    "(folds x seeds); identities disjoint (5 training, 5 test walkers):")
    if rows and rows.get("gait"):
        folds = sorted({r["experiment"] for r in rows["gait"]})
        methods = list(dict.fromkeys(r["method"] for r in rows["gait"]))
        lines += ["Gait, mean rank-1 (%) by fold (fold A's test walkers 5-9 were never looked at; fold B's test "
                  "walkers 0-4 are those of the hyper-parameter validation):", "",
                  "| method | " + " | ".join(folds) + " |", "|---|" + "---|" * len(folds)]
        for method in methods:
            cells = [_pm(dict(zip(("mean", "std"), mean_std(
                [r["mean"] for r in rows["gait"] if r["method"] == method and r["experiment"] == f]))))
                for f in folds]
            lines.append(f"| {METHODS[method].label if method in METHODS else method} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += _table(summary, "reid", [*((f"{p}_rank1", p) for p in REID_PROBES), ("rank1", "mean rank-1"),
                                      ("map", "mean mAP")],
                    "Re-identification, rank-1 (%) per setting, mean rank-1 and mean mAP over the settings, "
                    "mean ± std over seeds; identities shared, sequences disjoint:")
    lines += _table(summary, "val", [("bg", "bg"), ("cl", "cl"), ("mean", "mean"),
                                     ("best_mean", "best mean on the curve")],
                    "Validation protocol (fold A's training walkers 0-4, re-ID training sequences only), rank-1 (%) "
                    "at the final epoch:")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Outputs:
    """Where a suite writes its results."""

    results: Path
    stem: str

    @classmethod
    def for_settings(cls, results: Path, settings: Settings) -> Outputs:
        return cls(results, "psymo" if settings.name == "full" else f"psymo_{settings.name}")

    def runs_csv(self, kind: str) -> Path:
        return self.results / f"{self.stem}_{kind}_runs.csv"

    @property
    def summary_csv(self) -> Path:
        return self.results / f"{self.stem}_summary.csv"

    @property
    def table(self) -> Path:
        return self.results / f"{self.stem}_tables.md"


def write_ledgers(rows: dict[str, list[dict[str, Any]]], outputs: Outputs) -> None:
    outputs.results.mkdir(parents=True, exist_ok=True)
    for kind, members in rows.items():
        write_csv(outputs.runs_csv(kind), members, ledger_columns(kind))


def write_results(rows: dict[str, list[dict[str, Any]]], outputs: Outputs, settings: Settings,
                  suite_wall: float) -> str:
    """Ledgers, summary and tables from the finished runs' rows; returns the tables."""
    write_ledgers(rows, outputs)
    summary = summary_rows(rows)
    write_csv(outputs.summary_csv, summary, SUMMARY_COLUMNS)
    tables = markdown_tables(summary, settings, suite_wall, rows)
    atomic_write_bytes(outputs.table, tables.encode())
    return tables


# ---- command line -----------------------------------------------------------------------------


def discover_validation_runs(root: Path) -> list[Run]:
    """The validation trials already in `root` (every tag), so that the validation ledger keeps them all."""
    found = []
    for path in sorted((root / "val").glob("*-seed*")):
        match = re.fullmatch(r"(\w+)-seed(\d+)(?:-(.+))?", path.name)
        if path.is_dir() and match and match.group(1) in METHODS:
            found.append(Run("val", int(match.group(2)), match.group(1), match.group(3) or ""))
    return found


def _describe(run: Run) -> str:
    return f"{run.experiment} seed {run.seed} {run.method}{f' [{run.tag}]' if run.tag else ''}"


def _progress(row: dict[str, Any], run: Run, wall: float, done: int, total: int) -> str:
    kind = kind_of(run)
    if kind == "reid":
        numbers = "  ".join(f"{p} {row[f'{p}_rank1']:.1f}" for p in REID_PROBES)
        numbers += f"  rank-1 {row['rank1']:.2f}  mAP {row['map']:.2f}"
    else:
        numbers = "  ".join(f"{m} {row[m]:.2f}" for m in METRICS[kind])
        if kind == "val":
            numbers += f"  (best mean {row['best_mean']:.2f} at epoch {row['best_epoch']})"
    return f"[{done}/{total}] {_describe(run)}: {numbers}  ({wall:.0f} s)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="1 seed, fold A and re-ID, few epochs")
    mode.add_argument("--validation", action="store_true",
                      help="the hyper-parameter protocol (fold A's training walkers) instead of the test protocols")
    parser.add_argument("--root", type=Path, default=RUNS, help="folder of the runs (default benchmarks/runs/psymo)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the CSVs and tables")
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT, help="the shared datasets (../shared/data)")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS), help="a subset")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds instead of the settings' ones")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="overrides for every run (the run folders are tagged with them)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and their state only")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = QUICK if args.quick else VALIDATION if args.validation else FULL
    if args.seeds:
        settings = dataclasses.replace(settings, seeds=tuple(args.seeds))
    epochs = parse_overrides(args.set).get("optim", {}).get("epochs")
    if isinstance(epochs, int):
        settings = dataclasses.replace(settings, epochs=epochs)  # described as run
    root: Path = args.root / settings.name
    tag = overrides_tag(args.set)
    runs = plan_runs(settings, args.methods, tag)
    print(f"settings: {settings.describe()}")
    print(f"{len(runs)} runs in {root}" + (f"; overrides {args.set}" if args.set else ""), flush=True)
    if args.dry_run:
        for run in runs:
            print(f"  {run_status(root / run.relpath):7s} {run.relpath}  "
                  f"({run_config(run, settings, args.data_root, args.set).optim.epochs} epochs)")
        return 0
    if not (args.data_root / SKELETONS).is_dir():
        raise InputError(f"{args.data_root / SKELETONS}: PsyMo's skeletons are not there (the suite reads them in "
                         "place from ../shared/data)")
    import torch

    torch.set_num_threads(args.threads)
    if settings.validation:  # every trial so far, by method, tag and seed
        order = list(METHODS)
        ledger = sorted(set(runs) | set(discover_validation_runs(root)),
                        key=lambda r: (order.index(r.method), r.tag, r.seed))
    else:
        ledger = runs
    chance_cache: dict[str, dict[str, float]] = {}

    def chance(run: Run) -> dict[str, float]:
        if run.experiment not in chance_cache:
            chance_cache[run.experiment] = config_chance(run_config(run, settings, args.data_root, args.set))
        return chance_cache[run.experiment]

    clock = WallClock(root)
    outputs = Outputs.for_settings(args.results, settings)
    failures: list[tuple[Run, str]] = []
    todo = [r for r in runs if run_status(root / r.relpath) != "done"]
    print(f"{len(runs) - len(todo)} of {len(runs)} runs already done; {len(todo)} to run", flush=True)
    done = len(runs) - len(todo)
    for run in todo:
        try:
            wall = execute_run(run, settings, root, args.data_root, args.set)
        except Exception as exc:  # noqa: BLE001 - one failed run does not stop the others
            failures.append((run, repr(exc)))
            print(f"FAILED {_describe(run)}: {exc!r}", flush=True)
            continue
        done += 1
        row = run_row(run, root / run.relpath, chance(run))
        print(_progress(row, run, wall, done, len(runs)), flush=True)
        write_ledgers(ledger_rows(ledger, root, chance), outputs)
    suite_wall = clock.save()
    print(write_results(ledger_rows(ledger, root, chance), outputs, settings, suite_wall))
    return report_end(suite_wall, outputs.results, [(_describe(r), e) for r, e in failures])


if __name__ == "__main__":
    script_main(main)
