"""`aclnet analyze`: the paper's analyses of trained runs (Motion Families, per-class differences and
difficulty levels, t-SNE). Handlers raise InputError for bad input; the main CLI turns it into exit 2."""

from __future__ import annotations

import argparse
from pathlib import Path

from aclnet.errors import InputError


def cmd_families(args: argparse.Namespace) -> None:
    """Print each class's Motion Family with affinity weights, family size and temperature."""
    from aclnet.analysis.families import family_table, format_family_table

    print(format_family_table(family_table(args.run_dir)))


def cmd_per_class(args: argparse.Namespace) -> None:
    """Print the difficulty-level table of two runs; optionally plot the per-class differences."""
    from aclnet.analysis.per_class import (
        difficulty_levels,
        format_difficulty_table,
        per_class_difference,
        plot_per_class_difference,
    )

    names, base_acc, new_acc = per_class_difference(args.base_scores, args.new_scores)
    table = format_difficulty_table(difficulty_levels(base_acc, new_acc, names))
    if args.out:  # before printing, so that a refused overwrite prints nothing
        plot_per_class_difference(names, base_acc, new_acc, Path(args.out), force=args.force)
    print(table)
    if args.out:
        print(f"wrote {args.out}")


def parse_epochs(text: str) -> list[int]:
    """'1,10,30' -> [1, 10, 30]; anything else is an InputError naming the option."""
    try:
        epochs = [int(part) for part in text.split(",")]
    except ValueError as exc:
        raise InputError(f"--epochs {text!r}: expected epoch numbers separated by commas, e.g. 1,10,30") from exc
    if any(epoch < 1 for epoch in epochs):
        raise InputError(f"--epochs {text!r}: epochs count from 1")
    return epochs


def cmd_tsne(args: argparse.Namespace) -> None:
    """Plot t-SNE panels of a run's saved test embeddings at the chosen epochs."""
    from aclnet.analysis.tsne import plot_tsne

    out = plot_tsne(args.run_dir, parse_epochs(args.epochs), Path(args.out), max_points=args.max_points,
                    seed=args.seed, force=args.force)
    print(f"wrote {out}")


def add_analyze_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `analyze` with its subcommands to the main parser's subcommands; returns its parser."""
    parser = subparsers.add_parser("analyze", help="the paper's analyses of trained runs")
    sub = parser.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")

    p = sub.add_parser("families", help="Motion Families with class names and affinity weights")
    p.add_argument("run_dir", metavar="RUN", help="run folder (uses best.pt, else latest.pt) or a checkpoint file")
    p.set_defaults(run=cmd_families)

    p = sub.add_parser("per-class", help="per-class accuracy difference (plot) and difficulty-level table")
    p.add_argument("base_scores", metavar="BASE_SCORES", help="scores file of the baseline (test_scores.npz)")
    p.add_argument("new_scores", metavar="NEW_SCORES", help="scores file of the compared run")
    p.add_argument("--out", metavar="FIG.png", help="write the per-class difference bar chart here")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=cmd_per_class)

    p = sub.add_parser("tsne", help="t-SNE of the test embeddings saved at chosen epochs")
    p.add_argument("run_dir", metavar="RUN", help="run folder with embeddings_epochNNN.npz files")
    p.add_argument("--epochs", required=True, help="comma-separated epochs, e.g. 1,10,30")
    p.add_argument("--out", required=True, metavar="FIG.png", help="where to write the plot")
    p.add_argument("--max-points", type=int, default=2000, help="samples drawn per panel (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset and of t-SNE")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=cmd_tsne)
    return parser
