"""Generated data: determinism, shapes, subject-disjoint splits, missing joints, kinematics,
views, learnability with confusable groups, any layout, gait structure and conditions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aclnet.data.sample import SampleSet, validate_sample
from aclnet.data.synthetic import confusable_groups, make_action_dataset, make_gait_dataset
from aclnet.errors import InputError
from aclnet.skeleton import BUILTIN_LAYOUTS, LayoutError, get_layout

NTU = get_layout("nturgb+d")
COCO = get_layout("coco")


@pytest.fixture(scope="module")
def default_set() -> SampleSet:
    return make_action_dataset()


@pytest.fixture(scope="module")
def clean_set() -> SampleSet:
    """No noise, no missing joints: the pure kinematics."""
    return make_action_dataset(num_classes=6, samples_per_class=12, num_subjects=4, noise=0.0, missing_prob=0.0, seed=3)


def small_gait(**options: object) -> SampleSet:
    args = {"num_subjects": 5, "sequences": {"nm": 2, "bg": 2, "cl": 2}, "views": (0, 90, 180), "seed": 1}
    return make_gait_dataset(**{**args, **options})


def _features(sample_set: SampleSet, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint temporal statistics relative to the center joint at frame 0: mean, std, mean speed."""
    rows, labels = [], []
    for s in sample_set.split(split):
        x = s.keypoint[0].astype(np.float64)
        x = x - x[:1, NTU.center : NTU.center + 1]
        rows.append(np.concatenate([x.mean(0).ravel(), x.std(0).ravel(), np.abs(np.diff(x, axis=0)).mean(0).ravel()]))
        labels.append(s.label)
    return np.stack(rows), np.array(labels)


def _fit_predict(sample_set: SampleSet) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression on the train split; predictions and labels of the test split."""
    x, y = _features(sample_set, "train")
    xt, yt = _features(sample_set, "test")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)
    return model.predict(xt), yt


def _bone_lengths(keypoint: np.ndarray) -> np.ndarray:
    """(M, T, V) distance of each joint to its parent in the NTU layout."""
    return np.linalg.norm(keypoint - keypoint[..., list(NTU.parents), :], axis=-1)


# ------------------------------------------------------------------ action data


def test_same_seed_gives_identical_data_and_another_seed_differs() -> None:
    a = make_action_dataset(num_classes=4, samples_per_class=6, num_subjects=3, seed=7)
    b = make_action_dataset(num_classes=4, samples_per_class=6, num_subjects=3, seed=7)
    c = make_action_dataset(num_classes=4, samples_per_class=6, num_subjects=3, seed=8)
    assert a.classes == b.classes and a.splits == b.splits
    for sa, sb in zip(a.samples, b.samples):
        assert sa.sample_id == sb.sample_id and sa.label == sb.label and sa.meta == sb.meta
        np.testing.assert_array_equal(sa.keypoint, sb.keypoint)
    assert not any(
        sa.keypoint.shape == sc.keypoint.shape and np.allclose(sa.keypoint, sc.keypoint)
        for sa, sc in zip(a.samples, c.samples)
    )


def test_default_set_shapes_labels_and_meta(default_set: SampleSet) -> None:
    assert default_set.layout == "nturgb+d"
    assert default_set.num_classes == 12 and len(default_set.classes) == 12
    assert len(default_set.samples) == 12 * 40
    assert np.bincount([s.label for s in default_set.samples]).tolist() == [40] * 12
    lengths = set()
    for s in default_set.samples:
        validate_sample(s, "synthetic", num_classes=12, num_joints=25)
        assert s.keypoint.dtype == np.float32 and s.keypoint.shape[0] == 1 and s.keypoint.shape[2:] == (25, 3)
        assert 32 <= s.num_frames <= 64
        assert s.score is None and s.img_shape is None
        assert set(s.meta) == {"subject", "view", "replication"}
        assert 1 <= s.meta["subject"] <= 10 and 1 <= s.meta["view"] <= 3
        lengths.add(s.num_frames)
    assert len(lengths) > 10
    assert len({s.sample_id for s in default_set.samples}) == len(default_set.samples)


def test_splits_are_subject_disjoint_cover_everything_and_hold_every_class(default_set: SampleSet) -> None:
    subjects = {name: {s.meta["subject"] for s in default_set.split(name)} for name in ("train", "val", "test")}
    assert subjects == {"train": set(range(1, 7)), "val": {7, 8}, "test": {9, 10}}
    ids = [i for name in ("train", "val", "test") for i in default_set.splits[name]]
    assert sorted(ids) == sorted(s.sample_id for s in default_set.samples)
    for name in ("train", "val", "test"):
        assert {s.label for s in default_set.split(name)} == set(range(12))


def test_missing_joints_are_whole_zero_runs_and_follow_the_probability() -> None:
    def missing(sample_set: SampleSet) -> list[np.ndarray]:
        return [np.all(s.keypoint == 0, axis=-1) for s in sample_set.samples]

    options = {"num_classes": 3, "samples_per_class": 20, "num_subjects": 3}
    assert not any(m.any() for m in missing(make_action_dataset(missing_prob=0.0, **options)))
    masks = missing(make_action_dataset(missing_prob=1.0, **options))
    assert all(m.any() for m in masks)
    for s, m in zip(make_action_dataset(missing_prob=1.0, **options).samples, masks):
        joints = np.flatnonzero(m.any(axis=(0, 1)))
        assert len(joints) == 1  # one joint, for a contiguous run of frames
        frames = np.flatnonzero(m[0, :, joints[0]])
        assert np.array_equal(frames, np.arange(frames[0], frames[-1] + 1))
        assert not np.any(s.keypoint[~m] == 0)  # present joints are never exactly zero
    some = missing(make_action_dataset(missing_prob=0.2, **options))
    assert 0.05 < np.mean([m.any() for m in some]) < 0.4


def test_limbs_move_rigidly_and_bone_lengths_belong_to_the_subject(clean_set: SampleSet) -> None:
    by_subject: dict[int, list[np.ndarray]] = {}
    moved = []
    for s in clean_set.samples:
        lengths = _bone_lengths(s.keypoint)[0]  # (T, V)
        np.testing.assert_allclose(lengths, np.broadcast_to(lengths[:1], lengths.shape), atol=1e-5)
        by_subject.setdefault(s.meta["subject"], []).append(lengths[0])
        moved.append(np.abs(s.keypoint[0] - s.keypoint[0, :1]).max())
    for lengths in by_subject.values():
        np.testing.assert_allclose(np.stack(lengths), np.broadcast_to(lengths[0], (len(lengths), 25)), atol=1e-5)
    first = [v[0] for v in by_subject.values()]
    assert min(np.abs(a - b).max() for i, a in enumerate(first) for b in first[i + 1 :]) > 0.005
    assert min(moved) > 0.05  # every sample moves
    heights = [s.keypoint[0, 0, 3, 1] - s.keypoint[0, 0, 15, 1] for s in clean_set.samples]
    assert 1.2 < min(heights) and max(heights) < 2.0  # head above the left foot, human scale (metres)


def test_views_turn_the_body_about_the_vertical_axis(clean_set: SampleSet) -> None:
    left, right = NTU.joint_names.index("left_shoulder"), NTU.joint_names.index("right_shoulder")
    for view, expected in ((1, -45.0), (2, 0.0), (3, 45.0)):
        angles = []
        for s in clean_set.samples:
            if s.meta["view"] == view:
                line = s.keypoint[0, 0, left] - s.keypoint[0, 0, right]
                angles.append(np.degrees(np.arctan2(-line[2], line[0])))
        assert abs(np.median(angles) - expected) < 10.0


def test_confusable_groups_are_consecutive_blocks_sharing_the_main_primitive(default_set: SampleSet) -> None:
    assert confusable_groups(12, 3) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
    assert confusable_groups(7, 3) == [[0, 1, 2], [3, 4, 5], [6]]
    for group in confusable_groups(12, 3):
        names = [default_set.classes[c] for c in group]
        tags = [n.split("_", 1)[0] for n in names]
        assert tags == [f"g{group[0] // 3}v{k}" for k in range(3)]
        assert len({n.split("_", 1)[1] for n in names}) == 1  # the same main primitive
    with pytest.raises(InputError, match="group_size"):
        confusable_groups(12, 0)


def test_learnable_above_chance_while_confusable_groups_stay_harder(default_set: SampleSet) -> None:
    pred, true = _fit_predict(default_set)
    group = np.arange(12) // 3
    accuracy = np.mean(pred == true)
    group_accuracy = np.mean(group[pred] == group[true])
    errors = pred != true
    within_share = np.mean(group[pred][errors] == group[true][errors])
    within_accuracy = np.mean(pred[group[pred] == group[true]] == true[group[pred] == group[true]])
    assert accuracy > 0.45  # chance is 1/12
    assert group_accuracy > 0.9  # groups are told apart easily
    assert within_share > 0.75  # errors are confusions inside a group (2/11 if errors were random)
    assert within_accuracy < group_accuracy - 0.15  # inside a group it is measurably harder


def test_separation_zero_makes_a_group_indistinguishable() -> None:
    pred, true = _fit_predict(make_action_dataset(separation=0.0))
    group = np.arange(12) // 3
    same_group = group[pred] == group[true]
    assert np.mean(same_group) > 0.9
    assert np.mean(pred[same_group] == true[same_group]) < 0.55  # about 1/3: the variants are the same motion


@pytest.mark.parametrize("layout", sorted(BUILTIN_LAYOUTS))
def test_every_builtin_layout_generates_valid_moving_samples(layout: str) -> None:
    data = make_action_dataset(num_classes=3, samples_per_class=3, num_subjects=3, layout=layout, missing_prob=0.0)
    num_joints = BUILTIN_LAYOUTS[layout].num_joints
    for s in data.samples:
        validate_sample(s, layout, num_classes=3, num_joints=num_joints)
        assert np.abs(np.diff(s.keypoint, axis=1)).max() > 0.02
        distances = np.linalg.norm(s.keypoint[0, 0, :, None] - s.keypoint[0, 0, None], axis=-1)
        assert np.sort(distances, axis=1)[:, 1].min() > 0.005  # no two joints on top of each other


def test_unknown_joint_names_fall_back_to_tree_branches(tmp_path) -> None:
    path = tmp_path / "star.yaml"
    path.write_text("joints: 7\nedges: [[0, 1], [1, 2], [0, 3], [3, 4], [0, 5], [5, 6]]\ncenter: 0\n")
    data = make_action_dataset(num_classes=3, samples_per_class=4, num_subjects=3, layout=str(path), missing_prob=0.0)
    assert data.layout == str(path)
    for s in data.samples:
        validate_sample(s, str(path), num_classes=3, num_joints=7)
        assert np.abs(np.diff(s.keypoint, axis=1)).max() > 0.01
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text("joints: 2\nedges: [[0, 1]]\ncenter: 0\n")
    with pytest.raises(InputError, match="too few movable limbs"):
        make_action_dataset(num_classes=3, layout=str(tiny))


def test_two_persons_and_2d_pixels_with_scores() -> None:
    data = make_action_dataset(num_classes=3, samples_per_class=4, num_subjects=3, persons=2, channels=2, layout="coco")
    for s in data.samples:
        validate_sample(s, "coco", num_classes=3, num_joints=17)
        assert s.keypoint.shape[0] == 2 and s.keypoint.shape[-1] == 2 and s.img_shape == (480, 640)
        assert s.score is not None and s.score.shape == s.keypoint.shape[:3]
        present = s.score > 0
        assert np.all((s.score[present] >= 0.8) & (s.score[present] <= 1.0))
        assert np.all(s.keypoint[~present] == 0)
        inside = s.keypoint[present]
        assert np.all((inside >= 0) & (inside <= (640, 480)))
        # the two persons stand apart: left person's mean x below the right one's
        assert s.keypoint[0, :, :, 0][present[0]].mean() < s.keypoint[1, :, :, 0][present[1]].mean()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_subjects": 0}, "num_subjects"),
        ({"num_subjects": 2}, "no training subject"),
        ({"frames": (10, 5)}, "frames"),
        ({"frames": (1, 5)}, "frames"),
        ({"persons": 3}, "persons"),
        ({"channels": 4}, "channels"),
        ({"missing_prob": 1.5}, "missing_prob"),
        ({"split_fractions": (0.0, 0.5, 0.5)}, "no training subject"),
        ({"split_fractions": (0.5, 0.5, 0.5)}, "split_fractions"),
        ({"samples_per_class": 0}, "samples_per_class"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_action_options_are_input_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        make_action_dataset(**options)


def test_unknown_layout_is_a_layout_error() -> None:
    with pytest.raises(LayoutError, match="unknown layout"):
        make_action_dataset(layout="no-such-layout")


# ------------------------------------------------------------------ gait data


def test_gait_structure_counts_ids_labels_and_splits() -> None:
    data = small_gait()
    assert data.layout == "coco" and data.classes == ["001", "002", "003", "004", "005"]
    assert len(data.samples) == 5 * (2 + 2 + 2) * 3
    ids = [s.sample_id for s in data.samples]
    assert len(set(ids)) == len(ids) and ids[0] == "001-nm-01-000" and ids[-1] == "005-cl-02-180"
    for s in data.samples:
        validate_sample(s, "gait", num_classes=5, num_joints=17)
        assert s.label == s.meta["subject"] - 1
        assert s.keypoint.shape[0] == 1 and s.keypoint.shape[2:] == (17, 2) and 50 <= s.num_frames <= 70
        assert s.score.shape == s.keypoint.shape[:3] and s.img_shape == (240, 320)
        assert (
            s.sample_id
            == f"{s.meta['subject']:03d}-{s.meta['condition']}-{s.meta['sequence']:02d}-{s.meta['view']:03d}"
        )
    combos = {(s.meta["subject"], s.meta["condition"], s.meta["sequence"], s.meta["view"]) for s in data.samples}
    assert combos == {
        (j, c, q, v) for j in range(1, 6) for c in ("nm", "bg", "cl") for q in (1, 2) for v in (0, 90, 180)
    }
    assert {s.meta["subject"] for s in data.split("train")} == {1, 2, 3}
    assert {s.meta["subject"] for s in data.split("test")} == {4, 5}


def test_gait_defaults_follow_casia_b() -> None:
    data = make_gait_dataset(num_subjects=2, num_train_subjects=1, frames=(20, 20))
    assert len(data.samples) == 2 * (6 + 2 + 2) * 11
    assert sorted({s.meta["view"] for s in data.samples}) == list(range(0, 181, 18))
    counts = {
        c: len({s.meta["sequence"] for s in data.samples if s.meta["condition"] == c}) for c in ("nm", "bg", "cl")
    }
    assert counts == {"nm": 6, "bg": 2, "cl": 2}


def test_gait_is_deterministic_and_missing_joints_have_zero_scores() -> None:
    a, b = small_gait(missing_prob=1.0), small_gait(missing_prob=1.0)
    for sa, sb in zip(a.samples, b.samples):
        np.testing.assert_array_equal(sa.keypoint, sb.keypoint)
        np.testing.assert_array_equal(sa.score, sb.score)
        zero = np.all(sa.keypoint == 0, axis=-1)
        assert zero.any()
        np.testing.assert_array_equal(sa.score == 0, zero)


def _side_view(data: SampleSet, condition: str) -> list:
    return [s for s in data.samples if s.meta["condition"] == condition and s.meta["view"] == 90]


def test_gait_bag_reduces_the_arm_swing_on_one_side() -> None:
    data = small_gait(noise=0.0, missing_prob=0.0)
    wrists = [COCO.joint_names.index(n) for n in ("left_wrist", "right_wrist")]
    hips = [COCO.joint_names.index(n) for n in ("left_hip", "right_hip")]

    def swing(s) -> np.ndarray:  # horizontal range of each wrist relative to its hip
        rel = s.keypoint[0][:, wrists, 0] - s.keypoint[0][:, hips, 0]  # (T, 2)
        return rel.max(axis=0) - rel.min(axis=0)

    for subject in range(1, 6):
        normal = np.mean([swing(s) for s in _side_view(data, "nm") if s.meta["subject"] == subject], axis=0)
        bag = np.mean([swing(s) for s in _side_view(data, "bg") if s.meta["subject"] == subject], axis=0)
        ratio = bag / normal
        assert ratio.min() < 0.5 and ratio.max() > 0.75  # one arm held still, the other swings


def test_gait_coat_blurs_hips_and_knees_only() -> None:
    data = small_gait(noise=0.0, missing_prob=0.0)
    hidden = [COCO.joint_names.index(n) for n in ("left_hip", "right_hip", "left_knee", "right_knee")]
    shown = [COCO.joint_names.index(n) for n in ("left_shoulder", "right_shoulder", "left_ankle", "right_ankle")]

    def jitter(samples: list, joints: list[int]) -> float:  # mean size of second differences over time
        return float(np.mean([np.abs(np.diff(s.keypoint[0][:, joints], n=2, axis=0)).mean() for s in samples]))

    normal, coat = _side_view(data, "nm"), _side_view(data, "cl")
    assert jitter(coat, hidden) > 3 * jitter(normal, hidden)
    assert jitter(coat, shown) < 1.5 * jitter(normal, shown)
    hidden_score = np.mean([s.score[0][:, hidden].mean() for s in coat])
    assert hidden_score < np.mean([s.score[0][:, hidden].mean() for s in normal]) - 0.2


def test_gait_view_decides_the_walking_direction_on_screen() -> None:
    data = small_gait(noise=0.0, missing_prob=0.0)
    for s in data.samples:
        hip_x = s.keypoint[0, :, COCO.joint_names.index("left_hip"), 0]
        travel = abs(hip_x[-1] - hip_x[0])
        if s.meta["view"] == 90:
            assert travel > 100  # crosses the image sideways
        else:
            assert travel < 30  # walks towards or away from the camera


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"conditions": ("nm", "xx")}, "conditions"),
        ({"conditions": ()}, "conditions"),
        ({"sequences": {"nm": 0}}, "sequences"),
        ({"sequences": {"zz": 1}}, "unknown conditions"),
        ({"views": ()}, "views"),
        ({"views": (0, 400)}, "views"),
        ({"num_train_subjects": 5}, "num_train_subjects"),
        ({"frames": (3, 2)}, "frames"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_gait_options_are_input_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        small_gait(**options)


def test_gait_needs_a_layout_with_legs_and_arms(tmp_path) -> None:
    path = tmp_path / "stick.yaml"
    path.write_text("joints: [head, neck, left_hand]\nedges: [[0, 1], [1, 2]]\ncenter: 1\n")
    with pytest.raises(InputError, match="cannot walk"):
        small_gait(layout=str(path))
