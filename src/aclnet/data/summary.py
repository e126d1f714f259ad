"""A printable summary of an annotation file: splits, classes, persons, joints, channels, lengths."""

from __future__ import annotations

from collections import Counter

import numpy as np

from aclnet.data.sample import SampleSet


def summarize(sample_set: SampleSet, problems: list[str]) -> str:
    """Text report of a sample set and of the invalid samples found while reading it."""
    samples = sample_set.samples
    lines = [f"layout: {sample_set.layout}{_alternatives(sample_set)}", f"samples: {len(samples)}"]
    for name, ids in sample_set.splits.items():
        lines.append(f"  split {name}: {len(ids)}")
    labels = Counter(s.label for s in samples)
    names = sample_set.classes
    lines.append(f"classes: {sample_set.num_classes} ({len(labels)} present)")
    for label in sorted(labels):
        name = names[label] if names is not None else str(label)
        lines.append(f"  {label:4d} {name}: {labels[label]}")
    if samples:
        persons = Counter(int(np.any(s.keypoint != 0, axis=(1, 2, 3)).sum()) for s in samples)  # not padding
        joints = Counter(s.keypoint.shape[2] for s in samples)
        channels = Counter(s.keypoint.shape[3] for s in samples)
        frames = np.array([s.num_frames for s in samples])
        lines += [
            f"persons (with any non-zero joint): {dict(sorted(persons.items()))}",
            f"joints: {dict(sorted(joints.items()))}",
            f"channels: {dict(sorted(channels.items()))}" + (" + score" if samples[0].score is not None else ""),
            f"frames: min {frames.min()} / median {np.median(frames):.0f} / mean {frames.mean():.1f} "
            f"/ max {frames.max()}",
        ]
    lines.append(f"invalid samples: {len(problems)}")
    lines += [f"  {p}" for p in problems]
    return "\n".join(lines)


def _alternatives(sample_set: SampleSet) -> str:
    """The other built-in layouts with as many joints, when there are any (the file's layout may be a guess)."""
    from aclnet.skeleton import BUILTIN_LAYOUTS

    if not sample_set.samples:
        return ""
    joints = sample_set.samples[0].keypoint.shape[2]
    others = sorted(name for name, layout in BUILTIN_LAYOUTS.items()
                    if layout.num_joints == joints and name != sample_set.layout)
    if not others:
        return ""
    return (f" (unless the file names it, a guess from {joints} joints x {sample_set.samples[0].keypoint.shape[3]} "
            f"channels; other layouts with {joints} joints: {', '.join(others)}: give --layout if it is one of them)")
