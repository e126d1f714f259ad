"""Videos as inputs of `aclnet predict` and `aclnet.load(...)`, and `--overlay` (the real clips of
../shared/data/videos; those tests skip without them or without the video extra)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from aclnet.cli import main

VIDEOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "videos"
INTERACTION = VIDEOS / "two_people_interaction.mp4"  # 1920 x 1080, 72 frames
needs_video = pytest.mark.skipif(
    importlib.util.find_spec("mediapipe") is None or not INTERACTION.exists(),
    reason="needs the video extra and the clips of ../shared/data/videos",
)


def _frames(path: Path) -> tuple[int, tuple[int, int]]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    count, size = 0, (0, 0)
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count, size = count + 1, frame.shape[:2]
    capture.release()
    return count, size


def test_a_model_of_another_layout_is_refused_before_the_video_is_read(runs, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not read")
    assert main(["predict", str(runs["action"]), str(clip)]) == 2  # the synthetic action model: 25 Kinect joints
    assert "COCO's 17 joints; this model's layout has 25 joints, so it cannot run on video" in capsys.readouterr().err


@pytest.mark.parametrize(("inputs", "overlay", "message"), [
    (["a.mp4", "b.mp4"], "out.mp4", "--overlay draws on one video"),
    (["walk.npy"], "out.mp4", "--overlay draws on one video"),
    (["a.mp4"], "out.avi", "one of .mp4, .gif"),
])
def test_overlay_arguments_are_checked_first(runs, tmp_path: Path, capsys, inputs: list[str], overlay: str,  # noqa: ANN001
                                             message: str) -> None:
    paths = []
    for name in inputs:
        (tmp_path / name).write_bytes(b"not read")
        paths.append(str(tmp_path / name))
    assert main(["predict", str(runs["gait"]), *paths, "--overlay", str(tmp_path / overlay)]) == 2
    assert message in capsys.readouterr().err


def test_an_existing_overlay_is_kept_without_force(runs, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    clip, out = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    clip.write_bytes(b"not read")
    out.write_bytes(b"mine")
    assert main(["predict", str(runs["gait"]), str(clip), "--overlay", str(out)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert out.read_bytes() == b"mine"


@needs_video
def test_a_coco_model_runs_on_a_video_and_draws_the_overlay(runs, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "overlay.mp4"
    gallery = tmp_path / "gallery.npz"
    assert main(["predict", str(runs["gait"]), str(INTERACTION), "--out", str(gallery)]) == 0
    assert main(["predict", str(runs["gait"]), str(INTERACTION), "--gallery", str(gallery),
                 "--overlay", str(out)]) == 0
    printed = capsys.readouterr()
    assert "72 frames, 0 without a person" in printed.err
    assert "two_people_interaction.mp4" in printed.out and f"wrote {out}" in printed.out
    assert _frames(out) == (72, (1080, 1920))


@needs_video
def test_the_api_embeds_a_video_as_the_cli_does(runs) -> None:  # noqa: ANN001
    import aclnet

    model = aclnet.load(runs["gait"])
    (sequence,) = model.sequences(str(INTERACTION))
    assert sequence.sample.keypoint.shape == (1, 72, 17, 2) and sequence.sample.score.shape == (1, 72, 17)
    assert model.embed(str(INTERACTION)).shape[0] == 1


@needs_video
@pytest.mark.slow
def test_an_action_timeline_on_a_video_becomes_a_gif(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from PIL import Image

    from aclnet.data.annotations import write_annotations
    from aclnet.data.synthetic import make_action_dataset
    from conftest import TINY_MODEL

    data = tmp_path / "coco.pkl"
    write_annotations(make_action_dataset(3, 6, layout="coco", channels=2, num_subjects=6), data, force=True)
    run = tmp_path / "run"
    # The Kinetics experiment: COCO-17 2D poses with scores, converted by its pipeline (PYSKL's HRNet poses).
    assert main(["train", "kinetics-j", "--work-dir", str(run), "--set", f"data.path={data}", "data.test_split=test",
                 "loss.intra.memory_size=16", *TINY_MODEL]) == 0
    out = tmp_path / "timeline.gif"
    assert main(["predict", str(run), str(INTERACTION), "--window", "32", "--stride", "16",
                 "--overlay", str(out)]) == 0
    # Windows start at 0, 16, 32 and at 40, where one more ends at the last frame.
    assert "two_people_interaction.mp4: 72 frames, 4 window(s) of 32 frames, stride 16" in capsys.readouterr().out
    with Image.open(out) as gif:
        assert gif.n_frames == 24  # every third frame: 28 fps shown at about 10
        assert gif.size == (360, 202)
