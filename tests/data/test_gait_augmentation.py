"""GaitGraph's augmentations (tteepe/GaitGraph src/datasets/augmentation.py) as transforms and
pipeline steps, the `gaitgraph` preset, the per-clip views, and the identity (P x K) sampler."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from aclnet.data import transforms as tf
from aclnet.data.datasets import PKSampler, SkeletonDataset, make_loader
from aclnet.data.pipeline import PRESETS, build_pipeline, gaitgraph_steps
from aclnet.data.sample import Sample
from aclnet.data.synthetic import make_action_dataset
from aclnet.errors import InputError
from aclnet.skeleton import get_layout

COCO = get_layout("coco")


def small_pose() -> np.ndarray:
    """(1 person, 3 frames, 3 joints, x y); joint 1 is missing in frame 1."""
    return np.array(
        [[
            [[1.0, 10.0], [2.0, 20.0], [9.0, 30.0]],
            [[3.0, 11.0], [0.0, 0.0], [5.0, 31.0]],
            [[10.0, 12.0], [10.0, 22.0], [13.0, 32.0]],
        ]],
        dtype=np.float32,
    )


def small_score() -> np.ndarray:
    return np.array([[[0.9, 0.8, 0.7], [0.6, 0.0, 0.5], [0.4, 0.3, 0.2]]], dtype=np.float32)


class CountingNormal:
    """A stand-in generator: normal(loc, scale, size) = loc + scale * (0, 1, 2, ...) in C order."""

    def normal(self, loc: float, scale: float, size: tuple[int, ...]) -> np.ndarray:
        return loc + scale * np.arange(int(np.prod(size)), dtype=np.float64).reshape(size)


# ------------------------------------------------------------------ transforms, hand-computed


def test_mirror_about_center_hand_computed() -> None:
    kp = small_pose()
    before = kp.copy()
    out = tf.mirror_about_center(kp)
    # frame 0: centre (1 + 2 + 9) / 3 = 4; frame 1: centre of the present joints (3 + 5) / 2 = 4;
    # frame 2: centre 11. x -> 2c - x, y unchanged, no joint swap, the missing joint stays (0, 0).
    want = np.array(
        [[
            [[7.0, 10.0], [6.0, 20.0], [-1.0, 30.0]],
            [[5.0, 11.0], [0.0, 0.0], [3.0, 31.0]],
            [[12.0, 12.0], [12.0, 22.0], [9.0, 32.0]],
        ]],
        dtype=np.float32,
    )
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(kp, before)  # pure
    np.testing.assert_array_equal(tf.mirror_about_center(out), kp)  # an involution
    # different from the layout flip, which swaps left and right joints
    flipped, _ = tf.flip(np.zeros((1, 17, 2), np.float32) + np.arange(17)[:, None], None, COCO, None)
    mirrored = tf.mirror_about_center(np.zeros((1, 17, 2), np.float32) + np.arange(1, 18)[:, None])
    assert flipped[0, 1, 1] == 2 and mirrored[0, 1, 1] == 2  # flip moved joint 2 into slot 1; mirror kept y
    np.testing.assert_array_equal(mirrored[0, :, 1], np.arange(1, 18))


def test_random_mirror_probability_and_extremes() -> None:
    kp = small_pose()
    np.testing.assert_array_equal(tf.random_mirror_about_center(kp, np.random.default_rng(0), 0.0), kp)
    np.testing.assert_array_equal(
        tf.random_mirror_about_center(kp, np.random.default_rng(0), 1.0), tf.mirror_about_center(kp)
    )
    rng = np.random.default_rng(1)
    hits = sum(not np.array_equal(tf.random_mirror_about_center(kp, rng, 0.5), kp) for _ in range(1000))
    assert 440 < hits < 560


def test_reverse_time_hand_computed() -> None:
    kp, score = small_pose(), small_score()
    out, out_score = tf.reverse_time(kp, score)
    np.testing.assert_array_equal(out[0, 0], [[10.0, 12.0], [10.0, 22.0], [13.0, 32.0]])
    np.testing.assert_array_equal(out[0, 1], [[3.0, 11.0], [0.0, 0.0], [5.0, 31.0]])
    np.testing.assert_array_equal(out[0, 2], [[1.0, 10.0], [2.0, 20.0], [9.0, 30.0]])
    np.testing.assert_array_equal(out_score, np.float32([[[0.4, 0.3, 0.2], [0.6, 0.0, 0.5], [0.9, 0.8, 0.7]]]))
    same, same_score = tf.random_reverse_time(kp, score, np.random.default_rng(0), 0.0)
    np.testing.assert_array_equal(same, kp)
    np.testing.assert_array_equal(same_score, score)
    assert tf.reverse_time(kp, None)[1] is None


def test_point_noise_hand_computed() -> None:
    kp, score = small_pose(), small_score()
    out, out_score = tf.point_noise(kp, score, CountingNormal(), 0.5, noise_score=True)
    # keypoint noise 0.5 * (6 t + 2 v + c), then score noise 0.5 * (3 t + v); missing joint untouched
    want = np.array(
        [[
            [[1.0, 10.5], [3.0, 21.5], [11.0, 32.5]],
            [[6.0, 14.5], [0.0, 0.0], [10.0, 36.5]],
            [[16.0, 18.5], [17.0, 29.5], [21.0, 40.5]],
        ]],
        dtype=np.float32,
    )
    np.testing.assert_array_equal(out, want)
    np.testing.assert_allclose(out_score, [[[0.9, 1.3, 1.7], [2.1, 0.0, 3.0], [3.4, 3.8, 4.2]]], rtol=1e-6)
    plain, kept = tf.point_noise(kp, score, CountingNormal(), 0.5)
    np.testing.assert_array_equal(plain, want)
    np.testing.assert_array_equal(kept, score)  # the score is noised only on request


def test_joint_noise_hand_computed() -> None:
    kp = small_pose()
    out = tf.joint_noise(kp, CountingNormal(), 0.5)
    # one offset per joint for all frames: joint 0 (0, 0.5), joint 1 (1, 1.5), joint 2 (2, 2.5)
    want = np.array(
        [[
            [[1.0, 10.5], [3.0, 21.5], [11.0, 32.5]],
            [[3.0, 11.5], [0.0, 0.0], [7.0, 33.5]],
            [[10.0, 12.5], [11.0, 23.5], [15.0, 34.5]],
        ]],
        dtype=np.float32,
    )
    np.testing.assert_array_equal(out, want)


def test_seeded_noise_statistics() -> None:
    rng = np.random.default_rng(3)
    kp = rng.uniform(50, 250, size=(2, 40, 17, 2)).astype(np.float32)
    kp[1, 5, 4] = 0  # a missing joint
    joint = tf.joint_noise(kp, np.random.default_rng(7), 0.25) - kp
    present = np.ones(kp.shape[:3], bool)
    present[1, 5, 4] = False
    reference = joint[:, :1]
    assert np.all(np.abs(joint - reference)[present] < 1e-4)  # constant over time per person and joint
    assert not joint[1, 5, 4].any()
    assert 0.2 < joint[:, 0].std() < 0.3 and abs(joint[:, 0].mean()) < 0.08
    point, _ = tf.point_noise(kp, None, np.random.default_rng(7), 0.05)
    point -= kp
    assert not point[1, 5, 4].any()
    assert np.abs(np.diff(point, axis=1)).max() > 0.01  # varies over time
    assert 0.045 < point[present].std() < 0.055
    again, _ = tf.point_noise(kp, None, np.random.default_rng(7), 0.05)
    np.testing.assert_array_equal(again - kp, point)  # seeded


# ------------------------------------------------------------------ temporal window


def test_window_indices_regimes() -> None:
    np.testing.assert_array_equal(tf.window_indices(75, 60, None), np.arange(7, 67))
    for frames in range(61, 140):  # GaitGraph's SelectSequenceCenter: int(T / 2 - L / 2)
        assert tf.window_indices(frames, 60, None)[0] == int(frames / 2 - 60 / 2)
    starts = {int(tf.window_indices(64, 60, np.random.default_rng(s))[0]) for s in range(300)}
    assert starts == {0, 1, 2, 3, 4}
    np.testing.assert_array_equal(tf.window_indices(3, 5, None, "loop"), [0, 1, 2, 0, 1])
    looped = tf.window_indices(3, 5, np.random.default_rng(0), "loop")
    assert np.array_equal(np.diff(looped) % 3, np.ones(4))
    np.testing.assert_array_equal(tf.window_indices(3, 5, np.random.default_rng(0), "pad"), [0, 1, 2, -1, -1])
    with pytest.raises(InputError, match="3 frames, fewer than the window's 5"):
        tf.window_indices(3, 5, None, "error")


def test_temporal_window_pads_with_zeros() -> None:
    kp, score = small_pose(), small_score()
    out, out_score = tf.temporal_window(kp, score, None, length=5, short="pad")
    np.testing.assert_array_equal(out[:, :3], kp)
    assert out.shape == (1, 5, 3, 2) and not out[:, 3:].any() and not out_score[:, 3:].any()
    centre, centre_score = tf.temporal_window(kp, score, None, length=1)
    np.testing.assert_array_equal(centre, kp[:, 1:2])
    np.testing.assert_array_equal(centre_score, score[:, 1:2])


# ------------------------------------------------------------------ pipeline steps and preset


def gait_sample(frames: int = 75, seed: int = 0) -> Sample:
    rng = np.random.default_rng(seed)
    kp = rng.uniform(20, 300, size=(1, frames, 17, 2)).astype(np.float32)
    kp[0, 10, 3] = 0  # a missing joint
    score = rng.uniform(0.2, 1.0, size=(1, frames, 17)).astype(np.float32)
    score[0, 10, 3] = 0
    return Sample("001-nm-01-090", kp, 1, score=score, img_shape=(240, 320))


def test_preset_builds_on_coco_and_outputs_two_views() -> None:
    assert PRESETS["gaitgraph"] is gaitgraph_steps
    sample = gait_sample()
    before = sample.keypoint.copy()
    train = build_pipeline(gaitgraph_steps(), COCO, test_mode=False, num_clips=2)
    out = train(sample, np.random.default_rng(5))
    assert out.shape == (2, 1, 60, 17, 3) and out.dtype == np.float32
    assert np.abs(out[0] - out[1]).max() > 1.0  # two differently augmented views
    np.testing.assert_array_equal(sample.keypoint, before)
    one = build_pipeline(gaitgraph_steps(), COCO, test_mode=False)(sample, np.random.default_rng(5))
    np.testing.assert_array_equal(one[0], out[0])  # the first view is the single-view output
    assert train.out_channels(2, True) == 3


def test_training_views_are_independent() -> None:
    sample = gait_sample(frames=90, seed=1)
    train = build_pipeline(gaitgraph_steps(), COCO, test_mode=False, num_clips=2)
    window = build_pipeline([{"temporal_window": {"length": 60}}], COCO, test_mode=False, num_clips=2)
    same_start = 0
    for seed in range(40):
        views = window(sample, np.random.default_rng(seed))
        same_start += np.array_equal(views[0], views[1])
        a, b = train(sample, np.random.default_rng(seed))
        assert not np.array_equal(a, b)
    assert same_start < 10  # windows drawn separately (31 possible starts)


def test_test_mode_is_deterministic_and_the_centre_window() -> None:
    sample = gait_sample(frames=75)
    test = build_pipeline(gaitgraph_steps(), COCO, test_mode=True)
    first = test(sample, np.random.default_rng(0))
    np.testing.assert_array_equal(first, test(sample, np.random.default_rng(123)))
    want = np.concatenate([sample.keypoint[:, 7:67], sample.score[:, 7:67, :, None]], axis=-1)[None]
    np.testing.assert_array_equal(first, want)  # no mirror, reversal or noise; centre window 7..66
    clips = build_pipeline(gaitgraph_steps(), COCO, test_mode=True, num_clips=3)(sample, np.random.default_rng(1))
    assert clips.shape == (3, 1, 60, 17, 3)
    np.testing.assert_array_equal(clips, np.repeat(want, 3, axis=0))


def test_missing_joints_stay_missing_through_the_training_pipeline() -> None:
    sample = gait_sample(frames=61)
    steps = [s for s in gaitgraph_steps() if "temporal_window" not in s and "pad_persons" not in s]
    out = build_pipeline(steps, COCO, test_mode=False)(sample, np.random.default_rng(2))
    reversed_position = {10, 61 - 1 - 10}
    missing = [t for t in range(61) if not out[0, 0, t, 3].any()]
    assert len(missing) == 1 and missing[0] in reversed_position
    assert np.count_nonzero(out[..., :2] == 0) == 2  # only that joint's x and y


def test_short_sequences_loop_in_the_preset() -> None:
    sample = gait_sample(frames=25)
    out = build_pipeline(gaitgraph_steps(), COCO, test_mode=True)(sample, np.random.default_rng(0))
    index = np.arange(60) % 25
    np.testing.assert_array_equal(out[0, 0, :, :, :2], sample.keypoint[0, index])
    with pytest.raises(InputError, match="sample '001-nm-01-090'.*25 frames"):
        build_pipeline([{"temporal_window": {"short": "error"}}], COCO, test_mode=False)(
            sample, np.random.default_rng(0)
        )


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"mirror_about_center": {"p": 1.5}}, "'mirror_about_center': parameter 'p'"),
        ({"reverse_time": {"p": -0.1}}, "'reverse_time': parameter 'p'"),
        ({"point_noise": {"std": -1.0}}, "'point_noise': parameter 'std'"),
        ({"joint_noise": {"std": float("nan")}}, "'joint_noise': parameter 'std'"),
        ({"joint_noise": {"std": True}}, "boolean"),
        ({"temporal_window": {"length": 0}}, "'temporal_window': parameter 'length'"),
        ({"temporal_window": {"short": "wrap"}}, "'temporal_window': parameter 'short'"),
        ({"point_noise": {"sigma": 0.1}}, "unknown parameter 'sigma'"),
    ],
)
def test_step_parameters_are_validated(step: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        build_pipeline([step], COCO, test_mode=False)


def test_order_rules_cover_the_new_steps() -> None:
    with pytest.raises(InputError, match="'joint_noise' works on joints"):
        build_pipeline(["modality", "joint_noise"], COCO, test_mode=False)
    with pytest.raises(InputError, match="more than one temporal"):
        build_pipeline(["temporal_window", "uniform_sample"], COCO, test_mode=False)
    with pytest.raises(InputError, match="num_clips=2 needs a temporal step"):
        build_pipeline(["mirror_about_center"], COCO, test_mode=False, num_clips=2)


# ------------------------------------------------------------------ P x K sampler

LABELS = np.array([0] * 5 + [1] * 2 + [2] * 7 + [3] * 1 + [7] * 4 + [9] * 3 + [4] * 6)  # 7 identities


def check_batches(batches: np.ndarray, p: int, k: int) -> None:
    for batch in batches:
        ids = LABELS[batch].reshape(p, k)
        assert np.all(ids == ids[:, :1])  # K of one identity after another
        assert len(set(ids[:, 0].tolist())) == p  # P distinct identities


def test_a_pk_epoch_covers_about_the_dataset_in_rounds_over_the_identities() -> None:
    sampler = PKSampler(LABELS, identities_per_batch=2, sequences_per_identity=2, seed=0)
    batches = sampler.batches()
    assert len(batches) == 7  # ceil(28 samples / 4 per batch), not ceil(7 identities / 2) = 4
    check_batches(batches, 2, 2)
    first_round = LABELS[batches[:4]].ravel().tolist()
    assert set(first_round) == set(LABELS.tolist())  # each round passes over every identity


def test_pk_batches_hold_p_identities_with_k_sequences() -> None:
    sampler = PKSampler(LABELS, identities_per_batch=3, sequences_per_identity=4, seed=2)
    batches = sampler.batches()
    assert batches.shape == (3, 12) and len(sampler) == 36 == len(list(sampler))
    check_batches(batches, 3, 4)
    assert set(LABELS[batches].ravel().tolist()) == set(LABELS.tolist())  # every identity this epoch
    for batch in batches:
        for group in batch.reshape(3, 4):
            if Counter(LABELS.tolist())[LABELS[group[0]]] >= 4:
                assert len(set(group.tolist())) == 4  # without replacement when there are enough


def test_pk_sampler_repeats_per_seed_and_epoch() -> None:
    sampler = PKSampler(LABELS, identities_per_batch=2, sequences_per_identity=3, seed=4)
    first = sampler.indices()
    sampler.set_epoch(1)
    second = sampler.indices()
    assert not np.array_equal(first, second)
    sampler.set_epoch(0)
    np.testing.assert_array_equal(sampler.indices(), first)
    np.testing.assert_array_equal(PKSampler(LABELS, identities_per_batch=2, sequences_per_identity=3, seed=4).indices(),
                                  first)
    assert not np.array_equal(PKSampler(LABELS, identities_per_batch=2, sequences_per_identity=3, seed=5).indices(),
                              first)
    for epoch in range(5):
        sampler.set_epoch(epoch)
        check_batches(sampler.batches(), 2, 3)
        assert set(LABELS[sampler.indices()].tolist()) == set(LABELS.tolist())


def test_pk_shards_together_are_the_epoch() -> None:
    kwargs = {"identities_per_batch": 2, "sequences_per_identity": 2, "seed": 1}
    whole = PKSampler(LABELS, **kwargs)
    whole.set_epoch(3)
    shards = [PKSampler(LABELS, distributed=True, num_replicas=3, rank=r, **kwargs) for r in range(3)]
    for shard in shards:
        shard.set_epoch(3)
    epoch = whole.batches()  # 28 samples in batches of 2 x 2: 7 batches, padded to 9 for three ranks
    assert len(epoch) == 7 and [s.num_batches for s in shards] == [3, 3, 3]
    merged = [shards[r].batches()[b] for b in range(3) for r in range(3)]
    np.testing.assert_array_equal(np.stack(merged), epoch[np.arange(9) % 7])
    with pytest.raises(InputError, match="distributed=True"):
        PKSampler(LABELS, num_replicas=2, rank=0, **kwargs)


def pk_dataset() -> SkeletonDataset:
    samples = make_action_dataset(num_classes=4, samples_per_class=6, num_subjects=3, frames=(16, 20), seed=3).samples
    return SkeletonDataset(samples, lambda sample, rng: sample.keypoint[None, :, :16].astype(np.float32))


def test_make_loader_with_sequences_per_identity() -> None:
    dataset = pk_dataset()
    loader = make_loader(dataset, 6, seed=1, sequences_per_identity=3)
    loader.set_epoch(2)
    batches = [labels for _, labels, _ in loader]
    assert len(batches) == 4  # 24 samples in batches of 6: an epoch is about the dataset's size
    for labels in batches:
        counts = Counter(labels.tolist())
        assert len(counts) == 2 and set(counts.values()) == {3}
    assert set(torch.cat(batches).tolist()) == {0, 1, 2, 3}
    loader.set_epoch(2)
    assert [labels.tolist() for _, labels, _ in loader] == [b.tolist() for b in batches]
    ranks = [make_loader(dataset, 6, seed=1, sequences_per_identity=3, distributed=True, num_replicas=2, rank=r)
             for r in range(2)]
    for rank in ranks:
        rank.set_epoch(2)
    per_rank = [[labels.tolist() for _, labels, _ in rank] for rank in ranks]
    assert per_rank == [[batches[0].tolist(), batches[2].tolist()],
                        [batches[1].tolist(), batches[3].tolist()]]  # whole batches per rank


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 6, "sequences_per_identity": 0}, "sequences_per_identity=0"),
        ({"batch_size": 6, "sequences_per_identity": 1.5}, "sequences_per_identity=1.5"),
        ({"batch_size": 7, "sequences_per_identity": 3}, "batch_size=7 is not a multiple of sequences_per_identity=3"),
        ({"batch_size": 10, "sequences_per_identity": 2}, "needs P=5 identities per batch; the data has 4"),
        ({"batch_size": 6, "sequences_per_identity": 3, "balanced": True}, "balanced"),
        ({"batch_size": 6, "sequences_per_identity": 3, "shuffle": False}, "shuffle=False"),
    ],
)
def test_bad_identity_batches_are_input_errors(options: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        make_loader(pk_dataset(), **options)
