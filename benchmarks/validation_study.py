"""Two questions answered on validation data only (a held-out training subject; the test split is never read):

1. `ablation`: why, on MSR Action3D cross-subject, does the inter loss alone test below CE and the intra loss
   alone above full ACLNet? The five variants of benchmarks/accuracy.py, 3 seeds each, are trained with
   `train.select_on=val` (one of the 5 training subjects held out) and validated every 2 epochs; their
   metrics.csv files hold, per epoch, the loss terms and the inter loss's state (mean family size, share of
   samples whose family is empty, prototype norm, projection weight norms). Two diagnostic rows follow:
   ACLNet without FAT, and the intra loss alone at twice its weight.
2. `preset`: is CTR-GCN or a longer clip better than the former small-set preset (small ST-GCN, 16-frame
   clips)? Full ACLNet, 2 seeds, on the cross-subject protocols of MSR Action3D and UTD-MHAD.

Every run uses the accuracy suite's budget (about 900 SGD steps) and runner: finished runs are skipped,
interrupted ones resumed. Results: benchmarks/results/validation_<study>.md (and .png for the ablation).

    python benchmarks/validation_study.py ablation      # 21 runs: 24.8 run-minutes, about 12 min on 2 cores
    python benchmarks/validation_study.py preset        # 16 runs: 38.7 run-minutes, about 20 min on 2 cores
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from accuracy import DATA_ROOT, FULL, RESULTS, RUNS, VARIANTS, Run, mean_std, run_suite, script_main

from aclnet.engine.run_folder import RunFolder
from aclnet.errors import InputError
from aclnet.fileio import atomic_write_bytes

VALIDATION = ("train.select_on=val", "train.val_interval=2")
"""Hold out a training subject, choose nothing on the test split, validate often enough for curves."""
ABLATION_SEEDS = (0, 1, 2)
PRESET_SEEDS = (0, 1)
PRESET_DATASETS = ("msr-action3d", "utd-mhad")
CANDIDATES: dict[str, tuple[str, ...]] = {
    "stgcn, 16 frames (the accuracy suite's budget)": (),
    "stgcn, 32 frames": ("data.clip_len=32",),
    "ctrgcn, 16 frames": ("model.backbone=ctrgcn",),
    "ctrgcn, 32 frames": ("model.backbone=ctrgcn", "data.clip_len=32"),
}
"""Preset candidate: overrides on top of the suite's settings (small preset, pooled projection input)."""
DIAGNOSTIC_ROWS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "Inter-ACL (fixed tau) + Intra-ACL (diagnostic)": ("fixed-tau", "aclnet", ("loss.inter.fat=false",)),
    "Intra-ACL at weight 0.2 (diagnostic)": ("intra-0.2", "ce+intra", ("loss.intra.weight=0.2",)),
}
"""Label: (folder, variant, overrides). Is it FAT that undoes the intra loss's gain in full ACLNet, or any
second contrastive pull of the same weight on the pooled features?"""
LATE = 10
"""Validations averaged at the end of a run: one validation of one subject's ~57 samples moves by several points
from one epoch to the next."""
DIAGNOSTICS = ("train_ce", "train_inter", "train_intra", "inter_family_size", "inter_empty_family_share",
               "inter_prototype_norm", "inter_projection_norm", "intra_projection_norm")


@dataclass(frozen=True)
class Curve:
    """One run's metrics.csv as columns (NaN where a row has no value)."""

    columns: dict[str, np.ndarray]

    @classmethod
    def read(cls, work_dir: Path) -> Curve:
        with RunFolder(work_dir).metrics.open() as handle:
            rows = list(csv.DictReader(handle))
        names = {name for row in rows for name in row}
        return cls({n: np.array([float(r[n]) if r.get(n) else math.nan for r in rows]) for n in names})

    def final_val(self) -> float:
        """Validation top-1 of the last validated epoch (the end of the schedule)."""
        values = self.columns["val_top1"]
        return float(values[~np.isnan(values)][-1])

    def late_val(self) -> float:
        """Mean validation top-1 of the last `LATE` validations (the last third of the schedule)."""
        values = self.columns["val_top1"]
        return float(np.mean(values[~np.isnan(values)][-LATE:]))

    def at(self, name: str, share: float) -> float:
        """`name` at a point of the schedule (0 = first epoch, 1 = last); NaN when not logged."""
        values = self.columns.get(name)
        if values is None:
            return math.nan
        return float(values[min(len(values) - 1, math.floor(share * (len(values) - 1) + 0.5))])


def _format_mean_std(values: list[float]) -> str:
    """'mean ± sample std' with two decimals."""
    mean, std = mean_std(values)
    return f"{mean:.2f} ± {std:.2f}"


def _diagnostic(curves: list[Curve], name: str) -> str:
    """Mean over seeds of `name` at the middle and at the end of the schedule; '-' when not logged."""
    mid, last = (np.array([c.at(name, share) for c in curves]) for share in (0.5, 1.0))
    return "-" if np.all(np.isnan(last)) else f"{np.nanmean(mid):.3g} / {np.nanmean(last):.3g}"


def ablation(root: Path, results: Path, jobs: int, threads: int) -> str:
    """Train the five variants (and the diagnostic row) with a validation hold-out; a table of validation
    accuracy, paired with CE per seed (the seed also picks the held-out subject), and of the diagnostics."""
    def seeds(variant: str) -> list[Run]:
        return [Run("msr-action3d", "xsub", "xsub", seed, variant, "j") for seed in ABLATION_SEEDS]

    rows = {label: (root, seeds(variant), VALIDATION) for variant, (label, _) in VARIANTS.items()}
    rows.update({label: (root / folder, seeds(variant), (*VALIDATION, *overrides))
                 for label, (folder, variant, overrides) in DIAGNOSTIC_ROWS.items()})
    for folder, runs, extra in rows.values():
        failures = run_suite(runs, FULL, folder, DATA_ROOT, extra, jobs, threads, on_done=lambda: None)
        if failures:
            raise InputError(f"{len(failures)} run(s) failed; see above")
    curves = {label: [Curve.read(folder / run.relpath) for run in runs] for label, (folder, runs, _) in rows.items()}
    ce = curves[VARIANTS["ce"][0]]
    lines = [f"| variant | final val top-1 | mean of the last {LATE} validations | late - CE, per seed | "
             + " | ".join(f"{name} (mid / end)" for name in DIAGNOSTICS) + " |",
             "|---" * (4 + len(DIAGNOSTICS)) + "|"]
    for label, mine in curves.items():
        paired = [a.late_val() - b.late_val() for a, b in zip(mine, ce)]
        lines.append(f"| {label} | {_format_mean_std([c.final_val() for c in mine])} | "
                     f"{_format_mean_std([c.late_val() for c in mine])} | {np.mean(paired):+.1f} ("
                     + ", ".join(f"{d:+.1f}" for d in paired) + ") | "
                     + " | ".join(_diagnostic(mine, name) for name in DIAGNOSTICS) + " |")
    plot_ablation(curves, results / "validation_ablation.png")
    return "\n".join(lines)


def plot_ablation(curves: dict[str, list[Curve]], path: Path) -> None:
    """Validation top-1, loss terms, family size and projection norm per epoch, mean over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ("val_top1", "train_ce", "train_inter", "train_intra", "inter_family_size", "inter_projection_norm")
    figure, axes = plt.subplots(2, 3, figsize=(13, 7))
    for axis, name in zip(axes.flat, panels):
        for index, (label, mine) in enumerate(curves.items()):  # one colour per row in every panel
            if name not in mine[0].columns:
                continue
            mean = np.nanmean(np.stack([c.columns[name] for c in mine]), axis=0)
            keep = ~np.isnan(mean)
            axis.plot(mine[0].columns["epoch"][keep], mean[keep], label=label, color=f"C{index}")
        axis.set_title(name)
        axis.set_xlabel("epoch")
    axes.flat[0].legend(fontsize=7)
    figure.suptitle("MSR Action3D cross-subject, one training subject held out; mean of 3 seeds")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def preset(root: Path, jobs: int, threads: int) -> str:
    """Train full ACLNet with each preset candidate; a table of validation accuracy per dataset, each run paired
    with the first candidate's run of the same dataset and seed (the seed picks the held-out subject)."""
    runs = [Run(d, "xsub", "xsub", seed, "aclnet", "j") for d in PRESET_DATASETS for seed in PRESET_SEEDS]
    late: dict[str, list[float]] = {}
    lines = ["| candidate | " + " | ".join(f"{d}: last {LATE} validations | {d}: minus the first, per seed"
                                          for d in PRESET_DATASETS) + " | wall s per run (2 runs side by side) |",
             "|---" * (2 + 2 * len(PRESET_DATASETS)) + "|"]
    for index, (label, overrides) in enumerate(CANDIDATES.items()):
        folder = root / f"candidate{index}"
        print(f"== {label}", flush=True)
        failures = run_suite(runs, FULL, folder, DATA_ROOT, (*VALIDATION, *overrides), jobs, threads,
                             on_done=lambda: None)
        if failures:
            raise InputError(f"{len(failures)} run(s) of '{label}' failed; see above")
        late[label] = [Curve.read(folder / r.relpath).late_val() for r in runs]
        shipped = next(iter(late.values()))
        cells = []
        for dataset in PRESET_DATASETS:
            mine = [(a, a - b) for a, b, r in zip(late[label], shipped, runs) if r.dataset == dataset]
            cells += [_format_mean_std([a for a, _ in mine]),
                      f"{np.mean([d for _, d in mine]):+.1f} (" + ", ".join(f"{d:+.1f}" for _, d in mine) + ")"]
        walls = [json.loads((folder / r.relpath / "suite.json").read_text())["wall_s"] for r in runs]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {np.mean(walls):.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=("ablation", "preset"))
    parser.add_argument("--root", type=Path, default=RUNS / "validation", help="folder of the runs")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the table (and plot)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, each in its own process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    args = parser.parse_args(argv)
    root = args.root / args.study
    table = (ablation(root, args.results, args.jobs, args.threads) if args.study == "ablation"
             else preset(root, args.jobs, args.threads))
    out = args.results / f"validation_{args.study}.md"
    atomic_write_bytes(out, (table + "\n").encode())
    print(table)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    script_main(main)
