"""Video files: which files are videos, their frame rate and size, and their frames (through OpenCV).

OpenCV and the pose estimator come with the optional `video` extra; without it, reading a video is one
`InputError` saying what to install (`require_module`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from aclnet.errors import InputError
from aclnet.fileio import require_readable

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
VIDEO_EXTRA = 'pip install "aclnet[video]" (from a clone: pip install -e ".[video]")'


def require_module(name: str) -> ModuleType:
    """Import `name` (cv2, mediapipe), or an InputError in one line naming the extra that installs it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise InputError(f"reading videos needs the video extra ({name} is not installed: {exc}); install it: "
                         f"{VIDEO_EXTRA}") from None


def is_video(path: Path) -> bool:
    """Whether a path names a video file by its suffix."""
    return path.suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    """What the container says of a video: frames (an estimate, 0 when unknown), frames per second, size."""

    path: Path
    frames: int
    fps: float
    height: int
    width: int


def video_info(path: Path) -> VideoInfo:
    """The frame count, rate and size of a video; InputError when OpenCV cannot open it."""
    cv2 = require_module("cv2")
    capture = _open(cv2, path)
    try:
        return VideoInfo(
            path,
            max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
            float(capture.get(cv2.CAP_PROP_FPS)) or 0.0,
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        )
    finally:
        capture.release()


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """The frames of a video in order, each (height, width, 3) uint8 in OpenCV's BGR order."""
    cv2 = require_module("cv2")
    capture = _open(cv2, path)
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()


def _open(cv2: ModuleType, path: Path) -> Any:
    """An opened cv2.VideoCapture."""
    path = require_readable(Path(path))
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise InputError(f"{path}: cannot open as a video (OpenCV reads {', '.join(VIDEO_SUFFIXES)} files whose "
                         "codec it knows)")
    return capture
