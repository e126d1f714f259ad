"""Does video in keep up with the camera? Pose extraction and recognition on the clips of ../shared/data/videos.

1. Pose extraction (`aclnet.data.pose_estimator.extract_poses`: decoding and scaling with OpenCV in a second
   thread, BlazePose's full model in the first): frames per second on each clip, start-up included and after
   it (the start-up of each video, loading BlazePose's models, is timed on its own; importing mediapipe comes
   once per process, before the first clip).
2. Recognition of a 64-frame window by the full ACLNet GCN (the Kinetics experiment's model: the default ST-GCN
   backbone on COCO-17 2D poses with scores, converted by its pipeline to 20 joints), for one person (a video
   gives one; the Kinetics experiment itself pads every sequence to 2 persons, which doubles the model's
   work: 97 against 49 ms per window through ONNX Runtime here), one thread:
   * through `aclnet predict`'s path (`LoadedModel.timeline`: the test pipeline, then PyTorch), per window;
   * through ONNX Runtime (`aclnet export` of the same checkpoint; the test pipeline, then one session run),
     per window, when the export extra is installed.
   The checkpoint is made here with one training step on generated COCO-17 data: speed needs the architecture,
   not trained weights.
3. Together: a timeline with a window every `--stride` frames costs, per video frame, one frame of pose
   extraction (after start-up) and 1/stride of a window (ONNX Runtime where installed). The real-time factor is
   the frames per second the two give one after the other (as `aclnet predict` runs them) against the video's
   frame rate (`--fps`, 30); above 1 it keeps up.

Needs the video extra (and the export extra for the ONNX row); skipped, status 0, without them or the clips.

    python benchmarks/video_speed.py [--stride 16] [--fps 30] [--repeats 20]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
CLIPS = ("two_people_interaction.mp4", "basketball_players.mp4")
WINDOW = 64


def make_checkpoint(work: Path) -> Path:
    """A Kinetics-experiment checkpoint (full model, 64-frame clips) after one step on generated COCO-17 data."""
    from aclnet.cli import main
    from aclnet.data.annotations import write_annotations
    from aclnet.data.synthetic import make_action_dataset

    data = work / "coco.pkl"
    write_annotations(make_action_dataset(4, 6, layout="coco", channels=2, num_subjects=6), data, force=True)
    run = work / "run"
    settings = [f"data.path={data}", "data.test_split=test", f"data.clip_len={WINDOW}", "data.test_clips=1",
                "data.num_persons=1", "optim.epochs=1", "train.max_steps_per_epoch=1", "optim.batch_size=4",
                "loss.intra.memory_size=16", "train.device=cpu"]
    if main(["train", "kinetics-j", "--work-dir", str(run), "--force", "--set", *settings]) != 0:
        raise SystemExit("could not make the checkpoint")
    return run


def per_window_torch(model, sample, repeats: int) -> float:  # noqa: ANN001
    """Seconds per window of `LoadedModel.timeline` (pipeline and model), windows of one long sequence."""
    model.timeline([sample], window=WINDOW, stride=WINDOW)  # warm-up
    start = time.perf_counter()
    timelines = model.timeline([sample] * repeats, window=WINDOW, stride=WINDOW)
    return (time.perf_counter() - start) / sum(len(t.windows) for t in timelines)


def per_window_onnx(model, sample, repeats: int, work: Path) -> float | None:  # noqa: ANN001
    """Seconds per window through the test pipeline and one ONNX Runtime session run (one thread)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    from aclnet.inference.export import export_model

    out = export_model(model, work / "model.onnx", "onnx", force=True).path
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(out), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    def run(start: int) -> None:
        part = replace(sample, keypoint=sample.keypoint[:, start:start + WINDOW],
                       score=sample.score[:, start:start + WINDOW])
        clips = model.pipeline(part, np.random.default_rng(0))
        session.run(None, {name: clips.astype(np.float32)})

    run(0)
    starts = list(range(0, sample.num_frames - WINDOW + 1, WINDOW)) * repeats
    start = time.perf_counter()
    for s in starts:
        run(s)
    return (time.perf_counter() - start) / len(starts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stride", type=int, default=16, help="frames between windows of the timeline")
    parser.add_argument("--fps", type=float, default=30.0, help="the camera's frame rate to keep up with")
    parser.add_argument("--repeats", type=int, default=20, help="windows timed per recogniser (times the clip's)")
    args = parser.parse_args()
    if importlib.util.find_spec("mediapipe") is None or not (VIDEOS / CLIPS[0]).exists():
        print("skipped: needs the video extra (pip install -e '.[video]') and ../shared/data/videos")
        return 0
    from aclnet.data.formats.video import video_sample
    from aclnet.data.pose_estimator import BlazePose, extract_poses
    from aclnet.inference.loading import load

    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, {torch.get_num_threads()} torch threads "
          "available")
    start = time.perf_counter()
    import mediapipe  # noqa: F401 (once per process)

    imported = time.perf_counter() - start
    start = time.perf_counter()
    estimator = BlazePose()  # loading its models, once per video
    estimator(np.zeros((240, 320, 3), np.uint8))
    estimator.close()
    startup = time.perf_counter() - start
    print(f"pose estimator start-up: import {imported:.2f} s once, then models and first frame {startup:.2f} s "
          "per video")
    rates = {}
    poses = {}
    for clip in CLIPS:
        start = time.perf_counter()
        poses[clip] = extract_poses(VIDEOS / clip)
        seconds = time.perf_counter() - start
        p = poses[clip]
        rates[clip] = p.num_frames / max(seconds - startup, 1e-9)
        print(f"pose extraction  {clip}: {p.width}x{p.height}, {p.num_frames} frames in {seconds:.1f} s = "
              f"{p.num_frames / seconds:.1f} frames/s, {rates[clip]:.1f} frames/s after start-up; person found in "
              f"{p.num_frames - p.frames_without_person}/{p.num_frames}")

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        model = load(make_checkpoint(work))
        torch.set_num_threads(1)
        long = poses[CLIPS[1]]  # 300 frames: four whole windows
        sample = video_sample(long, "basketball", "coco", "pixels")
        torch_s = per_window_torch(model, sample, args.repeats)
        onnx_s = per_window_onnx(model, sample, args.repeats, work)
    print(f"recognition, one {WINDOW}-frame window, 1 thread: predict path (PyTorch) {1000 * torch_s:.0f} ms"
          + (f", ONNX Runtime {1000 * onnx_s:.0f} ms (ratio {torch_s / onnx_s:.2f})" if onnx_s else
             ", ONNX Runtime: not installed (export extra)"))
    best = onnx_s if onnx_s is not None else torch_s
    for clip in CLIPS:
        per_frame = 1 / rates[clip] + best / args.stride
        print(f"together, {clip}, a window every {args.stride} frames: {1 / per_frame:.1f} frames/s = "
              f"{(1 / per_frame) / args.fps:.2f} x real time at {args.fps:g} fps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
