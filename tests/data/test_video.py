"""Video input without a video: the layouts a video's poses are given in, the model options, the samples, the
file rules and the message without the video extra (the pose estimator itself: test_video_shared.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from aclnet.data.formats.video import model_options, video_files, video_sample
from aclnet.data.pose_estimator import VideoPoses
from aclnet.data.video_frames import require_module
from aclnet.errors import InputError
from aclnet.inference.inputs import guess_format


def _poses(frames: int = 4, found: list[bool] | None = None) -> VideoPoses:
    rng = np.random.default_rng(0)
    seen = np.array(found if found is not None else [True] * frames)
    pixels = rng.uniform(0, 100, (frames, 33, 2)).astype(np.float32) * seen[:, None, None]
    world = rng.normal(0, 0.5, (frames, 33, 3)).astype(np.float32) * seen[:, None, None]
    visibility = rng.uniform(0, 1, (frames, 33)).astype(np.float32) * seen[:, None]
    return VideoPoses(Path("walk.mp4"), 25.0, 120, 160, pixels, world, visibility, seen)


def test_coco_keypoints_are_the_blazepose_landmarks_of_the_coco_joints() -> None:
    poses = _poses()
    keypoint, score = poses.keypoints("coco", "pixels")
    index = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
    assert keypoint.shape == (4, 17, 2) and score.shape == (4, 17)
    np.testing.assert_array_equal(keypoint, poses.pixels[:, index])
    np.testing.assert_array_equal(score, poses.visibility[:, index])
    world, _ = poses.keypoints("coco", "world")
    np.testing.assert_array_equal(world, poses.world[:, index])
    full, _ = poses.keypoints("blazepose", "world")
    np.testing.assert_array_equal(full, poses.world)


@pytest.mark.parametrize(("layout", "coordinates"), [("openpose", "pixels"), ("coco", "metres")])
def test_keypoints_refuse_other_layouts_and_coordinates(layout: str, coordinates: str) -> None:
    with pytest.raises(InputError, match="one of"):
        _poses().keypoints(layout, coordinates)


def test_video_sample_keeps_every_frame_and_counts_those_without_a_person() -> None:
    poses = _poses(5, [True, False, True, True, False])
    sample = video_sample(poses, "walk", "coco", "pixels", {"subject": 3})
    assert sample.keypoint.shape == (1, 5, 17, 2) and sample.score.shape == (1, 5, 17)
    assert sample.meta == {"subject": 3, "frames_without_person": 2}
    assert sample.img_shape == (120, 160)
    assert not sample.keypoint[0, 1].any() and not sample.score[0, 4].any()
    assert sample.keypoint[0, 0].any()


def test_a_video_without_anyone_is_an_error_naming_it() -> None:
    with pytest.raises(InputError, match=r"walk\.mp4: no person found in any of its 3 frames"):
        video_sample(_poses(3, [False] * 3), "walk")


@pytest.mark.parametrize(("joints", "channels", "expected"), [
    (17, 2, {"layout": "coco", "coordinates": "pixels"}),
    (17, 3, {"layout": "coco", "coordinates": "world"}),
    (33, 2, {"layout": "blazepose", "coordinates": "pixels"}),
    (33, 3, {"layout": "blazepose", "coordinates": "world"}),
])
def test_model_options_follow_the_models_joints_and_channels(joints: int, channels: int, expected: dict) -> None:
    assert model_options(joints, channels) == expected


def test_model_options_refuse_a_kinect_model() -> None:
    with pytest.raises(InputError, match="33 landmarks or COCO's 17 joints; this model's layout has 25 joints"):
        model_options(25, 3)


def test_video_files_of_a_folder_are_found_below_it_in_name_order(tmp_path: Path) -> None:
    for name in ["b/walk2.MP4", "a/walk1.avi", "notes.txt", "a/readme.md"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [(rel, folder) for _, rel, folder in video_files(tmp_path)] == [("a/walk1", "a"), ("b/walk2", "b")]
    with pytest.raises(InputError, match="not a video file"):
        video_files(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no video files"):
        video_files(tmp_path / "empty")


def test_videos_are_guessed_by_suffix_and_in_folders(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mov"
    clip.write_bytes(b"x")
    (tmp_path / "SOURCE.txt").write_text("where the clips come from\n")
    assert guess_format(clip) == "video"
    assert guess_format(tmp_path) == "video"


def test_without_the_video_extra_one_line_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # what an absent module looks like to an import
    with pytest.raises(InputError) as caught:
        require_module("cv2")
    message = str(caught.value)
    assert "\n" not in message and 'pip install "aclnet[video]"' in message and "cv2" in message


def test_reading_a_video_without_the_extra_ends_with_that_line(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    from aclnet.data.formats import read_format

    def missing(name: str) -> None:
        raise InputError(f"reading videos needs the video extra ({name} is not installed)")

    monkeypatch.setattr("aclnet.data.video_frames.require_module", missing)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    with pytest.raises(InputError, match="needs the video extra"):
        read_format("video", clip)


def test_reader_options_are_checked_before_any_video_is_read(tmp_path: Path) -> None:
    from aclnet.data.formats import read_format

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    with pytest.raises(InputError, match="option layout: a video gives one of blazepose, coco"):
        read_format("video", clip, layout="nturgb+d")
    with pytest.raises(InputError, match="option coordinates: one of pixels, world"):
        read_format("video", clip, coordinates="metres")
    with pytest.raises(InputError, match="does not match name_pattern"):
        read_format("video", clip, name_pattern=r"(?P<subject>\d+)_walk")


def test_prefetched_frames_come_in_order_and_errors_reach_the_caller() -> None:
    from aclnet.data.video_frames import prefetched

    assert list(prefetched(iter(range(50)), lambda x: x * 2, depth=3)) == [2 * x for x in range(50)]

    def frames():  # noqa: ANN202
        yield from range(5)
        raise InputError("clip.mp4: frame 5 is corrupt")

    got = []
    with pytest.raises(InputError, match="frame 5 is corrupt"):
        for x in prefetched(frames(), lambda x: x, depth=2):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]
    # A caller that stops early does not leave the worker blocked on a full queue.
    stream = prefetched(iter(range(1000)), lambda x: x, depth=2)
    assert next(stream) == 0
    stream.close()


def test_a_name_pattern_gives_meta_fields_and_subject_labels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from aclnet.data.formats import read_format

    monkeypatch.setattr("aclnet.data.formats.video.extract_poses", lambda path: _poses(3))
    for name in ["12_nm_090.mp4", "3_bg_000.mp4", "12_cl_180.mp4"]:
        (tmp_path / name).write_bytes(b"x")
    data = read_format("video", tmp_path, layout="coco",
                       name_pattern=r"(?P<subject>\d+)_(?P<condition>[a-z]+)_(?P<view>\d+)")
    assert data.classes == ["3", "12"] and data.layout == "coco"  # subjects in numeric order
    by_id = {s.sample_id: s for s in data.samples}
    assert by_id["12_nm_090"].meta == {"subject": 12, "condition": "nm", "view": 90, "frames_without_person": 0}
    assert [by_id[k].label for k in ("12_nm_090", "3_bg_000", "12_cl_180")] == [1, 0, 1]
    assert by_id["3_bg_000"].keypoint.shape == (1, 3, 17, 2)


def test_skip_invalid_keeps_the_readable_videos(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from aclnet.data.formats import read_format

    def extract(path: Path) -> VideoPoses:
        if path.name == "broken.mp4":
            raise InputError(f"{path}: cannot open as a video")
        return _poses(2)

    monkeypatch.setattr("aclnet.data.formats.video.extract_poses", extract)
    for name in ["broken.mp4", "good.mp4"]:
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(InputError, match="broken.mp4: cannot open"):
        read_format("video", tmp_path)
    assert [s.sample_id for s in read_format("video", tmp_path, skip_invalid=True).samples] == ["good"]


def test_every_file_name_is_checked_before_any_video_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from aclnet.data.formats import read_format

    read = []
    monkeypatch.setattr("aclnet.data.formats.video.extract_poses", lambda path: read.append(path) or _poses(2))
    for name in ["01_walk.mp4", "02_walk.mp4", "walk_three.mp4"]:
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(InputError, match=r"walk_three\.mp4.*does not match name_pattern"):
        read_format("video", tmp_path, name_pattern=r"(?P<subject>\d+)_walk")
    assert read == []  # the bad name stopped the read before the two good videos were extracted
