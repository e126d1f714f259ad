"""The `pose-json` reader (COCO keypoint-results detections, AlphaPose style): files written here by
hand, and the real PsyMo subset in ../shared/data read in place (skipped when the folder is absent).
"""

from __future__ import annotations

import json
import logging
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aclnet.data.formats import FORMATS, read_format
from aclnet.data.formats.pose_detections import read
from aclnet.errors import InputError

PSYMO = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "PsyMo-subset"


def keypoints(x: float, y: float, conf: float = 0.9) -> list[float]:
    """51 numbers: 17 joints spread around (x, y), all with confidence `conf`."""
    values: list[float] = []
    for j in range(17):
        values += [x + j, y + 2.0 * j, conf]
    return values


def det(image_id: Any, x: float, y: float, score: float | None = 3.0, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"image_id": image_id, "category_id": 1, "keypoints": keypoints(x, y)}
    if score is not None:
        entry["score"] = score
    entry["box"] = [x - 10, y - 10, 40, 60]
    entry["idx"] = 0
    return {**entry, **extra}


def write(path: Path, detections: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(detections), encoding="utf-8")
    return path


def xy(x: float, y: float) -> np.ndarray:
    return np.array(keypoints(x, y), dtype=np.float32).reshape(17, 3)[:, :2]


# --- track ----------------------------------------------------------------------------------------

def test_ambiguous_frame_keeps_the_detection_near_the_track(tmp_path):
    path = write(tmp_path / "walk.json", [
        det("0.jpg", 100, 200),
        det("1.jpg", 110, 200),
        det("2.jpg", 900, 500, score=2.5),  # another person, more confident in this frame
        det("2.jpg", 121, 201, score=1.0),  # the walker, continuing frame 1
        det("3.jpg", 130, 200),
    ])
    s = read(path).samples[0]
    assert s.sample_id == "walk" and s.keypoint.shape == (1, 4, 17, 2) and s.keypoint.dtype == np.float32
    assert s.score.shape == (1, 4, 17) and s.score.dtype == np.float32
    np.testing.assert_array_equal(s.keypoint[0, 2], xy(121, 201))
    np.testing.assert_array_equal(s.keypoint[0, [0, 1, 3]], np.stack([xy(100, 200), xy(110, 200), xy(130, 200)]))
    np.testing.assert_allclose(s.score, 0.9)
    assert s.meta == {"ambiguous_frames": 1} and s.img_shape is None


def test_track_starts_at_the_most_confident_detection(tmp_path):
    """The bystander alone in frame 0 does not seed the track: the walker (most confident) does."""
    bystander = [det(f"{t}.jpg", 1000, 100, score=1.5) for t in range(4)]
    walker = [det(f"{t}.jpg", 500 + 5 * t, 900 - 50 * t, score=2.0 + 0.2 * t) for t in range(1, 4)]
    s = read(write(tmp_path / "enter.json", bystander + walker)).samples[0]
    assert s.meta["ambiguous_frames"] == 3
    np.testing.assert_array_equal(s.keypoint[0, 0], xy(1000, 100))  # the only detection of frame 0
    for t in range(1, 4):
        np.testing.assert_array_equal(s.keypoint[0, t], xy(500 + 5 * t, 900 - 50 * t))


def test_first_frame_ties_go_to_the_highest_score_then_file_order(tmp_path):
    s = read(write(tmp_path / "a.json", [det(0, 10, 10, score=1.0), det(0, 500, 500, score=2.0),
                                         det(1, 12, 10, score=1.0), det(1, 505, 500, score=1.0)])).samples[0]
    np.testing.assert_array_equal(s.keypoint[0], np.stack([xy(500, 500), xy(505, 500)]))
    s = read(write(tmp_path / "b.json", [det(0, 10, 10, score=2.0), det(0, 500, 500, score=2.0)])).samples[0]
    np.testing.assert_array_equal(s.keypoint[0, 0], xy(10, 10))


def test_without_detection_scores_the_mean_keypoint_confidence_decides(tmp_path):
    weak = det(0, 10, 10, score=None)
    weak["keypoints"] = [v if j % 3 != 2 else 0.2 for j, v in enumerate(weak["keypoints"])]
    s = read(write(tmp_path / "a.json", [weak, det(0, 500, 500, score=None)])).samples[0]
    np.testing.assert_array_equal(s.keypoint[0, 0], xy(500, 500))


def test_frames_are_ordered_by_number_and_gaps_dropped(tmp_path):
    path = write(tmp_path / "order.json", [
        det("10.jpg", 10, 0), det("frames/2.png", 2, 0), det(5, 5, 0), det("000001.jpg", 1, 0),
        det("cam1_99999999999999999.jpg", 99, 0),  # a huge jump allocates nothing
    ])
    s = read(path).samples[0]
    assert s.num_frames == 5
    np.testing.assert_array_equal(s.keypoint[0, :, 0, 0], [1, 2, 5, 10, 99])


def test_summary_line_is_logged(tmp_path, caplog):
    write(tmp_path / "a.json", [det(0, 0, 0), det(0, 50, 0), det(1, 0, 0)])
    write(tmp_path / "b.json", [det(0, 0, 0)])
    with caplog.at_level(logging.INFO, logger="aclnet.data.formats.pose_detections"):
        read(tmp_path)
    lines = [r for r in caplog.records if "sequences" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "2 sequences, 3 frames; 1 frames held several detections" in lines[0].getMessage()


# --- names, meta, labels, splits -----------------------------------------------------------------

def test_name_pattern_meta_and_subject_labels(tmp_path):
    for name in ("bob-090-2", "alice-000-1", "bob-000-1"):
        write(tmp_path / f"{name}.json", [det(0, 0, 0)])
    ss = read(tmp_path, name_pattern=r"(?P<subject>[a-z]+)-(?P<view>\d+)-(?P<take>\d+)", img_shape=[1080, 1920])
    by_id = {s.sample_id: s for s in ss.samples}
    assert by_id["bob-090-2"].meta == {"subject": "bob", "view": 90, "take": 2, "ambiguous_frames": 0}
    assert ss.classes == ["alice", "bob"] and ss.layout == "coco"
    assert [by_id[i].label for i in ("alice-000-1", "bob-000-1", "bob-090-2")] == [0, 1, 1]
    assert ss.splits == {"all": ["alice-000-1", "bob-000-1", "bob-090-2"]}
    assert all(s.img_shape == (1080, 1920) for s in ss.samples)


def test_numeric_subjects_sort_by_value(tmp_path):
    for name in ("s10_a", "s2_a", "s02_b"):
        write(tmp_path / f"{name}.json", [det(0, 0, 0)])
    ss = read(tmp_path, name_pattern=r"s(?P<subject>\d+)_(?P<condition>\w+)")
    assert ss.classes == ["02", "10"]  # 2 and 02 are one subject, named as first read
    assert {s.sample_id: s.label for s in ss.samples} == {"s02_b": 0, "s10_a": 1, "s2_a": 0}


def test_psymo_pattern_and_sequence_numbers(tmp_path):
    names = ["003_45_0_0_nm", "003_45_0_1_nm", "003_45_1_0_nm", "003_45_1_1_nm", "003_90_1_0_wss", "012_00_0_0_bg"]
    for name in names:
        write(tmp_path / str(int(name[:3])) / f"{name}.json", [det("0.jpg", 0, 0)])
    ss = read_format("pose-json", tmp_path, name_pattern="psymo")
    assert FORMATS["pose-json"] == "pose_detections"
    by_id = {s.sample_id: s for s in ss.samples}
    assert sorted(by_id) == sorted(f"{int(n[:3])}/{n}" for n in names)
    assert [by_id[f"3/{n}"].meta["sequence"] for n in names[:4]] == [1, 2, 3, 4]
    assert by_id["3/003_90_1_0_wss"].meta == {
        "subject": 3, "view": 90, "direction": 1, "run": 0, "condition": "wss", "sequence": 3, "ambiguous_frames": 0,
    }
    assert by_id["12/012_00_0_0_bg"].meta["view"] == 0 and by_id["12/012_00_0_0_bg"].meta["sequence"] == 1
    assert ss.classes == ["003", "012"] and by_id["12/012_00_0_0_bg"].label == 1


def test_without_pattern_labels_by_folder(tmp_path):
    write(tmp_path / "b" / "x.json", [det(0, 0, 0)])
    write(tmp_path / "a" / "y.json", [det(0, 0, 0)])
    write(tmp_path / "top.json", [det(0, 0, 0)])
    ss = read(tmp_path)
    assert ss.classes == [".", "a", "b"]
    assert {s.sample_id: (s.label, s.meta) for s in ss.samples} == {
        "a/y": (1, {"ambiguous_frames": 0}), "b/x": (2, {"ambiguous_frames": 0}), "top": (0, {"ambiguous_frames": 0}),
    }
    single = read(tmp_path / "b" / "x.json")
    assert single.classes == ["."] and single.samples[0].sample_id == "x" and single.splits == {"all": ["x"]}


def test_name_not_matching_the_pattern(tmp_path):
    write(tmp_path / "0" / "walk_1.json", [det(0, 0, 0)])
    with pytest.raises(InputError, match=r"walk_1\.json.*does not match name_pattern 'psymo'"):
        read(tmp_path, name_pattern="psymo")
    with pytest.raises(InputError, match=r"walk_1\.json.*x\(\?P<subject>\\d\+\)"):
        read(tmp_path, name_pattern=r"x(?P<subject>\d+)")


def test_subject_group_must_match_when_labelling_by_subject(tmp_path):
    write(tmp_path / "s1_a.json", [det(0, 0, 0)])
    write(tmp_path / "anon_a.json", [det(0, 0, 0)])
    with pytest.raises(InputError, match=r"anon_a\.json: the 'subject' group"):
        read(tmp_path, name_pattern=r"(?:s(?P<subject>\d+)|anon)_(?P<condition>\w+)")


@pytest.mark.parametrize("pattern, message", [
    ("(?P<subject>", "not a regular expression"),
    (r"(?P<label>\d+)", "reserved"),
    (12, "regular expression or 'psymo'"),
])
def test_bad_name_pattern(tmp_path, pattern, message):
    write(tmp_path / "1.json", [det(0, 0, 0)])
    with pytest.raises(InputError, match=message):
        read(tmp_path, name_pattern=pattern)


@pytest.mark.parametrize("shape", [[1080], [0, 10], [1.5, 2], "1080x1920", [True, 4]])
def test_bad_img_shape(tmp_path, shape):
    with pytest.raises(InputError, match="img_shape"):
        read(write(tmp_path / "1.json", [det(0, 0, 0)]), img_shape=shape)


# --- malformed input -----------------------------------------------------------------------------

def with_keypoints(values: Any) -> list[dict[str, Any]]:
    return [det(0, 0, 0), {**det(1, 0, 0), "keypoints": values}]


def replace_value(index: int, value: Any) -> list[dict[str, Any]]:
    values: list[Any] = keypoints(0, 0)
    values[index] = value
    return with_keypoints(values)


BAD_DOCUMENTS = {
    "not_a_list": ({"annotations": []}, "expected a JSON list"),
    "empty": ([], "no detections"),
    "not_an_object": ([det(0, 0, 0), [1, 2]], "detection 1: is a list"),
    "no_keypoints": ([det(0, 0, 0), {"image_id": "1.jpg"}], "detection 1: 'keypoints' is missing"),
    "keypoints_dict": (with_keypoints({"x": 1}), "detection 1: 'keypoints' is a dict"),
    "fifty_values": (with_keypoints(keypoints(0, 0)[:50]), "detection 1: 'keypoints' has 50 values"),
    "fifty_two_values": (with_keypoints([*keypoints(0, 0), 1.0]), "has 52 values"),
    "bool_value": (replace_value(4, True), "detection 1: 'keypoints' value 4 is True"),
    "string_value": (replace_value(7, "3.5"), "value 7 is '3.5'"),
    "null_value": (replace_value(0, None), "value 0 is None"),
    "nested_value": (replace_value(0, [1.0]), r"value 0 is \[1.0\]"),
    "nan_value": (replace_value(3, float("nan")), "detection 1: 'keypoints' has a NaN"),
    "infinite_value": (replace_value(3, float("inf")), "detection 1: 'keypoints' has a NaN, infinite"),
    "float32_overflow": (replace_value(3, 1e300), "detection 1: 'keypoints' has a NaN, infinite or too large"),
    "huge_integer": (replace_value(3, 10**400), "detection 1: 'keypoints' has a value too large"),
    "no_image_id": ([det(0, 0, 0), {"keypoints": keypoints(0, 0)}], "detection 1: image_id None"),
    "image_id_without_number": ([det("a.jpg", 0, 0)], "detection 0: image_id 'a.jpg' holds no frame number"),
    "image_id_bool": ([det(True, 0, 0)], "image_id True"),
    "image_id_negative": ([det(-1, 0, 0)], "image_id -1"),
    "image_id_float": ([det(1.5, 0, 0)], "image_id 1.5"),
    "image_id_too_many_digits": ([det("1" * 40 + ".jpg", 0, 0)], "holds no frame number"),
    "score_string": ([det(0, 0, 0, score="high")], "detection 0: 'score' 'high' is not a finite number"),
    "score_nan": ([det(0, 0, 0, score=float("nan"))], "'score' nan"),
    "score_bool": ([det(0, 0, 0, score=True)], "'score' True"),
}


@pytest.mark.parametrize("case", sorted(BAD_DOCUMENTS))
def test_malformed_detections_name_the_file(tmp_path, case):
    document, message = BAD_DOCUMENTS[case]
    path = write(tmp_path / f"{case}.json", document)
    with pytest.raises(InputError, match=message) as info:
        read(path)
    assert f"{case}.json" in str(info.value)


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[" * 200_000 + "]" * 200_000, "not valid JSON"),
    ('[{"image_id": 0, "keypoints": [' + "9" * 5000 + "]}]", "not valid JSON"),
    (b"\xff\xfe[]", "not valid JSON"),
])
def test_unreadable_json_names_the_file(tmp_path, text, message):
    path = tmp_path / "broken.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        read(tmp_path)
    assert "broken.json" in str(info.value)


def test_skip_invalid_drops_bad_files_with_one_warning(tmp_path, caplog):
    write(tmp_path / "good.json", [det(0, 0, 0)])
    write(tmp_path / "empty.json", [])
    write(tmp_path / "sub" / "bool.json", replace_value(0, False))
    with pytest.raises(InputError, match="empty.json: no detections"):
        read(tmp_path)
    with caplog.at_level(logging.WARNING, logger="aclnet.data.formats.pose_detections"):
        ss = read(tmp_path, skip_invalid=True)
    assert [s.sample_id for s in ss.samples] == ["good"]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and "skipped 2 invalid pose files: empty, sub/bool" in skipped[0]
    (tmp_path / "good.json").unlink()
    with pytest.raises(InputError, match="no valid pose file"):
        read(tmp_path, skip_invalid=True)


def test_source_problems(tmp_path):
    with pytest.raises(InputError, match="no .json files"):
        read(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read(tmp_path / "missing")
    with pytest.raises(InputError, match="takes no option"):
        read_format("pose-json", write(tmp_path / "a.json", [det(0, 0, 0)]), num_person=2)


# --- the real PsyMo subset -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def psymo():
    folder = PSYMO / "skeletons"
    if not folder.is_dir():
        pytest.skip(f"PsyMo subset not found at {folder} (the shared data folder ../shared/data is absent)")
    return read_format("pose-json", folder, name_pattern="psymo")


def test_psymo_subset_matches_its_readme(psymo):
    samples = psymo.samples
    frames = [s.num_frames for s in samples]
    assert len(samples) == 480 and len(psymo.splits["all"]) == 480
    assert psymo.classes == [f"{i:03d}" for i in range(10)]
    assert Counter(s.label for s in samples) == {i: 48 for i in range(10)}
    assert min(frames) == 14 and max(frames) == 68 and statistics.median(frames) == 68
    assert sum(frames) == 31172
    assert sum(s.meta["ambiguous_frames"] for s in samples) == 2901
    assert all(np.isfinite(s.keypoint).all() and np.isfinite(s.score).all() for s in samples)
    assert all(s.keypoint.shape == (1, s.num_frames, 17, 2) and s.score.shape == (1, s.num_frames, 17) for s in samples)
    assert Counter(s.meta["view"] for s in samples) == {0: 160, 45: 160, 90: 160}
    keys = Counter((s.meta["subject"], s.meta["condition"], s.meta["view"], s.meta["sequence"]) for s in samples)
    assert max(keys.values()) == 1
    assert Counter(s.meta["condition"] for s in samples) == {
        "nm": 120, "bg": 60, "cl": 60, "ph": 60, "txt": 60, "wsf": 60, "wss": 60,
    }


def test_psymo_track_follows_the_walker_not_the_bystander(psymo):
    """008_00_0_0_cl: frame 0's more confident detection is a bystander standing near x = 1180 px; the
    walker enters from the bottom and is the file's most confident detection, so every ambiguous frame
    keeps the walker (seeding the track on frame 0 would follow the bystander for all 68 frames)."""
    sample = next(s for s in psymo.samples if s.sample_id == "8/008_00_0_0_cl")
    assert sample.num_frames == 68 and sample.meta["ambiguous_frames"] == 68
    centre_x = sample.keypoint[0, :, :, 0].mean(axis=1)
    assert (centre_x < 1000).all()
