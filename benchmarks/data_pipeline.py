"""Samples per second of the NTU training pipeline, vectorised vs a plain per-frame reference.

Pipeline: 3D normalisation (no spine alignment), random rotation 0.2 rad, features, uniform
sampling of 100 frames, 2 persons; samples have 2 persons, 300 frames, 25 joints (person 1
absent in some frames). Both run in this process, single-threaded, on the same samples with
the same random draws; their outputs are checked to agree before timing.

    python benchmarks/data_pipeline.py [--samples 64] [--repeats 3] [--modality j j+b+jm+bm]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from aclnet.data.pipeline import build_pipeline, ntu_steps  # noqa: E402
from aclnet.data.sample import Sample  # noqa: E402
from aclnet.skeleton import get_layout  # noqa: E402

LAYOUT = get_layout("nturgb+d")
CLIP_LEN = 100


def make_samples(count: int, seed: int = 0) -> list[Sample]:
    """Random 2-person 300-frame samples; person 1 is missing in a random stretch of frames."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(count):
        kp = rng.normal(size=(2, 300, 25, 3)).astype(np.float32)
        gap = rng.integers(0, 300)
        kp[1, gap:gap + 80] = 0
        samples.append(Sample(f"s{i}", kp, 0))
    return samples


def reference_pipeline(keypoint: np.ndarray, rng: np.random.Generator, parts: list[str]) -> np.ndarray:
    """The same pipeline written frame by frame (NumPy within a frame)."""
    persons, frames, joints, _ = keypoint.shape
    valid = [[not np.all(np.abs(keypoint[m, t]) <= 1e-8) for t in range(frames)] for m in range(persons)]
    order = [1, 0] if sum(valid[1]) > sum(valid[0]) else [0, 1]
    kept = [t for t in range(frames) if valid[order[0]][t]]
    center = keypoint[order[0], kept[0], 1].copy()
    skeleton = np.zeros((persons, len(kept), joints, 3), np.float32)
    for m in range(persons):
        for i, t in enumerate(kept):
            frame = keypoint[order[m], t]
            skeleton[m, i] = (frame - center) * np.any(frame != 0, axis=1, keepdims=True)
    a = rng.uniform(-0.2, 0.2, size=3)
    c, s = np.cos(a), np.sin(a)
    rx = np.array([[1, 0, 0], [0, c[0], s[0]], [0, -s[0], c[0]]])
    ry = np.array([[c[1], 0, -s[1]], [0, 1, 0], [s[1], 0, c[1]]])
    rz = np.array([[c[2], s[2], 0], [-s[2], c[2], 0], [0, 0, 1]])
    rot_t = (rz @ ry @ rx).T.astype(np.float32)
    for m in range(persons):
        for i in range(len(kept)):
            skeleton[m, i] = skeleton[m, i] @ rot_t
    feats = [reference_feature(skeleton, name) for name in parts]
    features = np.concatenate(feats, axis=-1)
    count = len(kept)
    rng.random()
    rng.integers(1)
    if count < CLIP_LEN:
        start = int(rng.integers(count))
        indices = [(start + i) % count for i in range(CLIP_LEN)]
    elif count < 2 * CLIP_LEN:
        skips = set(rng.choice(CLIP_LEN + 1, count - CLIP_LEN, replace=False).tolist())
        indices, shift = [], 0
        for i in range(CLIP_LEN):
            shift += i in skips
            indices.append(i + shift)
    else:
        bounds = [i * count // CLIP_LEN for i in range(CLIP_LEN + 1)]
        offsets = rng.integers(np.diff(bounds))
        indices = [bounds[i] + int(offsets[i]) for i in range(CLIP_LEN)]
    clip = np.stack([features[:, i] for i in indices], axis=1)
    return clip[None]


def reference_feature(skeleton: np.ndarray, name: str) -> np.ndarray:
    """j, b, jm or bm, one frame at a time."""
    parents = list(LAYOUT.parents)
    base = skeleton
    if name.startswith("b"):
        base = np.zeros_like(skeleton)
        for m in range(skeleton.shape[0]):
            for t in range(skeleton.shape[1]):
                base[m, t] = skeleton[m, t] - skeleton[m, t, parents]
    if not name.endswith("m"):
        return base.copy()
    moved = np.zeros_like(base)
    for m in range(base.shape[0]):
        for t in range(base.shape[1] - 1):
            moved[m, t] = base[m, t + 1] - base[m, t]
    return moved


def samples_per_second(
    run: Callable[[Sample, np.random.Generator], np.ndarray], samples: list[Sample], repeats: int
) -> float:
    """Best of `repeats` passes over the samples."""
    best = float("inf")
    for _ in range(repeats):
        rng = np.random.default_rng(1)
        start = time.perf_counter()
        for sample in samples:
            run(sample, rng)
        best = min(best, time.perf_counter() - start)
    return len(samples) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modality", nargs="+", default=["j", "j+b+jm+bm"])
    args = parser.parse_args()
    samples = make_samples(args.samples)
    print(f"NTU training pipeline, {args.samples} samples of 2 x 300 x 25 x 3, single thread, numpy {np.__version__}")
    print(f"{'modality':<12}{'vectorised/s':>14}{'reference/s':>14}{'speed-up':>10}")
    for name in args.modality:
        pipeline = build_pipeline(ntu_steps(name), LAYOUT, test_mode=False)
        parts = name.split("+")

        def reference(sample: Sample, rng: np.random.Generator, parts: list[str] = parts) -> np.ndarray:
            return reference_pipeline(sample.keypoint, rng, parts)

        for sample in samples[:4]:
            fast = pipeline(sample, np.random.default_rng(7))
            slow = reference(sample, np.random.default_rng(7))
            np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-4)
        fast_rate = samples_per_second(pipeline, samples, args.repeats)
        slow_rate = samples_per_second(reference, samples, args.repeats)
        print(f"{name:<12}{fast_rate:>14.1f}{slow_rate:>14.1f}{fast_rate / slow_rate:>9.1f}x")


if __name__ == "__main__":
    main()
