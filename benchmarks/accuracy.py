"""Accuracy on real skeleton data: CE-only baseline vs ACLNet on the datasets of ../shared/data.

For each dataset and protocol of ../shared/data/README.md, a fixed CPU budget (the small ST-GCN with 16-frame
clips, pinned in `Settings` whatever the templates ship; projections on the pooled features, small-dataset
scaling of the loss constants; why: the notes above FULL) is trained on the joint stream as CE only and as
full ACLNet: MSR Action3D cross-subject, UTD-MHAD cross-subject and SBU's 5 folds with 3 seeds; the 10-split
protocols (MSR Action3D, Florence 3D, UTKinect) with one seed per split. On MSR Action3D cross-subject also
the ablation rows (+Inter-ACL with a fixed temperature, +Inter-ACL with FAT, +Intra-ACL) and the 4-stream
ensemble (j, b, jm, bm; 2:2:1:1) of ACLNet; the ensemble on UTD-MHAD too.
Every run trains on the whole training split and tests the final epoch (`train.select_on: last`, the default):
nothing is chosen on the test split. benchmarks/validation_study.py answers questions on held-out subjects.

Every run is one `train(...)` into its own folder under `--root` (default benchmarks/runs/): a run
with a `test_report.json` is skipped, a run with a `latest.pt` is resumed, so an interrupted suite
continues where it stopped. Runs go `--jobs` at a time in separate processes of `--threads` torch
threads each (default 2 x 1: on 2 cores this is faster than one run on 2 threads, and it degrades
gracefully when the cores are shared). Results (`--quick` writes `accuracy_quick_*`):

  benchmarks/results/accuracy_runs.csv      one row per run (and per ensemble)
  benchmarks/results/accuracy_summary.csv   mean and std per dataset/protocol/variant, suite wall time
  benchmarks/results/accuracy.png           CE vs ACLNet per dataset, published Lie-group numbers marked
  benchmarks/results/accuracy_table.md      the Markdown table for the README (also printed)

    python benchmarks/accuracy.py --quick                 # under 10 minutes on 2 cores
    python benchmarks/accuracy.py                         # the whole suite: 62.5 min on 2 quiet cores (first
                                                          # version), 155.9 min with the cores shared
    python benchmarks/accuracy.py --dry-run --datasets sbu
    python benchmarks/accuracy.py --datasets msr-action3d --protocols xsub --variants ce aclnet \\
        --set model.backbone=ctrgcn data.clip_len=32 --root benchmarks/runs/shipped   # another model
    python benchmarks/accuracy.py --datasets msr-action3d --set train.select_on=val \\
        --root benchmarks/runs/val --results benchmarks/results/val   # best epoch on a held-out subject
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from aclnet.config import ExperimentConfig, dump_config, load_config
from aclnet.engine.run_folder import RunFolder
from aclnet.errors import InputError
from aclnet.fileio import atomic_write_bytes, atomic_write_csv

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"
RUNS = REPO / "benchmarks" / "runs"

VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ce": ("CE only", ("loss.inter.enabled=false", "loss.intra.enabled=false")),
    "ce+inter": ("+Inter-ACL (fixed tau)", ("loss.intra.enabled=false", "loss.inter.fat=false")),
    "ce+inter+fat": ("+Inter-ACL +FAT", ("loss.intra.enabled=false",)),
    "ce+intra": ("+Intra-ACL", ("loss.inter.enabled=false",)),
    "aclnet": ("ACLNet (Inter+FAT+Intra)", ()),
}
"""Variant name: (label, config overrides)."""
MAIN_VARIANTS = ("ce", "aclnet")
STREAMS: dict[str, float] = {"j": 2.0, "b": 2.0, "jm": 1.0, "bm": 1.0}
"""The 4-stream ensemble: modality and weight (2:2:1:1)."""
ENSEMBLE = "4s"
DATASET_NAMES = {"msr-action3d": "MSR Action3D", "utd-mhad": "UTD-MHAD", "sbu": "SBU Interaction",
                 "florence3d": "Florence 3D", "utkinect": "UTKinect-Action3D"}
PROTOCOL_NAMES = {"xsub": "cross-subject", "splits": "10 splits", "folds": "5 folds"}
PUBLISHED: dict[tuple[str, str], float] = {
    ("msr-action3d", "splits"): 89.48, ("florence3d", "splits"): 90.88, ("utkinect", "splits"): 97.08,
}
"""Lie group (Vemulapalli et al., CVPR 2014) top-1 accuracy on the same protocols."""


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol of a dataset (a template in aclnet/configs)."""

    dataset: str
    name: str
    parts: tuple[str, ...]  # split prefixes: '<part>_train' / '<part>_test'
    multi_seed: bool  # every seed of the settings; else one run (the first seed) per part
    ablations: bool = False
    ensemble: bool = False


def _numbered(prefix: str, count: int, width: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i:0{width}d}" for i in range(1, count + 1))


PROTOCOLS: tuple[Protocol, ...] = (
    Protocol("msr-action3d", "xsub", ("xsub",), multi_seed=True, ablations=True, ensemble=True),
    Protocol("msr-action3d", "splits", _numbered("split", 10, 2), multi_seed=False),
    Protocol("utd-mhad", "xsub", ("xsub",), multi_seed=True, ensemble=True),
    Protocol("sbu", "folds", _numbered("fold", 5, 1), multi_seed=True),
    Protocol("florence3d", "splits", _numbered("split", 10, 2), multi_seed=False),
    Protocol("utkinect", "splits", _numbered("split", 10, 2), multi_seed=False),
)
DATASETS = tuple(dict.fromkeys(p.dataset for p in PROTOCOLS))


@dataclass(frozen=True)
class Settings:
    """Budget of a suite: training length, clips and which runs.

    Every run trains for about `steps` SGD steps: epochs = round(steps / steps per epoch), so the
    smallest datasets (5 steps per epoch) are not left with a tenth of the updates of the larger ones.
    """

    name: str
    steps: int
    backbone: str  # pinned, so that the suite measures the same model whatever the templates ship
    clip_len: int
    test_clips: int
    validations: int  # validation passes per run (every epochs // validations epochs)
    seeds: tuple[int, ...]
    max_parts: int | None  # first N splits/folds of each protocol (None: all)
    ablations: bool
    ensembles: bool

    def describe(self) -> str:
        parts = "all splits/folds" if self.max_parts is None else f"the first {self.max_parts} split/fold"
        extras = [name for name, on in (("ablations", self.ablations), ("4-stream ensembles", self.ensembles)) if on]
        return (f"{self.name}: the small {self.backbone}, about {self.steps} SGD steps per run, "
                f"clip {self.clip_len} frames, {self.test_clips} test clips, "
                f"about {self.validations} validations per run, "
                f"seeds {list(self.seeds)} (multi-seed protocols), {parts}, "
                f"{' and '.join(extras) or 'no ablations or ensembles'}")


# The preset, chosen on validation data only (MSR Action3D cross-subject, the held-out subject, CE unless
# stated; best validation top-1 of one run each, 16-frame clips, 1 thread):
#   ACLNet GCN small, 450 steps (57 s): 56.1; 900 steps (108 s): 73.7; ACLNet loss, 900 steps: 54.4
#   ST-GCN small,     450 steps (29 s): 64.9; 900 steps (55 s): 80.7 and 87.7 (seeds 0, 1); 1800 steps: 79.0
#   ST-GCN, 900 steps, ACLNet loss on pooled features: 82.5 and 84.2 (seeds 0, 1)
#   UTD-MHAD cross-subject, ST-GCN, 900 steps: CE 81.5, ACLNet 88.9 (the small ACLNet GCN: 56 at 300 steps)
#   ST-GCN, 900 steps, rotation 0.3 rad + scale 0.2 augmentation: 70.2; ACLNet GCN, lr 0.1: 61.4
# The small ST-GCN takes half the time of a step of the small ACLNet GCN and learns faster on these
# few hundred samples, so the templates of the small datasets use it, with the projections on the pooled
# features (the paper's input; ST-GCN learns no topology), for about 900 steps: 1800 gains nothing.
#
# Budget, measured on the project's 2-core machine: a single-thread step of the small ST-GCN (batch 16,
# 16 frames, 20 joints, one person) takes 0.05 s, and a whole MSR Action3D run of 900 steps (with
# validation, 5-clip test and start-up) 55-58 s with two runs side by side. SBU's two persons cost about
# 1.8x. The full suite is about 153 such runs' worth of steps shared by 2 processes: about
# 153 * 57 / 2 s = 73 minutes (measured: 62.5; more where the cores are shared with other work). The
# quick suite's 12 runs of 600 steps are about 12 * 1.2 * 40 / 2 s = 5 minutes (measured: 3.9).
FULL = Settings("full", steps=900, backbone="stgcn", clip_len=16, test_clips=5, validations=15, seeds=(0, 1, 2),
                max_parts=None, ablations=True, ensembles=True)
QUICK = Settings("quick", steps=600, backbone="stgcn", clip_len=16, test_clips=5, validations=10, seeds=(0,),
                 max_parts=1, ablations=False, ensembles=False)


@dataclass(frozen=True)
class Run:
    """One training run of the suite."""

    dataset: str
    protocol: str
    part: str
    seed: int
    variant: str
    modality: str

    @property
    def relpath(self) -> Path:
        """Folder of the run below the suite's root."""
        return Path(self.dataset) / self.protocol / f"{self.part}-{self.variant}-{self.modality}-seed{self.seed}"

    @property
    def group(self) -> tuple[str, str, str, int, str]:
        """The runs that one ensemble fuses share this key."""
        return self.dataset, self.protocol, self.part, self.seed, self.variant


def plan_runs(settings: Settings, datasets: Iterable[str] = DATASETS, protocols: Iterable[str] = PROTOCOL_NAMES,
              variants: Iterable[str] = VARIANTS) -> list[Run]:
    """Every run of the suite for `datasets`, in protocol order; `protocols` and `variants` keep a subset."""
    chosen, kept_protocols, kept_variants = set(datasets), set(protocols), set(variants)
    for kind, given, valid in (("datasets", chosen, DATASETS), ("protocols", kept_protocols, PROTOCOL_NAMES),
                               ("variants", kept_variants, VARIANTS)):
        if given - set(valid):
            raise InputError(f"unknown {kind} {sorted(given - set(valid))}; valid: {', '.join(valid)}")
    runs = []
    for protocol in (p for p in PROTOCOLS if p.dataset in chosen and p.name in kept_protocols):
        parts = protocol.parts[: settings.max_parts]
        seeds = settings.seeds if protocol.multi_seed else settings.seeds[:1]
        planned = list(VARIANTS) if protocol.ablations and settings.ablations else list(MAIN_VARIANTS)
        planned = [v for v in planned if v in kept_variants]
        streams = list(STREAMS)[1:] if protocol.ensemble and settings.ensembles and "aclnet" in kept_variants else []
        for part in parts:
            for seed in seeds:
                runs += [Run(protocol.dataset, protocol.name, part, seed, v, "j") for v in planned]
                runs += [Run(protocol.dataset, protocol.name, part, seed, "aclnet", m) for m in streams]
    return runs


def run_config(run: Run, settings: Settings, data_root: Path, extra: Iterable[str] = ()) -> ExperimentConfig:
    """The experiment of a run: the dataset's template with the suite's settings and the variant's switches;
    the epochs follow from the steps budget and the run's training samples (less a validation hold-out, if any)."""
    name = f"{run.dataset}-{run.modality}"
    template = load_config(name)
    assert template.data.path is not None  # required by the configuration for real data
    overrides = [
        f"data.path={data_root / template.data.path.name}",
        f"data.train_split={run.part}_train", f"data.test_split={run.part}_test",
        f"model.backbone={settings.backbone}", f"data.clip_len={settings.clip_len}",
        f"data.test_clips={settings.test_clips}", "data.num_workers=0",
        f"train.seed={run.seed}", "train.device=cpu", *VARIANTS[run.variant][1],
    ]
    config = load_config(name, [*overrides, *extra])
    # Counted in full batches (the rule of every suite so far), although the last partial batch now trains too.
    steps_per_epoch = max(1, training_samples(config) // config.optim.batch_size)
    epochs = max(1, round(settings.steps / steps_per_epoch))
    schedule = [f"optim.epochs={epochs}", f"train.val_interval={max(1, epochs // settings.validations)}"]
    return load_config(name, [*overrides, *schedule, *extra])


def training_samples(config: ExperimentConfig) -> int:
    """Samples the run trains on: its training split less the held-out validation subjects."""
    from aclnet.tasks.registry import make_task

    return len(make_task(config).load_data().train)


RunStatus = Literal["done", "partial", "todo"]


def run_status(work_dir: Path) -> RunStatus:
    """done: tested; partial: a checkpoint to resume from; todo: nothing usable."""
    folder = RunFolder(work_dir)
    if folder.finished:
        return "done"
    return "partial" if folder.latest.exists() else "todo"


def checked_status(work_dir: Path, config: ExperimentConfig) -> RunStatus:
    """The run's status; an unfinished folder holding a run of another configuration is refused, so that changed
    settings never mix."""
    status = run_status(work_dir)
    saved = RunFolder(work_dir).config
    if status != "done" and saved.exists() and saved.read_text() != dump_config(config):
        raise InputError(f"{work_dir}: holds a run of a different configuration; remove it or use another --root")
    return status


def execute_run(run: Run, settings: Settings, root: Path, data_root: Path, extra: tuple[str, ...],
                threads: int) -> float:
    """Train and test one run unless it is done (resuming a partial one); returns its wall seconds (0 if skipped).

    A folder holding a run of another configuration is refused, so changed settings never mix."""
    import torch

    from aclnet.engine.run import train
    from aclnet.tasks.registry import make_task

    torch.set_num_threads(threads)
    config = run_config(run, settings, data_root, extra)
    work_dir = root / run.relpath
    with RunFolder(work_dir).lock():  # a second suite (or a leftover worker) never trains the same run
        status = checked_status(work_dir, config)
        if status == "done":
            return 0.0
        start = time.perf_counter()
        train(make_task(config), work_dir, resume=status == "partial", force=status == "todo")
        wall = time.perf_counter() - start
        (work_dir / "suite.json").write_text(json.dumps({"wall_s": wall, "resumed": status == "partial"}))
    return wall


# ---- results --------------------------------------------------------------------------------

LEDGER_COLUMNS = ("dataset", "protocol", "part", "seed", "variant", "modality", "top1", "mean_class",
                  "best_val_top1", "selected_epoch", "epochs", "wall_s")
SUMMARY_COLUMNS = ("dataset", "protocol", "variant", "modality", "runs", "top1_mean", "top1_std",
                   "mean_class_mean", "mean_class_std", "best_val_top1_mean", "published", "epochs", "wall_s")


def _best_val(work_dir: Path) -> float:
    """Highest validation top-1 in the run's metrics.csv (NaN when there is none)."""
    path = RunFolder(work_dir).metrics
    if not path.exists():
        return math.nan
    with path.open() as handle:
        values = [float(row["val_top1"]) for row in csv.DictReader(handle) if row.get("val_top1")]
    return max(values, default=math.nan)


def run_row(run: Run, work_dir: Path) -> dict[str, Any]:
    """The ledger row of a finished run, from the files it wrote."""
    folder = RunFolder(work_dir)
    report = folder.read_report()
    config = yaml.safe_load(folder.config.read_text())
    suite = work_dir / "suite.json"
    wall = json.loads(suite.read_text())["wall_s"] if suite.exists() else math.nan
    return {
        "dataset": run.dataset, "protocol": run.protocol, "part": run.part, "seed": run.seed,
        "variant": run.variant, "modality": run.modality, "top1": report["top1"], "mean_class": report["mean_class"],
        "best_val_top1": _best_val(work_dir), "selected_epoch": report.get("selected_epoch", math.nan),
        "epochs": config["optim"]["epochs"], "wall_s": wall,
    }


def ensemble_row(streams: dict[str, dict[str, Any]], root: Path, runs: dict[str, Run]) -> dict[str, Any]:
    """The ledger row of a 4-stream ensemble from its streams' rows and scores files."""
    from aclnet.engine.ensemble import ensemble

    order = list(STREAMS)
    result, _ = ensemble([RunFolder(root / runs[m].relpath).test_scores for m in order], [STREAMS[m] for m in order])
    first = streams["j"]
    return {
        **{k: first[k] for k in ("dataset", "protocol", "part", "seed", "variant", "epochs")},
        "modality": ENSEMBLE, "top1": result["top1"], "mean_class": result["mean_class"],
        "best_val_top1": math.nan, "selected_epoch": math.nan,
        "wall_s": sum(streams[m]["wall_s"] for m in order),
    }


def ledger_rows(runs: list[Run], root: Path) -> list[dict[str, Any]]:
    """One row per finished run, plus one per complete 4-stream group."""
    rows = []
    groups: dict[tuple, dict[str, tuple[Run, dict[str, Any]]]] = {}
    for run in runs:
        work_dir = root / run.relpath
        if run_status(work_dir) != "done":
            continue
        row = run_row(run, work_dir)
        rows.append(row)
        groups.setdefault(run.group, {})[run.modality] = (run, row)
    for members in groups.values():
        if set(STREAMS) <= set(members):
            rows.append(ensemble_row({m: r for m, (_, r) in members.items()}, root,
                                     {m: run for m, (run, _) in members.items()}))
    return rows


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value; NaNs ignored; NaN, NaN for none)."""
    data = np.array([v for v in values if not math.isnan(v)], dtype=float)
    if data.size == 0:
        return math.nan, math.nan
    return float(data.mean()), float(data.std(ddof=1)) if data.size > 1 else 0.0


def summary_rows(rows: list[dict[str, Any]], suite_wall: float) -> list[dict[str, Any]]:
    """Mean and std over runs (splits/folds x seeds) per dataset, protocol, variant and modality;
    a last row holds the whole suite's wall time."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["protocol"], row["variant"], row["modality"]), []).append(row)
    summary = []
    for (dataset, protocol, variant, modality), members in groups.items():
        top1, top1_std = mean_std([r["top1"] for r in members])
        mean_class, mean_class_std = mean_std([r["mean_class"] for r in members])
        summary.append({
            "dataset": dataset, "protocol": protocol, "variant": variant, "modality": modality,
            "runs": len(members), "top1_mean": top1, "top1_std": top1_std, "mean_class_mean": mean_class,
            "mean_class_std": mean_class_std, "best_val_top1_mean": mean_std([r["best_val_top1"] for r in members])[0],
            "published": PUBLISHED.get((dataset, protocol), math.nan),
            "epochs": float(np.mean([r["epochs"] for r in members])),
            "wall_s": float(np.nansum([r["wall_s"] for r in members if r["modality"] != ENSEMBLE] or [math.nan])),
        })
    trained = [r for r in rows if r["modality"] != ENSEMBLE]
    summary.append({**{c: "" for c in SUMMARY_COLUMNS}, "dataset": "all", "protocol": "suite",
                     "variant": "total wall time", "runs": len(trained), "wall_s": suite_wall})
    return summary


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def write_csv(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """Rows as CSV (written atomically; NaN as an empty cell)."""
    atomic_write_csv(path, columns, ({c: _format(row[c]) for c in columns} for row in rows))


def _cell(entry: dict[str, Any] | None) -> str:
    if entry is None or math.isnan(entry["top1_mean"]):
        return "-"
    return f"{entry['top1_mean']:.2f} ± {entry['top1_std']:.2f}"


def markdown_table(summary: list[dict[str, Any]], settings: Settings, suite_wall: float,
                   extra: tuple[str, ...] = ()) -> str:
    """The README table: CE vs ACLNet per dataset and protocol beside the published numbers, and the ablation."""
    index = {(r["dataset"], r["protocol"], r["variant"], r["modality"]): r for r in summary if r["dataset"] != "all"}
    lines = [
        f"Top-1 accuracy (%), mean ± std over runs (splits/folds x seeds); joint stream unless stated. "
        f"Settings: {settings.describe()}{f'; overrides {list(extra)}' if extra else ''}. "
        f"Suite wall time {suite_wall / 60:.1f} min.",
        "",
        "| dataset | protocol | runs | CE only | ACLNet | ACLNet - CE | ACLNet 4-stream | Lie group (published) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for protocol in PROTOCOLS:
        ce = index.get((protocol.dataset, protocol.name, "ce", "j"))
        acl = index.get((protocol.dataset, protocol.name, "aclnet", "j"))
        if ce is None and acl is None:
            continue
        delta = "-" if ce is None or acl is None else f"{acl['top1_mean'] - ce['top1_mean']:+.2f}"
        published = PUBLISHED.get((protocol.dataset, protocol.name))
        runs = (acl or ce)["runs"]  # type: ignore[index]
        lines.append(
            f"| {DATASET_NAMES[protocol.dataset]} | {PROTOCOL_NAMES[protocol.name]} | {runs} | {_cell(ce)} | "
            f"{_cell(acl)} | {delta} | {_cell(index.get((protocol.dataset, protocol.name, 'aclnet', ENSEMBLE)))} | "
            f"{'-' if published is None else f'{published:.2f}'} |")
    for protocol in (p for p in PROTOCOLS if p.ablations):
        rows = [(label, index.get((protocol.dataset, protocol.name, v, "j"))) for v, (label, _) in VARIANTS.items()]
        if sum(entry is not None for _, entry in rows) <= 2:
            continue
        lines += ["", f"Ablation, {DATASET_NAMES[protocol.dataset]} {PROTOCOL_NAMES[protocol.name]} (joint stream):",
                  "", "| variant | top-1 | mean class | runs |", "|---|---|---|---|"]
        for label, entry in rows:
            if entry is not None:
                lines.append(f"| {label} | {_cell(entry)} | {entry['mean_class_mean']:.2f} ± "
                             f"{entry['mean_class_std']:.2f} | {entry['runs']} |")
    return "\n".join(lines) + "\n"


def plot(summary: list[dict[str, Any]], path: Path, title: str) -> None:
    """Bars of CE, ACLNet and ACLNet 4-stream per dataset/protocol with std error bars; published marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = {(r["dataset"], r["protocol"], r["variant"], r["modality"]): r for r in summary if r["dataset"] != "all"}
    protocols = [p for p in PROTOCOLS if any(k[:2] == (p.dataset, p.name) for k in index)]
    bars = (("ce", "j", "CE only", "#9e9e9e"), ("aclnet", "j", "ACLNet", "#1f77b4"),
            ("aclnet", ENSEMBLE, "ACLNet 4-stream", "#2ca02c"))
    width = 0.27
    fig, ax = plt.subplots(figsize=(1.9 * max(len(protocols), 2) + 1.5, 4.2))
    for offset, (variant, modality, label, color) in enumerate(bars):
        entries = [index.get((p.dataset, p.name, variant, modality)) for p in protocols]
        xs = [i + (offset - 1) * width for i, e in enumerate(entries) if e is not None]
        found = [e for e in entries if e is not None]
        if found:
            ax.bar(xs, [e["top1_mean"] for e in found], width, yerr=[e["top1_std"] for e in found],
                   label=label, color=color, capsize=3)
    marked = False
    for i, protocol in enumerate(protocols):
        published = PUBLISHED.get((protocol.dataset, protocol.name))
        if published is not None:
            ax.hlines(published, i - 1.5 * width, i + 1.5 * width, colors="#d62728", linewidths=2.5,
                      label=None if marked else "Lie group (published)")
            marked = True
    ax.set_xticks(range(len(protocols)),
                  [f"{DATASET_NAMES[p.dataset]}\n{PROTOCOL_NAMES[p.name]}" for p in protocols], fontsize=8)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(0, 112)
    ax.set_yticks(range(0, 101, 20))
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


@dataclass(frozen=True)
class Outputs:
    """Where a suite writes its results."""

    runs_csv: Path
    summary_csv: Path
    plot: Path
    table: Path

    @classmethod
    def for_settings(cls, results: Path, settings: Settings) -> Outputs:
        stem = "accuracy" if settings.name == "full" else f"accuracy_{settings.name}"
        return cls(results / f"{stem}_runs.csv", results / f"{stem}_summary.csv", results / f"{stem}.png",
                   results / f"{stem}_table.md")


def write_results(runs: list[Run], root: Path, outputs: Outputs, settings: Settings, suite_wall: float,
                  extra: tuple[str, ...] = ()) -> str:
    """Ledger, summary, plot and table from the finished runs; returns the table."""
    rows = ledger_rows(runs, root)
    outputs.runs_csv.parent.mkdir(parents=True, exist_ok=True)
    write_csv(outputs.runs_csv, rows, LEDGER_COLUMNS)
    summary = summary_rows(rows, suite_wall)
    write_csv(outputs.summary_csv, summary, SUMMARY_COLUMNS)
    table = markdown_table(summary, settings, suite_wall, extra)
    atomic_write_bytes(outputs.table, table.encode())
    overrides = f"; {', '.join(extra)}" if extra else ""
    plot(summary, outputs.plot,
         f"CE vs ACLNet, CPU preset ({settings.name}: about {settings.steps} SGD steps per run{overrides})")
    return table


# ---- running the suite ----------------------------------------------------------------------


class WallClock:
    """The suite's wall time, accumulated across interrupted and resumed invocations in `root`."""

    def __init__(self, root: Path) -> None:
        self.path = root / "suite_wall.json"
        self.base = json.loads(self.path.read_text())["elapsed_s"] if self.path.exists() else 0.0
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return self.base + time.perf_counter() - self.start

    def save(self) -> float:
        elapsed = self.elapsed()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, json.dumps({"elapsed_s": elapsed}).encode())
        return elapsed


def _describe_run(run: Run) -> str:
    return f"{run.dataset} {run.protocol} {run.part} {run.variant} {run.modality} seed {run.seed}"


def _report(run: Run, root: Path, wall: float, done: int, total: int) -> None:
    report = RunFolder(root / run.relpath).read_report()
    print(f"[{done}/{total}] {_describe_run(run)}: top1 {report['top1']:.2f}  mean class "
          f"{report['mean_class']:.2f}  ({wall:.0f} s)", flush=True)


def _completed(todo: list[Run], work: Callable[[Run], float], jobs: int, threads: int) -> Iterator[tuple[Run, Future]]:
    """Each run with its finished future, in order of completion: in this process for one job, else in
    `jobs` worker processes (spawned, so that each starts its own OpenMP with `threads` threads)."""
    if jobs == 1:
        for run in todo:
            future: Future[float] = Future()
            try:
                future.set_result(work(run))
            except Exception as exc:  # noqa: BLE001 - reported by the caller, like a worker's failure
                future.set_exception(exc)
            yield run, future
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by the workers' OpenMP at start-up
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = {pool.submit(work, run): run for run in todo}
        while pending:
            complete, _ = wait(pending, return_when=FIRST_COMPLETED)
            yield from ((pending.pop(future), future) for future in complete)


def run_suite(runs: list[Run], settings: Settings, root: Path, data_root: Path, extra: tuple[str, ...],
              jobs: int, threads: int, on_done: Callable[[], None]) -> list[tuple[Run, str]]:
    """Run what is not done, `jobs` at a time; calls `on_done` after each finished run; returns the failures
    (a failed run does not stop the others)."""
    todo = [r for r in runs if run_status(root / r.relpath) != "done"]
    print(f"{len(runs) - len(todo)} of {len(runs)} runs already done; {len(todo)} to run", flush=True)
    failures: list[tuple[Run, str]] = []
    finished = len(runs) - len(todo)
    work = partial(execute_run, settings=settings, root=root, data_root=data_root, extra=extra, threads=threads)
    for run, future in _completed(todo, work, jobs, threads):
        error = future.exception()
        if error is not None:
            failures.append((run, repr(error)))
            print(f"FAILED {_describe_run(run)}: {error!r}", flush=True)
            continue
        finished += 1
        _report(run, root, future.result(), finished, len(runs))
        on_done()
    return failures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the under-10-minute subset (see --dry-run)")
    parser.add_argument("--root", type=Path, default=RUNS, help="folder of the runs (default benchmarks/runs)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the CSVs, plot and table")
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT, help="the shared datasets (../shared/data)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS), help="a subset")
    parser.add_argument("--protocols", nargs="+", choices=list(PROTOCOL_NAMES), default=list(PROTOCOL_NAMES),
                        help="a subset of the protocols (xsub, splits, folds)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="a subset of the variants (the 4-stream ensemble needs aclnet)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, each in its own process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="extra overrides for every run (use another --root: they change the runs)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and their state only")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.threads < 1:
        parser.error("--jobs and --threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    root: Path = args.root / settings.name
    runs = plan_runs(settings, args.datasets, args.protocols, args.variants)
    print(f"settings: {settings.describe()}")
    print(f"{len(runs)} runs in {root}; {args.jobs} at a time with {args.threads} torch thread(s) each"
          + (f"; extra overrides {args.set}" if args.set else ""), flush=True)
    if args.dry_run:
        for run in runs:
            epochs = run_config(run, settings, args.data_root, args.set).optim.epochs
            print(f"  {run_status(root / run.relpath):7s} {run.relpath}  ({epochs} epochs)")
        return 0
    missing = sorted({d for d in args.datasets
                      if not (args.data_root / load_config(f"{d}-j").data.path.name).exists()})  # type: ignore[union-attr]
    if missing:
        raise InputError(f"{args.data_root}: datasets {missing} are not there (the suite reads ../shared/data)")
    clock = WallClock(root)
    outputs = Outputs.for_settings(args.results, settings)
    failures = run_suite(runs, settings, root, args.data_root, tuple(args.set), args.jobs, args.threads,
                         on_done=lambda: write_csv(outputs.runs_csv, ledger_rows(runs, root), LEDGER_COLUMNS))
    suite_wall = clock.save()
    print(write_results(runs, root, outputs, settings, suite_wall, tuple(args.set)))
    return report_end(suite_wall, outputs.runs_csv.parent, [(_describe_run(r), e) for r, e in failures])


def report_end(suite_wall: float, results: Path, failures: list[tuple[str, str]]) -> int:
    """Print a suite's wall time, where its results are and its failed runs (described); the exit status."""
    print(f"suite wall time {suite_wall:.0f} s ({suite_wall / 60:.1f} min); results in {results}")
    for described, error in failures:
        print(f"FAILED {described}: {error}", file=sys.stderr)
    return 1 if failures else 0


def script_main(main: Callable[[], int]) -> None:
    """Run a benchmark's `main` as a script: exit with its status, or with 2 and the message of a bad input."""
    try:
        sys.exit(main())
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    script_main(main)
