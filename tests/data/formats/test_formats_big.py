"""Readers of the large benchmarks' formats: real bytes where a sample exists, else files written here."""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from aclnet.data.class_names import NTU60_CLASSES, NTU120_CLASSES, PKU_MMD_CLASSES, class_names_for
from aclnet.data.formats import read_format
from aclnet.data.formats.pyskl import stack_by_frame
from aclnet.data.safe_pickle import UnsafePickleError
from aclnet.data.sample import SampleError
from aclnet.errors import InputError

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
KINETICS_SAMPLE = SHARED / "Kinetics-skeleton-sample" / "--33Lscn6sk.json"
MMACTION_SAMPLE = SHARED / "mmaction2-pose-annotation-sample" / "sample.pkl"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


# ----------------------------------------------------------------------------------------------
# Class names


def test_class_names():
    assert len(NTU120_CLASSES) == 120 and len(set(NTU120_CLASSES)) == 120
    assert class_names_for("ntu60") == list(NTU120_CLASSES[:60]) == list(NTU60_CLASSES)
    assert NTU120_CLASSES[0] == "drink water" and NTU120_CLASSES[59] == "walking apart from each other"
    assert NTU120_CLASSES[60] == "put on headphone" and NTU120_CLASSES[119].startswith("finger-guessing")
    assert len(PKU_MMD_CLASSES) == 51 and len(set(PKU_MMD_CLASSES)) == 51
    assert class_names_for("PKU_MMD") == list(PKU_MMD_CLASSES)
    assert len(class_names_for("nw-ucla")) == 10
    with pytest.raises(InputError, match="known datasets are ntu60, ntu120"):
        class_names_for("kinetics")


# ----------------------------------------------------------------------------------------------
# NTU RGB+D raw .skeleton files


def write_ntu(path: Path, frames: list[list[tuple[str, np.ndarray]]], newline: str = "\r\n") -> None:
    """Write a .skeleton file: per frame a list of (bodyID, xyz (25, 3))."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, xyz in bodies:
            lines += [f"{body_id} 0 1 1 1 1 0 -0.05 0.12 2", str(len(xyz))]
            lines += [f"{x:.6f} {y:.6f} {z:.6f} 260.1 190.7 980.2 520.3 -0.2 0.1 0.9 0.3 2" for x, y, z in xyz]
    path.write_text(newline.join(lines) + newline)


def reference_ntu(path: Path) -> np.ndarray:
    """Plain line-by-line reader and per-body motion ranking (the reference for the vectorised one)."""
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    num_frames, pos = int(lines[0][0]), 1
    bodies: dict[str, dict[int, np.ndarray]] = {}
    for t in range(num_frames):
        count, pos = int(lines[pos][0]), pos + 1
        for _ in range(count):
            body_id, joints = lines[pos][0], int(lines[pos + 1][0])
            xyz = np.array([[float(v) for v in lines[pos + 2 + j][:3]] for j in range(joints)])
            bodies.setdefault(body_id, {})[t] = xyz
            pos += 2 + joints
    motion = {b: np.stack(list(fr.values())).var(axis=0).sum() for b, fr in bodies.items()}
    ranked = sorted(bodies, key=lambda b: -motion[b])  # stable: ties keep first appearance
    out = np.zeros((2, num_frames, 25, 3), dtype=np.float32)
    for m, body_id in enumerate(ranked[:2]):
        for t, xyz in bodies[body_id].items():
            out[m, t] = xyz
    return out


def moving_body(rng: np.random.Generator, frames: int, amplitude: float) -> np.ndarray:
    base = rng.normal(0, 0.3, (1, 25, 3))
    return base + amplitude * np.sin(np.linspace(0, 3, frames))[:, None, None] * rng.normal(0, 1, (1, 25, 3))


def test_ntu_two_bodies_noisy_third_and_empty_frames(tmp_path):
    rng = np.random.default_rng(0)
    t = 12
    actor = moving_body(rng, t, 0.5)  # most motion
    partner = moving_body(rng, t, 0.1)
    table = np.repeat(rng.normal(0, 1, (1, 25, 3)), t, axis=0)  # noisy static "body": no motion
    # bodyIDs that round to the same float64: identity must come from the text
    ids = {"actor": "72057594037931101", "partner": "72057594037931102", "table": "72057594037931103"}
    frames: list[list[tuple[str, np.ndarray]]] = []
    for k in range(t):
        if k in (0, 5):  # frames without bodies
            frames.append([])
            continue
        bodies = [(ids["table"], table[k]), (ids["partner"], partner[k])]
        if k != 7:  # the actor is missing in one frame
            bodies.insert(1, (ids["actor"], actor[k]))
        frames.append(bodies)
    path = tmp_path / "S001C001P001R001A050.skeleton"
    write_ntu(path, frames)
    sample_set = read_format("ntu", tmp_path)
    (sample,) = sample_set.samples
    assert sample.keypoint.shape == (2, t, 25, 3) and sample.keypoint.dtype == np.float32
    expected = np.zeros((2, t, 25, 3), dtype=np.float32)
    keep = [k for k in range(t) if k not in (0, 5)]
    expected[0, [k for k in keep if k != 7]] = actor[[k for k in keep if k != 7]]
    expected[1, keep] = partner[keep]
    np.testing.assert_allclose(sample.keypoint, expected, atol=1e-6)
    np.testing.assert_array_equal(sample.keypoint, reference_ntu(path))
    assert sample.label == 49 and sample.sample_id == "S001C001P001R001A050"
    assert sample.meta == {"setup": 1, "camera": 1, "performer": 1, "replication": 1}
    assert sample_set.layout == "nturgb+d" and sample_set.classes == list(NTU60_CLASSES)


def test_ntu_matches_plain_reference_on_random_files(tmp_path):
    rng = np.random.default_rng(1)
    for n in range(4):
        t = int(rng.integers(3, 30))
        ids = [str(72057594037927936 + int(rng.integers(0, 10**6))) for _ in range(4)]
        motions = {i: moving_body(rng, t, float(rng.uniform(0, 1))) for i in ids}
        frames = [[(i, motions[i][k]) for i in ids if rng.random() < 0.6] for k in range(t)]
        frames[0] = [(ids[0], motions[ids[0]][0])]
        write_ntu(tmp_path / f"S001C002P00{n + 1}R002A00{n + 1}.skeleton", frames, newline="\n")
    sample_set = read_format("ntu", tmp_path)
    assert len(sample_set.samples) == 4
    for sample in sample_set.samples:
        expected = reference_ntu(tmp_path / f"{sample.sample_id}.skeleton")
        np.testing.assert_array_equal(sample.keypoint, expected)


def test_ntu_one_body_padding_and_skipped_file(tmp_path, caplog):
    rng = np.random.default_rng(2)
    body = moving_body(rng, 5, 0.2)
    write_ntu(tmp_path / "S001C001P001R001A001.skeleton", [[("1", body[k])] for k in range(5)])
    write_ntu(tmp_path / "S001C001P002R001A002.skeleton", [[], [], []])  # no body in any frame
    with caplog.at_level(logging.WARNING, logger="aclnet.data.formats.ntu"):
        sample_set = read_format("ntu", tmp_path)
    assert [s.sample_id for s in sample_set.samples] == ["S001C001P001R001A001"]
    kp = sample_set.samples[0].keypoint
    assert kp.shape == (2, 5, 25, 3) and not kp[1].any()
    np.testing.assert_allclose(kp[0], body, atol=1e-6)
    assert "skipped 1 files with no body in any frame: S001C001P002R001A002.skeleton" in caplog.text


def test_ntu_variant_detection_and_splits(tmp_path):
    rng = np.random.default_rng(3)
    one = [[("7", moving_body(rng, 1, 0.0)[0])], [("7", moving_body(rng, 1, 0.0)[0])]]
    for name in ["S001C001P001R001A001", "S002C002P003R001A002", "S017C003P045R002A060"]:
        write_ntu(tmp_path / f"{name}.skeleton", one)
    ntu60 = read_format("ntu", tmp_path)
    assert ntu60.classes == list(NTU60_CLASSES)
    assert ntu60.splits == {
        "xsub_train": ["S001C001P001R001A001"],  # performer 1 trains; 3 and 45 are not NTU-60 training ones
        "xsub_val": ["S002C002P003R001A002", "S017C003P045R002A060"],
        "xview_train": ["S002C002P003R001A002", "S017C003P045R002A060"],  # cameras 2 and 3
        "xview_val": ["S001C001P001R001A001"],
    }
    write_ntu(tmp_path / "S018C001P008R001A061.skeleton", one)
    ntu120 = read_format("ntu", tmp_path)
    assert ntu120.classes == list(NTU120_CLASSES) and len(ntu120.samples) == 4
    assert ntu120.splits == {
        "xsub_train": ["S001C001P001R001A001", "S017C003P045R002A060", "S018C001P008R001A061"],
        "xsub_val": ["S002C002P003R001A002"],
        "xset_train": ["S002C002P003R001A002", "S018C001P008R001A061"],  # even setups
        "xset_val": ["S001C001P001R001A001", "S017C003P045R002A060"],
    }
    forced = read_format("ntu", tmp_path, variant="ntu60")  # the NTU-60 part of a NTU-120 folder
    assert [s.sample_id for s in forced.samples] == sorted(s.sample_id for s in ntu60.samples)
    with pytest.raises(InputError, match="unknown NTU variant 'ntu90'"):
        read_format("ntu", tmp_path, variant="ntu90")


def test_ntu_setup_beyond_17_means_ntu120(tmp_path):
    one = [[("7", np.ones((25, 3)))], [("7", np.zeros((25, 3)))]]
    write_ntu(tmp_path / "S019C001P001R001A010.skeleton", one)
    assert read_format("ntu", tmp_path).classes == list(NTU120_CLASSES)


def test_ntu_malformed_files_are_named_errors(tmp_path):
    body = np.zeros((25, 3))
    path = tmp_path / "S001C001P001R001A001.skeleton"
    write_ntu(path, [[("1", body)], [("1", body)]])
    text = path.read_text()
    path.write_text("3" + text[1:])  # declares 3 frames, has 2
    with pytest.raises(InputError, match=r"S001C001P001R001A001.skeleton: truncated: the file ends at line 57"):
        read_format("ntu", tmp_path)
    path.write_text("1" + text[1:])  # declares 1 frame, has 2
    with pytest.raises(InputError, match=r"line 30: text after the last declared frame"):
        read_format("ntu", tmp_path)
    write_ntu(path, [[("1", body[:20])]])
    with pytest.raises(InputError, match=r"line 4: 20 joints; NTU bodies have 25"):
        read_format("ntu", tmp_path)
    write_ntu(path, [[("1", body)]])
    path.write_text("\n".join(path.read_text().splitlines()[:-3]))  # truncated inside a body
    with pytest.raises(InputError, match="truncated: the file ends at line 26"):
        read_format("ntu", tmp_path)
    write_ntu(path, [[("1", body)]])
    path.write_text(path.read_text().replace("0.000000 0.000000 0.000000 260.1", "0.0 abc 0.0 260.1", 1))
    with pytest.raises(InputError, match="a joint line does not start with x y z numbers"):
        read_format("ntu", tmp_path)
    write_ntu(path, [[("1", body)]])
    path.write_text(path.read_text().replace("1 0 1 1 1 1 0 -0.05 0.12 2", "1 0 1 1", 1))
    with pytest.raises(InputError, match="line 3: 4 values; a body line has 10"):
        read_format("ntu", tmp_path)
    bad_name = tmp_path / "sample.skeleton"
    write_ntu(bad_name, [[("1", body)]])
    with pytest.raises(InputError, match="sample.skeleton: file name is not SsssCcccPpppRrrrAaaa"):
        read_format("ntu", tmp_path)


# ----------------------------------------------------------------------------------------------
# PKU-MMD


def write_pku(root: Path, rng: np.random.Generator, names: dict[str, list[tuple[int, int, int]]], frames: int = 40):
    """Skeleton and label files for each NNNN-V name; returns the skeleton arrays (2, T, 25, 3)."""
    (root / "skeleton").mkdir(parents=True, exist_ok=True)
    (root / "label").mkdir(exist_ok=True)
    arrays = {}
    for name, segments in names.items():
        data = rng.normal(0, 1, (frames, 2, 25, 3)).round(5)
        data[: frames // 2, 1] = 0  # second person absent in the first half
        np.savetxt(root / "skeleton" / f"{name}.txt", data.reshape(frames, 150), fmt="%.5f")
        (root / "label" / f"{name}.txt").write_text("".join(f"{a},{s},{e},1\n" for a, s, e in segments))
        arrays[name] = data.transpose(1, 0, 2, 3)
    return arrays


def test_pku_mmd_instances_and_xview_rule(tmp_path):
    rng = np.random.default_rng(4)
    segments = {"0002-L": [(41, 0, 10), (3, 12, 30)], "0002-M": [(51, 5, 45)], "0002-R": [(1, 30, 39)]}
    arrays = write_pku(tmp_path, rng, segments)
    sample_set = read_format("pku-mmd", tmp_path)
    assert [s.sample_id for s in sample_set.samples] == ["0002-L_000", "0002-L_001", "0002-M_000", "0002-R_000"]
    by_id = {s.sample_id: s for s in sample_set.samples}
    np.testing.assert_allclose(by_id["0002-L_001"].keypoint, arrays["0002-L"][:, 12:30], atol=1e-6)
    np.testing.assert_allclose(by_id["0002-M_000"].keypoint, arrays["0002-M"][:, 5:40], atol=1e-6)  # end cut to 40
    assert [s.label for s in sample_set.samples] == [40, 2, 50, 0]
    assert by_id["0002-L_000"].keypoint.shape == (2, 10, 25, 3)
    assert by_id["0002-R_000"].meta == {"view": "R", "sequence": 2}
    assert sample_set.splits == {"xview_train": ["0002-M_000", "0002-R_000"], "xview_val": ["0002-L_000", "0002-L_001"]}
    assert sample_set.layout == "nturgb+d" and sample_set.classes == list(PKU_MMD_CLASSES)


def test_pku_mmd_split_files(tmp_path):
    rng = np.random.default_rng(5)
    write_pku(tmp_path, rng, {"0002-L": [(1, 0, 5)], "0003-M": [(2, 0, 5)], "0004-R": [(3, 0, 5)]})
    (tmp_path / "Split").mkdir()
    (tmp_path / "Split" / "cross-subject.txt").write_text(
        "Training videos: \n0002-L, 0002-M, 0002-R, 0004-R\nValidataion videos: \n0003-L, 0003-M, 0003-R\n"
    )
    (tmp_path / "Split" / "cross-view.txt").write_text(
        "Training videos: \n0003-M, 0004-R\nValidataion videos: \n0002-L\n"
    )
    splits = read_format("pku-mmd", tmp_path).splits
    assert splits == {
        "xsub_train": ["0002-L_000", "0004-R_000"], "xsub_val": ["0003-M_000"],
        "xview_train": ["0003-M_000", "0004-R_000"], "xview_val": ["0002-L_000"],
    }


def test_pku_mmd_errors(tmp_path):
    rng = np.random.default_rng(6)
    write_pku(tmp_path, rng, {"0002-L": [(1, 0, 5), (52, 5, 9)]})
    with pytest.raises(InputError, match=r"label/0002-L.txt, line 2: action id outside 1..51"):
        read_format("pku-mmd", tmp_path)
    write_pku(tmp_path, rng, {"0002-L": [(1, 9, 5)]})
    with pytest.raises(InputError, match="line 1: empty segment"):
        read_format("pku-mmd", tmp_path)
    (tmp_path / "label" / "0002-L.txt").unlink()
    with pytest.raises(InputError, match="label file not found"):
        read_format("pku-mmd", tmp_path)
    shutil.rmtree(tmp_path / "label")
    with pytest.raises(InputError, match="no label folder"):
        read_format("pku-mmd", tmp_path)


# ----------------------------------------------------------------------------------------------
# ST-GCN Kinetics-skeleton JSON


def reference_kinetics(doc: dict, num_person: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain per-frame placement: persons sorted by summed score, the first num_person kept."""
    t = max(f["frame_index"] for f in doc["data"])
    kp = np.zeros((num_person, t, 18, 2), dtype=np.float32)
    score = np.zeros((num_person, t, 18), dtype=np.float32)
    for frame in doc["data"]:
        persons = sorted(frame["skeleton"], key=lambda p: -sum(np.float32(s) for s in p["score"]))
        for m, person in enumerate(persons[:num_person]):
            kp[m, frame["frame_index"] - 1] = np.array(person["pose"], dtype=np.float32).reshape(18, 2)
            score[m, frame["frame_index"] - 1] = person["score"]
    return kp, score


@pytest.mark.parametrize("num_person", [2, 3])
def test_kinetics_genuine_sample(num_person):
    path = need(KINETICS_SAMPLE)
    sample_set = read_format("kinetics-json", path, num_person=num_person)
    (sample,) = sample_set.samples
    assert sample.sample_id == "--33Lscn6sk" and sample.label == 129
    assert sample.keypoint.shape == (num_person, 189, 18, 2) and sample.score.shape == (num_person, 189, 18)
    doc = json.loads(path.read_text())
    kp, score = reference_kinetics(doc, num_person)
    np.testing.assert_array_equal(sample.keypoint, kp)
    np.testing.assert_array_equal(sample.score, score)
    persons = np.array([len(f["skeleton"]) for f in doc["data"]])
    assert (persons == 0).sum() == 26 and (persons == 3).sum() == 4
    empty = np.flatnonzero(persons == 0)
    assert not sample.keypoint[:, empty].any() and not sample.score[:, empty].any()
    assert sample_set.layout == "openpose" and sample_set.splits == {}
    assert sample.keypoint.min() >= 0 and sample.keypoint.max() < 1.02  # normalised; a few joints just past 1


def test_kinetics_folders_label_files_and_splits(tmp_path, caplog):
    path = need(KINETICS_SAMPLE)
    for part in ("kinetics_train", "kinetics_val"):
        (tmp_path / part).mkdir()
    shutil.copy(path, tmp_path / "kinetics_train" / "clipA.json")
    shutil.copy(path, tmp_path / "kinetics_train" / "clipB.json")
    shutil.copy(path, tmp_path / "kinetics_val" / "clipC.json")
    labels_train = {"clipA": {"has_skeleton": True, "label": "x", "label_index": 7},
                    "clipB": {"has_skeleton": False, "label": "x", "label_index": 7}}
    (tmp_path / "kinetics_train_label.json").write_text(json.dumps(labels_train))
    labels_val = {"clipC": {"has_skeleton": True, "label": "y", "label_index": 3}}
    (tmp_path / "kinetics_val_label.json").write_text(json.dumps(labels_val))
    with caplog.at_level(logging.WARNING, logger="aclnet.data.formats.kinetics_json"):
        sample_set = read_format("kinetics-json", tmp_path)
    assert sample_set.splits == {"train": ["clipA"], "val": ["clipC"]}
    assert [s.label for s in sample_set.samples] == [7, 3]
    assert "skipped 1 clips without skeletons: clipB" in caplog.text
    single = read_format("kinetics-json", tmp_path / "kinetics_val")  # sibling label file found
    assert single.splits == {"val": ["clipC"]} and single.samples[0].label == 3
    (tmp_path / "kinetics_val_label.json").write_text("{}")
    with pytest.raises(InputError, match="clip 'clipC' is not in the label file"):
        read_format("kinetics-json", tmp_path / "kinetics_val")


def test_kinetics_malformed_clip(tmp_path):
    clip = {"data": [{"frame_index": 1, "skeleton": [{"pose": [0.5] * 30, "score": [1.0] * 18}]}], "label_index": 0}
    (tmp_path / "bad.json").write_text(json.dumps(clip))
    with pytest.raises(InputError, match=r"bad.json: frame_index 1: a person needs 'pose' \(36 numbers\)"):
        read_format("kinetics-json", tmp_path / "bad.json")
    clip["data"] = [{"frame_index": 1, "skeleton": []}]
    (tmp_path / "bad.json").write_text(json.dumps(clip))
    with pytest.raises(InputError, match="no clip with a skeleton"):
        read_format("kinetics-json", tmp_path / "bad.json")


def test_stack_by_frame_orders_persons_by_key():
    frame = np.array([1, 0, 1, 1, 3])
    key = np.array([0.5, 0.2, 0.9, 0.5, 0.1])
    rows = np.arange(5, dtype=np.float32)[:, None]
    out = stack_by_frame(frame, key, rows, 4)
    assert out.shape == (3, 4, 1)
    np.testing.assert_array_equal(out[..., 0], [[1, 2, 0, 4], [0, 0, 0, 0], [0, 3, 0, 0]])
    np.testing.assert_array_equal(stack_by_frame(frame, key, rows, 4, max_persons=1)[..., 0], [[1, 2, 0, 4]])


# ----------------------------------------------------------------------------------------------
# CASIA-B (GaitGraph CSV)


def casia_row(sequence: str, frame: int, values: np.ndarray) -> str:
    return f"{sequence.split('-')[0]}/{sequence}/{frame:06d}.jpg," + ",".join(f"{v:.4f}" for v in values)


def test_casia_b_sequences_meta_and_splits(tmp_path):
    rng = np.random.default_rng(7)
    sequences = {"001-nm-01-090": [3, 1, 2], "075-cl-02-000": [10, 11], "124-bg-01-180": [5]}
    values = {(s, f): rng.uniform(0, 1, 51).round(4) for s, fr in sequences.items() for f in fr}
    rows = [casia_row(s, f, v) for (s, f), v in values.items()]
    header = "image_name," + ",".join(f"{a}{j}" for j in range(17) for a in "xyc")
    (tmp_path / "casia-b_pose_train_valid.csv").write_text("\n".join([header] + rows[:3]) + "\n")
    (tmp_path / "casia-b_pose_test.csv").write_text("\n".join([header] + rows[3:]) + "\n\n")
    sample_set = read_format("casia-b", tmp_path)
    by_id = {s.sample_id: s for s in sample_set.samples}
    assert sorted(by_id) == sorted(sequences)
    first = by_id["001-nm-01-090"]
    expected = np.stack([values[("001-nm-01-090", f)] for f in (1, 2, 3)]).reshape(3, 17, 3)
    np.testing.assert_allclose(first.keypoint, expected[None, ..., :2], atol=1e-6)
    np.testing.assert_allclose(first.score, expected[None, ..., 2], atol=1e-6)
    assert first.label == 0 and first.meta == {"subject": 1, "condition": "nm", "sequence": 1, "view": 90}
    assert by_id["124-bg-01-180"].label == 123 and by_id["075-cl-02-000"].meta["condition"] == "cl"
    assert sample_set.splits == {"train": ["001-nm-01-090"], "test": ["075-cl-02-000", "124-bg-01-180"]}
    assert sample_set.layout == "coco" and sample_set.num_classes == 124


def test_casia_b_malformed_rows(tmp_path, caplog):
    rng = np.random.default_rng(8)
    good = [casia_row("002-nm-01-018", f, rng.uniform(0, 1, 51)) for f in range(3)]
    short = casia_row("002-nm-01-018", 9, rng.uniform(0, 1, 49))
    path = tmp_path / "poses.csv"
    path.write_text("\n".join(["header", good[0], short, good[1], good[2]]) + "\n")
    with pytest.raises(InputError, match=r"poses.csv, line 3: 50 values; expected 52"):
        read_format("casia-b", path)
    with caplog.at_level(logging.WARNING, logger="aclnet.data.formats.casia_b"):
        sample_set = read_format("casia-b", path, skip_invalid=True)
    assert sample_set.samples[0].num_frames == 3 and "skipped 1 invalid rows" in caplog.text
    path.write_text("\n".join(["header", good[0], good[1].replace("002-nm", "125-nm")]) + "\n")
    with pytest.raises(InputError, match=r"line 3: image name '002/125-nm-01-018/000001.jpg' is not"):
        read_format("casia-b", path)
    path.write_text("\n".join(["header", good[0], good[1].replace(",", ",x", 1)]) + "\n")
    with pytest.raises(InputError, match="line 3: a value is not a number"):
        read_format("casia-b", path)
    path.write_text("\n".join(["header", good[0], good[0]]) + "\n")
    with pytest.raises(InputError, match="sequence '002-nm-01-018' has frame 0 twice"):
        read_format("casia-b", path)


# ----------------------------------------------------------------------------------------------
# NW-UCLA (CTR-GCN JSON)


def test_nw_ucla_clips_and_splits(tmp_path):
    rng = np.random.default_rng(9)
    clips = {"a01_s01_e00_v01": 1, "a12_s10_e04_v02": 10, "a08_s03_e01_v03": 7}
    arrays = {}
    for name, label in clips.items():
        arrays[name] = rng.normal(0, 1, (int(rng.integers(5, 15)), 20, 3)).round(6)
        doc = {"file_name": name, "skeletons": arrays[name].tolist(), "label": label}
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
    sample_set = read_format("nw-ucla", tmp_path)
    by_id = {s.sample_id: s for s in sample_set.samples}
    np.testing.assert_allclose(by_id["a12_s10_e04_v02"].keypoint, arrays["a12_s10_e04_v02"][None], atol=1e-6)
    assert by_id["a12_s10_e04_v02"].label == 9 and by_id["a08_s03_e01_v03"].label == 6
    assert by_id["a08_s03_e01_v03"].meta == {"subject": 3, "view": 3, "sequence": 1}
    assert sample_set.splits == {"train": ["a01_s01_e00_v01", "a12_s10_e04_v02"], "test": ["a08_s03_e01_v03"]}
    assert sample_set.layout == "kinect-sdk" and sample_set.classes[6] == "donning"


def test_nw_ucla_errors(tmp_path):
    path = tmp_path / "a01_s01_e00_v01.json"

    def write(skeletons: list, label: int) -> None:
        path.write_text(json.dumps({"file_name": "a01_s01_e00_v01", "skeletons": skeletons, "label": label}))

    write(np.zeros((4, 20, 3)).tolist(), 11)
    with pytest.raises(InputError, match="sample 'a01_s01_e00_v01': label 11 is not an integer 1..10"):
        read_format("nw-ucla", tmp_path)
    write(np.zeros((4, 25, 3)).tolist(), 1)
    with pytest.raises(InputError, match=r"'skeletons' has shape \(4, 25, 3\), expected T x 20 x 3"):
        read_format("nw-ucla", tmp_path)
    write([], 1)
    with pytest.raises(InputError, match="'skeletons' has shape"):
        read_format("nw-ucla", tmp_path)


# ----------------------------------------------------------------------------------------------
# PYSKL / mmaction2 annotation pickles


def ann(frame_dir: str, keypoint: np.ndarray, label: int = 0, **extra) -> dict:
    return {"frame_dir": frame_dir, "label": label, "total_frames": keypoint.shape[1], "keypoint": keypoint, **extra}


def dump(path: Path, payload: object) -> Path:
    path.write_bytes(pickle.dumps(payload, protocol=4))
    return path


def test_pyskl_valid_3d_and_2d(tmp_path):
    rng = np.random.default_rng(10)
    kp3d = rng.normal(0, 1, (2, 8, 25, 3)).astype(np.float16)
    payload = {"split": {"xsub_train": ["a"], "xsub_val": ["b"]}, "classes": ["x", "y"],
               "annotations": [ann("a", kp3d, 1, performer=4), ann("b", kp3d[:1], 0)]}
    sample_set = read_format("pyskl", dump(tmp_path / "ntu.pkl", payload))
    assert sample_set.layout == "nturgb+d" and sample_set.classes == ["x", "y"]
    assert sample_set.samples[0].keypoint.dtype == np.float32 and sample_set.samples[0].meta == {"performer": 4}
    np.testing.assert_array_equal(sample_set.samples[0].keypoint, kp3d.astype(np.float32))
    kp2d = rng.uniform(0, 1, (1, 6, 17, 2))
    payload = {"split": {}, "annotations": [ann("c", kp2d, keypoint_score=np.ones((1, 6, 17)), img_shape=(480, 640))]}
    sample = read_format("pyskl", dump(tmp_path / "coco.pkl", payload)).samples[0]
    assert sample.img_shape == (480, 640) and sample.score.shape == (1, 6, 17)


@pytest.mark.parametrize(
    ("annotation", "options", "message"),
    [
        (ann("nan", np.full((1, 4, 25, 3), np.nan)), {}, "sample 'nan': keypoint has NaN"),
        (ann("joints", np.zeros((1, 4, 17, 2))), {"layout": "nturgb+d"}, "sample 'joints': keypoint has 17 joints"),
        (ann("label", np.zeros((1, 4, 25, 3)), 5), {}, r"sample 'label': label 5 is out of range 0..1"),
        (ann("empty", np.zeros((1, 0, 25, 3))), {}, "sample 'empty': keypoint has shape .*no persons or no frames"),
    ],
)
def test_pyskl_invalid_samples_are_named_errors(tmp_path, annotation, options, message):
    payload = {"split": {}, "classes": ["a", "b"], "annotations": [ann("ok", np.zeros((1, 4, 25, 3))), annotation]}
    path = dump(tmp_path / "bad.pkl", payload)
    with pytest.raises(SampleError, match=message):
        read_format("pyskl", path, **options)
    assert [s.sample_id for s in read_format("pyskl", path, skip_invalid=True, **options).samples] == ["ok"]


def test_pyskl_truncated_file(tmp_path):
    data = pickle.dumps({"split": {}, "annotations": [ann("a", np.zeros((1, 4, 25, 3)))]})
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.pkl: not a readable annotation pickle"):
        read_format("pyskl", path)


class _Malicious:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pyskl_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "marker"
    path = dump(tmp_path / "evil.pkl", {"split": {}, "annotations": [_Malicious(marker)]})
    with pytest.raises(UnsafePickleError, match="evil.pkl: refused to load: the pickle refers to '(posix|os).system'"):
        read_format("pyskl", path)
    assert not marker.exists()
    # the same through a Kinetics-style keypoint file
    kp_dir = tmp_path / "kp"
    kp_dir.mkdir()
    dump(kp_dir / "v.pkl", {"v": {"keypoint": _Malicious(marker)}})
    kinetics_ann = {"frame_dir": "v", "label": 0, "frame_inds": np.array([1])}
    path = dump(tmp_path / "k.pkl", {"split": {}, "annotations": [kinetics_ann]})
    with pytest.raises(UnsafePickleError):
        read_format("pyskl", path, keypoint_dir=kp_dir)
    assert not marker.exists()


def reference_decompress(frame_inds: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Plain per-frame decompression: frames without skeletons dropped, persons by summed score."""
    frames = sorted(set(frame_inds.tolist()))
    per_frame = [[rows[i] for i in range(len(rows)) if frame_inds[i] == f] for f in frames]
    persons = max(len(p) for p in per_frame)
    out = np.zeros((persons, len(frames)) + rows.shape[1:], dtype=np.float32)
    for t, people in enumerate(per_frame):
        for m, person in enumerate(sorted(people, key=lambda r: -r[:, 2].sum())):
            out[m, t] = person
    return out


def test_pyskl_mmaction_sample_needs_its_keypoint_files(tmp_path):
    path = need(MMACTION_SAMPLE)
    with pytest.raises(SampleError, match="sample 'jf7RDuUTrsQ': no 'keypoint' array and no 'raw_file'"):
        read_format("pyskl", path)
    with pytest.raises(SampleError, match=r"sample 'jf7RDuUTrsQ': keypoint file .*jf7RDuUTrsQ.pkl not found"):
        read_format("pyskl", path, keypoint_dir=tmp_path)
    raw = pickle.loads(path.read_bytes())
    rng = np.random.default_rng(11)
    rows = {}
    for a in raw["annotations"]:
        rows[a["frame_dir"]] = rng.uniform(0, 1, (len(a["frame_inds"]), 17, 3)).astype(np.float16)
        dump(tmp_path / f"{a['frame_dir']}.pkl", {a["frame_dir"]: {"keypoint": rows[a["frame_dir"]]}})
    sample_set = read_format("pyskl", path, keypoint_dir=tmp_path)
    assert len(sample_set.samples) == 100 and sample_set.splits == {"train": raw["split"]["train"]}
    assert sample_set.layout == "coco"
    for a, sample in list(zip(raw["annotations"], sample_set.samples, strict=True))[:10]:
        expected = reference_decompress(a["frame_inds"], rows[a["frame_dir"]].astype(np.float32))
        np.testing.assert_array_equal(sample.keypoint, expected[..., :2])
        np.testing.assert_array_equal(sample.score, expected[..., 2])
        assert sample.img_shape == tuple(a["img_shape"]) and sample.label == a["label"]


def test_pyskl_raw_file_relative_to_annotation(tmp_path, caplog):
    (tmp_path / "kpfiles").mkdir()
    rows = np.ones((3, 17, 3), dtype=np.float32)
    kpfile = {"a": {"keypoint": rows}, "b": {"keypoint": rows[:1] * 2}, "d": {"keypoint": rows}}
    dump(tmp_path / "kpfiles" / "part_0.pkl", kpfile)
    anns = [
        {"frame_dir": "a", "label": 1, "frame_inds": np.array([4, 4, 6]), "raw_file": "kpfiles/part_0.pkl"},
        {"frame_dir": "b", "label": 0, "frame_inds": np.array([2]), "raw_file": "kpfiles/part_0.pkl"},
        {"frame_dir": "c", "label": 0, "frame_inds": np.array([2]), "raw_file": "kpfiles/part_1.pkl"},
        {"frame_dir": "d", "label": 0, "frame_inds": np.array([2, 3]), "raw_file": "kpfiles/part_0.pkl"},
    ]
    path = dump(tmp_path / "k400.pkl", {"split": {"train": ["a", "b"], "val": ["c", "d"]}, "annotations": anns})
    with pytest.raises(SampleError, match=r"sample 'c': keypoint file .*part_1.pkl not found"):
        read_format("pyskl", path)
    with caplog.at_level(logging.WARNING, logger="aclnet.data.formats.pyskl"):
        sample_set = read_format("pyskl", path, skip_invalid=True)
    a, b = sample_set.samples
    assert a.keypoint.shape == (2, 2, 17, 2) and not a.keypoint[1, 1].any() and b.keypoint.shape == (1, 1, 17, 2)
    assert sample_set.splits == {"train": ["a", "b"], "val": []}
    assert "skipped 2 invalid samples" in caplog.text and "sample 'd': 2 frame_inds for 3 keypoint rows" in caplog.text
