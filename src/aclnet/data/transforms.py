"""Skeleton transforms as pure, vectorised NumPy functions (PYSKL behaviour, see docs/method.md section 8).

Arrays follow the sample record: keypoints (..., M, T, V, C) (persons, frames, joints, channels),
scores (..., M, T, V). Leading axes beyond M are allowed where a docstring says "any leading axes".
Missing joints are zeros. No function modifies its inputs; each returns new arrays.
Random functions take a `numpy.random.Generator`; test-time sampling uses PYSKL's seeded
`RandomState` so that its clips are reproduced exactly.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from aclnet.errors import InputError
from aclnet.skeleton import Layout

RandomSource = np.random.Generator | np.random.RandomState
ScoreMode = Literal["released", "mean"]
ShortTestStart = Literal["random", "spread"]
ShortWindow = Literal["loop", "pad", "error"]
MODALITIES = ("j", "b", "k", "jm", "bm", "km")
PYSKL_TEST_SEED = 255
_ZERO_ATOL = 1e-8  # np.isclose(x, 0) with default tolerances means |x| <= 1e-8


# --------------------------------------------------------------------------------------------
# 3D and 2D normalisation
# --------------------------------------------------------------------------------------------


def main_person_frames(keypoint: np.ndarray) -> tuple[np.ndarray, bool]:
    """Frames PreNormalize3D keeps, and whether persons 0 and 1 swap.

    Keeps the frames where person 0 is not all (close to) zero; when person 1 has more such
    frames, keeps person 1's frames and makes person 1 the main person.
    """
    main = keypoint[:2]
    present = (np.abs(main) > _ZERO_ATOL).reshape(main.shape[0], main.shape[1], -1).any(axis=-1)
    counts = present.sum(axis=1)
    swap = keypoint.shape[0] >= 2 and counts[0] < counts[1]
    return np.flatnonzero(present[1 if swap else 0]), bool(swap)


def joint_present(keypoint: np.ndarray) -> np.ndarray:
    """(..., V) True where a joint has any non-zero channel (a sum of absolute values, which is
    much faster than `any` over a 2- or 3-long axis)."""
    return (np.abs(keypoint) @ np.ones(keypoint.shape[-1], dtype=keypoint.dtype)) != 0


def subtract_where_present(keypoint: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """keypoint - origin at every joint with a non-zero channel; all-zero joints stay zero.

    Works on rows of V * C values so that NumPy's inner loops are long.
    """
    *lead, joints, channels = keypoint.shape
    rows = int(np.prod(lead))
    flat = keypoint.reshape(rows, joints * channels) - np.tile(origin.astype(keypoint.dtype), joints)
    flat *= np.repeat(joint_present(keypoint).reshape(rows, joints), channels, axis=1)
    return flat.reshape(keypoint.shape)


def _apply_matrix(keypoint: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """x' = matrix @ x for every joint (channels last), in float32."""
    flat = keypoint.reshape(-1, keypoint.shape[-1]).astype(np.float32, copy=False)
    return (flat @ matrix.T.astype(np.float32)).reshape(keypoint.shape)


def rotation_to(vector: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation matrix taking the direction of `vector` onto `target` (PYSKL's spine alignment).

    Identity when either vector or the angle is (nearly) zero, as PYSKL's `rotation_matrix`.
    """
    vector = np.asarray(vector, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if np.abs(vector).sum() < 1e-6 or np.abs(target).sum() < 1e-6:
        return np.eye(3)
    cosine = np.dot(vector / np.linalg.norm(vector), target / np.linalg.norm(target))
    angle = np.arccos(np.clip(cosine, -1.0, 1.0))
    axis = np.cross(vector, target)
    if np.abs(axis).sum() < 1e-6 or abs(angle) < 1e-6:
        return np.eye(3)
    k = axis / np.linalg.norm(axis)
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * (cross @ cross)


def pre_normalize_3d(
    keypoint: np.ndarray,
    score: np.ndarray | None = None,
    *,
    align_spine: bool = True,
    center_joint: int | None = None,
    zaxis: tuple[int, int] = (0, 1),
    xaxis: tuple[int, int] = (8, 4),
) -> tuple[np.ndarray, np.ndarray | None]:
    """PYSKL's PreNormalize3D on (M, T, V, 3) keypoints; scores follow the kept frames.

    Drops frames without the main person (see `main_person_frames`), subtracts the center
    joint of the main person at the first kept frame from every non-zero joint (zeros stay
    zero; center: joint 1 for 25 joints, else the last joint, unless `center_joint` is given)
    and, with `align_spine`, rotates the vector from joint zaxis[0] to zaxis[1] onto +z, then
    the vector from joint xaxis[1] to xaxis[0] onto +x (PYSKL's argument order). An input
    without any (non-negligible) frame is returned unchanged.
    """
    if keypoint.shape[-1] != 3:
        raise InputError(f"pre_normalize_3d needs 3D keypoints (x, y, z), got {keypoint.shape[-1]} channels")
    frames, swap = main_person_frames(keypoint)
    if not frames.size:
        return keypoint.copy(), None if score is None else score.copy()
    persons = np.arange(keypoint.shape[0])
    if swap:
        persons[:2] = (1, 0)
    skeleton = keypoint[persons[:, None], frames[None, :]]
    if score is not None:
        score = score[persons[:, None], frames[None, :]]
    if center_joint is None:
        center_joint = 1 if keypoint.shape[2] == 25 else keypoint.shape[2] - 1
    skeleton = subtract_where_present(skeleton, skeleton[0, 0, center_joint])
    if align_spine:
        first = skeleton[0, 0].astype(np.float64)
        rot_z = rotation_to(first[zaxis[1]] - first[zaxis[0]], np.array([0.0, 0.0, 1.0]))
        first = first @ rot_z.T
        rot_x = rotation_to(first[xaxis[0]] - first[xaxis[1]], np.array([1.0, 0.0, 0.0]))
        skeleton = _apply_matrix(skeleton, rot_x @ rot_z)
    return skeleton.astype(np.float32, copy=False), score


def normalize_2d(
    keypoint: np.ndarray,
    score: np.ndarray | None,
    img_shape: tuple[int, int],
    *,
    mode: Literal["fix", "auto"] = "fix",
    threshold: float = 0.01,
) -> tuple[np.ndarray, np.ndarray | None]:
    """PYSKL's PreNormalize2D: x, y to [-1, 1]; joints with score <= threshold get x = y = 0.

    'fix' divides by the image size (h, w); 'auto' by the box of all joints with score above
    the threshold (all joints without scores), left unchanged when that box is not wider and
    taller than 10 pixels. Any leading axes.
    """
    xy = keypoint[..., :2].astype(np.float32)
    if mode == "auto":
        valid = xy[score > threshold] if score is not None else xy.reshape(-1, 2)
        low = valid.min(axis=0) if len(valid) else np.zeros(2, np.float32)
        high = valid.max(axis=0) if len(valid) else np.zeros(2, np.float32)
        if np.all(high - low > 10):
            xy = (xy - (high + low) / 2) / (high - low) * 2
    else:
        half = np.array([img_shape[1], img_shape[0]], dtype=np.float32) / 2
        xy = (xy - half) / half
    if score is not None:
        xy = xy * (score > threshold)[..., None]
    out = keypoint.astype(np.float32, copy=True)
    out[..., :2] = xy
    return out, None if score is None else score.copy()


# --------------------------------------------------------------------------------------------
# Random spatial augmentations
# --------------------------------------------------------------------------------------------


def rotation_matrix_3d(angles: np.ndarray) -> np.ndarray:
    """PYSKL's RandomRot matrix Rz @ Ry @ Rx for angles (about x, y, z)."""
    cos, sin = np.cos(angles), np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cos[0], sin[0]], [0, -sin[0], cos[0]]])
    ry = np.array([[cos[1], 0, -sin[1]], [0, 1, 0], [sin[1], 0, cos[1]]])
    rz = np.array([[cos[2], sin[2], 0], [-sin[2], cos[2], 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_rotate(keypoint: np.ndarray, rng: np.random.Generator, max_angle: float) -> np.ndarray:
    """PYSKL's RandomRot: one rotation, angles uniform in [-max_angle, max_angle] (radians).

    3D: about x, y and z; 2D: in the image plane (PYSKL draws that angle from
    [-max_angle, 1) by a slip; here it is symmetric). All-zero input is returned unchanged.
    Any leading axes.
    """
    channels = keypoint.shape[-1]
    if channels not in (2, 3):
        raise InputError(f"random_rotate needs 2 or 3 coordinate channels, got {channels}")
    if np.all(np.abs(keypoint) <= _ZERO_ATOL):
        return keypoint.copy()
    if channels == 3:
        matrix = rotation_matrix_3d(rng.uniform(-max_angle, max_angle, size=3))
    else:
        angle = rng.uniform(-max_angle, max_angle)
        matrix = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return _apply_matrix(keypoint, matrix)


def random_scale(keypoint: np.ndarray, rng: np.random.Generator, scale: float | tuple[float, ...]) -> np.ndarray:
    """PYSKL's RandomScale: each channel times 1 + u * scale, u uniform in [-1, 1]. Any leading axes."""
    channels = keypoint.shape[-1]
    amount = np.broadcast_to(np.asarray(scale, dtype=np.float64), (channels,))
    factor = 1 + rng.uniform(-1, 1, size=channels) * amount
    return (keypoint * factor.astype(np.float32)).astype(np.float32, copy=False)


def random_shear(keypoint: np.ndarray, rng: np.random.Generator, shear: float) -> np.ndarray:
    """Shear as in 2s-AGCN/CTR-GCN: x' = S x, S = identity plus off-diagonals uniform in [-shear, shear]."""
    channels = keypoint.shape[-1]
    matrix = np.eye(channels) + rng.uniform(-shear, shear, size=(channels, channels)) * (1 - np.eye(channels))
    return _apply_matrix(keypoint, matrix)


def flip(
    keypoint: np.ndarray, score: np.ndarray | None, layout: Layout, img_width: float | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mirror left and right: x -> img_width - x for non-zero x (PYSKL's Flip), or x -> -x
    without an image width; joints and scores swap by the layout's left/right pairs (a mirror
    image; `swap_left_right` only exchanges the joints). Any leading axes."""
    order = np.asarray(layout.flip_index)
    out = keypoint[..., order, :].astype(np.float32, copy=True)
    x = out[..., 0]
    out[..., 0] = -x if img_width is None else np.where(x != 0, img_width - x, x)
    return out, None if score is None else score[..., order]


def random_flip(
    keypoint: np.ndarray,
    score: np.ndarray | None,
    layout: Layout,
    img_width: float | None,
    rng: np.random.Generator,
    p: float = 0.5,
) -> tuple[np.ndarray, np.ndarray | None]:
    """`flip` with probability p (one draw per sample)."""
    if rng.random() < p:
        return flip(keypoint, score, layout, img_width)
    return keypoint.copy(), None if score is None else score.copy()


def swap_left_right(
    keypoint: np.ndarray,
    score: np.ndarray | None,
    order: tuple[int, ...] | list[int] | np.ndarray,
    rng: np.random.Generator,
    p: float = 0.5,
) -> tuple[np.ndarray, np.ndarray | None]:
    """With probability p (one draw per call), exchange left and right joints: joint v of the output
    is joint order[v] of the input (`order` a permutation of the joints, e.g. `layout.flip_index`).

    Coordinates are not changed, only which joint holds them (the release's `Spatial_Flip`; unlike
    `flip`, nothing is mirrored, so the result is the other side's body in the same pose, not the
    pose's mirror image). Scores follow their joints. Any leading axes.
    """
    index = np.asarray(order, dtype=np.intp)
    joints = keypoint.shape[-2]
    if index.shape != (joints,) or not np.array_equal(np.sort(index), np.arange(joints)):
        raise InputError(f"swap_left_right needs a permutation of the {joints} joints, got {list(order)}")
    if rng.random() < p:
        return keypoint[..., index, :].copy(), None if score is None else score[..., index].copy()
    return keypoint.copy(), None if score is None else score.copy()


def limb_groups(layout: Layout) -> tuple[tuple[int, ...], ...]:
    """The four part-drop groups: left arm with hand, left leg, right arm with hand, right leg.

    Built from the layout's parts `left_arm`, `right_arm`, `hands` and `legs`, hands and legs
    split by the `left_` / `right_` joint-name prefixes.
    """
    missing = [p for p in ("left_arm", "right_arm", "hands", "legs") if p not in layout.parts]
    if missing:
        raise InputError(f"layout '{layout.name}' has no body parts {missing}, needed for part drop")
    names = layout.joint_names

    def side(part: str, prefix: str) -> set[int]:
        return {j for j in layout.parts[part] if names[j].startswith(prefix)}

    groups = (
        set(layout.parts["left_arm"]) | side("hands", "left_"),
        side("legs", "left_"),
        set(layout.parts["right_arm"]) | side("hands", "right_"),
        side("legs", "right_"),
    )
    if not all(groups):
        raise InputError(
            f"layout '{layout.name}': part drop needs left_/right_ joint names in its legs part"
        )
    return tuple(tuple(sorted(g)) for g in groups)


def part_drop(
    keypoint: np.ndarray,
    score: np.ndarray | None,
    layout: Layout | tuple[tuple[int, ...], ...],
    rng: np.random.Generator,
    p: float = 0.2,
) -> tuple[np.ndarray, np.ndarray | None]:
    """With probability p, zero one limb group (chosen uniformly, see `limb_groups`) in every
    person and frame; scores of the group are zeroed too. Any leading axes."""
    groups = limb_groups(layout) if isinstance(layout, Layout) else layout
    keypoint = keypoint.copy()
    score = None if score is None else score.copy()
    if rng.random() < p:
        joints = list(groups[rng.integers(len(groups))])
        keypoint[..., joints, :] = 0
        if score is not None:
            score[..., joints] = 0
    return keypoint, score


# --------------------------------------------------------------------------------------------
# Gait augmentations (GaitGraph, tteepe/GaitGraph src/datasets/augmentation.py)
# --------------------------------------------------------------------------------------------
# GaitGraph's poses have no missing joints (HRNet always places every joint). Here missing joints
# (all coordinates zero, the sample convention) stay zero: they are left out of the mirror centre
# and get no noise, so on data without missing joints the results are GaitGraph's.


def mirror_about_center(keypoint: np.ndarray) -> np.ndarray:
    """Mirror x about each pose's own centre: x -> 2 c - x, c the mean x of the present joints of
    that person in that frame (GaitGraph's MirrorPoses). Unlike `flip`, joints are not swapped
    left/right and no image width is used; other channels and missing joints are unchanged.
    Any leading axes; returns float32."""
    out = keypoint.astype(np.float32, copy=True)
    present = joint_present(out)
    x = out[..., 0]
    count = present.sum(axis=-1, keepdims=True)
    center = np.where(present, x, 0).sum(axis=-1, keepdims=True) / np.maximum(count, 1)
    out[..., 0] = np.where(present, 2 * center - x, x)
    return out


def random_mirror_about_center(keypoint: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """`mirror_about_center` with probability p (one draw per call)."""
    if rng.random() < p:
        return mirror_about_center(keypoint)
    return keypoint.copy()


def reverse_time(
    keypoint: np.ndarray, score: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The frames in reverse order (GaitGraph's FlipSequence). Frames are axis -3 of keypoints,
    -2 of scores."""
    return np.flip(keypoint, axis=-3).copy(), None if score is None else np.flip(score, axis=-2).copy()


def random_reverse_time(
    keypoint: np.ndarray, score: np.ndarray | None, rng: np.random.Generator, p: float = 0.5
) -> tuple[np.ndarray, np.ndarray | None]:
    """`reverse_time` with probability p (one draw per call)."""
    if rng.random() < p:
        return reverse_time(keypoint, score)
    return keypoint.copy(), None if score is None else score.copy()


def point_noise(
    keypoint: np.ndarray,
    score: np.ndarray | None,
    rng: np.random.Generator,
    std: float,
    *,
    noise_score: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Independent Gaussian noise N(0, std) on every coordinate of every present joint in every
    frame (GaitGraph's PointNoise), in the units of the coordinates. With `noise_score` the
    score gets its own noise too (GaitGraph's score is its third channel and is noised); the
    keypoint noise is drawn first. Missing joints stay zero. Any leading axes; float32."""
    present = joint_present(keypoint)
    noise = rng.normal(0.0, std, keypoint.shape).astype(np.float32)
    out = (keypoint + noise * present[..., None]).astype(np.float32, copy=False)
    if score is None:
        return out, None
    if not noise_score:
        return out, score.copy()
    score_noise = rng.normal(0.0, std, score.shape).astype(np.float32)
    return out, (score + score_noise * present).astype(np.float32, copy=False)


def joint_noise(keypoint: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
    """One Gaussian offset N(0, std) per joint and coordinate, the same in every frame (GaitGraph's
    JointNoise; one offset per person and joint, frames axis -3). Scores are not touched; missing
    joints stay zero. Any leading axes; float32."""
    shape = keypoint.shape[:-3] + (1,) + keypoint.shape[-2:]
    offset = rng.normal(0.0, std, shape).astype(np.float32)
    return (keypoint + offset * joint_present(keypoint)[..., None]).astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------
# Temporal sampling
# --------------------------------------------------------------------------------------------


def _below(source: RandomSource, high: int | np.ndarray) -> int | np.ndarray:
    """Integers in [0, high) from either kind of random source."""
    if isinstance(source, np.random.Generator):
        return source.integers(high)
    return source.randint(high)


def _clip_indices(
    num_frames: int,
    clip_len: int,
    source: RandomSource,
    start: int | None,
) -> np.ndarray:
    """One clip of `clip_len` indices from `num_frames` frames, by PYSKL's three regimes.

    T < L: consecutive frames from `start` (random when None), looping; L <= T < 2L: T - L
    random skips inserted into 0..L-1; T >= 2L: one random frame in each of L equal segments.
    """
    if num_frames < clip_len:
        first = _below(source, num_frames) if start is None else start
        return np.arange(first, first + clip_len) % num_frames
    if num_frames < 2 * clip_len:
        skips = np.zeros(clip_len + 1, dtype=np.int64)
        skips[source.choice(clip_len + 1, num_frames - clip_len, replace=False)] = 1
        return np.arange(clip_len) + np.cumsum(skips)[:-1]
    bounds = np.arange(clip_len + 1) * num_frames // clip_len
    return bounds[:-1] + _below(source, np.diff(bounds))


def uniform_sample_indices(
    num_frames: int,
    clip_len: int,
    num_clips: int = 1,
    rng: np.random.Generator | None = None,
    *,
    test_mode: bool = False,
    p_interval: tuple[float, float] = (1.0, 1.0),
    seed: int = PYSKL_TEST_SEED,
    short_test_start: ShortTestStart = "random",
) -> np.ndarray:
    """Frame indices (num_clips, clip_len) in [0, num_frames), PYSKL's uniform sampling.

    Each clip first takes a random share in `p_interval` of the frames at a random offset.
    In test mode the random state is PYSKL's: a `RandomState(seed)` fresh for every call,
    drawn in PYSKL's order, so indices depend only on (num_frames, clip_len, num_clips).
    `short_test_start` picks the test-time start of clips shorter than clip_len: 'random'
    (UniformSampleDecode, the NTU configurations) or 'spread' (UniformSampleFrames, Kinetics:
    clip i starts at i * T // num_clips, or i when T < num_clips).
    """
    if num_frames < 1 or clip_len < 1 or num_clips < 1:
        raise InputError(
            f"uniform sampling needs positive sizes, got {num_frames} frames, clip_len {clip_len}, {num_clips} clips"
        )
    if test_mode:
        source: RandomSource = np.random.RandomState(seed)
    elif rng is None:
        raise InputError("uniform sampling for training needs a random generator")
    else:
        source = rng
    low, high = p_interval
    clips = []
    for clip in range(num_clips):  # a few clips; each clip is vectorised
        ratio = source.random() * (high - low) + low
        length = max(1, int(ratio * num_frames))
        offset = _below(source, num_frames - length + 1)
        start = None
        if test_mode and short_test_start == "spread" and length < clip_len:
            start = clip if length < num_clips else clip * length // num_clips
        clips.append(_clip_indices(length, clip_len, source, start) + offset)
    return np.stack(clips).astype(np.int64)


def take_frames(array: np.ndarray, indices: np.ndarray, frame_axis: int) -> np.ndarray:
    """Gather frames (num_clips, clip_len) from `array` into a new leading clips axis."""
    taken = np.take(array, indices.reshape(-1), axis=frame_axis)
    shape = taken.shape[:frame_axis] + indices.shape + taken.shape[frame_axis + 1:]
    return np.moveaxis(taken.reshape(shape), frame_axis, 0)


def crop_window(
    num_frames: int, ratio: tuple[float, float], rng: np.random.Generator | None, min_length: int = 1
) -> tuple[int, int]:
    """(start, length) of a temporal crop: a share uniform in `ratio` at a random start, or,
    without a generator, the centred crop of share ratio[1] (CTR-GCN's valid_crop_resize)."""
    if rng is None:
        length = int(np.floor(num_frames * ratio[1]))
    else:
        length = int(np.floor(num_frames * rng.uniform(ratio[0], ratio[1])))
    length = int(np.clip(length, min(min_length, num_frames), num_frames))
    start = (num_frames - length) // 2 if rng is None else int(rng.integers(num_frames - length + 1))
    return start, length


def resize_frames(array: np.ndarray, start: int, length: int, size: int, frame_axis: int) -> np.ndarray:
    """Frames start..start+length-1 linearly resized to `size` frames along `frame_axis`
    (torch's interpolate with align_corners=False)."""
    position = (np.arange(size) + 0.5) * (length / size) - 0.5
    position = np.clip(position, 0, length - 1)
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, length - 1)
    weight = (position - lower).astype(np.float32)
    shape = [1] * array.ndim
    shape[frame_axis] = size
    weight = weight.reshape(shape)
    first = np.take(array, start + lower, axis=frame_axis)
    second = np.take(array, start + upper, axis=frame_axis)
    return (first * (1 - weight) + second * weight).astype(np.float32)


def random_crop_resize(
    keypoint: np.ndarray,
    score: np.ndarray | None,
    rng: np.random.Generator | None,
    *,
    ratio: tuple[float, float] = (0.5, 1.0),
    length: int = 64,
    min_length: int = 1,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Crop a random share `ratio` of the frames (the centred ratio[1] share when rng is None)
    and resize it to `length` frames by linear interpolation. Frames are axis -3."""
    start, crop = crop_window(keypoint.shape[-3], ratio, rng, min_length)
    out = resize_frames(keypoint, start, crop, length, keypoint.ndim - 3)
    return out, None if score is None else resize_frames(score, start, crop, length, score.ndim - 2)


def window_indices(
    num_frames: int, length: int, rng: np.random.Generator | None, short: ShortWindow = "loop",
    position: float | None = None,
) -> np.ndarray:
    """(length,) frame indices of one contiguous window; -1 marks a padded frame.

    T >= L: frames start..start+L-1, start uniform in [0, T - L], or without a generator
    round(position x (T - L)) for a `position` in [0, 1], else (T - L) // 2 (GaitGraph's
    SelectSequenceCenter). T < L by `short`: 'loop' repeats the frames
    cyclically from a random start (0 without a generator), 'pad' takes the T frames then L - T
    padded ones, 'error' raises (GaitGraph drops sequences with fewer than L + 1 frames).
    """
    if num_frames < 1 or length < 1:
        raise InputError(f"temporal window needs positive sizes, got {num_frames} frames and length {length}")
    if num_frames >= length:
        if rng is not None:
            start = int(rng.integers(num_frames - length + 1))
        elif position is not None:
            start = int(round(position * (num_frames - length)))
        else:
            start = (num_frames - length) // 2
        return np.arange(start, start + length)
    if short == "error":
        raise InputError(
            f"the sequence has {num_frames} frames, fewer than the window's {length} "
            "(short='error'; use 'loop' or 'pad', or drop such sequences from the data)"
        )
    if short == "pad":
        return np.where(np.arange(length) < num_frames, np.arange(length), -1)
    start = 0 if rng is None else int(rng.integers(num_frames))
    return (start + np.arange(length)) % num_frames


def temporal_window(
    keypoint: np.ndarray,
    score: np.ndarray | None,
    rng: np.random.Generator | None,
    *,
    length: int = 60,
    short: ShortWindow = "loop",
    position: float | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """A contiguous window of `length` frames (see `window_indices`): random in training, the
    centre window (or the one at `position`) without a generator; padded frames are zeros (scores
    too). Frames are axis -3 of keypoints, -2 of scores."""
    indices = window_indices(keypoint.shape[-3], length, rng, short, position)
    keep = indices >= 0

    def take(array: np.ndarray, axis: int) -> np.ndarray:
        out = np.take(array, np.maximum(indices, 0), axis=axis)
        if not keep.all():
            shape = [1] * out.ndim
            shape[axis] = length
            out = out * keep.reshape(shape).astype(out.dtype)
        return out

    return take(keypoint, keypoint.ndim - 3), None if score is None else take(score, score.ndim - 2)


# --------------------------------------------------------------------------------------------
# Features (modalities) and joint sets
# --------------------------------------------------------------------------------------------


def parse_modality(name: str) -> tuple[str, ...]:
    """Split 'j+b' into ('j', 'b'), checking each part against MODALITIES."""
    parts = tuple(p.strip() for p in str(name).split("+"))
    bad = [p for p in parts if p not in MODALITIES]
    if bad or not parts:
        raise InputError(
            f"unknown modality {bad or name!r} in '{name}'; valid modalities are {list(MODALITIES)}, joined by '+'"
        )
    if len(set(parts)) != len(parts):
        raise InputError(f"modality '{name}' repeats a part")
    return parts


def motion(features: np.ndarray, score_mode: ScoreMode | None = None) -> np.ndarray:
    """Difference to the next frame (frames axis -3), the last frame 0.

    With score_mode 'mean' the last channel (a score) becomes the mean of the two frames'
    scores instead of their difference (PYSKL's ToMotion for 2D layouts).
    """
    out = np.zeros_like(features)
    out[..., :-1, :, :] = features[..., 1:, :, :] - features[..., :-1, :, :]
    if score_mode == "mean":
        out[..., :-1, :, -1] = (features[..., 1:, :, -1] + features[..., :-1, :, -1]) / 2
    return out


def relative(features: np.ndarray, parents: np.ndarray, mean_score: bool) -> np.ndarray:
    """features[v] - features[parents[v]]; with `mean_score` the last channel becomes the mean
    of the two joints' scores."""
    out = features - features[..., parents, :]
    if mean_score:
        out[..., -1] = (features[..., -1] + features[..., parents, -1]) / 2
    return out


def modality(
    keypoint: np.ndarray,
    score: np.ndarray | None,
    layout: Layout,
    name: str,
    *,
    score_mode: ScoreMode = "released",
) -> np.ndarray:
    """The features j, b, k, jm, bm, km, or a '+' concatenation of them along channels.

    Bones b[v] = j[v] - j[parent(v)] (the center maps to itself), k the same with the two-hop
    parents, motion the difference to the next frame (last frame 0). With 2D scores the score
    is the last channel of each feature: 'released' (the authors' code) gives bones the mean
    of the two joints' scores and k, jm, bm, km plain differences of scores; 'mean' gives every
    feature mean scores. Any leading axes; returns float32.
    """
    parts = parse_modality(name)
    joints = keypoint.astype(np.float32, copy=False)
    if score is not None:
        joints = np.concatenate([joints, score[..., None].astype(np.float32)], axis=-1)
    with_score = score is not None
    parents = np.asarray(layout.parents)
    cache: dict[str, np.ndarray] = {"j": joints}

    def static(kind: str) -> np.ndarray:
        if kind not in cache:
            table = parents if kind == "b" else parents[parents]
            cache[kind] = relative(joints, table, with_score and (kind == "b" or score_mode == "mean"))
        return cache[kind]

    motion_mode: ScoreMode | None = "mean" if with_score and score_mode == "mean" else None
    features = [static(p) if len(p) == 1 else motion(static(p[0]), motion_mode) for p in parts]
    if len(features) > 1:
        return np.concatenate(features, axis=-1)
    return features[0].copy() if features[0] is keypoint else features[0]


def coco_to_coco_new(
    keypoint: np.ndarray, score: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """COCO (17 joints) to coco_new (20): 17 mid-hip = mean(11, 12), 18 mid-spine =
    mean(17, 19), 19 mid-shoulder = mean(5, 6), every channel and the score averaged
    (the release puts the score in the third channel first; keeping it apart is equivalent)."""
    if keypoint.shape[-2] != 17:
        raise InputError(f"coco_to_coco_new needs 17 COCO joints, got {keypoint.shape[-2]}")

    def extend(values: np.ndarray) -> np.ndarray:
        hip = (values[..., 11, :] + values[..., 12, :]) / 2
        shoulder = (values[..., 5, :] + values[..., 6, :]) / 2
        spine = (hip + shoulder) / 2
        return np.concatenate([values, np.stack([hip, spine, shoulder], axis=-2)], axis=-2)

    out = extend(keypoint.astype(np.float32, copy=False))
    return out, None if score is None else extend(score[..., None].astype(np.float32))[..., 0]


def pad_persons(
    keypoint: np.ndarray, score: np.ndarray | None, num_persons: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Zero-pad or truncate the persons axis (-4 of keypoints) to `num_persons` (PYSKL's FormatGCNInput)."""

    def fit(array: np.ndarray, axis: int) -> np.ndarray:
        have = array.shape[axis]
        if have >= num_persons:
            return np.take(array, np.arange(num_persons), axis=axis)
        pad = [(0, 0)] * array.ndim
        pad[axis] = (0, num_persons - have)
        return np.pad(array, pad)

    return fit(keypoint, keypoint.ndim - 4), None if score is None else fit(score, score.ndim - 3)
