"""Transforms against plain per-frame / per-joint references, hand-computed cases, invariants,
and the pipeline's validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aclnet.data import transforms as tf
from aclnet.data.pipeline import (
    STEPS,
    build_pipeline,
    kinetics_steps,
    ntu_steps,
    pku_mmd_steps,
)
from aclnet.data.sample import Sample
from aclnet.errors import InputError
from aclnet.skeleton import get_layout, make_layout

NTU = get_layout("nturgb+d")
COCO = get_layout("coco")
CHAIN = make_layout("chain", ["a", "b", "c"], [(0, 1), (1, 2)], 0)


def ntu_keypoints(seed: int, persons: int = 2, frames: int = 40) -> np.ndarray:
    """Random NTU keypoints with missing frames, a missing joint and a late second person."""
    rng = np.random.default_rng(seed)
    kp = rng.normal(size=(persons, frames, 25, 3)).astype(np.float32)
    kp[0, : min(3, frames - 1)] = 0
    kp[0, frames // 2, 7] = 0
    if persons > 1:
        kp[1, frames // 2:] = 0
    return kp


# ------------------------------------------------------------------ references (plain loops)


def ref_rotation_matrix(axis: np.ndarray, theta: float) -> np.ndarray:
    """PYSKL's Euler-Rodrigues formula, written out."""
    if np.abs(axis).sum() < 1e-6 or abs(theta) < 1e-6:
        return np.eye(3)
    axis = axis / np.sqrt(axis @ axis)
    a = np.cos(theta / 2)
    b, c, d = -axis * np.sin(theta / 2)
    return np.array([
        [a * a + b * b - c * c - d * d, 2 * (b * c + a * d), 2 * (b * d - a * c)],
        [2 * (b * c - a * d), a * a + c * c - b * b - d * d, 2 * (c * d + a * b)],
        [2 * (b * d + a * c), 2 * (c * d - a * b), a * a + d * d - b * b - c * c],
    ])


def ref_angle(v1: np.ndarray, v2: np.ndarray) -> float:
    if np.abs(v1).sum() < 1e-6 or np.abs(v2).sum() < 1e-6:
        return 0.0
    return float(np.arccos(np.clip(v1 @ v2 / np.linalg.norm(v1) / np.linalg.norm(v2), -1, 1)))


def ref_pre_normalize_3d(kp: np.ndarray, align_spine: bool) -> np.ndarray:
    """PreNormalize3D frame by frame, joint by joint."""
    persons, frames, joints, _ = kp.shape
    valid = [[t for t in range(frames) if not np.all(np.isclose(kp[m, t], 0))] for m in range(persons)]
    order = list(range(persons))
    kept = valid[0]
    if persons > 1 and len(valid[0]) < len(valid[1]):
        order[0], order[1] = 1, 0
        kept = valid[1]
    center = kp[order[0], kept[0], 1 if joints == 25 else joints - 1].astype(np.float64)
    out = np.zeros((persons, len(kept), joints, 3))
    for m in range(persons):
        for i, t in enumerate(kept):
            for v in range(joints):
                point = kp[order[m], t, v].astype(np.float64)
                out[m, i, v] = point - center if np.any(point != 0) else 0
    if align_spine:
        for bottom, top, target in ((0, 1, np.array([0.0, 0, 1])), (4, 8, np.array([1.0, 0, 0]))):
            vec = out[0, 0, top] - out[0, 0, bottom]
            matrix = ref_rotation_matrix(np.cross(vec, target), ref_angle(vec, target))
            for m in range(persons):
                for i in range(len(kept)):
                    for v in range(joints):
                        out[m, i, v] = matrix @ out[m, i, v]
    return out


def ref_decode_indices(num_frames: int, clip_len: int, num_clips: int, spread: bool) -> np.ndarray:
    """PYSKL's test-time UniformSampleDecode ('random') / UniformSampleFrames ('spread'),
    global random state reset to 255, one index at a time."""
    np.random.seed(255)
    clips = []
    for i in range(num_clips):
        ratio = np.random.rand() * 0 + 1
        n = int(ratio * num_frames)
        off = np.random.randint(num_frames - n + 1)
        if n < clip_len:
            if spread:
                start = i if n < num_clips else i * n // num_clips
            else:
                start = np.random.randint(0, n)
            inds = [(start + k) % n for k in range(clip_len)]
        elif n < 2 * clip_len:
            chosen = np.random.choice(clip_len + 1, n - clip_len, replace=False)
            inds, shift = [], 0
            for k in range(clip_len):
                shift += int(k in set(chosen.tolist()))
                inds.append(k + shift)
        else:
            bids = [k * n // clip_len for k in range(clip_len + 1)]
            offsets = np.random.randint(np.diff(bids))
            inds = [bids[k] + offsets[k] for k in range(clip_len)]
        clips.append([x + off for x in inds])
    return np.array(clips)


def ref_feature(kp: np.ndarray, score: np.ndarray | None, layout, part: str, mean: bool) -> np.ndarray:
    """One feature, joint by joint and frame by frame; the score is the last channel."""
    data = kp if score is None else np.concatenate([kp, score[..., None]], -1)
    persons, frames, joints, channels = data.shape
    parents = layout.parents
    base = np.zeros_like(data)
    for m in range(persons):
        for t in range(frames):
            for v in range(joints):
                p = parents[v] if part[0] == "b" else parents[parents[v]]
                if part[0] == "j":
                    base[m, t, v] = data[m, t, v]
                    continue
                base[m, t, v] = data[m, t, v] - data[m, t, p]
                if score is not None and (part[0] == "b" or mean):
                    base[m, t, v, -1] = (data[m, t, v, -1] + data[m, t, p, -1]) / 2
    if not part.endswith("m"):
        return base
    out = np.zeros_like(base)
    for m in range(persons):
        for t in range(frames - 1):
            out[m, t] = base[m, t + 1] - base[m, t]
            if score is not None and mean:
                out[m, t, :, -1] = (base[m, t + 1, :, -1] + base[m, t, :, -1]) / 2
    return out


# ------------------------------------------------------------------ normalisation


@pytest.mark.parametrize("align_spine", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_pre_normalize_3d_matches_reference(seed: int, align_spine: bool) -> None:
    kp = ntu_keypoints(seed)
    out, _ = tf.pre_normalize_3d(kp, align_spine=align_spine)
    np.testing.assert_allclose(out, ref_pre_normalize_3d(kp, align_spine), atol=2e-5)


def test_pre_normalize_3d_swaps_persons_and_uses_last_joint_without_25_joints() -> None:
    rng = np.random.default_rng(3)
    kp = rng.normal(size=(2, 12, 20, 3)).astype(np.float32)
    kp[0, 5:] = 0  # person 0 in 5 frames, person 1 in 12: person 1 leads
    out, _ = tf.pre_normalize_3d(kp, align_spine=False)
    assert out.shape == (2, 12, 20, 3)
    np.testing.assert_allclose(out[0], kp[1] - kp[1, 0, 19], atol=1e-6)
    np.testing.assert_allclose(out[1, :5], kp[0, :5] - kp[1, 0, 19], atol=1e-6)
    assert not out[1, 5:].any()
    np.testing.assert_allclose(out, ref_pre_normalize_3d(kp, False), atol=1e-5)


def test_pre_normalize_3d_hand_computed() -> None:
    kp = np.zeros((1, 3, 25, 3), np.float32)
    kp[0, 1, :, :] = 1.0  # frame 0 is empty and dropped
    kp[0, 1, 1] = (2.0, 3.0, 4.0)
    kp[0, 2, 5] = (5.0, 5.0, 5.0)
    score = np.arange(75, dtype=np.float32).reshape(1, 3, 25)
    out, score_out = tf.pre_normalize_3d(kp, score, align_spine=False)
    assert out.shape == (1, 2, 25, 3)
    np.testing.assert_array_equal(out[0, 0, 0], [-1.0, -2.0, -3.0])
    np.testing.assert_array_equal(out[0, 0, 1], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(out[0, 1, 5], [3.0, 2.0, 1.0])
    assert not out[0, 1, np.arange(25) != 5].any()  # zero joints stay zero
    np.testing.assert_array_equal(score_out, score[:, 1:])


def test_pre_normalize_3d_keeps_zero_joints_and_aligns_axes() -> None:
    kp = ntu_keypoints(5)
    out, _ = tf.pre_normalize_3d(kp, align_spine=True)
    frames, _ = tf.main_person_frames(kp)
    zero = np.all(kp[:, frames] == 0, axis=-1)
    assert zero.any() and not out[zero].any()
    shoulders = out[0, 0, 8] - out[0, 0, 4]
    np.testing.assert_allclose(shoulders / np.linalg.norm(shoulders), [1, 0, 0], atol=1e-5)


def test_pre_normalize_3d_all_zero_and_2d_input() -> None:
    zeros = np.zeros((2, 4, 25, 3), np.float32)
    out, _ = tf.pre_normalize_3d(zeros)
    np.testing.assert_array_equal(out, zeros)
    with pytest.raises(InputError, match="3D keypoints"):
        tf.pre_normalize_3d(np.ones((1, 4, 25, 2), np.float32))


@pytest.mark.parametrize("mode", ["fix", "auto"])
def test_normalize_2d_matches_reference(mode: str) -> None:
    rng = np.random.default_rng(4)
    kp = rng.uniform(0, 600, size=(2, 6, 17, 2)).astype(np.float32)
    score = rng.uniform(size=(2, 6, 17)).astype(np.float32)
    score[0, 0, :5] = 0.005
    out, score_out = tf.normalize_2d(kp, score, (480, 640), mode=mode, threshold=0.01)
    confident = [(m, t, v) for m in range(2) for t in range(6) for v in range(17) if score[m, t, v] > 0.01]
    xs = [kp[m, t, v, 0] for m, t, v in confident]
    ys = [kp[m, t, v, 1] for m, t, v in confident]
    for m in range(2):
        for t in range(6):
            for v in range(17):
                x, y = float(kp[m, t, v, 0]), float(kp[m, t, v, 1])
                if mode == "fix":
                    want = ((x - 320) / 320, (y - 240) / 240)
                else:
                    want = ((x - (max(xs) + min(xs)) / 2) / (max(xs) - min(xs)) * 2,
                            (y - (max(ys) + min(ys)) / 2) / (max(ys) - min(ys)) * 2)
                if score[m, t, v] <= 0.01:
                    want = (0.0, 0.0)
                np.testing.assert_allclose(out[m, t, v], want, atol=1e-5)
    np.testing.assert_array_equal(score_out, score)


def test_normalize_2d_auto_leaves_tiny_boxes() -> None:
    kp = np.full((1, 2, 17, 2), 100.0, np.float32)
    kp[..., 0] += np.arange(17)  # 16 px wide, 0 px tall: unchanged
    out, _ = tf.normalize_2d(kp, None, (480, 640), mode="auto")
    np.testing.assert_array_equal(out, kp)


# ------------------------------------------------------------------ spatial augmentation


def test_random_rotate_matches_reference_and_keeps_bone_lengths() -> None:
    kp = ntu_keypoints(6)
    out = tf.random_rotate(kp, np.random.default_rng(9), 0.2)
    angles = np.random.default_rng(9).uniform(-0.2, 0.2, size=3)
    c, s = np.cos(angles), np.sin(angles)
    rx = np.array([[1, 0, 0], [0, c[0], s[0]], [0, -s[0], c[0]]])
    ry = np.array([[c[1], 0, -s[1]], [0, 1, 0], [s[1], 0, c[1]]])
    rz = np.array([[c[2], s[2], 0], [-s[2], c[2], 0], [0, 0, 1]])
    for m in range(2):
        for t in range(kp.shape[1]):
            for v in range(25):
                np.testing.assert_allclose(out[m, t, v], rz @ ry @ rx @ kp[m, t, v], atol=1e-5)
    parents = list(NTU.parents)
    lengths = np.linalg.norm(kp - kp[..., parents, :], axis=-1)
    np.testing.assert_allclose(np.linalg.norm(out - out[..., parents, :], axis=-1), lengths, atol=1e-5)
    assert out.dtype == np.float32


def test_random_rotate_2d_and_zero_input() -> None:
    kp = np.random.default_rng(1).normal(size=(1, 5, 17, 2)).astype(np.float32)
    out = tf.random_rotate(kp, np.random.default_rng(2), 0.3)
    angle = np.random.default_rng(2).uniform(-0.3, 0.3)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    np.testing.assert_allclose(out[0, 3, 4], rot @ kp[0, 3, 4], atol=1e-6)
    zeros = np.zeros((1, 3, 25, 3), np.float32)
    np.testing.assert_array_equal(tf.random_rotate(zeros, np.random.default_rng(0), 0.2), zeros)


def test_random_scale_and_shear_match_reference() -> None:
    kp = ntu_keypoints(7)
    scaled = tf.random_scale(kp, np.random.default_rng(3), (0.1, 0.2, 0.3))
    factor = 1 + np.random.default_rng(3).uniform(-1, 1, size=3) * np.array([0.1, 0.2, 0.3])
    sheared = tf.random_shear(kp, np.random.default_rng(4), 0.5)
    off = np.random.default_rng(4).uniform(-0.5, 0.5, size=(3, 3))
    shear = np.eye(3) + off * (1 - np.eye(3))
    for m in range(2):
        for t in range(kp.shape[1]):
            for v in range(25):
                np.testing.assert_allclose(scaled[m, t, v], kp[m, t, v] * factor, atol=1e-5)
                np.testing.assert_allclose(sheared[m, t, v], shear @ kp[m, t, v], atol=1e-5)


@pytest.mark.parametrize("width", [None, 640.0])
def test_flip_matches_reference_and_twice_is_identity(width: float | None) -> None:
    rng = np.random.default_rng(8)
    kp = rng.uniform(1, 600, size=(2, 5, 17, 2)).astype(np.float32)
    kp[0, 0, 3] = 0
    score = rng.uniform(size=(2, 5, 17)).astype(np.float32)
    out, score_out = tf.flip(kp, score, COCO, width)
    index = dict(enumerate(range(17)))
    for a, b in COCO.flip_pairs:
        index[a], index[b] = b, a
    for m in range(2):
        for t in range(5):
            for v in range(17):
                src = kp[m, t, index[v]]
                x = src[0] if src[0] == 0 else (width - src[0] if width else -src[0])
                np.testing.assert_allclose(out[m, t, v], (x, src[1]), rtol=1e-6)
                assert score_out[m, t, v] == score[m, t, index[v]]
    again, score_again = tf.flip(out, score_out, COCO, width)
    np.testing.assert_allclose(again, kp, atol=1e-4)  # float32 rounding of width - x
    np.testing.assert_array_equal(score_again, score)


def test_random_flip_probability() -> None:
    kp = ntu_keypoints(9)
    unchanged, _ = tf.random_flip(kp, None, NTU, None, np.random.default_rng(0), p=0.0)
    flipped, _ = tf.random_flip(kp, None, NTU, None, np.random.default_rng(0), p=1.0)
    np.testing.assert_array_equal(unchanged, kp)
    np.testing.assert_array_equal(flipped, tf.flip(kp, None, NTU, None)[0])


def test_limb_groups_ntu() -> None:
    names = NTU.joint_names
    groups = [[names[j] for j in g] for g in tf.limb_groups(NTU)]
    assert groups == [
        ["left_shoulder", "left_elbow", "left_wrist", "left_hand", "left_hand_tip", "left_thumb"],
        ["left_hip", "left_knee", "left_ankle", "left_foot"],
        ["right_shoulder", "right_elbow", "right_wrist", "right_hand", "right_hand_tip", "right_thumb"],
        ["right_hip", "right_knee", "right_ankle", "right_foot"],
    ]
    with pytest.raises(InputError, match="no body parts"):
        tf.limb_groups(CHAIN)


def test_part_drop_zeroes_exactly_one_group() -> None:
    kp = np.ones((2, 4, 25, 3), np.float32)
    score = np.ones((2, 4, 25), np.float32)
    groups = tf.limb_groups(NTU)
    seen = set()
    for seed in range(40):
        out, score_out = tf.part_drop(kp, score, NTU, np.random.default_rng(seed), p=1.0)
        zeroed = tuple(np.flatnonzero(~out.any(axis=(0, 1, 3))))
        assert zeroed in groups
        np.testing.assert_array_equal(np.flatnonzero(score_out[0, 0] == 0), zeroed)
        seen.add(zeroed)
    assert len(seen) == 4
    out, _ = tf.part_drop(kp, None, NTU, np.random.default_rng(0), p=0.0)
    np.testing.assert_array_equal(out, kp)
    assert kp.all()  # input untouched


# ------------------------------------------------------------------ temporal sampling


def test_uniform_sampling_short_sequence_loops() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = tf.uniform_sample_indices(30, 100, 1, rng)[0]
        assert idx.shape == (100,)
        np.testing.assert_array_equal(idx[1:], (idx[:-1] + 1) % 30)


def test_uniform_sampling_middle_regime_inserts_skips() -> None:
    rng = np.random.default_rng(1)
    for frames in (100, 150, 199):
        idx = tf.uniform_sample_indices(frames, 100, 1, rng)[0]
        skips = idx - np.arange(100)
        assert np.all(np.diff(idx) >= 1) and np.all(np.diff(skips) >= 0)
        assert skips[0] >= 0 and skips[-1] <= frames - 100 and idx[-1] < frames
        assert np.all(np.diff(idx) <= 1 + frames - 100)
    np.testing.assert_array_equal(tf.uniform_sample_indices(100, 100, 1, rng)[0], np.arange(100))


def test_uniform_sampling_long_sequence_one_frame_per_segment() -> None:
    rng = np.random.default_rng(2)
    for frames in (200, 300, 1001):
        idx = tf.uniform_sample_indices(frames, 100, 3, rng)
        low = np.arange(100) * frames // 100
        high = np.arange(1, 101) * frames // 100
        assert idx.shape == (3, 100)
        assert np.all((idx >= low) & (idx < high))


@pytest.mark.parametrize("spread", [False, True])
def test_test_mode_sampling_equals_pyskl_reference(spread: bool) -> None:
    mode = "spread" if spread else "random"
    for frames in (3, 7, 30, 99, 100, 150, 199, 200, 300, 457):
        got = tf.uniform_sample_indices(frames, 100, 10, None, test_mode=True, short_test_start=mode)
        np.testing.assert_array_equal(got, ref_decode_indices(frames, 100, 10, spread))


def test_test_mode_sampling_is_deterministic_and_seeded() -> None:
    first = tf.uniform_sample_indices(150, 100, 10, np.random.default_rng(0), test_mode=True)
    second = tf.uniform_sample_indices(150, 100, 10, np.random.default_rng(1), test_mode=True)
    other_seed = tf.uniform_sample_indices(150, 100, 10, None, test_mode=True, seed=256)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other_seed)


def test_spread_start_hand_computed() -> None:
    idx = tf.uniform_sample_indices(30, 100, 10, None, test_mode=True, short_test_start="spread")
    np.testing.assert_array_equal(idx[:, 0], 3 * np.arange(10))
    idx = tf.uniform_sample_indices(5, 10, 10, None, test_mode=True, short_test_start="spread")
    np.testing.assert_array_equal(idx[:, 0], np.arange(10) % 5)
    np.testing.assert_array_equal(idx[7], (7 + np.arange(10)) % 5)


def test_uniform_sampling_needs_generator_in_training() -> None:
    with pytest.raises(InputError, match="random generator"):
        tf.uniform_sample_indices(50, 10, 1, None)
    with pytest.raises(InputError, match="positive"):
        tf.uniform_sample_indices(0, 10, 1, np.random.default_rng(0))


def test_take_frames_layout() -> None:
    kp = np.arange(2 * 6 * 1 * 1, dtype=np.float32).reshape(2, 6, 1, 1)
    out = tf.take_frames(kp, np.array([[0, 2], [5, 1]]), frame_axis=1)
    assert out.shape == (2, 2, 2, 1, 1)
    np.testing.assert_array_equal(out[1, 0, :, 0, 0], [5, 1])
    np.testing.assert_array_equal(out[0, 1, :, 0, 0], [6, 8])


def test_random_crop_resize_matches_torch_interpolate() -> None:
    kp = ntu_keypoints(10, frames=50)
    score = np.random.default_rng(0).uniform(size=kp.shape[:-1]).astype(np.float32)
    out, score_out = tf.random_crop_resize(kp, score, np.random.default_rng(5), ratio=(0.5, 0.9), length=64)
    start, crop = tf.crop_window(50, (0.5, 0.9), np.random.default_rng(5))
    assert 25 <= crop <= 45
    src = torch.from_numpy(kp[:, start:start + crop]).permute(0, 2, 3, 1).reshape(1, -1, crop)
    want = torch.nn.functional.interpolate(src, size=64, mode="linear", align_corners=False)
    want = want.reshape(2, 25, 3, 64).permute(0, 3, 1, 2).numpy()
    np.testing.assert_allclose(out, want, atol=1e-5)
    assert score_out.shape == (2, 64, 25)
    centred, _ = tf.random_crop_resize(kp, None, None, ratio=(0.5, 0.8), length=40)
    np.testing.assert_allclose(centred, kp[:, 5:45], atol=1e-6)  # 40 of 50 frames, centred


# ------------------------------------------------------------------ features


def test_bone_and_two_hop_of_three_joint_chain() -> None:
    kp = np.array([[[[1.0, 0, 0], [3.0, 1, 0], [6.0, 3, 1]]]], np.float32)  # 1 person, 1 frame
    np.testing.assert_array_equal(tf.modality(kp, None, CHAIN, "b")[0, 0], [[0, 0, 0], [2, 1, 0], [3, 2, 1]])
    np.testing.assert_array_equal(tf.modality(kp, None, CHAIN, "k")[0, 0], [[0, 0, 0], [2, 1, 0], [5, 3, 1]])
    both = tf.modality(kp, None, CHAIN, "j+b")
    assert both.shape == (1, 1, 3, 6)
    np.testing.assert_array_equal(both[0, 0, 2], [6, 3, 1, 3, 2, 1])


def test_motion_hand_computed() -> None:
    kp = np.zeros((1, 3, 3, 3), np.float32)
    kp[0, :, 2, 0] = [1.0, 4.0, 9.0]
    jm = tf.modality(kp, None, CHAIN, "jm")
    np.testing.assert_array_equal(jm[0, :, 2, 0], [3.0, 5.0, 0.0])
    bm = tf.modality(kp, None, CHAIN, "bm")
    np.testing.assert_array_equal(bm[0, :, 2, 0], [3.0, 5.0, 0.0])


@pytest.mark.parametrize("part", tf.MODALITIES)
def test_modalities_3d_match_reference(part: str) -> None:
    kp = ntu_keypoints(11, frames=6)
    np.testing.assert_allclose(tf.modality(kp, None, NTU, part), ref_feature(kp, None, NTU, part, False), atol=1e-6)


@pytest.mark.parametrize("score_mode", ["released", "mean"])
@pytest.mark.parametrize("part", tf.MODALITIES)
def test_modalities_2d_scores_match_reference(part: str, score_mode: str) -> None:
    rng = np.random.default_rng(12)
    kp = rng.uniform(0, 500, size=(2, 5, 17, 2)).astype(np.float32)
    score = rng.uniform(size=(2, 5, 17)).astype(np.float32)
    got = tf.modality(kp, score, COCO, part, score_mode=score_mode)
    assert got.shape == (2, 5, 17, 3)
    np.testing.assert_allclose(got, ref_feature(kp, score, COCO, part, score_mode == "mean"), atol=1e-4)


def test_modality_concatenation_order_and_errors() -> None:
    kp = ntu_keypoints(13, frames=5)
    combined = tf.modality(kp, None, NTU, "jm+k+j")
    parts = [tf.modality(kp, None, NTU, p) for p in ("jm", "k", "j")]
    np.testing.assert_array_equal(combined, np.concatenate(parts, axis=-1))
    with pytest.raises(InputError, match="valid modalities"):
        tf.modality(kp, None, NTU, "j+x")
    with pytest.raises(InputError, match="repeats"):
        tf.parse_modality("j+j")


def test_coco_to_coco_new_hand_computed() -> None:
    kp = np.zeros((1, 1, 17, 2), np.float32)
    score = np.zeros((1, 1, 17), np.float32)
    kp[0, 0, 5], kp[0, 0, 6], kp[0, 0, 11], kp[0, 0, 12] = (0, 0), (4, 0), (0, 8), (4, 10)
    score[0, 0, [5, 6, 11, 12]] = (0.2, 0.4, 0.6, 1.0)
    out, score_out = tf.coco_to_coco_new(kp, score)
    assert out.shape == (1, 1, 20, 2)
    np.testing.assert_allclose(out[0, 0, 17:], [[2, 9], [2, 4.5], [2, 0]])
    np.testing.assert_allclose(score_out[0, 0, 17:], [0.8, 0.55, 0.3])
    np.testing.assert_array_equal(out[0, 0, :17], kp[0, 0])
    with pytest.raises(InputError, match="17 COCO joints"):
        tf.coco_to_coco_new(np.zeros((1, 1, 25, 2), np.float32), None)


def test_pad_persons() -> None:
    kp = np.ones((3, 2, 25, 3), np.float32)
    score = np.ones((3, 2, 25), np.float32)
    cut, cut_score = tf.pad_persons(kp, score, 2)
    assert cut.shape == (2, 2, 25, 3) and cut_score.shape == (2, 2, 25)
    padded, _ = tf.pad_persons(kp[:1], None, 4)
    assert padded.shape == (4, 2, 25, 3) and padded[0].all() and not padded[1:].any()
    clips, _ = tf.pad_persons(np.ones((5, 1, 7, 25, 3), np.float32), None, 2)
    assert clips.shape == (5, 2, 7, 25, 3)


# ------------------------------------------------------------------ pipeline


def ntu_sample(seed: int = 0, frames: int = 120) -> Sample:
    return Sample(f"S001C001P001R001A{seed:03d}", ntu_keypoints(seed, frames=frames), 3)


def test_ntu_pipeline_equals_composed_functions() -> None:
    sample = ntu_sample(1)
    before = sample.keypoint.copy()
    out = build_pipeline(ntu_steps("j+b"), NTU, test_mode=False)(sample, np.random.default_rng(4))
    np.testing.assert_array_equal(sample.keypoint, before)  # the sample is not modified
    rng = np.random.default_rng(4)
    kp, _ = tf.pre_normalize_3d(sample.keypoint, align_spine=False)
    kp = tf.random_rotate(kp, rng, 0.2)
    feats = tf.modality(kp, None, NTU, "j+b")
    idx = tf.uniform_sample_indices(kp.shape[1], 100, 1, rng)
    want = tf.take_frames(feats, idx, frame_axis=1)
    assert out.shape == (1, 2, 100, 25, 6) and out.dtype == np.float32
    np.testing.assert_array_equal(out, want)


def test_test_mode_pipeline_is_deterministic_without_augmentation() -> None:
    sample = ntu_sample(2, frames=150)
    pipeline = build_pipeline(ntu_steps("j"), NTU, test_mode=True, num_clips=10)
    first = pipeline(sample, np.random.default_rng(0))
    second = pipeline(sample, np.random.default_rng(99))
    assert first.shape == (10, 2, 100, 25, 3)
    np.testing.assert_array_equal(first, second)
    kp, _ = tf.pre_normalize_3d(sample.keypoint, align_spine=False)  # no rotation at test time
    idx = tf.uniform_sample_indices(kp.shape[1], 100, 10, None, test_mode=True)
    np.testing.assert_array_equal(first, tf.take_frames(kp, idx, frame_axis=1))
    assert [n for n, _ in pipeline.steps][1] == "random_rotate"  # validated, not run


def test_pku_and_kinetics_presets() -> None:
    pku = build_pipeline(pku_mmd_steps("b"), NTU, test_mode=False)
    assert pku(ntu_sample(3), np.random.default_rng(0)).shape == (1, 2, 50, 25, 3)
    rng = np.random.default_rng(5)
    kp = rng.uniform(1, 600, size=(3, 40, 17, 2)).astype(np.float32)
    score = rng.uniform(size=(3, 40, 17)).astype(np.float32)
    sample = Sample("k400_x", kp, 1, score=score, img_shape=(480, 640))
    train = build_pipeline(kinetics_steps("j"), COCO, test_mode=False)
    assert train.output_layout.name == "coco_new" and train.out_channels(2, True) == 3
    test = build_pipeline(kinetics_steps("j"), COCO, test_mode=True, num_clips=10)
    out = test(sample, rng)
    assert out.shape == (10, 2, 100, 20, 3)
    joints, scores = tf.coco_to_coco_new(kp, score)
    idx = tf.uniform_sample_indices(40, 100, 10, None, test_mode=True, short_test_start="spread")
    np.testing.assert_array_equal(out[:, :, :, :, 2], tf.take_frames(scores, idx, 1)[:, :2])
    np.testing.assert_array_equal(out[:, :, :, :, :2], tf.take_frames(joints, idx, 1)[:, :2])
    flipped = train(sample, np.random.default_rng(0))
    assert flipped.shape == (1, 2, 100, 20, 3)


def test_pipeline_rejects_unknown_step() -> None:
    with pytest.raises(InputError) as err:
        build_pipeline(["pre_normalize_3d", {"rotate": {}}], NTU, test_mode=False)
    message = str(err.value)
    assert "step #2" in message and "'rotate'" in message
    assert all(name in message for name in STEPS)


def test_pipeline_rejects_unknown_parameter() -> None:
    with pytest.raises(InputError) as err:
        build_pipeline([{"random_rotate": {"theta": 0.2}}], NTU, test_mode=False)
    message = str(err.value)
    assert "'random_rotate'" in message and "'theta'" in message and "['max_angle']" in message


def test_pipeline_rejects_wrong_types_and_values() -> None:
    with pytest.raises(InputError, match=r"'uniform_sample': parameter 'clip_len'.*'many'"):
        build_pipeline([{"uniform_sample": {"clip_len": "many"}}], NTU, test_mode=False)
    with pytest.raises(InputError, match=r"'uniform_sample': parameter 'clip_len'.*boolean"):
        build_pipeline([{"uniform_sample": {"clip_len": True}}], NTU, test_mode=False)
    with pytest.raises(InputError, match=r"'part_drop': parameter 'p'"):
        build_pipeline([{"part_drop": {"p": 1.5}}], NTU, test_mode=False)
    with pytest.raises(InputError, match="parameters must be a mapping"):
        build_pipeline([{"random_rotate": 0.2}], NTU, test_mode=False)
    with pytest.raises(InputError, match="one-key mapping"):
        build_pipeline([{"random_rotate": {}, "modality": {}}], NTU, test_mode=False)
    with pytest.raises(InputError, match="valid modalities"):
        build_pipeline([{"modality": {"name": "joint"}}], NTU, test_mode=False)
    with pytest.raises(InputError, match="p_interval"):
        build_pipeline([{"uniform_sample": {"p_interval": [0.9, 0.5]}}], NTU, test_mode=False)


def test_pipeline_rejects_bad_order_and_layouts() -> None:
    with pytest.raises(InputError, match="'random_rotate' works on joints"):
        build_pipeline(["modality", "random_rotate"], NTU, test_mode=False)
    with pytest.raises(InputError, match="before temporal sampling"):
        build_pipeline(["uniform_sample", "pre_normalize_3d"], NTU, test_mode=False)
    with pytest.raises(InputError, match="more than one temporal"):
        build_pipeline(["uniform_sample", "random_crop_resize"], NTU, test_mode=False)
    with pytest.raises(InputError, match="num_clips=10 needs"):
        build_pipeline(["modality"], NTU, test_mode=True, num_clips=10)
    with pytest.raises(InputError, match="'coco' layout.*'nturgb\\+d'"):
        build_pipeline(["coco_to_coco_new"], NTU, test_mode=False)
    with pytest.raises(InputError, match="step #1 'part_drop'.*no body parts"):
        build_pipeline(["part_drop"], CHAIN, test_mode=False)
    with pytest.raises(InputError, match=r"joints \[8, 4\] are outside"):
        build_pipeline(["pre_normalize_3d"], CHAIN, test_mode=False)


def test_pipeline_errors_name_the_sample() -> None:
    pipeline = build_pipeline(ntu_steps(), NTU, test_mode=False)
    flat = Sample("flat_one", np.ones((1, 5, 25, 2), np.float32), 0)
    with pytest.raises(InputError, match="sample 'flat_one': step 'pre_normalize_3d'.*3D"):
        pipeline(flat, np.random.default_rng(0))
    with pytest.raises(InputError, match="sample 'coco_one'.*needs \\(M, T, 25, C\\)"):
        pipeline(Sample("coco_one", np.ones((1, 5, 17, 3), np.float32), 0), np.random.default_rng(0))
    flip = build_pipeline([{"random_flip": {"p": 1.0, "use_image_width": True}}], COCO, test_mode=False)
    with pytest.raises(InputError, match="sample 'no_shape'.*img_shape"):
        flip(Sample("no_shape", np.ones((1, 5, 17, 2), np.float32), 0), np.random.default_rng(0))


def test_default_modality_and_crop_pipeline() -> None:
    sample = ntu_sample(6, frames=80)
    steps = [{"random_crop_resize": {"length": 32}}, {"pad_persons": {"num_persons": 3}}]
    train = build_pipeline(steps, NTU, test_mode=False)(sample, np.random.default_rng(0))
    assert train.shape == (1, 3, 32, 25, 3) and not train[0, 2].any()
    test = build_pipeline(steps, NTU, test_mode=True)
    np.testing.assert_array_equal(test(sample, np.random.default_rng(1)), test(sample, np.random.default_rng(2)))


# ------------------------------------------------------------------ swapping left and right joints

THREE = make_layout("three", ["center", "left_hand", "right_hand"], [(0, 1), (0, 2)], 0)


def test_swap_left_right_exchanges_joints_not_coordinates() -> None:
    assert THREE.flip_index == (0, 2, 1)
    kp = np.array([[[[0.5, 0.0, 1.0], [-1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]], np.float32)  # (M, T, V, C)
    score = np.array([[[0.9, 0.1, 0.5]]], np.float32)
    before = kp.copy()
    for seed in range(20):  # p = 1: always
        out, score_out = tf.swap_left_right(kp, score, THREE.flip_index, np.random.default_rng(seed), p=1.0)
        np.testing.assert_array_equal(out[0, 0], [[0.5, 0.0, 1.0], [4.0, 5.0, 6.0], [-1.0, 2.0, 3.0]])
        np.testing.assert_array_equal(score_out[0, 0], score[0, 0, [0, 2, 1]])
        kept, kept_score = tf.swap_left_right(kp, score, THREE.flip_index, np.random.default_rng(seed), p=0.0)
        np.testing.assert_array_equal(kept, kp)  # p = 0: never
        np.testing.assert_array_equal(kept_score, score)
    np.testing.assert_array_equal(kp, before)  # input untouched
    swapped = sum(
        not np.array_equal(tf.swap_left_right(kp, None, THREE.flip_index, np.random.default_rng(s))[0], kp)
        for s in range(400)
    )
    assert 150 < swapped < 250  # p = 0.5 by default, one draw per call
    with pytest.raises(InputError, match="permutation of the 3 joints"):
        tf.swap_left_right(kp, None, (0, 1, 1), np.random.default_rng(0), p=1.0)


def test_swap_left_right_is_not_the_mirroring_flip() -> None:
    kp = np.array([[[[0.5, 0.0, 1.0], [-1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]], np.float32)
    swapped, _ = tf.swap_left_right(kp, None, THREE.flip_index, np.random.default_rng(0), p=1.0)
    mirrored, _ = tf.flip(kp, None, THREE, None)
    np.testing.assert_array_equal(mirrored[0, 0, 1], [-4.0, 5.0, 6.0])  # the flip also negates x
    np.testing.assert_array_equal(swapped[0, 0, 1], [4.0, 5.0, 6.0])
    assert not np.array_equal(swapped, mirrored)
    np.testing.assert_array_equal(swapped[..., 1:], mirrored[..., 1:])  # same joint exchange, other channels


def test_swap_left_right_step() -> None:
    sample = ntu_sample(7)
    steps = [{"pre_normalize_3d": {"align_spine": False}}, {"swap_left_right": {"p": 1.0}}, "modality"]
    out = build_pipeline(steps, NTU, test_mode=False)(sample, np.random.default_rng(0))
    kp, _ = tf.pre_normalize_3d(sample.keypoint, align_spine=False)
    np.testing.assert_array_equal(out[0], kp[:, :, list(NTU.flip_index)])
    test = build_pipeline(steps, NTU, test_mode=True)(sample, np.random.default_rng(0))
    np.testing.assert_array_equal(test[0], kp)  # not run at test time
    assert STEPS["swap_left_right"]().p == 0.5
    with pytest.raises(InputError, match=r"'swap_left_right': parameter 'p'"):
        build_pipeline([{"swap_left_right": {"p": 1.5}}], NTU, test_mode=False)
    with pytest.raises(InputError, match="'swap_left_right' works on joints"):
        build_pipeline(["modality", "swap_left_right"], NTU, test_mode=False)
    with pytest.raises(InputError, match="step #1 'swap_left_right'.*no left/right joint pairs"):
        build_pipeline(["swap_left_right"], CHAIN, test_mode=False)


def test_test_windows_spread_over_the_sequence_or_stay_at_its_centre():
    layout = get_layout("coco")
    frames = np.arange(100, dtype=np.float32)[None, :, None, None] * np.ones((1, 100, 17, 2), np.float32)
    sample = Sample("walk", frames, 0)
    for windows, starts in (("spread", [0, 30, 60]), ("centre", [30, 30, 30])):
        pipeline = build_pipeline([{"temporal_window": {"length": 40, "test_windows": windows}}, "pad_persons"],
                                  layout, test_mode=True, num_clips=3)
        clips = pipeline(sample, np.random.default_rng(0))  # (3, M, 40, V, C); joint 0's x is the frame number
        assert [int(clips[k, 0, 0, 0, 0]) for k in range(3)] == starts
        assert all(int(clips[k, 0, -1, 0, 0]) == starts[k] + 39 for k in range(3))
    short = Sample("short", frames[:, :30], 0)  # shorter than the window: looped from frame 0 by every clip
    clips = build_pipeline([{"temporal_window": {"length": 40, "test_windows": "spread"}}], layout,
                           test_mode=True, num_clips=2)(short, np.random.default_rng(0))
    assert [int(x) for x in clips[0, 0, :, 0, 0][[0, 29, 30, 39]]] == [0, 29, 0, 9]
