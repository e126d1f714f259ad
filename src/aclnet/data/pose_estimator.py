"""Skeletons from video frames with BlazePose (MediaPipe Pose, its `solutions.pose` API), offline.

Why this estimator: the `mediapipe` wheels up to 0.10.21 carry BlazePose's person detector and its *full*
landmark model (`mediapipe/modules/pose_landmark/pose_landmark_full.tflite`, model_complexity=1), so
installing the package is all it takes; no model hub, no network. Its lite and heavy models
(model_complexity 0 and 2) are downloaded at run time, so they are never used here, and `BlazePose` refuses
to start when the full model is missing from the package rather than let MediaPipe try the network.

One person per video: BlazePose detects the most confident person and then follows that person from frame to
frame (its landmarks give the next frame's region); when the person is lost it detects again. A frame without
a person keeps its place with zeros and score 0 (`VideoPoses.found` is False there), as the dataset readers
keep a frame whose detection is missing, so frame numbers stay those of the video.

Coordinates: `pixels` are BlazePose's normalised image landmarks times the frame's width and height (x right,
y down), `visibility` its per-landmark visibility in [0, 1], used as the score; `world` its metric landmarks
(metres, origin between the hips, y down). Sides: BlazePose's "left" is the person's own left
(`aclnet.skeleton.builtin.LEFT_SIDE`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aclnet.data.video_frames import prefetched, read_frames, require_module, video_info
from aclnet.errors import InputError
from aclnet.progress import Progress
from aclnet.skeleton.builtin import BLAZEPOSE_JOINTS, BLAZEPOSE_TO_COCO

NUM_LANDMARKS = len(BLAZEPOSE_JOINTS)
FULL_MODEL = "modules/pose_landmark/pose_landmark_full.tflite"
"""The landmark model inside the mediapipe package that `BlazePose` uses (model_complexity=1)."""
MAX_SIDE = 640
"""Frames longer than this (pixels, either side) are scaled down before BlazePose, whose models see 224-256 px
crops: on a real 1080p clip of two people the landmarks move by a median 1.3 px (95th percentile 6.7 px,
in 1080p pixels) against full-size frames, and extraction is 1.6 times faster."""
LAYOUTS = ("blazepose", "coco")
COORDINATES = ("pixels", "world")


@dataclass(frozen=True)
class VideoPoses:
    """One person's BlazePose landmarks in every frame of a video.

    Attributes:
        source: the video file.
        fps: its frame rate (0 when the container does not say).
        height, width: its frame size in pixels.
        pixels: (T, 33, 2) float32 image coordinates; zeros where no person was found.
        world: (T, 33, 3) float32 metric coordinates; zeros where no person was found.
        visibility: (T, 33) float32 in [0, 1]; zeros where no person was found.
        found: (T,) bool, whether the frame has a person.
    """

    source: Path
    fps: float
    height: int
    width: int
    pixels: np.ndarray
    world: np.ndarray
    visibility: np.ndarray
    found: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.found)

    @property
    def frames_without_person(self) -> int:
        return int((~self.found).sum())

    def keypoints(self, layout: str = "blazepose", coordinates: str = "pixels") -> tuple[np.ndarray, np.ndarray]:
        """(T, V, C) coordinates and (T, V) scores in `layout` ("blazepose": the 33 landmarks; "coco": the 17
        COCO joints, `BLAZEPOSE_TO_COCO`) and `coordinates` ("pixels": C = 2; "world": C = 3, metres)."""
        if layout not in LAYOUTS:
            raise InputError(f"layout '{layout}': a video gives one of {', '.join(LAYOUTS)}")
        if coordinates not in COORDINATES:
            raise InputError(f"coordinates '{coordinates}': one of {', '.join(COORDINATES)}")
        joints = list(BLAZEPOSE_TO_COCO) if layout == "coco" else slice(None)
        points = self.pixels if coordinates == "pixels" else self.world
        return points[:, joints], self.visibility[:, joints]


class BlazePose:
    """BlazePose's full model, following one person through consecutive frames (one instance per video)."""

    def __init__(self) -> None:
        mediapipe = require_module("mediapipe")
        model = Path(mediapipe.__file__).parent / FULL_MODEL
        if not model.is_file():
            raise InputError(f"the installed mediapipe {getattr(mediapipe, '__version__', '?')} does not carry "
                             f"{model.name} (releases after 0.10.21 fetch models from the network, which is never "
                             'done here); install the one the video extra names: pip install "mediapipe==0.10.21"')
        with quiet_native_stderr():
            self._pose = mediapipe.solutions.pose.Pose(
                static_image_mode=False, model_complexity=1, smooth_landmarks=True, enable_segmentation=False,
            )
        self._frames = 0

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Normalised image landmarks (33, 2), world landmarks (33, 3) and visibility (33,) of the person in one
        RGB frame, or None when there is none."""
        self._frames += 1
        with quiet_native_stderr() if self._frames <= 2 else contextlib.nullcontext():
            result: Any = self._pose.process(rgb)
        if result.pose_landmarks is None:
            return None
        image = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float32)
        world = np.array([(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark], dtype=np.float32)
        return image[:, :2], world, image[:, 2]

    def close(self) -> None:
        self._pose.close()


def extract_poses(path: str | Path) -> VideoPoses:
    """BlazePose landmarks of one person in every frame of a video; progress (frames, frames per second, time
    left) on standard error, as a bar on a terminal and a line every 10 s when piped."""
    path = Path(path)
    info = video_info(path)
    estimator = BlazePose()
    pixels, world, visibility, found = [], [], [], []
    progress = Progress(f"frames of {path.name}", total=info.frames or None)
    cv2 = require_module("cv2")

    def prepare(frame: np.ndarray) -> tuple[np.ndarray, int, int]:
        """The frame as BlazePose takes it (RGB, at most MAX_SIDE pixels), and its size in the video."""
        height, width = frame.shape[:2]
        if max(height, width) > MAX_SIDE:  # landmarks are relative to the frame: no change of units
            factor = MAX_SIDE / max(height, width)
            frame = cv2.resize(frame, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), height, width

    height, width = info.height, info.width
    try:
        for rgb, height, width in prefetched(read_frames(path), prepare):
            pose = estimator(rgb)
            if pose is None:
                pixels.append(np.zeros((NUM_LANDMARKS, 2), np.float32))
                world.append(np.zeros((NUM_LANDMARKS, 3), np.float32))
                visibility.append(np.zeros(NUM_LANDMARKS, np.float32))
            else:
                pixels.append(pose[0] * np.array([width, height], dtype=np.float32))
                world.append(pose[1])
                visibility.append(np.clip(pose[2], 0.0, 1.0))
            found.append(pose is not None)
            progress.step()
    finally:
        progress.close()
        estimator.close()
    if not found:
        raise InputError(f"{path}: no frame could be decoded")
    return VideoPoses(path, info.fps, height, width, np.stack(pixels), np.stack(world),
                      np.stack(visibility), np.array(found))


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Hold back what native code writes to file descriptor 2 (MediaPipe's and TensorFlow Lite's start-up log
    lines, printed on every run) and show it only when the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
