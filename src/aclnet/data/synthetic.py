"""Generated skeleton data: action classes in confusable groups, and walking gait.

Both generators build a body from any layout (rest pose placed by walking the kinematic tree with
bone directions chosen from joint names), animate it with rigid rotations of limbs about their
pivots (elbows and knees first, then shoulders, hips and neck, then the trunk: forward kinematics
without per-frame loops), and add subject variation, camera views, noise and missing joints.
Everything is deterministic from `seed`; it is the default data of the demo and of fast tests.

Confusable groups: action classes come in consecutive blocks of `group_size` indices that share
their motion primitives and differ by one small detail; `confusable_groups(num_classes,
group_size)` lists them (a `SampleSet` has no field for them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from aclnet.data.sample import Sample, SampleSet
from aclnet.errors import InputError
from aclnet.skeleton import Layout, get_layout

__all__ = ["confusable_groups", "make_action_dataset", "make_gait_dataset", "require_int"]

FLEX, ABDUCT, TWIST = 0, 1, 2  # angle axes of a stage: about x, about z, about y
_AXIS_NAMES = ("flex", "abduct", "twist")

# (keyword, part, |x|, y, z) in metres, x to the body's left, y up, z backwards (the body faces -z).
# The first keyword found in the lower-case joint name wins; x takes the sign of the joint's side.
_TEMPLATES: tuple[tuple[str, str, float, float, float], ...] = (
    ("spine_shoulder", "neck", 0.0, 1.42, 0.0),
    ("shoulder_center", "neck", 0.0, 1.42, 0.0),
    ("mid_shoulder", "neck", 0.0, 1.42, 0.0),
    ("neck", "neck", 0.0, 1.50, 0.0),
    ("hand_tip", "hand", 0.25, 0.72, -0.04),
    ("finger", "hand", 0.25, 0.72, -0.04),
    ("thumb", "hand", 0.22, 0.78, -0.07),
    ("shoulder", "shoulder", 0.18, 1.40, 0.0),
    ("elbow", "elbow", 0.22, 1.12, 0.0),
    ("wrist", "wrist", 0.24, 0.88, -0.02),
    ("hand", "hand", 0.245, 0.80, -0.03),
    ("spine_base", "pelvis", 0.0, 0.95, 0.0),
    ("hip_center", "pelvis", 0.0, 0.95, 0.0),
    ("mid_hip", "pelvis", 0.0, 0.95, 0.0),
    ("pelvis", "pelvis", 0.0, 0.95, 0.0),
    ("hip", "hip", 0.10, 0.93, 0.0),
    ("knee", "knee", 0.11, 0.52, -0.02),
    ("ankle", "ankle", 0.11, 0.10, 0.0),
    ("heel", "foot", 0.11, 0.03, 0.05),
    ("toe", "foot", 0.11, 0.03, -0.12),
    ("foot", "foot", 0.11, 0.03, -0.10),
    ("nose", "head", 0.0, 1.58, -0.10),
    ("eye", "head", 0.035, 1.62, -0.08),
    ("ear", "head", 0.075, 1.60, 0.0),
    ("head", "head", 0.0, 1.62, 0.0),
    ("chest", "spine", 0.0, 1.30, 0.0),
    ("spine", "spine", 0.0, 1.18, 0.0),
    ("torso", "spine", 0.0, 1.18, 0.0),
)
_ARM = ("elbow", "wrist", "hand")
_LEG = ("knee", "ankle", "foot")
_LOWER = ("pelvis", "hip") + _LEG
# Degrees of freedom per stage kind: (axis, signed natural amplitude in radians).
_DOFS: dict[str, tuple[tuple[int, float], ...]] = {
    "shoulder": ((FLEX, 1.5), (ABDUCT, 1.3)),
    "elbow": ((FLEX, 1.6),),
    "hip": ((FLEX, 0.8), (ABDUCT, 0.5)),
    "knee": ((FLEX, -1.2),),
    "neck": ((FLEX, -0.5), (TWIST, 0.7)),
    "trunk": ((FLEX, -0.6), (TWIST, 0.5), (ABDUCT, 0.3)),
    "branch": ((FLEX, 0.8), (ABDUCT, 0.6)),
    "branch_mid": ((FLEX, 1.0),),
}
_PROFILES = ("osc", "bump", "hold")
_GAIT_CONDITIONS = ("nm", "bg", "cl")
_DEFAULT_SEQUENCES = {"nm": 6, "bg": 2, "cl": 2}


@dataclass(frozen=True)
class _Stage:
    """A rigid rotation of `moving` joints about the mean of `pivot` joints (one limb segment)."""

    name: str
    kind: str
    pivot: tuple[int, ...]
    moving: np.ndarray
    signs: np.ndarray  # (3,) sign per axis: abduction turns outward on either side


@dataclass(frozen=True)
class _Body:
    """A layout made animatable: rest pose, bone table and stages in application order."""

    layout: Layout
    rest: np.ndarray  # (V, 3)
    parts: tuple[str, ...]  # template part per joint, "" when the name is unknown
    ancestors: np.ndarray  # (V, V) 1 where column u lies on the path from the center to row v
    stages: tuple[_Stage, ...]

    def stage(self, name: str) -> int:
        """Index of a stage by name (the generators address limbs by name)."""
        return [s.name for s in self.stages].index(name)


@dataclass(frozen=True)
class _Primitive:
    """One motion primitive: an angle curve on one stage axis."""

    stage: int
    axis: int
    profile: str
    amplitude: float
    frequency: float
    phase: float


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
    _check_choice("persons", persons, (1, 2))
    _check_choice("channels", channels, (2, 3))
    _check_frames(frames)
    _check_range("separation", separation, 0.0, 10.0)
    _check_range("noise", noise, 0.0, 1.0)
    _check_range("missing_prob", missing_prob, 0.0, 1.0)
    n_train, n_val = _split_counts(num_subjects, split_fractions)
    body = _body_from_layout(get_layout(layout))
    class_rng, subject_rng, sample_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    names, class_prims = _action_classes(class_rng, body, num_classes, group_size, separation, persons)
    amp_subject = subject_rng.uniform(0.85, 1.15, num_subjects)
    speed_subject = subject_rng.uniform(0.8, 1.25, num_subjects)
    rest = _subject_rest(body, subject_rng, num_subjects)

    # Sample k of each class: subject k mod S, then the views in turn, then repetitions.
    n = num_classes * samples_per_class
    label = np.repeat(np.arange(num_classes), samples_per_class)
    k = np.tile(np.arange(samples_per_class), num_classes)
    subject, view, rep = k % num_subjects, (k // num_subjects) % num_views, k // (num_subjects * num_views)
    lo, hi = frames
    lengths = np.clip(np.rint(sample_rng.uniform(lo, hi, n) / speed_subject[subject]), lo, hi).astype(np.int64)

    angles = _action_angles(sample_rng, body, class_prims, label, lengths, amp_subject[subject], persons)
    pose = _animate(body, np.repeat(rest[subject], persons, axis=0), angles)
    points = _action_scene(sample_rng, pose, view, num_views, persons) + sample_rng.normal(0.0, noise, pose.shape)
    missing = _missing_mask(
        sample_rng, np.repeat(lengths, persons), pose.shape[1], body.layout.num_joints, missing_prob
    )
    img_shape = None if channels == 3 else (480, 640)
    keypoint = points if img_shape is None else _project(points, 500.0, img_shape)
    score = None if img_shape is None else sample_rng.uniform(0.8, 1.0, points.shape[:-1])
    _apply_missing(keypoint, score, missing)

    ids = [f"c{c:03d}_s{j + 1:03d}_v{v + 1}_r{r + 1:02d}" for c, j, v, r in zip(label, subject, view, rep)]
    meta = {"subject": subject + 1, "view": view + 1, "replication": rep + 1}
    samples = _cut_samples(ids, label, keypoint, score, lengths, img_shape, meta, persons)
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, num_subjects)}
    return SampleSet(samples, _subject_splits(ids, subject, bounds), str(layout), names)


def _action_classes(
    rng: np.random.Generator, body: _Body, num_classes: int, group_size: int, separation: float, persons: int
) -> tuple[list[str], list[list[list[_Primitive]]]]:
    """Class names and primitives (class -> person -> primitives), group by group."""
    dofs = _available_dofs(body)
    mains = _main_dofs(rng, body, dofs, -(-num_classes // group_size))
    specs = [
        _group_specs(rng, body, dofs, main, min(group_size, num_classes - g * group_size), separation, persons)
        for g, main in enumerate(mains)
    ]
    names = [f"g{g}v{k}_{name}" for g, group in enumerate(specs) for k, (name, _) in enumerate(group)]
    return names, [prims for group in specs for _, prims in group]


def _action_angles(
    rng: np.random.Generator,
    body: _Body,
    class_prims: list[list[list[_Primitive]]],
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
                curve = _profile(prim.profile, u[rows], prim.frequency, prim.phase + jitter[rows])
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
    return _place(pose, yaw, offset)


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
    _check_frames(frames)
    _check_range("noise", noise, 0.0, 100.0)
    _check_range("missing_prob", missing_prob, 0.0, 1.0)
    body = _body_from_layout(get_layout(layout))
    needed = [f"{side}_{part}" for side in ("left", "right") for part in ("shoulder", "elbow", "hip", "knee")]
    lacking = [name for name in needed + ["trunk"] if name not in [st.name for st in body.stages]]
    if lacking:
        raise InputError(f"layout '{layout}' cannot walk: no joints found for {lacking}")
    subject_rng, sample_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    style = _gait_style(subject_rng, num_subjects)
    rest = _subject_rest(body, subject_rng, num_subjects)

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
    pose = _animate(body, rest[subject], angles)
    pose[..., 1] += bob[:, :, None]
    points = _gait_scene(sample_rng, pose, view, lengths, style, subject)
    missing = _missing_mask(sample_rng, lengths, pose.shape[1], body.layout.num_joints, missing_prob)
    img_shape = (240, 320)
    coat = (cond == "cl")[:, None, None] & np.isin(np.asarray(body.parts), ("hip", "knee"))[None, None, :]
    sigma = noise + (3.0 + 3.0 * noise) * coat  # (n, 1, V): the coat blurs hips and knees
    keypoint = (
        _project(points, 530.0, img_shape) + sample_rng.normal(0.0, 1.0, points.shape[:-1] + (2,)) * sigma[..., None]
    )
    score = np.clip(sample_rng.uniform(0.8, 1.0, points.shape[:-1]) - 0.3 * coat, 0.0, 1.0)
    _apply_missing(keypoint, score, missing)

    ids = [f"{j + 1:03d}-{c}-{q + 1:02d}-{v:03d}" for j, c, q, v in zip(subject, cond, seq, view)]
    meta = {"subject": subject + 1, "condition": cond, "sequence": seq + 1, "view": view}
    samples = _cut_samples(ids, subject, keypoint, score, lengths, img_shape, meta, 1)
    bounds = {"train": (0, n_train), "test": (n_train, num_subjects)}
    classes = [f"{j + 1:03d}" for j in range(num_subjects)]
    return SampleSet(samples, _subject_splits(ids, subject, bounds), str(layout), classes)


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
    return _place(pose, yaw, np.array([0.0, -0.9, 8.0])) + travel[..., None, None] * forward[:, None, None, :]


def _gait_angles(
    rng: np.random.Generator,
    body: _Body,
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


def _group_specs(
    rng: np.random.Generator,
    body: _Body,
    dofs: list[tuple[int, int, float]],
    main_dof: tuple[int, int, float],
    size: int,
    separation: float,
    persons: int,
) -> list[tuple[str, list[list[_Primitive]]]]:
    """Class names and per-person primitives of one confusable group (the base class first).

    Class k > 0 changes person 0's motion by one detail: the secondary amplitude, the secondary
    phase, or an extra small oscillation on a third axis (cycling, larger after each cycle).
    """
    people = [
        _base_primitives(rng, dofs, main_dof if p == 0 else dofs[rng.integers(len(dofs))]) for p in range(persons)
    ]
    main, second = people[0]
    name = f"{body.stages[main.stage].name}_{_AXIS_NAMES[main.axis]}_{main.profile}"
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
            extra = _Primitive(
                stage, axis, "osc", scale * 0.5 * limit, rng.uniform(2.0, 4.0), rng.uniform(0, 2 * np.pi)
            )
            changed = [main, second, extra]
        classes.append((name, [changed, *people[1:]]))
    return classes


def _main_dofs(
    rng: np.random.Generator, body: _Body, dofs: list[tuple[int, int, float]], count: int
) -> list[tuple[int, int, float]]:
    """Main degrees of freedom of `count` groups: the visibly larger half, shuffled, reused only when short."""
    reach = [
        abs(limit) * np.linalg.norm(body.rest[stage.moving] - body.rest[list(stage.pivot)].mean(axis=0), axis=1).max()
        for stage, limit in ((body.stages[s], limit) for s, _, limit in dofs)
    ]
    large = [dofs[i] for i in np.argsort(reach, kind="stable")[::-1][: max(1, len(dofs) // 2)]]
    order = rng.permutation(len(large))
    return [large[order[g % len(large)]] for g in range(count)]


def _base_primitives(
    rng: np.random.Generator, dofs: list[tuple[int, int, float]], main_dof: tuple[int, int, float]
) -> list[_Primitive]:
    """The main primitive (large, any profile) and a secondary oscillation, preferably on another stage."""
    stage, axis, limit = main_dof
    profile = _PROFILES[rng.integers(len(_PROFILES))]
    frequency = float(rng.integers(1, 3)) if profile == "bump" else rng.uniform(1.0, 3.0)
    main = _Primitive(stage, axis, profile, rng.uniform(0.6, 1.0) * limit, frequency, 0.0)
    others = [d for d in dofs if d[0] != stage] or [d for d in dofs if d[:2] != (stage, axis)]
    stage2, axis2, limit2 = others[rng.integers(len(others))]
    second = _Primitive(
        stage2, axis2, "osc", rng.uniform(0.3, 0.5) * limit2, rng.uniform(1.5, 3.5), rng.uniform(0, 2 * np.pi)
    )
    return [main, second]


def _profile(kind: str, u: np.ndarray, frequency: float, phase: np.ndarray) -> np.ndarray:
    """Angle curve (n, T) in [-1, 1] over action time u (n, T): oscillation, repeated bump, or hold."""
    if kind == "osc":
        return np.sin(2 * np.pi * frequency * u + phase[:, None])
    if kind == "bump":
        return np.sin(np.pi * frequency * u + 0.5 * phase[:, None]) ** 2
    ramp = np.clip(4.0 * u, 0.0, 1.0)
    return ramp * ramp * (3.0 - 2.0 * ramp)


def _animate(body: _Body, rest: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Forward kinematics: rest (B, V, 3) posed by angles (B, T, stages, 3) into (B, T, V, 3).

    Each stage turns its joints about its pivot by R_y(twist) R_x(flex) R_z(abduct).
    """
    pose = np.repeat(rest[:, None], angles.shape[1], axis=1)
    for s, stage in enumerate(body.stages):
        angle = angles[:, :, s] * stage.signs
        if not angle.any():
            continue
        pivot = pose[:, :, list(stage.pivot)].mean(axis=2, keepdims=True)
        offset = pose[:, :, stage.moving] - pivot
        for dof, axis in ((ABDUCT, 2), (FLEX, 0), (TWIST, 1)):
            if angle[..., dof].any():
                offset = _rotate(offset, angle[..., dof, None], axis)
        pose[:, :, stage.moving] = pivot + offset
    return pose


def _rotate(points: np.ndarray, angle: np.ndarray, axis: int) -> np.ndarray:
    """Right-handed rotation of points (..., 3) about coordinate axis 0 (x), 1 (y) or 2 (z).

    `angle` broadcasts against points[..., 0].
    """
    i, j = {0: (1, 2), 1: (2, 0), 2: (0, 1)}[axis]
    cos, sin = np.cos(angle), np.sin(angle)
    out = points.copy()
    out[..., i] = cos * points[..., i] - sin * points[..., j]
    out[..., j] = sin * points[..., i] + cos * points[..., j]
    return out


def _place(pose: np.ndarray, yaw: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Turn each body (B, T, V, 3) by its yaw about the vertical axis, then shift it by offset."""
    return _rotate(pose, yaw[:, None, None], 1) + np.asarray(offset)[..., None, None, :]


def _project(points: np.ndarray, focal: float, img_shape: tuple[int, int]) -> np.ndarray:
    """Pinhole projection of camera points (..., 3), y up and z ahead, to pixels (..., 2), y down."""
    height, width = img_shape
    depth = np.maximum(points[..., 2], 0.1)
    return np.stack([width / 2 + focal * points[..., 0] / depth, height / 2 - focal * points[..., 1] / depth], axis=-1)


def _missing_mask(
    rng: np.random.Generator, lengths: np.ndarray, t_max: int, num_joints: int, prob: float
) -> np.ndarray:
    """(B, T, V) True where a joint is missing: with probability `prob` one joint, for a run of frames."""
    count = len(lengths)
    hit = rng.random(count) < prob
    joint = rng.integers(0, num_joints, count)
    start = (rng.random(count) * lengths).astype(np.int64)
    stop = start + 1 + (rng.random(count) * np.maximum(lengths // 4, 1)).astype(np.int64)
    frame = np.arange(t_max)[None, :, None]
    return (
        hit[:, None, None]
        & (frame >= start[:, None, None])
        & (frame < stop[:, None, None])
        & (np.arange(num_joints)[None, None, :] == joint[:, None, None])
    )


def _cut_samples(
    ids: list[str],
    labels: np.ndarray,
    keypoint: np.ndarray,
    score: np.ndarray | None,
    lengths: np.ndarray,
    img_shape: tuple[int, int] | None,
    meta: dict[str, np.ndarray],
    persons: int,
) -> list[Sample]:
    """Samples from padded (n * persons, T, V, C) arrays, each cut to its own length, as float32."""
    keypoint = keypoint.reshape(len(ids), persons, *keypoint.shape[1:]).astype(np.float32)
    score = None if score is None else score.reshape(len(ids), persons, *score.shape[1:]).astype(np.float32)
    return [
        Sample(
            sample_id=ids[i],
            keypoint=keypoint[i, :, : lengths[i]].copy(),
            label=int(labels[i]),
            score=None if score is None else score[i, :, : lengths[i]].copy(),
            img_shape=img_shape,
            meta={key: value[i].item() for key, value in meta.items()},
        )
        for i in range(len(ids))
    ]


def _subject_splits(ids: list[str], subject: np.ndarray, bounds: dict[str, tuple[int, int]]) -> dict[str, list[str]]:
    """Splits by subject index: split `name` holds the samples with `low <= subject < high`."""
    return {name: [i for i, j in zip(ids, subject) if low <= j < high] for name, (low, high) in bounds.items()}


def _apply_missing(keypoint: np.ndarray, score: np.ndarray | None, missing: np.ndarray) -> None:
    """Zero the coordinates (and scores) of missing joints in place."""
    keypoint[missing] = 0.0
    if score is not None:
        score[missing] = 0.0


def _subject_rest(body: _Body, rng: np.random.Generator, num_subjects: int) -> np.ndarray:
    """Rest poses (S, V, 3) with each subject's height, arm and leg length and width."""
    height = rng.uniform(0.88, 1.12, num_subjects)[:, None]
    arm = rng.uniform(0.9, 1.1, num_subjects)[:, None]
    leg = rng.uniform(0.9, 1.1, num_subjects)[:, None]
    width = rng.uniform(0.9, 1.1, num_subjects)[:, None]
    parts = np.asarray(body.parts)
    factor = height * np.where(np.isin(parts, _ARM), arm, np.where(np.isin(parts, _LEG), leg, 1.0))
    scale = np.repeat(factor[:, :, None], 3, axis=2)
    scale[:, np.isin(parts, ("shoulder", "hip")), 0] *= width
    parents = np.asarray(body.layout.parents)
    bones = body.rest - body.rest[parents]
    bones[body.layout.center] = body.rest[body.layout.center]
    return np.einsum("vu,suc->svc", body.ancestors, bones[None] * scale)


def _body_from_layout(layout: Layout) -> _Body:
    """Rest pose, joint parts and limb stages of a layout (named limbs, else the branches of the tree)."""
    names = [n.lower() for n in layout.joint_names]
    sides = np.array([_side(n) for n in names])
    matches = [_template(n, side) for n, side in zip(names, sides)]
    parts = tuple(m[0] if m else "" for m in matches)
    ancestors = _ancestor_matrix(layout)
    order = np.argsort(ancestors.sum(axis=1), kind="stable")
    rest = _rest_pose(layout, order, [m[1] if m else None for m in matches])
    stages = _named_stages(layout, order, parts, sides, rest)
    if len(stages) < 2:
        stages = _branch_stages(layout, ancestors)
    return _Body(layout, rest, parts, ancestors, tuple(stages))


def _side(name: str) -> int:
    """+1 for a left joint, -1 for a right one, 0 otherwise (from `left`/`right` or `l`/`r` tokens)."""
    tokens = re.split(r"[^a-z0-9]+", name)
    if "left" in name or "l" in tokens:
        return 1
    if "right" in name or "r" in tokens:
        return -1
    return 0


def _template(name: str, side: int) -> tuple[str, np.ndarray] | None:
    """Part and template position of the first keyword in a joint name, or None when none matches."""
    for keyword, part, x, y, z in _TEMPLATES:
        if keyword in name:
            return part, np.array([side * x, y, z])
    return None


def _ancestor_matrix(layout: Layout) -> np.ndarray:
    """(V, V) with 1 at [v, u] when u lies on the path from the center to v (both ends included)."""
    matrix = np.zeros((layout.num_joints, layout.num_joints))
    for v in range(layout.num_joints):
        u = v
        while u != layout.center:
            matrix[v, u] = 1.0
            u = layout.parents[u]
        matrix[v, layout.center] = 1.0
    return matrix


def _rest_pose(layout: Layout, order: np.ndarray, templates: list[np.ndarray | None]) -> np.ndarray:
    """Place joints by walking the tree from the center: template bones where names are known.

    A bone runs from the nearest known ancestor's template to the joint's template; unknown joints
    continue their parent bone's direction (or fan out around the center) by 15 cm.
    """
    center, parents = layout.center, layout.parents
    fan = [v for v in order if parents[v] == center and v != center]
    pos = np.zeros((layout.num_joints, 3))
    reference: list[np.ndarray | None] = [None] * layout.num_joints
    pos[center] = templates[center] if templates[center] is not None else (0.0, 1.2, 0.0)
    reference[center] = templates[center]
    for v in order[1:]:
        p, template = parents[v], templates[v]
        bone = template - reference[p] if template is not None and reference[p] is not None else None
        if bone is None or np.linalg.norm(bone) < 1e-6:
            if p == center:
                a = 2 * np.pi * fan.index(v) / len(fan)
                direction = np.array([np.sin(a), np.cos(a), 0.0])
            else:
                direction = pos[p] - pos[parents[p]]
                norm = np.linalg.norm(direction)
                direction = direction / norm if norm > 1e-9 else np.array([0.0, -1.0, 0.0])
            bone = 0.15 * direction
        pos[v] = pos[p] + bone
        reference[v] = template if template is not None else reference[p]
    return pos


def _named_stages(
    layout: Layout, order: np.ndarray, parts: tuple[str, ...], sides: np.ndarray, rest: np.ndarray
) -> list[_Stage]:
    """Elbows and knees, then shoulders, hips and neck, then the trunk, where the names allow."""
    part = np.asarray(parts)
    specs: list[tuple[str, str, np.ndarray, np.ndarray, int]] = []
    for joint, moves in (("elbow", ("wrist", "hand")), ("knee", ("ankle", "foot")), ("shoulder", _ARM), ("hip", _LEG)):
        for side_name, side in (("left", 1), ("right", -1)):
            on_side = sides == side
            specs.append(
                (f"{side_name}_{joint}", joint, on_side & (part == joint), on_side & np.isin(part, moves), side)
            )
    necks = np.flatnonzero(part == "neck")
    neck_pivot = part == "shoulder" if necks.size == 0 else np.arange(len(part)) == necks[np.argmax(rest[necks, 1])]
    specs.append(("neck", "neck", neck_pivot, part == "head", 1))
    trunk_pivot = part == "pelvis" if (part == "pelvis").any() else part == "hip"
    specs.append(("trunk", "trunk", trunk_pivot, (part != "") & ~np.isin(part, _LOWER), 1))
    moving = np.stack([m for _, _, _, m, _ in specs])
    for v in order[1:]:  # unknown joints move with their parent
        if parts[v] == "":
            moving[:, v] = moving[:, layout.parents[v]]
    return [
        _Stage(name, kind, tuple(np.flatnonzero(pivot)), np.flatnonzero(moves), np.array([1.0, side, 1.0]))
        for (name, kind, pivot, _, side), moves in zip(specs, moving)
        if pivot.any() and moves.any()
    ]


def _branch_stages(layout: Layout, ancestors: np.ndarray) -> list[_Stage]:
    """Stages for layouts without known joint names: each branch of the center, and its inner part."""
    roots = [v for v in range(layout.num_joints) if layout.parents[v] == layout.center and v != layout.center]
    inner, whole = [], []
    for root in roots:
        subtree = np.flatnonzero(ancestors[:, root])
        if len(subtree) > 1:
            inner.append(_Stage(f"branch{root}_mid", "branch_mid", (root,), subtree[subtree != root], np.ones(3)))
        whole.append(_Stage(f"branch{root}", "branch", (layout.center,), subtree, np.ones(3)))
    return inner + whole


def _available_dofs(body: _Body) -> list[tuple[int, int, float]]:
    """(stage, axis, natural amplitude) of every degree of freedom the body offers."""
    dofs = [(s, axis, limit) for s, stage in enumerate(body.stages) for axis, limit in _DOFS[stage.kind]]
    if len(dofs) < 3:
        raise InputError(
            f"layout '{body.layout.name}' has too few movable limbs for generated actions "
            f"({len(dofs)} degrees of freedom, at least 3 needed)"
        )
    return dofs


def require_int(name: str, value: object, minimum: int) -> None:
    """Raise InputError unless value is an integer >= minimum (shared with `aclnet.data.datasets`)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name}={value!r}: expected an integer >= {minimum}")


def _check_choice(name: str, value: object, choices: tuple[int, ...]) -> None:
    """Raise InputError unless value is one of choices."""
    if isinstance(value, bool) or value not in choices:
        raise InputError(f"{name}={value!r}: expected one of {list(choices)}")


def _check_range(name: str, value: object, low: float, high: float) -> None:
    """Raise InputError unless value is a finite number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not low <= float(value) <= high:
        raise InputError(f"{name}={value!r}: expected a number in [{low}, {high}]")


def _check_frames(frames: object) -> None:
    """Raise InputError unless frames is (min, max) with 2 <= min <= max."""
    ok = isinstance(frames, (tuple, list)) and len(frames) == 2
    if not ok or any(isinstance(f, bool) or not isinstance(f, (int, np.integer)) for f in frames):
        raise InputError(f"frames={frames!r}: expected (min, max) frame counts")
    if not 2 <= frames[0] <= frames[1]:
        raise InputError(f"frames={tuple(frames)}: expected 2 <= min <= max")


def _split_counts(num_subjects: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    """Numbers of train and val subjects: val and test get at least one unless their fraction is 0."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise InputError(f"split_fractions={tuple(fractions)}: expected three non-negative fractions summing to 1")
    n_val, n_test = (max(1, round(f * num_subjects)) if f > 0 else 0 for f in fractions[1:])
    n_train = num_subjects - n_val - n_test
    if n_train < 1:
        raise InputError(
            f"split_fractions={tuple(fractions)} with {num_subjects} subjects leaves no training subject "
            f"(val {n_val}, test {n_test})"
        )
    return n_train, n_val
