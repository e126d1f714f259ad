"""Generated action classes in confusable groups: consecutive blocks of `group_size` classes share their
motion primitives and differ by one small detail; `confusable_groups(num_classes, group_size)` lists them
(a `SampleSet` has no field for them)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from aclnet.data.checks import check_choice, check_frames, check_range, require_int
from aclnet.data.sample import SampleSet
from aclnet.data.synthetic.body import (
    AXIS_NAMES,
    PROFILES,
    Body,
    Primitive,
    animate,
    apply_missing,
    available_dofs,
    body_from_layout,
    main_dofs,
    missing_mask,
    place,
    profile,
    project,
    subject_rest,
)
from aclnet.data.synthetic.samples import cut_samples, split_counts, subject_splits
from aclnet.skeleton import get_layout


def confusable_groups(num_classes: int, group_size: int = 3) -> list[list[int]]:
    """The confusable groups of `make_action_dataset`: consecutive blocks of `group_size` classes."""
    require_int("num_classes", num_classes, 1)
    require_int("group_size", group_size, 1)
    return [list(range(g, min(g + group_size, num_classes))) for g in range(0, num_classes, group_size)]


def make_action_dataset(
    num_classes: int = 12,
    samples_per_class: int = 40,
    *,
    layout: str | Path = "nturgb+d",
    group_size: int = 3,
    num_subjects: int = 10,
    num_views: int = 3,
    frames: tuple[int, int] = (32, 64),
    persons: int = 1,
    channels: int = 3,
    separation: float = 0.5,
    noise: float = 0.01,
    missing_prob: float = 0.2,
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> SampleSet:
    """Action samples whose classes share motion primitives within confusable groups.

    Each group has a main and a secondary primitive; class k > 0 of a group changes one detail
    by `separation` (secondary amplitude, secondary phase, or an extra small oscillation). Samples
    cycle through subjects and views (`meta` subject, view, replication, 1-based); splits `train`,
    `val` and `test` hold disjoint subjects in `split_fractions`. `channels=2` projects to image
    pixels with scores (2D layouts). With `persons=2` each class also moves the second person by
    its own primitives (an interaction). The defaults are the demo's data (12 classes, 4 groups).
    """
    require_int("seed", seed, 0)
    require_int("num_classes", num_classes, 2)
    require_int("samples_per_class", samples_per_class, 1)
    require_int("group_size", group_size, 1)
    require_int("num_subjects", num_subjects, 1)
    require_int("num_views", num_views, 1)
    check_choice("persons", persons, (1, 2))
    check_choice("channels", channels, (2, 3))
    check_frames(frames)
    check_range("separation", separation, 0.0, 10.0)
    check_range("noise", noise, 0.0, 1.0)
    check_range("missing_prob", missing_prob, 0.0, 1.0)
    n_train, n_val = split_counts(num_subjects, split_fractions)
    body = body_from_layout(get_layout(layout))
    class_rng, subject_rng, sample_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    names, class_prims = _action_classes(class_rng, body, num_classes, group_size, separation, persons)
    amp_subject = subject_rng.uniform(0.85, 1.15, num_subjects)
    speed_subject = subject_rng.uniform(0.8, 1.25, num_subjects)
    rest = subject_rest(body, subject_rng, num_subjects)

    # Sample k of each class: subject k mod S, then the views in turn, then repetitions.
    n = num_classes * samples_per_class
    label = np.repeat(np.arange(num_classes), samples_per_class)
    k = np.tile(np.arange(samples_per_class), num_classes)
    subject, view, rep = k % num_subjects, (k // num_subjects) % num_views, k // (num_subjects * num_views)
    lo, hi = frames
    lengths = np.clip(np.rint(sample_rng.uniform(lo, hi, n) / speed_subject[subject]), lo, hi).astype(np.int64)

    angles = _action_angles(sample_rng, body, class_prims, label, lengths, amp_subject[subject], persons)
    pose = animate(body, np.repeat(rest[subject], persons, axis=0), angles)
    points = _action_scene(sample_rng, pose, view, num_views, persons) + sample_rng.normal(0.0, noise, pose.shape)
    missing = missing_mask(
        sample_rng, np.repeat(lengths, persons), pose.shape[1], body.layout.num_joints, missing_prob
    )
    img_shape = None if channels == 3 else (480, 640)
    keypoint = points if img_shape is None else project(points, 500.0, img_shape)
    score = None if img_shape is None else sample_rng.uniform(0.8, 1.0, points.shape[:-1])
    apply_missing(keypoint, score, missing)

    ids = [f"c{c:03d}_s{j + 1:03d}_v{v + 1}_r{r + 1:02d}" for c, j, v, r in zip(label, subject, view, rep)]
    meta = {"subject": subject + 1, "view": view + 1, "replication": rep + 1}
    samples = cut_samples(ids, label, keypoint, score, lengths, img_shape, meta, persons)
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, num_subjects)}
    return SampleSet(samples, subject_splits(ids, subject, bounds), str(layout), names)


def _action_classes(
    rng: np.random.Generator, body: Body, num_classes: int, group_size: int, separation: float, persons: int
) -> tuple[list[str], list[list[list[Primitive]]]]:
    """Class names and primitives (class -> person -> primitives), group by group."""
    dofs = available_dofs(body)
    mains = main_dofs(rng, body, dofs, -(-num_classes // group_size))
    specs = [
        _group_specs(rng, body, dofs, main, min(group_size, num_classes - g * group_size), separation, persons)
        for g, main in enumerate(mains)
    ]
    names = [f"g{g}v{k}_{name}" for g, group in enumerate(specs) for k, (name, _) in enumerate(group)]
    return names, [prims for group in specs for _, prims in group]


def _action_angles(
    rng: np.random.Generator,
    body: Body,
    class_prims: list[list[list[Primitive]]],
    label: np.ndarray,
    lengths: np.ndarray,
    amplitude: np.ndarray,
    persons: int,
) -> np.ndarray:
    """Stage angles (n * persons, T, stages, 3) of every (sample, person) body, vectorised per primitive.

    Action time runs from 0 to 1 over each sample's frames; the amplitude is the subject's times a
    per-body jitter, and oscillation phases get a per-body jitter.
    """
    t_max = int(lengths.max())
    u = np.repeat(np.minimum(np.arange(t_max)[None, :] / (lengths[:, None] - 1), 1.0), persons, axis=0)
    body_label = np.repeat(label, persons)
    body_person = np.tile(np.arange(persons), len(label))
    amp = np.repeat(amplitude, persons) * rng.normal(1.0, 0.08, len(body_label))
    jitter = rng.normal(0.0, 0.25, len(body_label))
    angles = np.zeros((len(body_label), t_max, len(body.stages), 3))
    for c, person_prims in enumerate(class_prims):
        for p, prims in enumerate(person_prims):
            rows = np.flatnonzero((body_label == c) & (body_person == p))
            for prim in prims:
                curve = profile(prim.profile, u[rows], prim.frequency, prim.phase + jitter[rows])
                angles[rows, :, prim.stage, prim.axis] += amp[rows, None] * prim.amplitude * curve
    return angles


def _action_scene(
    rng: np.random.Generator, pose: np.ndarray, view: np.ndarray, num_views: int, persons: int
) -> np.ndarray:
    """Camera coordinates of posed bodies: views turn about the vertical axis (-45 to 45 degrees).

    Each sample stands at a random spot about 3 m from the camera, 0.9 m below it; two persons
    stand 1.2 m apart, turned towards each other.
    """
    n = len(view)
    view_yaw = np.linspace(-np.pi / 4, np.pi / 4, num_views) if num_views > 1 else np.zeros(1)
    yaw = np.repeat(view_yaw[view] + rng.normal(0.0, 0.08, n), persons)
    offset = np.zeros((n * persons, 3))
    offset[:, [0, 2]] = np.repeat(rng.uniform(-0.3, 0.3, (n, 2)), persons, axis=0)
    offset[:, 1:] += (-0.9, 3.0)
    if persons == 2:
        person = np.tile(np.arange(2), n)
        yaw = yaw + np.where(person == 0, -np.pi / 3, np.pi / 3)
        offset[:, 0] += np.where(person == 0, -0.6, 0.6)
    return place(pose, yaw, offset)


def _group_specs(
    rng: np.random.Generator,
    body: Body,
    dofs: list[tuple[int, int, float]],
    main_dof: tuple[int, int, float],
    size: int,
    separation: float,
    persons: int,
) -> list[tuple[str, list[list[Primitive]]]]:
    """Class names and per-person primitives of one confusable group (the base class first).

    Class k > 0 changes person 0's motion by one detail: the secondary amplitude, the secondary
    phase, or an extra small oscillation on a third axis (cycling, larger after each cycle).
    """
    people = [
        _base_primitives(rng, dofs, main_dof if p == 0 else dofs[rng.integers(len(dofs))]) for p in range(persons)
    ]
    main, second = people[0]
    name = f"{body.stages[main.stage].name}_{AXIS_NAMES[main.axis]}_{main.profile}"
    classes = [(name, people)]
    for k in range(1, size):
        kind, scale = (k - 1) % 3, separation * (1 + (k - 1) // 3)
        if kind == 0:
            changed = [main, replace(second, amplitude=second.amplitude * (1 + scale))]
        elif kind == 1:
            changed = [main, replace(second, phase=second.phase + scale * np.pi)]
        else:
            used = {(main.stage, main.axis), (second.stage, second.axis)}
            free = [d for d in dofs if d[:2] not in used]
            stage, axis, limit = free[rng.integers(len(free))]
            extra = Primitive(
                stage, axis, "osc", scale * 0.5 * limit, rng.uniform(2.0, 4.0), rng.uniform(0, 2 * np.pi)
            )
            changed = [main, second, extra]
        classes.append((name, [changed, *people[1:]]))
    return classes


def _base_primitives(
    rng: np.random.Generator, dofs: list[tuple[int, int, float]], main_dof: tuple[int, int, float]
) -> list[Primitive]:
    """The main primitive (large, any profile) and a secondary oscillation, preferably on another stage."""
    stage, axis, limit = main_dof
    profile = PROFILES[rng.integers(len(PROFILES))]
    frequency = float(rng.integers(1, 3)) if profile == "bump" else rng.uniform(1.0, 3.0)
    main = Primitive(stage, axis, profile, rng.uniform(0.6, 1.0) * limit, frequency, 0.0)
    others = [d for d in dofs if d[0] != stage] or [d for d in dofs if d[:2] != (stage, axis)]
    stage2, axis2, limit2 = others[rng.integers(len(others))]
    second = Primitive(
        stage2, axis2, "osc", rng.uniform(0.3, 0.5) * limit2, rng.uniform(1.5, 3.5), rng.uniform(0, 2 * np.pi)
    )
    return [main, second]
