"""`aclnet predict`: run a trained checkpoint on new sequences.

    aclnet predict CHECKPOINT INPUT... [--format F] [--top-k K] [--out FILE] [--force]
    aclnet predict CHECKPOINT INPUT... --window N [--stride S] [--out FILE.csv|.json]
    aclnet predict GAIT_CHECKPOINT INPUT... [--gallery FILE] [--out FILE.json|.csv|.npz]
    aclnet predict CHECKPOINT VIDEO [--window N] --overlay OUT.mp4|.gif

An action checkpoint prints each input's top-k classes with probabilities (`--out` .json or .csv). With
`--window N` it classifies a window of N frames every S frames (default S = N // 2) of each sequence and
prints the runs of windows with the same class; `--out` gets every window (input, window, start_frame,
end_frame (included), class, probability) and a plot beside it (same name, `.png`). A gait or
re-identification checkpoint prints each input's embedding dimension and norm (`--out` .json or .csv: the
L2-normalised embeddings; `.npz`: a gallery file of embeddings, identities and names); with `--gallery` (such
an `.npz`, or a file or folder of gallery sequences whose identities are their samples' classes) it prints the
nearest top-k identities with their distances. Videos are inputs too (through BlazePose, in the model's layout);
`--overlay` draws the skeleton and the answer on one video's frames. Inputs and their rules:
`aclnet.inference.inputs`. Existing output files are replaced only with `--force`. Handlers raise InputError
for bad input; the main CLI turns it into exit 2.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aclnet.errors import InputError

if TYPE_CHECKING:
    from aclnet.data.pose_estimator import VideoPoses
    from aclnet.inference.inputs import InputSequence


def add_predict_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `predict` to the main parser's subcommands; returns its parser."""
    from aclnet.data.formats import FORMATS
    from aclnet.inference.inputs import ARRAY_FORMAT

    formats = [ARRAY_FORMAT, *FORMATS]
    parser = subparsers.add_parser(
        "predict", help="classify (or embed) new sequences with a trained checkpoint",
        description="Classify new skeleton sequences with a trained checkpoint (action), or embed them and match "
                    "them against a gallery (gait, re-identification).",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint (.pt) or run folder")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="file or folder of any `prepare` format, or plain arrays: .npy/.npz (M x T x V x C or "
                             "T x V x C), .csv/.txt (one frame per row: V*C numbers, optional header, optional "
                             "leading frame-index column)")
    parser.add_argument("--format", choices=formats, metavar="FORMAT",
                        help=f"format of the inputs (default: guessed); one of: {', '.join(formats)}")
    parser.add_argument("--top-k", type=int, default=5, metavar="K", help="classes (or identities) per input")
    parser.add_argument("--out", metavar="FILE",
                        help="write the results: .json or .csv (gait/re-ID also .npz: a gallery file)")
    parser.add_argument("--window", type=int, metavar="N", help="classify a sliding window of N frames")
    parser.add_argument("--stride", type=int, metavar="S", help="frames between windows (default N // 2)")
    parser.add_argument("--gallery", metavar="FILE",
                        help="gait/re-ID: match against this gallery (.npz from `predict --out`, or sequences)")
    parser.add_argument("--overlay", metavar="FILE",
                        help="one video input: write its frames with the skeleton and the prediction (or timeline) "
                             "drawn on them, .mp4 or .gif")
    parser.add_argument("--force", action="store_true", help="replace --out (and its plot) if it exists")
    parser.set_defaults(run=cmd_predict)
    return parser


def cmd_predict(args: argparse.Namespace) -> None:
    """Run the checkpoint on the inputs; print a table and write `--out`."""
    from aclnet.engine.retrieval import normalised_rows
    from aclnet.inference.loading import load
    from aclnet.inference.results import Gallery

    _check_numbers(args)
    out = Path(args.out) if args.out else None
    model = load(args.checkpoint)
    embeds = model.output == "embeddings"
    if args.window is not None:
        if embeds:
            raise InputError("--window needs a checkpoint that predicts classes; this one is a "
                             f"{model.task.name} checkpoint (it embeds sequences)")
        if args.gallery is not None:
            raise InputError("--gallery is for checkpoints that embed sequences (gait, re-identification), "
                             "not with --window")
    elif args.gallery is not None and not embeds:
        raise InputError(f"--gallery needs a checkpoint that embeds sequences (gait, re-identification); this one "
                         f"is a {model.task.name} checkpoint (it predicts classes)")
    if out is not None:
        kind = "npz" if embeds and args.gallery is None and args.window is None else None
        allowed = (".json", ".csv", ".npz") if kind else (".json", ".csv")
        if out.suffix.lower() not in allowed:
            raise InputError(f"--out {out}: the file type is given by its suffix, one of {', '.join(allowed)}")
        targets = [out, out.with_suffix(".png")] if args.window is not None else [out]
        for target in targets:
            if target.exists() and not args.force:
                raise InputError(f"{target}: already exists; pass --force to replace it")
    overlay = _Overlay.start(args, model) if args.overlay else None
    sequences = overlay.sequences if overlay else model.sequences(list(args.inputs), format=args.format)
    _note_short(model, sequences, args.window)
    if args.window is not None:
        stride = args.stride or max(1, args.window // 2)
        timelines = model.timeline(sequences, window=args.window, stride=stride)
        print(format_timelines(timelines))
        if out is not None:
            write_timelines(timelines, out)
            plot = plot_timelines(timelines, out.with_suffix(".png"))
            print(f"wrote {out} and {plot}")
        if overlay:
            frames = timelines[0].frame_probabilities()
            overlay.finish([f"{timelines[0].classes[k]} {p[k]:.2f}" for p, k in zip(frames, frames.argmax(1))])
        return
    if not embeds:
        predictions = model.predict(sequences, top_k=args.top_k)
        print(format_predictions(predictions))
        if out is not None:
            write_predictions(predictions, out, model)
            print(f"wrote {out}")
        if overlay:
            top = predictions[0].top_k[0]
            overlay.finish([f"{top.name} {top.probability:.2f}"] * overlay.poses.num_frames)
        return
    features = model.embed(sequences, normalize=False)
    embeddings = normalised_rows(features)
    names = [s.name for s in sequences]
    if args.gallery is None:
        print(format_embeddings(names, features))
        if out is not None:
            identities = [s.identity or s.name for s in sequences]
            write_embeddings(names, identities, embeddings, out, model)
            print(f"wrote {out}")
        if overlay:
            overlay.finish([""] * overlay.poses.num_frames)
        return
    gallery_path = Path(args.gallery)
    if gallery_path.suffix.lower() == ".npz" and _holds_embeddings(gallery_path):
        gallery = Gallery.load(gallery_path)
    else:
        gallery = model.gallery(str(gallery_path))
    matches = gallery.match(embeddings, top_k=args.top_k)
    print(format_matches(names, matches))
    if out is not None:
        write_matches(names, matches, out)
        print(f"wrote {out}")
    if overlay:
        nearest = matches[0][0]
        overlay.finish([f"{nearest.identity} (distance {nearest.distance:.2f})"] * overlay.poses.num_frames)


@dataclass
class _Overlay:
    """The one video of `--overlay`: its poses (kept for drawing), the layout they were read in, the sequence."""

    path: Path
    poses: VideoPoses
    layout: str
    sequences: list[InputSequence]

    @classmethod
    def start(cls, args: argparse.Namespace, model: Any) -> _Overlay:
        """Check `--overlay` and its input, then read the video's poses (once: for the model and the drawing)."""
        from aclnet.data.formats.video import model_options, video_sample
        from aclnet.data.pose_estimator import extract_poses
        from aclnet.data.video_frames import VIDEO_SUFFIXES, is_video
        from aclnet.inference.inputs import InputSequence
        from aclnet.inference.overlay import check_overlay_path

        path = Path(args.overlay)
        check_overlay_path(path, args.force)
        video = Path(args.inputs[0])
        if len(args.inputs) != 1 or not is_video(video) or args.format not in (None, "video"):
            raise InputError(f"--overlay draws on one video: give one video file ({', '.join(VIDEO_SUFFIXES)}) as "
                             f"the only input, got {' '.join(args.inputs)}")
        options = model_options(model.layout.num_joints, model.keypoint_channels)
        poses = extract_poses(video)
        print(f"{video}: {poses.num_frames} frames, {poses.frames_without_person} without a person", file=sys.stderr)
        sample = video_sample(poses, video.stem, **options)
        return cls(path, poses, options["layout"], model.sequences([InputSequence(video.name, sample)]))

    def finish(self, labels: list[str]) -> None:
        """Draw the skeleton and one label per frame on the video's frames and write the overlay."""
        from aclnet.inference.overlay import write_overlay

        write_overlay(self.poses, self.layout, labels, self.path)
        print(f"wrote {self.path}")


def _check_numbers(args: argparse.Namespace) -> None:
    """The numeric options and their combinations."""
    for option, value in (("--top-k", args.top_k), ("--window", args.window), ("--stride", args.stride)):
        if value is not None and value < 1:
            raise InputError(f"{option} must be >= 1, got {value}")
    if args.stride is not None and args.window is None:
        raise InputError("--stride needs --window N")


def _holds_embeddings(path: Path) -> bool:
    """Whether an archive holds a gallery's embeddings (its member names only; `Gallery.load` checks the rest)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "embeddings.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: cannot read as a NumPy .npz archive ({exc})") from exc


def _note_short(model: Any, sequences: Sequence[Any], window: int | None) -> None:
    """Say on stderr when sequences (or windows) are shorter than the pipeline's clip, and what happens."""
    clip = model.clip_length
    if clip is None:
        return
    if window is not None:
        if window < clip:
            print(f"note: windows of {window} frames are shorter than the model's {clip}-frame clips; "
                  f"{model.short_sequence_rule}", file=sys.stderr)
        return
    short = [s.name for s in sequences if s.sample.num_frames < clip]
    if short:
        names = ", ".join(short[:3]) + (f" and {len(short) - 3} more" if len(short) > 3 else "")
        print(f"note: {names}: fewer frames than the model's {clip}-frame clips; {model.short_sequence_rule}",
              file=sys.stderr)


# ---------------------------------------------------------------------------------------------------------
# Tables on screen
# ---------------------------------------------------------------------------------------------------------


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, separated by two spaces."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def format_predictions(predictions: Sequence[Any]) -> str:
    """input, then each of the top-k classes with its probability."""
    k = max(len(p.top_k) for p in predictions)
    rows = [[p.input, *(f"{c.name} {c.probability:.3f}" for c in p.top_k)] for p in predictions]
    return format_table(["input", *(f"top-{i + 1}" for i in range(k))], [r + [""] * (k + 1 - len(r)) for r in rows])


def format_embeddings(names: Sequence[str], features: np.ndarray) -> str:
    """input, embedding dimension and norm (of the averaged features, before L2 normalisation)."""
    rows = [[name, str(features.shape[1]), f"{np.linalg.norm(f):.4f}"] for name, f in zip(names, features)]
    return format_table(["input", "dimension", "norm"], rows) + "\n(embeddings are L2-normalised in --out files)"


def format_matches(names: Sequence[str], matches: Sequence[Sequence[Any]]) -> str:
    """input, then the nearest identities with distances."""
    k = max(len(m) for m in matches)
    rows = [[name, *(f"{m.identity} {m.distance:.4f}" for m in found)] + [""] * (k - len(found))
            for name, found in zip(names, matches)]
    return format_table(["input", *(f"rank-{i + 1}" for i in range(k))], rows)


def format_timelines(timelines: Sequence[Any]) -> str:
    """Per input, the runs of consecutive windows with the same class: frames, class, mean probability."""
    blocks = []
    for tl in timelines:
        windows = tl.windows
        head = (f"{tl.input}: {tl.num_frames} frames, {len(windows)} window(s) of {tl.window} frames, "
                f"stride {tl.stride}")
        rows = []
        first = 0
        for i in range(1, len(windows) + 1):
            if i == len(windows) or windows[i].index != windows[first].index:
                run = windows[first:i]
                mean = float(np.mean([w.probability for w in run]))
                rows.append([f"{run[0].start}-{run[-1].end}", run[0].label, f"{mean:.3f}", str(len(run))])
                first = i
        blocks.append(head + "\n" + format_table(["frames", "class", "mean p", "windows"], rows))
    return "\n\n".join(blocks)


# ---------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------


def _write_json(path: Path, payload: Any) -> None:
    from aclnet.fileio import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(payload, indent=2) + "\n").encode())


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    from aclnet.fileio import atomic_write_csv

    atomic_write_csv(path, columns, rows)


def write_predictions(predictions: Sequence[Any], path: Path, model: Any) -> None:
    """JSON: checkpoint, task and per input its top-k; CSV: one row per (input, rank)."""
    if path.suffix.lower() == ".json":
        _write_json(path, {"checkpoint": str(model.source), "task": model.task.name, "predictions": [
            {"input": p.input, "top_k": [{"class": c.name, "index": c.index, "probability": c.probability}
                                         for c in p.top_k]} for p in predictions]})
        return
    rows = [{"input": p.input, "rank": r + 1, "class": c.name, "index": c.index, "probability": f"{c.probability:.6f}"}
            for p in predictions for r, c in enumerate(p.top_k)]
    _write_csv(path, ["input", "rank", "class", "index", "probability"], rows)


def write_embeddings(names: Sequence[str], identities: Sequence[str], embeddings: np.ndarray, path: Path,
                     model: Any) -> None:
    """JSON: per input its identity and embedding; CSV: input, identity, e0..e{D-1}; NPZ: a gallery file."""
    from aclnet.inference.results import Gallery

    suffix = path.suffix.lower()
    if suffix == ".npz":
        Gallery(embeddings, list(identities), list(names)).save(path)
    elif suffix == ".json":
        _write_json(path, {"checkpoint": str(model.source), "task": model.task.name,
                           "dimension": int(embeddings.shape[1]), "embeddings": [
                               {"input": n, "identity": i, "embedding": [float(x) for x in e]}
                               for n, i, e in zip(names, identities, embeddings)]})
    else:
        columns = ["input", "identity", *(f"e{j}" for j in range(embeddings.shape[1]))]
        rows = [{"input": n, "identity": i, **{f"e{j}": repr(float(x)) for j, x in enumerate(e)}}
                for n, i, e in zip(names, identities, embeddings)]
        _write_csv(path, columns, rows)


def write_matches(names: Sequence[str], matches: Sequence[Sequence[Any]], path: Path) -> None:
    """JSON: per input its ranked identities; CSV: one row per (input, rank)."""
    if path.suffix.lower() == ".json":
        _write_json(path, {"matches": [
            {"input": n, "matches": [{"rank": r + 1, "identity": m.identity, "distance": m.distance,
                                      "sequence": m.sequence} for r, m in enumerate(found)]}
            for n, found in zip(names, matches)]})
        return
    rows = [{"input": n, "rank": r + 1, "identity": m.identity, "distance": f"{m.distance:.6f}", "sequence": m.sequence}
            for n, found in zip(names, matches) for r, m in enumerate(found)]
    _write_csv(path, ["input", "rank", "identity", "distance", "sequence"], rows)


TIMELINE_COLUMNS = ["input", "window", "start_frame", "end_frame", "class", "index", "probability"]


def write_timelines(timelines: Sequence[Any], path: Path) -> None:
    """CSV: one row per window (`TIMELINE_COLUMNS`, end_frame included); JSON: per input its windows."""
    if path.suffix.lower() == ".json":
        _write_json(path, {"timelines": [
            {"input": tl.input, "num_frames": tl.num_frames, "window": tl.window, "stride": tl.stride,
             "windows": [{"start_frame": w.start, "end_frame": w.end, "class": w.label, "index": w.index,
                          "probability": w.probability} for w in tl.windows]} for tl in timelines]})
        return
    rows = [{"input": tl.input, "window": i, "start_frame": w.start, "end_frame": w.end, "class": w.label,
             "index": w.index, "probability": f"{w.probability:.6f}"}
            for tl in timelines for i, w in enumerate(tl.windows)]
    _write_csv(path, TIMELINE_COLUMNS, rows)


def plot_timelines(timelines: Sequence[Any], path: Path) -> Path:
    """One panel per input: each window a horizontal bar from its start to its end frame at the height of its
    class, coloured by the class's probability. Returns `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aclnet.fileio import atomic_write_bytes

    shown = timelines[:12]
    heights = [1.0 + 0.3 * len({w.index for w in tl.windows}) for tl in shown]
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 0.6 + sum(heights)), squeeze=False, layout="constrained",
                             gridspec_kw={"height_ratios": heights})
    cmap = plt.get_cmap("viridis")
    for ax, tl in zip(axes[:, 0], shown):
        windows = tl.windows
        used = sorted({w.index for w in windows})
        level = {k: i for i, k in enumerate(used)}
        for w in windows:
            ax.hlines(level[w.index], w.start, w.end + 1, colors=[cmap(w.probability)], linewidth=6)
        ax.set_yticks(range(len(used)), [tl.classes[k] for k in used], fontsize=8)
        ax.set_ylim(-0.6, len(used) - 0.4)
        ax.set_xlim(0, tl.num_frames)
        ax.set_title(f"{tl.input} (window {tl.window}, stride {tl.stride})", fontsize=9)
    axes[-1, 0].set_xlabel("frame")
    fig.colorbar(plt.cm.ScalarMappable(norm=plt.Normalize(0, 1), cmap=cmap), ax=axes[:, 0].tolist(),
                 label="probability")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path
