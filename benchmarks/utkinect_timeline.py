"""How well a sliding-window timeline of `aclnet predict --window` matches UTKinect's annotated segments.

UTKinect-Action3D (../shared/data/UTKinect-Action3D, read in place) has 20 continuous recordings
(`joints/joints_sSS_eEE.txt`: a frame id then 20 x 3 joint coordinates per row) in which each of 10 actions
is annotated as a segment of frame ids (`joints/actionLabel_modified.txt`, the corrected bounds the `utkinect`
reader uses; `--label-file actionLabel.txt` for the original ones). The benchmark:

1. trains `utkinect-j` (small ST-GCN; 16-frame clips, 150 epochs: about 900 steps) on the labelled segments
   of the training subjects of split 1 (`data.train_split=split01_train`), or takes `--checkpoint`;
2. runs the sliding window of `aclnet predict CHECKPOINT joints_sSS_eEE.txt --window N --stride S` (the same
   API and writers: `LoadedModel.timeline`, `aclnet.inference.predict.write_timelines` / `plot_timelines`) over the
   whole recordings of the test subjects (rows: the `.txt` files read as plain arrays, the frame-id column
   dropped), writing the timeline CSV and plot to the work folder;
3. labels every row with `Timeline.frame_labels()` (the class of highest mean probability over the windows
   that cover the row; rows after the last window take its class) and compares with the annotation:
   * frame-level accuracy over the rows inside exactly one segment (rows outside every segment are
     excluded; rows where two segments' bounds overlap too, e.g. s01_e01 pull 1640-1686 / push 1686-1748);
   * per-segment accuracy of the majority vote of the segment's row labels (ties: the lower class index);
   * the same two numbers for the trivial baseline that always answers the most frequent class of the
     training segments (by rows for the frame level, by segments for the segment level);
   * for context, the clip accuracy of the model on the trimmed test segments (`aclnet test`, 5 clips).

Runtime on one core: training about 1-2 minutes (more when the cores are shared), the timelines about
half a minute.

    python benchmarks/utkinect_timeline.py                         # train, then measure
    python benchmarks/utkinect_timeline.py --checkpoint RUN/latest.pt --window 30 --stride 3
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "UTKinect-Action3D"
EXPERIMENT = "utkinect-j"


def train_model(data: Path, split: str, work_dir: Path, epochs: int, seed: int) -> Path:
    """Train `utkinect-j` on the split's training segments (tested on its test segments); returns the run."""
    from aclnet.config import load_config
    from aclnet.engine.run import train
    from aclnet.tasks.registry import make_task

    overrides = [f"data.path={data}", f"data.train_split={split}_train", f"data.test_split={split}_test",
                 "model.backbone=stgcn", "data.clip_len=16", "data.num_workers=0", f"optim.epochs={epochs}",
                 "train.device=cpu", "train.select_on=last", f"train.val_interval={epochs}", f"train.seed={seed}"]
    print(f"training: aclnet train {EXPERIMENT} --work-dir {work_dir} --force --set {' '.join(overrides)}")
    task = make_task(load_config(EXPERIMENT, overrides))
    report = train(task, work_dir, force=True)
    print(task.summary(report))
    return work_dir


def recording_rows(data: Path, recording: str) -> tuple[Path, np.ndarray]:
    """The joints file of a recording and its frame ids, one per row."""
    from aclnet.data.formats.small_kinect import read_table

    path = data / "joints" / f"joints_{recording}.txt"
    return path, read_table(path, 61)[:, 0].astype(np.int64)


def row_truth(frame_ids: np.ndarray, segments: list[tuple[int, int, int]]) -> np.ndarray:
    """(rows,) annotated class of each row; -1 outside every segment, -2 inside several."""
    truth = np.full(len(frame_ids), -1, dtype=np.int64)
    for label, start, end in segments:
        inside = (frame_ids >= start) & (frame_ids <= end)
        truth[inside & (truth != -1)] = -2
        truth[inside & (truth == -1)] = label
    return truth


def segment_rows(frame_ids: np.ndarray, segments: list[tuple[int, int, int]]) -> list[tuple[int, np.ndarray]]:
    """(label, row indices) of every segment, the rows shared with another segment left out."""
    truth = row_truth(frame_ids, segments)
    out = []
    for label, start, end in segments:
        rows = np.flatnonzero((frame_ids >= start) & (frame_ids <= end) & (truth == label))
        if rows.size:
            out.append((label, rows))
    return out


def majority(labels: np.ndarray) -> int:
    """The most frequent value (ties: the lowest)."""
    values, counts = np.unique(labels, return_counts=True)
    return int(values[np.argmax(counts)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="the UTKinect-Action3D folder")
    parser.add_argument("--checkpoint", type=Path, help="use this checkpoint (or run folder) instead of training")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "benchmarks" / "runs" / "utkinect_timeline",
                        help="training run and timeline files (default benchmarks/runs/utkinect_timeline)")
    parser.add_argument("--split", default="split01", help="split of tr_te_splits.mat (default split01)")
    parser.add_argument("--epochs", type=int, default=150, help="training epochs (6-7 steps each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window", type=int, default=30, help="window length in rows (median segment: 29)")
    parser.add_argument("--stride", type=int, default=3, help="rows between window starts")
    parser.add_argument("--label-file", default="actionLabel_modified.txt",
                        help="annotation in joints/ (default the corrected actionLabel_modified.txt)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()

    from aclnet.data.formats.small_kinect import mat_strings, read_tr_te_splits
    from aclnet.data.formats.utkinect import read_labels
    from aclnet.engine.run_folder import RunFolder
    from aclnet.inference.loading import load
    from aclnet.inference.predict import plot_timelines, write_timelines

    torch.set_num_threads(args.threads)
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: no UTKinect-Action3D folder (see ../shared/data/README.md)")
    started = time.perf_counter()
    if args.checkpoint is None:
        run = train_model(args.data, args.split, args.work_dir / "run", args.epochs, args.seed)
        checkpoint = run
    else:
        checkpoint = args.checkpoint
    trained = time.perf_counter()
    model = load(checkpoint)
    classes = mat_strings(args.data / "action_names.mat", "action_names")
    if model.classes != classes:
        raise SystemExit(f"{checkpoint}: classes {model.classes} are not UTKinect's {classes}")
    train_subjects, test_subjects = read_tr_te_splits(args.data / "tr_te_splits.mat")[args.split]
    annotation = read_labels(args.data / "joints" / args.label_file, classes)

    def subject(recording: str) -> int:
        return int(recording[1:3])

    # The trivial baseline: the most frequent class of the training segments (by rows; by segments).
    row_counts: Counter[int] = Counter()
    segment_counts: Counter[int] = Counter()
    for recording, segments in annotation.items():
        if subject(recording) in train_subjects:
            _, frame_ids = recording_rows(args.data, recording)
            for label, rows in segment_rows(frame_ids, segments):
                row_counts[label] += rows.size
                segment_counts[label] += 1
    base_frame, base_segment = row_counts.most_common(1)[0][0], segment_counts.most_common(1)[0][0]

    recordings = sorted(r for r in annotation if subject(r) in test_subjects)
    paths, frame_ids = zip(*(recording_rows(args.data, r) for r in recordings))
    timelines = model.timeline([str(p) for p in paths], window=args.window, stride=args.stride)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    out = args.work_dir / f"timeline_{args.split}_w{args.window}_s{args.stride}.csv"
    write_timelines(timelines, out)
    plot_timelines(timelines, out.with_suffix(".png"))
    predicted = time.perf_counter()

    frames = {"model": [0, 0], "baseline": [0, 0]}  # correct, total
    segs = {"model": [0, 0], "baseline": [0, 0]}
    per_class = np.zeros((len(classes), 2), dtype=np.int64)  # frame-level correct, total per true class
    excluded = shared = rows_total = 0
    for recording, ids, timeline in zip(recordings, frame_ids, timelines):
        assert timeline.num_frames == len(ids), (recording, timeline.num_frames, len(ids))
        labels = timeline.frame_labels()
        truth = row_truth(ids, annotation[recording])
        inside = truth >= 0
        rows_total += len(ids)
        excluded += int((truth == -1).sum())
        shared += int((truth == -2).sum())
        for name, guess in (("model", labels[inside]), ("baseline", np.full(int(inside.sum()), base_frame))):
            frames[name][0] += int((guess == truth[inside]).sum())
            frames[name][1] += int(inside.sum())
        np.add.at(per_class[:, 0], truth[inside], (labels[inside] == truth[inside]).astype(np.int64))
        np.add.at(per_class[:, 1], truth[inside], 1)
        for label, rows in segment_rows(ids, annotation[recording]):
            segs["model"][0] += int(majority(labels[rows]) == label)
            segs["baseline"][0] += int(base_segment == label)
            segs["model"][1] += 1
            segs["baseline"][1] += 1

    report = RunFolder(checkpoint).read_report() if Path(checkpoint).is_dir() else None
    print()
    print(f"UTKinect-Action3D {args.split}: trained on the segments of subjects {sorted(train_subjects)}; "
          f"timeline over the {len(recordings)} recordings of subjects {sorted(test_subjects)}")
    print(f"annotation {args.label_file}; window {args.window} rows, stride {args.stride}; {len(classes)} classes")
    print(f"rows: {rows_total} in all, {frames['model'][1]} scored, {excluded} outside every segment and "
          f"{shared} in two segments (both excluded)")
    if report is not None:
        print(f"context: accuracy on the {report['samples']} trimmed test segments (aclnet test, "
              f"{report['clips']} clips): top-1 {report['top1']:.2f} %")
    width = 34
    print(f"{'':<{width}}{'frame-level %':>15}{'segment majority %':>20}")
    for name, title in (("model", "sliding-window timeline"),
                        ("baseline", f"most frequent class ({classes[base_frame]} / {classes[base_segment]})")):
        f_acc = 100 * frames[name][0] / max(1, frames[name][1])
        s_acc = 100 * segs[name][0] / max(1, segs[name][1])
        print(f"{title:<{width}}{f_acc:>15.2f}{s_acc:>20.2f}   ({segs[name][1]} segments)")
    print("frame-level accuracy per class: " + ", ".join(
        f"{classes[k]} {100 * c / max(1, n):.0f}" for k, (c, n) in enumerate(per_class)))
    print(f"timeline written to {out} and {out.with_suffix('.png')}")
    print(f"same windows from the command line: aclnet predict {checkpoint} {paths[0]} ... --window {args.window} "
          f"--stride {args.stride} --out timeline.csv")
    print(f"time: training {trained - started:.0f} s, timelines {predicted - trained:.0f} s "
          f"({sum(len(t.starts) for t in timelines)} windows), {args.threads} thread(s)")


if __name__ == "__main__":
    main()
