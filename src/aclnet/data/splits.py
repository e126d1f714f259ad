"""Validation data held out of a training split: by whole groups (subjects), so that no person of the
validation part is seen in training, or by samples within each group, so that every group keeps training."""

from __future__ import annotations

import re

import numpy as np

from aclnet.data.sample import Sample
from aclnet.errors import InputError

_NTU_PERFORMER = re.compile(r"P(\d{3})")


def group_of(sample: Sample, key: str) -> str:
    """Hold-out group: the meta field `key`, else the performer of an NTU-style name, else the sample."""
    if key in sample.meta:
        return str(sample.meta[key])
    match = _NTU_PERFORMER.search(sample.sample_id)
    return match.group(1) if match else sample.sample_id


def hold_out(samples: list[Sample], key: str, fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Split training samples into (train, validation) by whole groups, seeded.

    Args:
        samples: the training split.
        key: meta field grouping samples (subject, performer).
        fraction: share of the groups held out (at least one group).
        seed: seed of the draw.
    """
    groups = sorted({group_of(s, key) for s in samples})
    if len(groups) < 2:
        raise InputError(f"cannot hold out validation data: the training split has {len(groups)} '{key}' group(s)")
    rng = np.random.default_rng(seed)
    count = max(1, int(round(fraction * len(groups))))
    held = set(rng.permutation(groups)[:count].tolist())
    train = [s for s in samples if group_of(s, key) not in held]
    val = [s for s in samples if group_of(s, key) in held]
    return train, val


def hold_out_within(samples: list[Sample], key: str, fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Split training samples into (train, validation) by samples inside each group, seeded: of a group of n >= 2
    samples, round(fraction * n) are held out (at least one, at most n - 1); a group of one stays in training.

    Args:
        samples: the training split.
        key: meta field grouping samples (the identity).
        fraction: share of each group's samples held out.
        seed: seed of the draw.
    """
    groups: dict[str, list[Sample]] = {}
    for sample in sorted(samples, key=lambda s: s.sample_id):
        groups.setdefault(group_of(sample, key), []).append(sample)
    rng = np.random.default_rng(seed)
    held: set[str] = set()
    for name in sorted(groups):
        members = groups[name]
        if len(members) < 2:
            continue
        count = min(len(members) - 1, max(1, int(round(fraction * len(members)))))
        held.update(members[i].sample_id for i in rng.permutation(len(members))[:count])
    if not held:
        raise InputError(f"cannot hold out validation data: no '{key}' has two training samples")
    return [s for s in samples if s.sample_id not in held], [s for s in samples if s.sample_id in held]
