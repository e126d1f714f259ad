"""Video files: which files are videos, their frame rate and size, and their frames (through OpenCV).

OpenCV and the pose estimator come with the optional `video` extra; without it, reading a video is one
`InputError` saying what to install (`require_module`).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Full, Queue
from types import ModuleType
from typing import Any, TypeVar

import numpy as np

from aclnet.errors import InputError
from aclnet.fileio import require_readable

T = TypeVar("T")

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
VIDEO_EXTRA = ('pip install "aclnet[video]" (from a clone: pip install -e ".[video]"; mediapipe 0.10.21, for '
               "Python 3.9 to 3.12)")


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


def prefetched(frames: Iterator[np.ndarray], prepare: Callable[[np.ndarray], T], depth: int = 8) -> Iterator[T]:
    """`prepare(frame)` of every frame, computed in a background thread a few frames ahead: OpenCV's decoding
    and resizing release the GIL, so they run on another core while the caller works on the previous frame."""
    queue: Queue[tuple[bool, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        """Hand one item over; False when the caller has stopped listening."""
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def work() -> None:
        try:
            for frame in frames:
                if not put((True, prepare(frame))):
                    return
            put((False, None))
        except BaseException as exc:  # handed to the caller's thread
            put((False, exc))

    thread = threading.Thread(target=work, name="aclnet-video-frames", daemon=True)
    thread.start()
    try:
        while True:
            more, item = queue.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _open(cv2: ModuleType, path: Path) -> Any:
    """An opened cv2.VideoCapture."""
    path = require_readable(Path(path))
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise InputError(f"{path}: cannot open as a video (OpenCV reads {', '.join(VIDEO_SUFFIXES)} files whose "
                         "codec it knows)")
    return capture
