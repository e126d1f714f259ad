"""Real bytes: the readers of the small Kinect datasets in ../shared/data (MSR Action3D, Florence 3D,
UTKinect-Action3D, UTD-MHAD, SBU) against the folder's README, plain reference parsers written here,
and bone lengths of each built-in layout on the real skeletons. Error cases use temporary mirrors
of a dataset folder (symbolic links) in which the test replaces single files by its own copies.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from aclnet.data.formats import read_format
from aclnet.data.formats.utkinect import read_labels
from aclnet.data.sample import SampleError, SampleSet
from aclnet.errors import InputError
from aclnet.skeleton import get_layout

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
FOLDERS = {
    "msr-action3d": "MSRAction3D",
    "florence3d": "Florence3D",
    "utkinect": "UTKinect-Action3D",
    "utd-mhad": "UTD-MHAD",
    "sbu": "SBU-Kinect-Interaction",
}
# format: (sequences, classes, persons, joints, fewest frames, most frames, layout), as the README says.
# MSR: the README's 13-936 frames counts all 567 files; the longest of the 557 used ones has 76.
# UTKinect: segment lengths follow from the label file (measured: 5-114 frames).
EXPECTED = {
    "msr-action3d": (557, 20, 1, 20, 13, 76, "msr-action3d"),
    "florence3d": (215, 9, 1, 15, 8, 35, "florence3d"),
    "utkinect": (199, 10, 1, 20, 5, 114, "kinect-sdk"),
    "utd-mhad": (861, 27, 1, 20, 41, 125, "utd-mhad"),
    "sbu": (282, 8, 2, 15, 10, 46, "sbu"),
}
TEN_SPLITS = [f"split{k:02d}" for k in range(1, 11)]
PROTOCOLS = {
    "msr-action3d": ["xsub", *TEN_SPLITS],
    "florence3d": TEN_SPLITS,
    "utkinect": TEN_SPLITS,
    "utd-mhad": ["xsub"],
    "sbu": [f"fold{k}" for k in range(1, 6)],
}
SBU_FOLDS = {
    "fold1": {"s01s02", "s03s04", "s05s02", "s06s04"},
    "fold2": {"s02s03", "s02s07", "s03s05", "s05s03"},
    "fold3": {"s01s03", "s01s07", "s07s01", "s07s03"},
    "fold4": {"s02s01", "s02s06", "s03s02", "s03s06"},
    "fold5": {"s04s02", "s04s03", "s04s06", "s06s02", "s06s03"},
}


def folder(fmt: str) -> Path:
    """The dataset folder of `fmt`, or skip the test when ../shared/data does not have it."""
    path = DATA / FOLDERS[fmt]
    if not path.is_dir():
        pytest.skip(f"{path} is absent: these tests read the real datasets of ../shared/data (see its README.md)")
    return path


@pytest.fixture(scope="module")
def dataset() -> Callable[[str], SampleSet]:
    """Each dataset read once for the whole module."""
    cache: dict[str, SampleSet] = {}

    def get(fmt: str) -> SampleSet:
        if fmt not in cache:
            cache[fmt] = read_format(fmt, folder(fmt))
        return cache[fmt]

    return get


def mirror(fmt: str, tmp_path: Path) -> Path:
    """A copy of the dataset folder made of symbolic links to the real files."""
    source = folder(fmt)
    target = tmp_path / FOLDERS[fmt]
    for path in source.rglob("*"):
        if path.is_file():
            link = target / path.relative_to(source)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)
    return target


def replace(link: Path, data: bytes | str) -> None:
    """Put the test's own file where a mirror has a link (the real file is never opened for writing)."""
    assert link.is_symlink() and str(link.resolve()).startswith(str(DATA))
    link.unlink()
    if isinstance(data, str):
        link.write_text(data)
    else:
        link.write_bytes(data)


def mat_names(path: Path, name: str) -> list[str]:
    """A cell array of strings read with scipy's defaults (the reference for class names)."""
    return [str(x).strip() for x in scipy.io.loadmat(path, squeeze_me=True)[name]]


def valid_frames(person: np.ndarray) -> np.ndarray:
    """The frames (T, V, 3) of one person in which the skeleton was tracked (not all zeros)."""
    return person[person.any(axis=(1, 2))]


def bone_statistics(sample_set: SampleSet, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Per (sequence and person, bone): coefficient of variation of the bone length over the
    tracked frames, and the mean length in metres."""
    bones = np.array(get_layout(layout).inward)
    cvs, lengths = [], []
    for sample in sample_set.samples:
        for person in sample.keypoint:
            frames = valid_frames(person).astype(np.float64)
            length = np.linalg.norm(frames[:, bones[:, 0]] - frames[:, bones[:, 1]], axis=-1)
            cvs.append(length.std(axis=0) / length.mean(axis=0))
            lengths.append(length.mean(axis=0))
    return np.array(cvs), np.array(lengths)


def plausible_bones(cvs: np.ndarray, lengths: np.ndarray) -> bool:
    """Bones of a human skeleton: stable over frames (median coefficient of variation below 0.1,
    every bone's median below 0.4) and of human length (each bone's median 0.04-0.6 m)."""
    median_length = np.median(lengths, axis=0)
    return bool(
        np.median(cvs) < 0.1
        and np.median(cvs, axis=0).max() < 0.4
        and median_length.min() > 0.04
        and median_length.max() < 0.6
    )


# ---------------------------------------------------------------------------------------------
# Counts, classes and splits as the README says


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_counts_match_the_readme(dataset, fmt):
    data = dataset(fmt)
    sequences, classes, persons, joints, fewest, most, layout = EXPECTED[fmt]
    assert len(data.samples) == sequences
    assert data.layout == layout and len(data.classes) == classes == data.num_classes
    assert {s.keypoint.shape[0] for s in data.samples} == {persons}
    assert {s.keypoint.shape[2:] for s in data.samples} == {(joints, 3)}
    assert {s.keypoint.dtype for s in data.samples} == {np.dtype(np.float32)}
    frames = [s.num_frames for s in data.samples]
    assert (min(frames), max(frames)) == (fewest, most)
    assert sorted({s.label for s in data.samples}) == list(range(classes))  # every class has samples
    assert len({s.sample_id for s in data.samples}) == sequences


@pytest.mark.parametrize("fmt", ["msr-action3d", "florence3d", "utkinect"])
def test_class_names_come_from_action_names_mat(dataset, fmt):
    names = mat_names(folder(fmt) / "action_names.mat", "action_names")
    assert dataset(fmt).classes == names
    assert len(set(names)) == len(names)


def test_utd_and_sbu_labels_follow_the_file_names(dataset):
    files = (folder("utd-mhad") / "Skeleton").glob("a*.mat")
    utd = Counter(int(re.match(r"a(\d+)_", p.name).group(1)) - 1 for p in files)
    assert Counter(s.label for s in dataset("utd-mhad").samples) == utd
    assert sorted(utd.values()) == [31] * 3 + [32] * 24  # three trials are absent from the release
    sbu = Counter(int(p.parents[1].name) - 1 for p in folder("sbu").glob("*/*/*/skeleton_pos.txt"))
    assert Counter(s.label for s in dataset("sbu").samples) == sbu
    assert dataset("utd-mhad").classes[0] == "right arm swipe to the left"
    assert dataset("sbu").classes[0] == "approaching" and dataset("sbu").classes[7] == "exchanging objects"


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_each_protocol_splits_all_samples_into_disjoint_train_and_test(dataset, fmt):
    data = dataset(fmt)
    assert sorted(data.splits) == sorted(f"{p}_{part}" for p in PROTOCOLS[fmt] for part in ("train", "test"))
    every = {s.sample_id for s in data.samples}
    for protocol in PROTOCOLS[fmt]:
        train, test = data.splits[f"{protocol}_train"], data.splits[f"{protocol}_test"]
        assert len(set(train)) == len(train) and len(set(test)) == len(test)
        assert not set(train) & set(test)
        assert set(train) | set(test) == every
        assert [s.sample_id for s in data.split(f"{protocol}_test")] == test


@pytest.mark.parametrize("fmt", ["msr-action3d", "florence3d", "utkinect"])
def test_ten_splits_hold_the_subjects_of_tr_te_splits_mat(dataset, fmt):
    data = dataset(fmt)
    mat = scipy.io.loadmat(folder(fmt) / "tr_te_splits.mat")
    subject = {s.sample_id: s.meta["subject"] for s in data.samples}
    for k in range(10):
        for part, key in (("train", "tr_subjects"), ("test", "te_subjects")):
            members = {subject[i] for i in data.splits[f"split{k + 1:02d}_{part}"]}
            assert members == set(mat[key][k].tolist())
            assert len(members) == 5


def test_msr_ten_split_test_sets_match_the_published_confusion_matrices(dataset):
    # action_names.mat holds Vemulapalli's results per split: accuracies and row-normalised confusion
    # matrices. Times our test-set size (per class), every entry must be a whole number of sequences.
    data = dataset("msr-action3d")
    results = scipy.io.loadmat(folder("msr-action3d") / "action_names.mat")
    for k in range(10):
        test = data.split(f"split{k + 1:02d}_test")
        per_class = np.bincount([s.label for s in test], minlength=20)
        correct = results["total_accuracy"][k, 0] * len(test)
        cells = results["confusion_matrices"][k, 0] * per_class[:, None]
        assert abs(correct - round(correct)) < 1e-9
        np.testing.assert_allclose(cells, np.round(cells), atol=1e-9)


def test_cross_subject_and_fold_protocols(dataset):
    cases = (("msr-action3d", {1, 3, 5, 7, 9}, (284, 273)), ("utd-mhad", {1, 3, 5, 7}, (431, 430)))
    for fmt, train_subjects, sizes in cases:
        data = dataset(fmt)
        train, test = data.split("xsub_train"), data.split("xsub_test")
        assert (len(train), len(test)) == sizes
        assert {s.meta["subject"] for s in train} == train_subjects
        assert not {s.meta["subject"] for s in test} & train_subjects
    sbu = dataset("sbu")
    tested = []
    for fold, sets in SBU_FOLDS.items():
        assert {s.meta["subject"] for s in sbu.split(f"{fold}_test")} == sets
        assert not {s.meta["subject"] for s in sbu.split(f"{fold}_train")} & sets
        tested += sbu.splits[f"{fold}_test"]
    assert sorted(tested) == sorted(s.sample_id for s in sbu.samples)  # each sample tested exactly once


# ---------------------------------------------------------------------------------------------
# Layouts against the real skeletons


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_layout_bones_have_plausible_stable_lengths(dataset, fmt):
    data = dataset(fmt)
    assert plausible_bones(*bone_statistics(data, data.layout))


@pytest.mark.parametrize(("fmt", "wrong"), [
    ("msr-action3d", "kinect-sdk"), ("utkinect", "msr-action3d"), ("utkinect", "utd-mhad"),
    ("utd-mhad", "kinect-sdk"), ("utd-mhad", "msr-action3d"),
])
def test_bone_check_rejects_another_datasets_joint_order(dataset, fmt, wrong):
    assert not plausible_bones(*bone_statistics(dataset(fmt), wrong))


def test_msr_bone_lengths_are_normalised(dataset):
    # README: the skeletons of this release were normalised (constant bone lengths). Measured: in
    # most sequences most bones are constant to the printed precision; head-shoulder_center and
    # hip_center-spine still vary by up to ~13 %.
    cvs, lengths = bone_statistics(dataset("msr-action3d"), "msr-action3d")
    assert np.median(cvs) < 1e-3
    assert (np.median(cvs, axis=0) < 1e-3).sum() >= 9
    assert np.percentile(cvs, 90, axis=0).max() < 0.15


@pytest.mark.parametrize("fmt", ["msr-action3d", "florence3d"])
def test_layout_edges_equal_body_model_mat(fmt):
    body_model = scipy.io.loadmat(folder(fmt) / "body_model.mat", squeeze_me=True, struct_as_record=False)["body_model"]
    bones = body_model.bones
    layout = get_layout(fmt)
    assert {frozenset((a - 1, b - 1)) for a, b in bones.tolist()} == {frozenset(e) for e in layout.edges}


def test_utd_joint_order_file_names_the_layout_joints():
    lines = (folder("utd-mhad") / "Skeleton" / "Skeleton_joint_order.txt").read_text().splitlines()
    names = [m.group(1) for m in (re.match(r"\s*\d+\.\s*(\w+)", line) for line in lines) if m]
    assert names == list(get_layout("utd-mhad").joint_names)


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_axes_are_metres_with_y_up_and_z_depth(dataset, fmt):
    data = dataset(fmt)
    layout = get_layout(data.layout)
    head, center = layout.joint_names.index("head"), layout.center
    feet = [layout.joint_names.index("left_foot"), layout.joint_names.index("right_foot")]
    shoulders = [layout.joint_names.index("left_shoulder"), layout.joint_names.index("right_shoulder")]
    rises, depths, right_of_left = [], [], []
    for sample in data.samples:
        for person in sample.keypoint:
            frames = valid_frames(person)
            rises.append(np.median(frames[:, head, 1] - frames[:, feet, 1].mean(axis=1)))
            depths.append(np.median(frames[:, center, 2]))
            right_of_left.append(np.median(frames[:, shoulders[1], 0] - frames[:, shoulders[0], 0]) > 0)
    assert min(rises) > 0.5  # the head is above the feet in every sequence
    assert 1.0 < min(depths) and max(depths) < 4.0
    if fmt != "sbu":  # one person facing the camera: the left shoulder has the smaller x
        assert np.mean(right_of_left) > 0.95


# ---------------------------------------------------------------------------------------------
# Samples equal plain reference parsers of the files


def test_msr_samples_equal_the_text_files(dataset):
    data = {s.sample_id: s for s in dataset("msr-action3d").samples}
    for name in ("a01_s01_e01", "a13_s02_e02", "a20_s10_e02"):
        lines = (folder("msr-action3d") / "real_world_coordinates" / f"{name}_skeleton3D.txt").read_text().split("\n")
        rows = [[float(v) for v in line.split()[:3]] for line in lines if line.strip()]
        frames = [rows[t:t + 20] for t in range(0, len(rows), 20)]
        sample = data[name]
        np.testing.assert_allclose(sample.keypoint[0], np.array(frames, dtype=np.float32))
        assert sample.label == int(name[1:3]) - 1
        assert sample.meta == {"subject": int(name[5:7]), "sequence": int(name[9:11])}
    # frames in which the tracker lost the person stay zeros; the unused all-zero file is no sample
    assert (~data["a13_s02_e02"].keypoint[0].any(axis=(1, 2))).sum() == 12
    assert "a13_s09_e02" not in data and len(data) == 557


def test_florence_samples_equal_skeletal_data_with_height_as_y(dataset):
    path = folder("florence3d") / "skeletal_data.mat"
    records = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["skeletal_data"]
    samples = dataset("florence3d").samples
    repetitions: Counter[tuple[int, int]] = Counter()
    for record, sample in zip(records, samples, strict=True):
        repetitions[record.action, record.subject] += 1
        sequence = repetitions[record.action, record.subject]
        assert sample.sample_id == f"a{record.action:02d}_s{record.subject:02d}_e{sequence:02d}"
        assert sample.label == record.action - 1 and sample.meta["subject"] == record.subject
        coords = record.original_skeletal_data  # rows: x, depth, height
        expected = [[[coords[0, j, t], coords[2, j, t], coords[1, j, t]] for j in range(15)]
                    for t in range(coords.shape[2])]
        np.testing.assert_allclose(sample.keypoint[0], np.array(expected, dtype=np.float32))


def test_utkinect_segments_equal_a_plain_cut_of_the_recordings(dataset):
    joints = folder("utkinect") / "joints"
    classes = mat_names(folder("utkinect") / "action_names.mat", "action_names")
    key = {c.replace("_", "").lower(): k for k, c in enumerate(classes)}
    expected, recording, nan_entries = {}, None, 0
    for line in (joints / "actionLabel_modified.txt").read_text().splitlines():
        line = line.strip()
        if re.fullmatch(r"s\d\d_e\d\d", line):
            recording = line
            text = (joints / f"joints_{line}.txt").read_text()
            rows = [[float(v) for v in r.split()] for r in text.splitlines() if r.strip()]
        elif line:
            name, bounds = line.split(":")
            start, end = (float(v) for v in bounds.split())
            if math.isnan(start):
                nan_entries += 1
                continue
            label = key[name.lower()]
            frames = [row[1:] for row in rows if start <= row[0] <= end]
            expected[f"{recording}_a{label + 1:02d}"] = (label, np.array(frames).reshape(-1, 20, 3))
    samples = dataset("utkinect").samples
    assert nan_entries == 1 and len(expected) == 199
    assert [s.sample_id for s in samples] == list(expected)
    for sample in samples:
        label, frames = expected[sample.sample_id]
        assert sample.label == label
        np.testing.assert_allclose(sample.keypoint[0], frames.astype(np.float32))


def test_utkinect_skips_the_nan_label_and_uses_the_corrected_bounds(dataset):
    ids = [s.sample_id for s in dataset("utkinect").samples]
    assert "s10_e02_a05" not in ids  # s10_e02 carry: NaN NaN
    assert sum(i.startswith("s10_e02_") for i in ids) == 9
    assert sum(i.startswith("s10_e01_") for i in ids) == 10
    # actionLabel_modified.txt is Vemulapalli's frame_indices.mat, bound for bound
    classes = dataset("utkinect").classes
    recordings = read_labels(folder("utkinect") / "joints" / "actionLabel_modified.txt", classes)
    table = scipy.io.loadmat(folder("utkinect") / "joints" / "frame_indices.mat")["frame_indices"]
    for name, segments in recordings.items():
        bounds = table[int(name[1:3]) - 1, int(name[5:7]) - 1].astype(float)
        kept = bounds[~np.isnan(bounds).any(axis=1)]
        assert [(start, end) for _, start, end in segments] == [tuple(map(int, b)) for b in kept]
        assert [label for label, _, _ in segments] == [k for k in range(10) if not np.isnan(bounds[k]).any()]


def test_utd_samples_equal_d_skel(dataset):
    data = {s.sample_id: s for s in dataset("utd-mhad").samples}
    for name in ("a1_s1_t1", "a27_s8_t3", "a8_s1_t3"):
        d_skel = scipy.io.loadmat(folder("utd-mhad") / "Skeleton" / f"{name}_skeleton.mat")["d_skel"]
        expected = [[[d_skel[j, c, t] for c in range(3)] for j in range(20)] for t in range(d_skel.shape[2])]
        np.testing.assert_allclose(data[name].keypoint[0], np.array(expected, dtype=np.float32))
        assert data[name].meta == {"subject": int(name.split("_")[1][1:]), "sequence": int(name[-1])}


def test_sbu_samples_are_the_readme_denormalisation_in_metres(dataset):
    data = {s.sample_id: s for s in dataset("sbu").samples}
    for set_name, cls, seq in (("s01s02", "01", "001"), ("s07s03", "08", "002")):
        lines = (folder("sbu") / set_name / cls / seq / "skeleton_pos.txt").read_text().splitlines()
        expected = np.zeros((2, len(lines), 15, 3))
        for t, line in enumerate(lines):
            values = [float(v) for v in line.split(",")[1:]]
            for p in range(2):
                for j in range(15):
                    x, y, z = values[45 * p + 3 * j: 45 * p + 3 * j + 3]
                    expected[p, t, j] = ((1280 - x * 2560) / 1000, (960 - y * 1920) / 1000, z * 10000 / 7.8125 / 1000)
        sample = data[f"{set_name}_{cls}_{seq}"]
        np.testing.assert_allclose(sample.keypoint, expected.astype(np.float32), rtol=1e-6, atol=1e-6)
        assert sample.label == int(cls) - 1 and sample.meta == {"subject": set_name, "sequence": int(seq)}


# ---------------------------------------------------------------------------------------------
# Errors name the file


def test_missing_or_corrupt_msr_files_are_named(tmp_path):
    root = mirror("msr-action3d", tmp_path)
    target = root / "real_world_coordinates" / "a01_s01_e01_skeleton3D.txt"
    replace(target, "0.1 0.2 0.3 1\nnot numbers here\n")
    with pytest.raises(InputError, match=re.escape(str(target)) + ".*not a table of numbers"):
        read_format("msr-action3d", root)
    target.write_text("0.1 0.2 0.3 1\n" * 21)
    with pytest.raises(InputError, match=re.escape(str(target)) + ".*21 lines"):
        read_format("msr-action3d", root)
    target.write_text("0.1 0.2 0.3 1\n" * 19 + "nan 0.2 0.3 1\n")
    with pytest.raises(SampleError, match=re.escape(str(target)) + ".*'a01_s01_e01'.*NaN"):
        read_format("msr-action3d", root)
    target.write_text("0 0 0 0\n" * 40)
    with pytest.raises(SampleError, match="'a01_s01_e01'.*all coordinates are zero"):
        read_format("msr-action3d", root)
    target.unlink()
    with pytest.raises(InputError, match=re.escape(str(target)) + ": no such file"):
        read_format("msr-action3d", root)


def test_corrupt_or_inconsistent_mat_files_are_named(tmp_path):
    root = mirror("florence3d", tmp_path)
    skeletal = root / "skeletal_data.mat"
    replace(skeletal, skeletal.read_bytes()[:5000])
    with pytest.raises(InputError, match=re.escape(str(skeletal)) + ".*truncated or corrupt"):
        read_format("florence3d", root)
    skeletal.unlink()
    skeletal.symlink_to(folder("florence3d") / "skeletal_data.mat")
    splits = root / "tr_te_splits.mat"
    splits.unlink()
    scipy.io.savemat(splits, {"tr_subjects": np.uint8([[1, 2, 3, 4, 5]]), "te_subjects": np.uint8([[5, 6, 7, 8, 9]])})
    with pytest.raises(InputError, match=re.escape(str(splits)) + r".*split 1: subjects \[5\] are both"):
        read_format("florence3d", root)
    splits.unlink()
    scipy.io.savemat(splits, {"tr_subjects": np.uint8([[11, 12, 13, 14, 15]]),
                              "te_subjects": np.uint8([[1, 2, 3, 4, 5]])})
    with pytest.raises(InputError, match=r"split 'split01_train' is empty: no sample has subject in \[11, 12"):
        read_format("florence3d", root)
    splits.unlink()
    scipy.io.savemat(splits, {"tr_subjects": np.uint8([[1, 2, 3, 4, 5]])})
    with pytest.raises(InputError, match=re.escape(str(splits)) + ".*no variable 'te_subjects'"):
        read_format("florence3d", root)


def test_bad_utkinect_labels_and_joints_are_named(tmp_path):
    root = mirror("utkinect", tmp_path)
    labels = root / "joints" / "actionLabel_modified.txt"
    original = labels.read_text()
    replace(labels, original.replace("sitDown: 572 686", "sitdown: 572 686\njump: 700 710"))
    with pytest.raises(InputError, match=re.escape(str(labels)) + ": line 4: unknown action 'jump'"):
        read_format("utkinect", root)
    labels.write_text(original.replace("walk: 252 390", "walk: 252 ninety"))
    with pytest.raises(InputError, match=re.escape(str(labels)) + ": line 2: frame ids"):
        read_format("utkinect", root)
    labels.write_text(original.replace("walk: 252 390", "walk: 9000 9100"))
    recording = root / "joints" / "joints_s01_e01.txt"
    with pytest.raises(InputError, match=re.escape(str(recording)) + r": no frame with id in \[9000, 9100\]"):
        read_format("utkinect", root)
    labels.write_text(original)
    rows = recording.read_text().splitlines()
    replace(recording, "\n".join(rows[:3] + [rows[3].rsplit(maxsplit=1)[0]] + rows[4:]))
    with pytest.raises(InputError, match=re.escape(str(recording)) + ".*not a table of numbers"):
        read_format("utkinect", root)


def test_bad_utd_files_are_named(tmp_path):
    root = mirror("utd-mhad", tmp_path)
    first = root / "Skeleton" / "a1_s1_t1_skeleton.mat"
    replace(first, first.read_bytes()[:300])
    with pytest.raises(InputError, match=re.escape(str(first)) + ".*truncated or corrupt"):
        read_format("utd-mhad", root)
    first.unlink()
    scipy.io.savemat(first, {"d_skel": np.ones((25, 3, 4))})
    with pytest.raises(InputError, match=re.escape(str(first)) + r".*'d_skel' is float64 \(25, 3, 4\)"):
        read_format("utd-mhad", root)
    first.unlink()
    (root / "Skeleton" / "a1_sX_t1_skeleton.mat").write_bytes(b"")
    with pytest.raises(InputError, match="a1_sX_t1_skeleton.mat.*does not have the form"):
        read_format("utd-mhad", root)
    order = root / "Skeleton" / "Skeleton_joint_order.txt"
    replace(order, order.read_text().replace("1. head", "1. neck"))
    with pytest.raises(InputError, match=re.escape(str(order)) + ".*differs from the 'utd-mhad' layout"):
        read_format("utd-mhad", root)
    with pytest.raises(InputError, match="Skeleton: no such folder"):
        read_format("utd-mhad", tmp_path)


def test_bad_sbu_files_are_named(tmp_path):
    root = mirror("sbu", tmp_path)
    target = root / "s01s02" / "01" / "001" / "skeleton_pos.txt"
    replace(target, "\n".join(line.rsplit(",", 1)[0] for line in target.read_text().splitlines()))
    with pytest.raises(InputError, match=re.escape(str(target)) + ": 90 values per line, expected 91"):
        read_format("sbu", root)
    target.unlink()
    stray = root / "s08s09" / "01" / "001" / "skeleton_pos.txt"
    stray.parent.mkdir(parents=True)
    stray.symlink_to(folder("sbu") / "s01s02" / "01" / "001" / "skeleton_pos.txt")
    with pytest.raises(InputError, match=re.escape(str(stray)) + ": set 's08s09' is not one of the 21 sets"):
        read_format("sbu", root)
