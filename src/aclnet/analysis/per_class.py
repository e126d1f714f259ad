"""Per-class comparison of two runs: the accuracy difference per class (the paper's Fig. 6) and accuracy
by difficulty level (Table X: classes sorted by the baseline's accuracy, groups of 1/12, 1/6, 1/4, 1/2)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from aclnet.engine.evaluation import confusion_matrix, load_aligned_scores, per_class_accuracy  # noqa: E402
from aclnet.errors import InputError  # noqa: E402
from aclnet.fileio import atomic_write_bytes  # noqa: E402

# Cumulative ends of the difficulty groups as fractions of the classes: 1/12, +1/6, +1/4, +1/2.
GROUP_ENDS = (1 / 12, 1 / 4, 1 / 2, 1.0)


def write_figure(fig: Figure, out_png: str | Path, *, force: bool = False) -> Path:
    """Save `fig` as PNG atomically and close it; an existing file is replaced only with `force`."""
    out = Path(out_png)
    if out.exists() and not force:
        plt.close(fig)
        raise InputError(f"{out}: already exists; pass --force to replace it")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(out, buffer.getvalue())
    return out


def _class_accuracy(scores: dict[str, np.ndarray]) -> np.ndarray:
    """Per-class top-1 accuracy in percent (NaN for a class without test samples)."""
    num_classes = scores["scores"].shape[1]
    return 100 * per_class_accuracy(confusion_matrix(scores["scores"].argmax(1), scores["labels"], num_classes))


def per_class_difference(base_scores: str | Path, new_scores: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Class names and the per-class accuracies (%) of two scores files of the same test samples.

    The files must hold the same sample ids in the same order, the same labels and the same classes.
    """
    base, new = load_aligned_scores([base_scores, new_scores])
    return [str(name) for name in base["class_names"]], _class_accuracy(base), _class_accuracy(new)


def _checked(class_names: list[str], base_acc: np.ndarray, new_acc: np.ndarray) -> np.ndarray:
    """Indices of the classes with test samples in both runs; checks that the arrays match the names."""
    base_acc, new_acc = np.asarray(base_acc, dtype=float), np.asarray(new_acc, dtype=float)
    if base_acc.shape != (len(class_names),) or new_acc.shape != base_acc.shape:
        raise InputError(f"per-class accuracies {base_acc.shape} and {new_acc.shape} do not match "
                         f"{len(class_names)} class names")
    return np.flatnonzero(~np.isnan(base_acc) & ~np.isnan(new_acc))


def plot_per_class_difference(class_names: list[str], base_acc: np.ndarray, new_acc: np.ndarray,
                              out_png: str | Path, *, base_label: str = "baseline", new_label: str = "ACLNet",
                              force: bool = False) -> Path:
    """Bar chart of new - base accuracy per class, sorted from the largest gain to the largest loss (Fig. 6)."""
    present = _checked(class_names, base_acc, new_acc)
    diff = (np.asarray(new_acc, dtype=float) - np.asarray(base_acc, dtype=float))[present]
    order = np.argsort(-diff, kind="stable")
    diff, names = diff[order], [class_names[i] for i in present[order]]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.22 * len(names) + 1.5), 4.5))
    ax.bar(np.arange(len(names)), diff, color=np.where(diff >= 0, "tab:green", "tab:red"))
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels(names, rotation=90, fontsize=max(5, min(9, 400 // max(1, len(names)))))
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_xlabel("class (sorted by difference)")
    ax.set_ylabel("accuracy difference (percentage points)")
    ax.set_title(f"Per-class accuracy: {new_label} - {base_label} "
                 f"(mean {diff.mean():+.2f}, {int((diff > 0).sum())} up, {int((diff < 0).sum())} down)")
    ax.grid(axis="y", alpha=0.3)
    return write_figure(fig, out_png, force=force)


def group_ends(num_classes: int) -> list[int]:
    """Cumulative last positions (1-based) of the four difficulty groups: 5, 15, 30, 60 for 60 classes.

    round(C * f) with halves up, for f = 1/12, 1/4, 1/2, 1, raised where needed so that each group keeps
    at least one class (possible from 4 classes on).
    """
    if num_classes < len(GROUP_ENDS):
        raise InputError(f"difficulty levels need at least {len(GROUP_ENDS)} classes with test samples, "
                         f"got {num_classes}")
    ends: list[int] = []
    for fraction in GROUP_ENDS:
        ends.append(max(int(np.floor(num_classes * fraction + 0.5)), (ends[-1] if ends else 0) + 1))
    return ends


def difficulty_levels(base_acc: np.ndarray, new_acc: np.ndarray,
                      class_names: list[str] | None = None) -> list[dict[str, Any]]:
    """Mean accuracy of both runs per difficulty group, classes sorted by the baseline's accuracy (hardest
    first, ties by class index); classes without test samples are left out. Rows: `first`, `last` (1-based
    positions), `classes` (names), `base`, `new`, `difference`."""
    names = class_names if class_names is not None else [str(i) for i in range(len(np.asarray(base_acc)))]
    present = _checked(names, base_acc, new_acc)
    base, new = np.asarray(base_acc, dtype=float)[present], np.asarray(new_acc, dtype=float)[present]
    order = np.argsort(base, kind="stable")
    rows, start = [], 0
    for end in group_ends(len(present)):
        chosen = order[start:end]
        mean_base, mean_new = float(base[chosen].mean()), float(new[chosen].mean())
        rows.append({"first": start + 1, "last": end, "classes": [names[present[i]] for i in chosen],
                     "base": mean_base, "new": mean_new, "difference": mean_new - mean_base})
        start = end
    return rows


def format_difficulty_table(rows: list[dict[str, Any]], *, base_label: str = "baseline",
                            new_label: str = "ACLNet") -> str:
    """The difficulty-level table as text: class positions, count, both mean accuracies and the difference."""
    width = max(len(base_label), len(new_label), 8)
    lines = [f"{'classes':>9}  {'count':>5}  {base_label:>{width}}  {new_label:>{width}}  difference"]
    for row in rows:
        span = f"{row['first']}-{row['last']}"
        lines.append(f"{span:>9}  {len(row['classes']):5d}  {row['base']:{width}.2f}  {row['new']:{width}.2f}"
                     f"  {row['difference']:+10.2f}")
    return "\n".join(lines)
