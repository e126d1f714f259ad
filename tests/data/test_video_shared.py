"""Real footage through the real pose estimator: the two clips of ../shared/data/videos (skipped without them or
without the video extra)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

VIDEOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "videos"
INTERACTION = VIDEOS / "two_people_interaction.mp4"  # 1920 x 1080, 72 frames
BASKETBALL = VIDEOS / "basketball_players.mp4"  # 426 x 240, 300 frames, several small players

pytest.importorskip("mediapipe", reason="the video extra is not installed")
if not INTERACTION.exists():
    pytest.skip(f"{VIDEOS} is absent: these tests read the real clips of ../shared/data", allow_module_level=True)


@pytest.fixture(scope="module")
def interaction():  # noqa: ANN201
    from aclnet.data.pose_estimator import extract_poses

    return extract_poses(INTERACTION)


def test_one_skeleton_per_frame_with_the_person_in_every_frame(interaction) -> None:  # noqa: ANN001
    poses = interaction
    assert (poses.height, poses.width) == (1080, 1920) and poses.fps == pytest.approx(28.05, abs=0.01)
    assert poses.num_frames == 72 and poses.frames_without_person == 0
    assert poses.pixels.shape == (72, 33, 2) and poses.world.shape == (72, 33, 3)
    visible = poses.visibility > 0.5
    inside = (poses.pixels[..., 0] >= 0) & (poses.pixels[..., 0] < 1920) & (poses.pixels[..., 1] >= 0) \
        & (poses.pixels[..., 1] < 1080)
    assert inside[visible].all()
    assert 0.0 <= poses.visibility.min() and poses.visibility.max() <= 1.0
    # One person followed: the hips move less than 5 % of the image width from frame to frame.
    hips = poses.pixels[:, [23, 24]].mean(1)
    assert np.abs(np.diff(hips[:, 0])).max() < 0.05 * 1920
    # World landmarks are metres around the hips: a standing adult's head is 0.5 to 0.9 m above them.
    height = -poses.world[:, 0, 1]  # y points down
    assert 0.4 < np.median(height) < 1.0


def test_the_world_and_image_sides_agree(interaction) -> None:  # noqa: ANN001
    # Where the shoulders are far apart in the image (the person turned towards or away from the camera),
    # BlazePose's left shoulder is on the same side of the right one in the image as in its own world frame
    # (whose x axis follows the image's): the 2D and 3D layouts name the same side "left".
    poses = interaction
    image_dx = poses.pixels[:, 11, 0] - poses.pixels[:, 12, 0]
    world_dx = poses.world[:, 11, 0] - poses.world[:, 12, 0]
    wide = np.abs(image_dx) > 40
    assert wide.sum() >= 10
    assert np.mean(np.sign(image_dx[wide]) == np.sign(world_dx[wide])) > 0.9


def test_prepare_video_writes_one_sample_per_clip(tmp_path: Path) -> None:
    from aclnet.cli import main

    out = tmp_path / "clips.pkl"
    assert main(["prepare", "video", str(VIDEOS), str(out), "--option", "layout=coco"]) == 0
    with out.open("rb") as handle:
        data = pickle.load(handle)
    by_name = {a["frame_dir"]: a for a in data["annotations"]}
    assert set(by_name) == {"two_people_interaction", "basketball_players"}
    assert by_name["two_people_interaction"]["keypoint"].shape == (1, 72, 17, 2)
    basketball = by_name["basketball_players"]
    assert basketball["keypoint"].shape == (1, 300, 17, 2) and basketball["img_shape"] == (240, 426)
    # Small players in a crowd: the person is found in nearly every frame (283 of 300 with mediapipe 0.10.21).
    assert basketball["frames_without_person"] <= 30
    missing = ~basketball["keypoint_score"][0].any(axis=1)
    assert missing.sum() == basketball["frames_without_person"]
    assert not basketball["keypoint"][0][missing].any()
