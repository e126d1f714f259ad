"""The `aclnet` command line: each subcommand parses its arguments and calls the library.

Bad input (files, configuration, values) ends with a message naming the problem and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aclnet import __version__
from aclnet.errors import InputError


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise InputError(f"{path}: already exists; pass --force to replace it")


def cmd_prepare(args: argparse.Namespace) -> None:
    """Convert a dataset in one of the known formats into one PYSKL-layout annotation file."""
    from aclnet.data.annotations import write_annotations
    from aclnet.data.formats import read_format

    out = Path(args.output)
    _refuse_overwrite(out, args.force)
    options = {"variant": args.variant} if args.variant else {}
    if args.variant and args.format != "ntu":
        raise InputError("--variant applies to the 'ntu' format only")
    sample_set = read_format(args.format, args.source, **options)
    write_annotations(sample_set, out, force=args.force)
    splits = ", ".join(f"{k} {len(v)}" for k, v in sample_set.splits.items())
    print(f"wrote {out}: {len(sample_set.samples)} samples, {sample_set.num_classes} classes, "
          f"layout {sample_set.layout}; splits: {splits}")


def cmd_inspect(args: argparse.Namespace) -> None:
    """Print a summary of an annotation file; optionally animate one sample."""
    from aclnet.data.annotations import read_annotations
    from aclnet.data.summary import summarize

    sample_set, problems = read_annotations(args.file, skip_invalid=True, layout=args.layout)
    print(summarize(sample_set, problems))
    if args.show is None:
        if args.out is not None:
            raise InputError("--out needs --show SAMPLE_ID")
        return
    from aclnet.analysis.animation import animate_sample
    from aclnet.skeleton import get_layout

    matches = [s for s in sample_set.samples if s.sample_id == args.show]
    if not matches:
        raise InputError(f"{args.file}: no valid sample with id '{args.show}'")
    out = Path(args.out or f"{args.show}.gif")
    _refuse_overwrite(out, args.force)
    animate_sample(matches[0], get_layout(sample_set.layout), out)
    print(f"wrote {out}")


def build_parser() -> argparse.ArgumentParser:
    from aclnet.data.formats import FORMATS

    parser = argparse.ArgumentParser(
        prog="aclnet", description="ACLNet: affinity contrastive learning for skeleton-based activity understanding."
    )
    parser.add_argument("--version", action="version", version=f"aclnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("prepare", help="convert a dataset into a PYSKL-layout annotation file")
    p.add_argument("format", choices=list(FORMATS), metavar="FORMAT", help=f"one of: {', '.join(FORMATS)}")
    p.add_argument("source", help="the dataset's file or folder")
    p.add_argument("output", help="annotation file to write (.pkl)")
    p.add_argument("--variant", choices=["ntu60", "ntu120"], help="NTU only: override the detected variant")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(run=cmd_prepare)

    p = sub.add_parser("inspect", help="summarise an annotation file, optionally animate a sample")
    p.add_argument("file", help="annotation file (.pkl)")
    p.add_argument("--layout", help="layout name or file to check the joint count against")
    p.add_argument("--show", metavar="SAMPLE_ID", help="draw this sample as an animation")
    p.add_argument("--out", metavar="FILE.gif", help="where to write the animation (default SAMPLE_ID.gif)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=cmd_inspect)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `aclnet` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except InputError as exc:
        print(f"aclnet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
