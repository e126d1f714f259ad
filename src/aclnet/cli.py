"""The `aclnet` command line: each subcommand parses its arguments and calls the library.

Bad input (files, configuration, values) ends with a message naming the problem and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import unicodedata
import warnings
from pathlib import Path

from aclnet import __version__, plain_yaml
from aclnet.engine.run_folder import LATEST
from aclnet.errors import InputError, TrainingInterrupted, TrainingStopped


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise InputError(f"{path}: already exists; pass --force to replace it")


def cmd_prepare(args: argparse.Namespace) -> None:
    """Convert a dataset in one of the known formats into one PYSKL-layout annotation file.

    OUTPUT is checked before the (possibly long) read: not a folder, not under a file, in a folder this
    user may write. Refused after the read: no valid sample, repeated sample ids, and a joint count
    that matches no built-in layout without a `layout` option (every file written here can be read
    back by `aclnet inspect` and `aclnet prepare pyskl`).
    """
    import os

    from aclnet.data.annotations import UNKNOWN_LAYOUT, write_annotations
    from aclnet.data.formats import read_format

    out = Path(args.output)
    if out.is_dir():
        raise InputError(f"{out}: is a folder; give the annotation file to write, e.g. {out / 'annotations.pkl'}")
    _refuse_overwrite(out, args.force)
    folder = out.parent
    while not folder.exists() and folder != folder.parent:  # the folders that do not exist yet are made
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"{out}: cannot write there: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{out}: cannot write there: no permission to write in the folder {folder}")
    options = _reader_options(args.option)
    if args.variant:
        options["variant"] = args.variant
    sample_set = read_format(args.format, args.source, **options)
    samples = sample_set.samples
    if not samples:
        raise InputError(f"{args.source}: nothing valid to write: no sample was read")
    seen: set[str] = set()
    for sample in samples:
        if sample.sample_id in seen:
            raise InputError(f"{args.source}: sample id '{sample.sample_id}' occurs twice; sample ids must be unique")
        seen.add(sample.sample_id)
    if sample_set.layout == UNKNOWN_LAYOUT:
        joints = samples[0].keypoint.shape[2]
        raise InputError(
            f"{args.source}: the samples have {joints} joints, which matches no built-in layout, so the layout "
            "cannot be guessed; give it: --option layout=NAME (a built-in layout with that many joints) or "
            "--option layout=FILE.yaml (your own layout file)"
        )
    try:
        write_annotations(sample_set, out, force=args.force)
    except OSError as exc:
        raise InputError(f"{out}: cannot write ({exc.strerror or exc})") from None
    splits = ", ".join(f"{k} {len(v)}" for k, v in sample_set.splits.items())
    print(f"wrote {out}: {len(samples)} samples, {sample_set.num_classes} classes, "
          f"layout {sample_set.layout}; splits: {splits}")


def _reader_options(items: list[str]) -> dict:
    """`KEY=VALUE` reader options. Values of options that are paths, names or patterns (label_file,
    keypoint_dir, label_dir, layout, name_pattern, variant) are kept as text; others are parsed as YAML
    (numbers, booleans, lists); the reader checks their types (skip_invalid must be true or false)."""
    import yaml

    from aclnet.data.formats import PATH_OPTIONS, TEXT_OPTIONS

    options: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise InputError(f"--option {item!r}: expected KEY=VALUE, e.g. keypoint_dir=kpfiles")
        if key in PATH_OPTIONS or key in TEXT_OPTIONS:
            if not text:
                raise InputError(f"--option {key}=: expected a value, e.g. {key}=NAME")
            options[key] = text
            continue
        try:
            options[key] = plain_yaml.load(text)
        except (yaml.YAMLError, RecursionError) as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"--option {key}: the value is not valid YAML ({problem})") from None
    return options


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
    names = sample_set.classes
    label = matches[0].label
    animate_sample(matches[0], get_layout(sample_set.layout), out,
                   class_name=names[label] if names is not None and 0 <= label < len(names) else str(label))
    print(f"wrote {out}")


def _load_config(args: argparse.Namespace):
    from aclnet.config import load_config

    return load_config(args.config, args.set)


def cmd_train(args: argparse.Namespace) -> None:
    """Train an experiment, then test the chosen checkpoint."""
    from aclnet.engine.run import train
    from aclnet.tasks.registry import make_task

    task = make_task(_load_config(args))
    work_dir = Path(args.work_dir or Path("work_dirs") / task.config.name)
    report = train(task, work_dir, resume=args.resume, force=args.force, allow_changes=tuple(args.allow_change),
                   log=lambda line: print(line, flush=True))
    if report:
        print(task.summary(report))
        fitted = report.get("train_score")
        if fitted is not None:
            print(f"on {fitted['samples']} training samples: {fitted['metric']} {fitted['value']:.2f} "
                  f"(chance {fitted['chance']:.2f})")
        print(f"run in {work_dir}")


def cmd_test(args: argparse.Namespace) -> None:
    """Test a checkpoint (several clips), optionally with a body part occluded."""
    from aclnet.analysis.occlusion import occlusion_table, test_occluded
    from aclnet.engine.run import test
    from aclnet.tasks.registry import make_task

    task = make_task(_load_config(args))
    checkpoint = Path(args.checkpoint)
    out = Path(args.out) if args.out else None
    if args.occlude == "all":
        print(occlusion_table(task, checkpoint, clips=args.clips))
        return
    if args.occlude is not None:
        report = test_occluded(task, checkpoint, args.occlude, clips=args.clips, scores_out=out, force=args.force)
    else:
        report = test(task, checkpoint, clips=args.clips, scores_out=out, force=args.force)
    print(task.summary(report))
    matrix = report.get("confusion_matrix")
    if matrix is not None and len(matrix) <= 30:
        print("confusion matrix (rows: true class, columns: predicted):")
        print("\n".join(" ".join(f"{n:4d}" for n in row) for row in matrix))
    if out is not None and out.exists():
        print(f"wrote {out}")


def cmd_baseline(args: argparse.Namespace) -> None:
    """Score the non-learned bone-length baseline on a retrieval experiment's protocol (no training)."""
    from aclnet.tasks.baseline import baseline_report
    from aclnet.tasks.registry import make_task

    task = make_task(_load_config(args))
    report = baseline_report(task)
    print(task.summary(report))
    if args.out:
        from aclnet.fileio import atomic_write_bytes

        out = Path(args.out)
        if out.exists() and not args.force:
            raise InputError(f"{out}: already exists; pass --force to replace it")
        atomic_write_bytes(out, (json.dumps(report, indent=2) + "\n").encode())
        print(f"wrote {out}")


def _weights(text: str | None) -> list[float] | None:
    """`--weights 2,2,1,1` as numbers (None when not given)."""
    if not text:
        return None
    try:
        return [float(w) for w in text.split(",")]
    except ValueError as exc:
        raise InputError(f"--weights {text!r}: expected numbers separated by commas") from exc


def cmd_ensemble(args: argparse.Namespace) -> None:
    """Fuse the softmax scores of several streams with weights."""
    from aclnet.engine.ensemble import ensemble

    values, _ = ensemble(args.scores, _weights(args.weights))
    print("ensemble: " + "  ".join(f"{k} {v:.2f}" for k, v in values.items()))


def cmd_train_streams(args: argparse.Namespace) -> None:
    """Train several streams of a template one after another (resumably), then fuse their scores."""
    from aclnet.engine.streams import train_streams
    from aclnet.tasks.registry import make_task

    streams = [s for s in args.streams.split(",") if s]
    work_dir = Path(args.work_dir or Path("work_dirs") / args.template)
    report = train_streams(args.template, streams, work_dir, make_task, overrides=args.set,
                           weights=_weights(args.weights))
    weights = ":".join(f"{w:g}" for w in report["weights"])
    values = "  ".join(f"{k} {v:.2f}" for k, v in report["ensemble"].items())
    print(f"{len(streams)}-stream ensemble ({','.join(streams)} at {weights}): {values}")
    print(f"runs and ensemble.json in {work_dir}")


def cmd_configs(args: argparse.Namespace) -> None:
    """List the shipped experiments, or print one fully expanded as YAML."""
    from aclnet.config import list_configs

    if args.name is None:
        print("\n".join(list_configs()))
        return
    import yaml

    from aclnet.config import config_as_dict, load_config
    from aclnet.tasks.components import pipeline_steps

    config = load_config(args.name)
    expanded = config_as_dict(config)
    expanded["data"]["pipeline"] = pipeline_steps(config)  # the steps that run, parameters as configured
    print(yaml.safe_dump(expanded, sort_keys=False), end="")


def cmd_convert_checkpoint(args: argparse.Namespace) -> None:
    """Turn a checkpoint of the authors' release (mmcv dict) into this project's format."""
    from aclnet.engine.checkpoint import read_torch_file, save_checkpoint
    from aclnet.models.convert import convert_released_checkpoint

    out = Path(args.output)
    _refuse_overwrite(out, args.force)
    state = convert_released_checkpoint(read_torch_file(args.released), layout=args.layout)
    save_checkpoint(out, {"model": state, "converted_from": str(args.released)})
    print(f"wrote {out}: {len(state)} tensors; test it with `aclnet test CONFIG --checkpoint {out}`")


def cmd_demo(args: argparse.Namespace) -> None:
    """CE only and full ACLNet on the generated data, same budget; families vs confusable groups."""
    from aclnet.tasks.demo import run_demo

    run_demo(Path(args.work_dir), force=args.force, extra=[f"train.seed={args.seed}"])


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
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="reader option, e.g. skip_invalid=true, keypoint_dir=DIR, label_file=F, num_person=2")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(run=cmd_prepare)

    p = sub.add_parser("inspect", help="summarise an annotation file, optionally animate a sample")
    p.add_argument("file", help="annotation file (.pkl)")
    p.add_argument("--layout", help="layout name or file to check the joint count against")
    p.add_argument("--show", metavar="SAMPLE_ID", help="draw this sample as an animation")
    p.add_argument("--out", metavar="FILE.gif", help="where to write the animation (default SAMPLE_ID.gif)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=cmd_inspect)

    def threads(p: argparse.ArgumentParser) -> None:
        p.add_argument("--threads", type=_positive_int, metavar="N",
                       help="CPU threads of torch (default: the cores other processes leave idle, at least 1)")

    def experiment(p: argparse.ArgumentParser) -> None:
        p.add_argument("config", help="shipped experiment name (see `aclnet configs`) or a YAML file")
        p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                       help="override configuration values, e.g. optim.lr=0.05 loss.inter.k=5 (every --set counts)")
        threads(p)

    p = sub.add_parser("train", help="train an experiment and test the chosen checkpoint")
    experiment(p)
    p.add_argument("--work-dir", help="run folder (default work_dirs/NAME)")
    p.add_argument("--resume", action="store_true", help=f"continue the run in --work-dir from {LATEST}")
    p.add_argument("--allow-change", nargs="+", default=[], metavar="KEY",
                   help="with --resume: configuration keys that may differ from the run's (e.g. train.val_interval)")
    p.add_argument("--force", action="store_true", help="replace an earlier run in --work-dir")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("test", help="test a checkpoint on the test split")
    experiment(p)
    p.add_argument("--checkpoint", required=True, help="checkpoint file (.pt)")
    p.add_argument("--clips", type=_positive_int, help="clips per sample (default data.test_clips)")
    p.add_argument("--out", metavar="SCORES.npz", help="write the scores for `aclnet ensemble`")
    p.add_argument("--occlude", metavar="PART",
                   help="zero a body part's joints (left_arm, right_arm, hands, legs, trunk) or 'all' for a table")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=cmd_test)

    p = sub.add_parser("baseline", help="gait/re-ID: the bone-length nearest-neighbour baseline (no training)",
                       description="Score the non-learned baseline on a gait or re-identification experiment's "
                                   "protocol: each sequence's median bone lengths (over their sum for 2D pixel "
                                   "data), z-scored on the training sequences, nearest neighbour by Euclidean "
                                   "distance; the same metrics as `aclnet test`.")
    experiment(p)
    p.add_argument("--out", metavar="REPORT.json", help="write the baseline's report")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=cmd_baseline)

    p = sub.add_parser("ensemble", help="fuse several streams' scores")
    p.add_argument("scores", nargs="+", help="scores files written by `aclnet test --out`")
    p.add_argument("--weights", help="comma-separated weights, e.g. 2,2,1,1 (default equal)")
    p.set_defaults(run=cmd_ensemble)

    p = sub.add_parser("train-streams", help="train several streams one after another, then fuse their scores")
    p.add_argument("template", help="template of the experiments, e.g. ntu60-xsub (streams give ntu60-xsub-j, ...)")
    p.add_argument("--streams", required=True, help="comma-separated streams, e.g. j,b,jm,bm or j,b,k,jm,bm,km")
    p.add_argument("--weights", help="comma-separated fusion weights (default: the paper's 1:1, 2:2:1:1, "
                                     "2:2:2:1:1:1 for its stream sets, else equal)")
    p.add_argument("--work-dir", help="folder of the stream runs (default work_dirs/TEMPLATE)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="overrides applied to every stream (every --set counts)")
    threads(p)
    p.set_defaults(run=cmd_train_streams)

    p = sub.add_parser("convert-checkpoint", help="convert a checkpoint of the authors' release")
    p.add_argument("released", help="released checkpoint (.pth, mmcv layout with state_dict)")
    p.add_argument("output", help="checkpoint to write (.pt)")
    p.add_argument("--layout", default="nturgb+d", help="layout the model was trained on (default nturgb+d)")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(run=cmd_convert_checkpoint)

    p = sub.add_parser("configs", help="list the shipped experiments, or print one fully expanded")
    p.add_argument("name", nargs="?", help="experiment (or YAML file) to print as YAML with every default and "
                   "its pipeline as the explicit step list")
    p.set_defaults(run=cmd_configs)

    from aclnet.analysis.commands import add_analyze_parser

    add_analyze_parser(sub)
    from aclnet.analysis.report import add_report_parser
    from aclnet.inference.export import add_export_parser
    from aclnet.inference.predict import add_predict_parser

    add_predict_parser(sub)
    add_export_parser(sub)
    add_report_parser(sub)

    p = sub.add_parser("demo", help="CE vs ACLNet on generated data (a few minutes on a CPU)")
    p.add_argument("--work-dir", default="work_dirs/demo", help="where the two runs go")
    p.add_argument("--force", action="store_true", help="replace an earlier demo in --work-dir")
    p.add_argument("--seed", type=int, default=0, help="seed of both runs (default 0)")
    p.add_argument("--threads", type=_positive_int, default=1, metavar="N",
                   help="CPU threads of torch (default 1: the same numbers on every run of the demo)")
    p.set_defaults(run=cmd_demo)
    return parser


def _resume_command(command: str, argv: list[str]) -> list[str]:
    """The arguments that continue an interrupted command: `train` with --resume (and without --force, which
    would start over); `train-streams` resumes by itself."""
    if command != "train":
        return argv
    return [a for a in argv if a != "--force"] + ([] if "--resume" in argv else ["--resume"])


def printable(text: str) -> str:
    """`text` with control characters (terminal escape codes a file name or a value may carry) written as
    escapes; line breaks and tabs stay."""
    return "".join(c if c in "\n\t" or unicodedata.category(c)[0] != "C" else repr(c)[1:-1] for c in text)


_WARNED: set[str] = set()


def _plain_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                   line: str | None = None) -> str:
    """A warning as one line, without the source line Python shows by default, and once per run whichever
    code raises it again (the test builds the model a second time)."""
    text = printable(str(message))
    if text in _WARNED:
        return ""
    _WARNED.add(text)
    return f"aclnet: warning: {text}\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `aclnet` command; returns the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    warnings.formatwarning = _plain_warning
    if hasattr(args, "threads"):
        from aclnet.engine.distributed import set_threads

        set_threads(args.threads)
    try:
        args.run(args)
    except InputError as exc:
        print(f"aclnet {args.command}: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except TrainingStopped as exc:
        print(f"aclnet {args.command}: stopped: {exc}", file=sys.stderr)
        return 1
    except TrainingInterrupted as exc:
        again = shlex.join(["aclnet", *_resume_command(args.command, argv)])
        print(f"aclnet {args.command}: {exc}; {LATEST} holds this position. Continue with: {again}",
              file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        if args.command in ("train", "train-streams"):
            print(f"aclnet {args.command}: interrupted. A training run keeps the checkpoint of its last finished "
                  f"epoch ({LATEST}); continue it with the same command and --resume", file=sys.stderr)
        else:  # every file is written atomically: an interrupted command leaves none half-written
            print(f"aclnet {args.command}: interrupted; nothing was written that was not complete", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `aclnet configs | head`: the reader has gone, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
