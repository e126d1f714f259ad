"""Generated walking gait of subjects under conditions (nm, bg, cl) and camera views, CASIA-B style."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from aclnet.data.checks import check_frames, check_range, require_int
from aclnet.data.sample import SampleSet
from aclnet.data.synthetic.body import (
    ABDUCT,
    FLEX,
    TWIST,
    Body,
    animate,
    apply_missing,
    body_from_layout,
    missing_mask,
    place,
    project,
    subject_rest,
)
from aclnet.data.synthetic.samples import cut_samples, subject_splits
from aclnet.errors import InputError
from aclnet.skeleton import get_layout

_GAIT_CONDITIONS = ("nm", "bg", "cl")


_DEFAULT_SEQUENCES = {"nm": 6, "bg": 2, "cl": 2}


def make_gait_dataset(
    num_subjects: int = 20,
    *,
    conditions: Sequence[str] = _GAIT_CONDITIONS,
    sequences: Mapping[str, int] | None = None,
    views: Sequence[int] = tuple(range(0, 181, 18)),
    frames: tuple[int, int] = (50, 70),
    num_train_subjects: int | None = None,
    layout: str | Path = "coco",
    noise: float = 1.0,
    missing_prob: float = 0.1,
    seed: int = 0,
) -> SampleSet:
    """Walking sequences, CASIA-B style: subjects x conditions x sequences x views, 2D with scores.

    `label` is the subject index; `meta` holds subject (1-based), condition (nm, bg, cl),
    sequence (1-based within the condition) and view (degrees; 0 faces the camera, 90 is the side
    view). Each subject walks with its own stride, cadence, arm swing and proportions; `bg` reduces
    the arm swing on the bag's side and shifts that arm, `cl` hides hip and knee detail with noise
    and lower scores. `sequences` per condition default to nm 6, bg 2, cl 2; splits: `train` the
    first `num_train_subjects` (default 60 %), `test` the rest. Pixels of a 320 x 240 image;
    `noise` is in pixels.
    """
    require_int("seed", seed, 0)
    conditions, counts, views, n_train = _check_gait_args(
        num_subjects, conditions, sequences, views, num_train_subjects
    )
    check_frames(frames)
    check_range("noise", noise, 0.0, 100.0)
    check_range("missing_prob", missing_prob, 0.0, 1.0)
    body = body_from_layout(get_layout(layout))
    needed = [f"{side}_{part}" for side in ("left", "right") for part in ("shoulder", "elbow", "hip", "knee")]
    lacking = [name for name in needed + ["trunk"] if name not in [st.name for st in body.stages]]
    if lacking:
        raise InputError(f"layout '{layout}' cannot walk: no joints found for {lacking}")
    subject_rng, sample_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    style = _gait_style(subject_rng, num_subjects)
    rest = subject_rest(body, subject_rng, num_subjects)

    # One row per (subject, condition, sequence, view), in that nesting order.
    seq_cond = np.concatenate([np.full(counts[c], i) for i, c in enumerate(conditions)])
    seq_num = np.concatenate([np.arange(counts[c]) for c in conditions])
    per_subject = len(seq_cond) * len(views)
    n = num_subjects * per_subject
    subject = np.repeat(np.arange(num_subjects), per_subject)
    cond = np.asarray(conditions)[np.tile(np.repeat(seq_cond, len(views)), num_subjects)]
    seq = np.tile(np.repeat(seq_num, len(views)), num_subjects)
    view = np.tile(np.asarray(views), num_subjects * len(seq_cond))
    lengths = sample_rng.integers(frames[0], frames[1] + 1, n)

    angles, bob = _gait_angles(sample_rng, body, style, subject, cond, int(lengths.max()))
    pose = animate(body, rest[subject], angles)
    pose[..., 1] += bob[:, :, None]
    points = _gait_scene(sample_rng, pose, view, lengths, style, subject)
    missing = missing_mask(sample_rng, lengths, pose.shape[1], body.layout.num_joints, missing_prob)
    img_shape = (240, 320)
    coat = (cond == "cl")[:, None, None] & np.isin(np.asarray(body.parts), ("hip", "knee"))[None, None, :]
    sigma = noise + (3.0 + 3.0 * noise) * coat  # (n, 1, V): the coat blurs hips and knees
    keypoint = (
        project(points, 530.0, img_shape) + sample_rng.normal(0.0, 1.0, points.shape[:-1] + (2,)) * sigma[..., None]
    )
    score = np.clip(sample_rng.uniform(0.8, 1.0, points.shape[:-1]) - 0.3 * coat, 0.0, 1.0)
    apply_missing(keypoint, score, missing)

    ids = [f"{j + 1:03d}-{c}-{q + 1:02d}-{v:03d}" for j, c, q, v in zip(subject, cond, seq, view)]
    meta = {"subject": subject + 1, "condition": cond, "sequence": seq + 1, "view": view}
    samples = cut_samples(ids, subject, keypoint, score, lengths, img_shape, meta, 1)
    bounds = {"train": (0, n_train), "test": (n_train, num_subjects)}
    classes = [f"{j + 1:03d}" for j in range(num_subjects)]
    return SampleSet(samples, subject_splits(ids, subject, bounds), str(layout), classes)


def _check_gait_args(
    num_subjects: int,
    conditions: Sequence[str],
    sequences: Mapping[str, int] | None,
    views: Sequence[int],
    num_train_subjects: int | None,
) -> tuple[tuple[str, ...], dict[str, int], tuple[int, ...], int]:
    """Validated conditions, sequences per condition, views and number of training subjects."""
    require_int("num_subjects", num_subjects, 2)
    conditions = tuple(conditions)
    if not conditions or len(set(conditions)) != len(conditions) or not set(conditions) <= set(_GAIT_CONDITIONS):
        raise InputError(f"conditions={list(conditions)}: expected distinct names among {list(_GAIT_CONDITIONS)}")
    unknown = sorted(set(sequences or {}) - set(_GAIT_CONDITIONS))
    if unknown:
        raise InputError(f"sequences names unknown conditions {unknown}; conditions are {list(_GAIT_CONDITIONS)}")
    counts = {**_DEFAULT_SEQUENCES, **(sequences or {})}
    for cond in conditions:
        require_int(f"sequences['{cond}']", counts[cond], 1)
    views = tuple(views)
    if not views or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < 360 for v in views):
        raise InputError(f"views={list(views)}: expected a non-empty list of integer angles in degrees, 0..359")
    n_train = round(0.6 * num_subjects) if num_train_subjects is None else num_train_subjects
    require_int("num_train_subjects", n_train, 1)
    if n_train >= num_subjects:
        raise InputError(f"num_train_subjects={n_train} leaves no test subject of {num_subjects}")
    return conditions, counts, tuple(int(v) for v in views), n_train


def _gait_style(rng: np.random.Generator, num_subjects: int) -> dict[str, np.ndarray]:
    """Each subject's way of walking: stride (hip swing, rad), knee bend, arm swing, posture, cadence."""
    return {
        "stride": rng.uniform(0.25, 0.4, num_subjects),
        "knee": rng.uniform(0.6, 1.0, num_subjects),
        "swing": rng.uniform(0.15, 0.5, num_subjects),
        "elbow": rng.uniform(0.1, 0.5, num_subjects),
        "lean": rng.uniform(0.0, 0.15, num_subjects),
        "pitch": rng.uniform(-0.15, 0.1, num_subjects),
        "cadence": rng.uniform(24.0, 32.0, num_subjects),  # frames per gait cycle
        "bob": rng.uniform(0.01, 0.03, num_subjects),  # metres up and down, twice a cycle
        "bag_side": rng.choice([-1, 1], num_subjects),
    }


def _gait_scene(
    rng: np.random.Generator,
    pose: np.ndarray,
    view: np.ndarray,
    lengths: np.ndarray,
    style: dict[str, np.ndarray],
    subject: np.ndarray,
) -> np.ndarray:
    """Camera coordinates of walkers 8 m away: turned by the view, walking forward through the middle."""
    yaw = np.deg2rad(view) + rng.normal(0.0, 0.03, len(view))
    forward = np.stack([-np.sin(yaw), np.zeros(len(yaw)), -np.cos(yaw)], axis=-1)
    step = 3.4 * np.sin(style["stride"][subject]) / style["cadence"][subject]  # metres a frame, two steps a cycle
    travel = (np.arange(pose.shape[1])[None, :] - lengths[:, None] / 2) * step[:, None]
    return place(pose, yaw, np.array([0.0, -0.9, 8.0])) + travel[..., None, None] * forward[:, None, None, :]


def _gait_angles(
    rng: np.random.Generator,
    body: Body,
    style: dict[str, np.ndarray],
    subject: np.ndarray,
    cond: np.ndarray,
    t_max: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Joint angles (n, T, stages, 3) and vertical bob (n, T) of walking, with bag and coat changes."""
    n = len(subject)
    s = {key: value[subject] for key, value in style.items()}
    cadence = s["cadence"] * rng.normal(1.0, 0.03, n)
    theta = 2 * np.pi * np.arange(t_max)[None, :] / cadence[:, None] + rng.uniform(0, 2 * np.pi, n)[:, None]
    swing = np.sin(theta)
    bag, coat = cond == "bg", cond == "cl"
    arm_scale = np.where(coat, 0.7, 1.0)
    angles = np.zeros((n, t_max, len(body.stages), 3))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        carries = bag & (s["bag_side"] == sign)
        leg = sign * swing
        arm = -sign * swing * (s["swing"] * arm_scale * np.where(carries, 0.15, 1.0))[:, None]
        angles[:, :, body.stage(f"{side}_hip"), FLEX] = s["stride"][:, None] * leg
        knee_phase = np.maximum(0.0, sign * np.cos(theta))
        angles[:, :, body.stage(f"{side}_knee"), FLEX] = -(s["knee"][:, None] * knee_phase**2 + 0.1)
        angles[:, :, body.stage(f"{side}_shoulder"), FLEX] = arm
        angles[:, :, body.stage(f"{side}_shoulder"), ABDUCT] = 0.05 + 0.15 * carries[:, None]
        bend = (s["elbow"] + 0.3 * carries)[:, None]
        angles[:, :, body.stage(f"{side}_elbow"), FLEX] = bend + 0.5 * np.maximum(arm, 0)
    trunk = body.stage("trunk")
    angles[:, :, trunk, FLEX] = -s["lean"][:, None] + 0.02 * np.sin(2 * theta)
    angles[:, :, trunk, TWIST] = 0.05 * swing
    angles[:, :, trunk, ABDUCT] = (0.06 * bag * s["bag_side"])[:, None]
    if "neck" in [st.name for st in body.stages]:
        angles[:, :, body.stage("neck"), FLEX] = s["pitch"][:, None]
    bob = s["bob"][:, None] * np.cos(2 * theta)
    return angles, bob
