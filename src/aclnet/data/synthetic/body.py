"""The body model of the generated data: any layout made animatable (a rest pose placed by walking the
kinematic tree with bone directions chosen from joint names, limbs rotated rigidly about their pivots:
elbows and knees first, then shoulders, hips and neck, then the trunk), placed in a scene, projected to a
camera, with joints gone missing."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from aclnet.errors import InputError
from aclnet.skeleton import Layout

FLEX, ABDUCT, TWIST = 0, 1, 2  # angle axes of a stage: about x, about z, about y


AXIS_NAMES = ("flex", "abduct", "twist")


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
    ("pinky", "hand", 0.26, 0.74, -0.01),
    ("index", "hand", 0.25, 0.72, -0.06),
    ("mouth", "head", 0.025, 1.545, -0.09),
    ("eye_inner", "head", 0.012, 1.625, -0.09),
    ("eye_outer", "head", 0.06, 1.615, -0.07),
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


PROFILES = ("osc", "bump", "hold")


@dataclass(frozen=True)
class _Stage:
    """A rigid rotation of `moving` joints about the mean of `pivot` joints (one limb segment)."""

    name: str
    kind: str
    pivot: tuple[int, ...]
    moving: np.ndarray
    signs: np.ndarray  # (3,) sign per axis: abduction turns outward on either side


@dataclass(frozen=True)
class Body:
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
class Primitive:
    """One motion primitive: an angle curve on one stage axis."""

    stage: int
    axis: int
    profile: str
    amplitude: float
    frequency: float
    phase: float


def main_dofs(
    rng: np.random.Generator, body: Body, dofs: list[tuple[int, int, float]], count: int
) -> list[tuple[int, int, float]]:
    """Main degrees of freedom of `count` groups: the visibly larger half, shuffled, reused only when short."""
    reach = [
        abs(limit) * np.linalg.norm(body.rest[stage.moving] - body.rest[list(stage.pivot)].mean(axis=0), axis=1).max()
        for stage, limit in ((body.stages[s], limit) for s, _, limit in dofs)
    ]
    large = [dofs[i] for i in np.argsort(reach, kind="stable")[::-1][: max(1, len(dofs) // 2)]]
    order = rng.permutation(len(large))
    return [large[order[g % len(large)]] for g in range(count)]


def profile(kind: str, u: np.ndarray, frequency: float, phase: np.ndarray) -> np.ndarray:
    """Angle curve (n, T) in [-1, 1] over action time u (n, T): oscillation, repeated bump, or hold."""
    if kind == "osc":
        return np.sin(2 * np.pi * frequency * u + phase[:, None])
    if kind == "bump":
        return np.sin(np.pi * frequency * u + 0.5 * phase[:, None]) ** 2
    ramp = np.clip(4.0 * u, 0.0, 1.0)
    return ramp * ramp * (3.0 - 2.0 * ramp)


def animate(body: Body, rest: np.ndarray, angles: np.ndarray) -> np.ndarray:
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


def place(pose: np.ndarray, yaw: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Turn each body (B, T, V, 3) by its yaw about the vertical axis, then shift it by offset."""
    return _rotate(pose, yaw[:, None, None], 1) + np.asarray(offset)[..., None, None, :]


def project(points: np.ndarray, focal: float, img_shape: tuple[int, int]) -> np.ndarray:
    """Pinhole projection of camera points (..., 3), y up and z ahead, to pixels (..., 2), y down."""
    height, width = img_shape
    depth = np.maximum(points[..., 2], 0.1)
    return np.stack([width / 2 + focal * points[..., 0] / depth, height / 2 - focal * points[..., 1] / depth], axis=-1)


def missing_mask(
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


def apply_missing(keypoint: np.ndarray, score: np.ndarray | None, missing: np.ndarray) -> None:
    """Zero the coordinates (and scores) of missing joints in place."""
    keypoint[missing] = 0.0
    if score is not None:
        score[missing] = 0.0


def subject_rest(body: Body, rng: np.random.Generator, num_subjects: int) -> np.ndarray:
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


def body_from_layout(layout: Layout) -> Body:
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
    return Body(layout, rest, parts, ancestors, tuple(stages))


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


def available_dofs(body: Body) -> list[tuple[int, int, float]]:
    """(stage, axis, natural amplitude) of every degree of freedom the body offers."""
    dofs = [(s, axis, limit) for s, stage in enumerate(body.stages) for axis, limit in _DOFS[stage.kind]]
    if len(dofs) < 3:
        raise InputError(
            f"layout '{body.layout.name}' has too few movable limbs for generated actions "
            f"({len(dofs)} degrees of freedom, at least 3 needed)"
        )
    return dofs
