"""The demo: CE only versus full ACLNet on the generated data with the same budget.

It prints both test accuracies and the learned Motion Families beside the generator's confusable
groups, with the share of each group's within-group pairs that the families recovered.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from aclnet.config import ExperimentConfig, load_config
from aclnet.data.synthetic import confusable_groups
from aclnet.engine.checkpoint import load_checkpoint
from aclnet.engine.evaluation import load_scores
from aclnet.engine.run_folder import RunFolder
from aclnet.errors import InputError

DEMO_SETTINGS = ["optim.epochs=30", "data.test_clips=1", "data.synthetic.samples_per_class=200",
                 "data.synthetic.split_subjects=[6,2,42]"]
"""The demo's changes to `synthetic-j`: 42 test subjects instead of 2 (2016 test samples: a standard error near
one point) beside the same 6 training subjects (288 samples), one test clip and 30 epochs (to stay near three
minutes on 2 cores). It keeps the small ST-GCN: the small CTR-GCN that validation chose for the small real
datasets is twice as slow here and no better at 40 epochs (docs/results.md)."""


def demo_configs(extra: list[str] | None = None) -> dict[str, ExperimentConfig]:
    """The two runs of the demo (the `synthetic-j` experiment with `DEMO_SETTINGS`): CE only, and CE + Inter-ACL
    (FAT) + Intra-ACL."""
    base = DEMO_SETTINGS + (extra or [])
    return {
        "ce": load_config("synthetic-j", base + ["loss.inter.enabled=false", "loss.intra.enabled=false"]),
        "aclnet": load_config("synthetic-j", base),
    }


def family_recovery(families: torch.Tensor, groups: list[list[int]]) -> list[float]:
    """For each confusable group, the share of its ordered within-group pairs (i, j) with j in W(i)."""
    shares = []
    for group in groups:
        pairs = [(i, j) for i in group for j in group if i != j]
        shares.append(sum(bool(families[i, j]) for i, j in pairs) / len(pairs))
    return shares


def group_errors(predicted: np.ndarray, labels: np.ndarray, groups: list[list[int]]) -> tuple[float, float]:
    """The share of samples predicted in their own group, and the share of errors that stay inside a group."""
    group_of = np.empty(max(max(g) for g in groups) + 1, dtype=np.int64)
    for k, group in enumerate(groups):
        group_of[group] = k
    same_group = group_of[predicted] == group_of[labels]
    wrong = predicted != labels
    return float(same_group.mean()), float((wrong & same_group).sum() / max(int(wrong.sum()), 1))


def explain(work_dir: Path, reports: dict[str, dict], groups: list[list[int]]) -> str:
    """What the two runs' numbers mean: where their errors are, how well they fit their training data, and how
    large the difference is against its paired standard error."""
    scores = {name: load_scores(work_dir / name / "test_scores.npz") for name in ("ce", "aclnet")}
    correct = {name: s["scores"].argmax(1) == s["labels"] for name, s in scores.items()}
    n = len(correct["ce"])
    # The difference of two accuracies on the same samples: its standard error counts the discordant samples.
    se = 100.0 * float(np.sqrt((correct["ce"] != correct["aclnet"]).sum())) / n
    difference = reports["aclnet"]["top1"] - reports["ce"]["top1"]
    ratio = abs(difference) / se if se else 0.0
    in_group, inside = zip(*(group_errors(s["scores"].argmax(1), s["labels"], groups) for s in scores.values()))
    fitted = [reports[name].get("train_score", {}).get("value", float("nan")) for name in ("ce", "aclnet")]
    return (
        f"What this means: the Motion Families are the robust result: ACLNet found the confusable classes from "
        f"the classifier's own mistakes. Both runs put {100 * min(in_group):.0f}% of the test samples in the right "
        f"group, and {100 * min(inside):.0f}% of their errors are confusions inside a group, those the families "
        f"are built to separate. On their own training samples they reach {fitted[0]:.0f}% (CE) and {fitted[1]:.0f}% "
        f"(ACLNet): at this CPU budget both still underfit those fine differences. ACLNet - CE = {difference:+.1f} "
        f"points on {n} test samples, {ratio:.1f} times the standard error of the paired difference ({se:.1f}): "
        f"{'more than' if ratio > 2 else 'within'} what the draw of test samples explains. Training from another "
        "seed moves each run by several points more (docs/results.md): rerun with --seed to see it."
    )


def _train_one(name: str, config: ExperimentConfig, work_dir: Path, threads: int) -> dict:
    """One run of the demo in its own process (both runs train side by side on two cores)."""
    from aclnet.engine.run import train
    from aclnet.tasks.registry import make_task

    torch.set_num_threads(threads)
    return train(make_task(config), work_dir, force=True, log=lambda line: print(f"[{name}] {line}", flush=True))


def run_demo(work_dir: Path, *, force: bool = False, extra: list[str] | None = None) -> dict[str, float]:
    """Train both runs, print accuracies and families; returns the accuracies and mean recovery."""
    if work_dir.exists() and any(work_dir.iterdir()) and not force:
        raise InputError(f"{work_dir}: holds an earlier demo; pass --force to replace it")
    configs = demo_configs(extra)
    config = configs["aclnet"]
    syn = config.data.synthetic
    print(f"CE only vs ACLNet on generated skeletons: {syn.num_classes} classes in groups of {syn.group_size} "
          f"confusable classes, {config.optim.epochs} epochs each, seed {config.train.seed}", flush=True)
    results: dict[str, float] = {}
    reports: dict[str, dict] = {}
    labels = {"ce": "CE only", "aclnet": "ACLNet (CE + Inter-ACL with FAT + Intra-ACL)"}
    threads = torch.get_num_threads()
    workers = max(1, min(len(configs), (os.cpu_count() or 1) // threads))
    print(f"{len(configs)} runs, {workers} at a time with {threads} thread(s) each; lines start with the run's "
          "name; the time left they show is the training's: testing both runs adds about half a minute on 2 cores",
          flush=True)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_train_one, name, run_config, work_dir / name, threads): name
                   for name, run_config in configs.items()}
        for future in as_completed(futures):
            name = futures[future]
            report = reports[name] = future.result()
            results[name] = report["top1"]
            print(f"== {labels[name]}: test top-1 {report['top1']:.1f}% ({report['samples']} test samples), "
                  f"run folder {work_dir / name}", flush=True)
    groups = confusable_groups(num_classes=syn.num_classes, group_size=syn.group_size)
    checkpoint = load_checkpoint(RunFolder(work_dir / "aclnet").latest)  # the class names are saved with it
    families = checkpoint["model"]["aux.inter.loss.families"]
    names = [str(name) for name in checkpoint["class_names"]]
    print(f"\ntest top-1: CE only {results['ce']:.1f}%   ACLNet {results['aclnet']:.1f}%")
    print("\nMotion Families learned by ACLNet beside the generator's confusable groups:")
    rows = []
    for i, name in enumerate(names):
        members = [names[j] for j in families[i].nonzero().flatten().tolist() if j != i]
        group = next(g for g in groups if i in g)
        rows.append((name, ", ".join(members) or "-", ", ".join(names[j] for j in group if j != i)))
    widths = [max(len(row[c]) for row in rows + [("class", "Motion Family", "")]) for c in range(2)]
    for name, family, group in [("class", "Motion Family", "group mates"), *rows]:
        print(f"  {name:<{widths[0]}}  {family:<{widths[1]}}  {group}")
    shares = family_recovery(families, groups)
    results["family_recovery"] = sum(shares) / len(shares)
    print(f"\nwithin-group pairs recovered by the families: {100 * results['family_recovery']:.0f}%")
    print("\n" + explain(work_dir, reports, groups))
    print(f"Next: aclnet report {work_dir / 'aclnet'} --baseline {work_dir / 'ce'} --out demo.html   (a page to "
          "look at)\n      aclnet train synthetic-gait-j   (gait recognition)   aclnet configs   (every experiment)")
    return results
