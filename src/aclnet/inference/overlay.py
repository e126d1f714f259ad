"""`--overlay`: a video's frames with the skeleton the model saw and its answer drawn on them (MP4 or GIF).

The skeleton is drawn in the layout the video was read in (BlazePose's 33 landmarks or COCO's 17 joints):
bones between joints whose visibility is at least `MIN_VISIBILITY`, the person's left side orange, the right
side blue, the rest white, so that a swapped side shows at a glance. Each frame carries one line of text: the
predicted class (and its probability), for a timeline the class of the windows that cover the frame, for a gait
or re-identification model the nearest gallery identity; "no person" where BlazePose found none.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from aclnet.data.pose_estimator import VideoPoses
from aclnet.data.video_frames import read_frames, require_module
from aclnet.errors import InputError
from aclnet.skeleton import BUILTIN_LAYOUTS

OVERLAY_SUFFIXES = (".mp4", ".gif")
MIN_VISIBILITY = 0.3
GIF_WIDTH = 360
GIF_FPS = 10.0
"""GIF frames are scaled down to this width and rate (a GIF of every full-HD frame is tens of megabytes)."""
_LEFT, _RIGHT, _MIDDLE = (0, 140, 255), (255, 120, 0), (255, 255, 255)  # BGR


def check_overlay_path(path: Path, force: bool) -> None:
    """Refuse an overlay file of another type, or one that exists without `force`, before any work is done."""
    if path.suffix.lower() not in OVERLAY_SUFFIXES:
        raise InputError(f"--overlay {path}: the file type is given by its suffix, one of "
                         f"{', '.join(OVERLAY_SUFFIXES)}")
    if path.exists() and not force:
        raise InputError(f"{path}: already exists; pass --force to replace it")


def write_overlay(poses: VideoPoses, layout: str, labels: Sequence[str], path: Path) -> Path:
    """Draw the skeleton of `poses` in `layout` and one label per frame on the video's frames; write `path`."""
    cv2 = require_module("cv2")
    if len(labels) != poses.num_frames:
        raise ValueError(f"{len(labels)} labels for {poses.num_frames} frames")
    points, visibility = poses.keypoints(layout, "pixels")
    drawn = (_draw(cv2, frame, layout, points[t], visibility[t], labels[t] if poses.found[t] else "no person")
             for t, frame in zip(range(poses.num_frames), read_frames(poses.source)))
    fps = poses.fps if poses.fps > 0 else 25.0
    if path.suffix.lower() == ".gif":
        return _write_gif(cv2, drawn, fps, path)
    return _write_mp4(cv2, drawn, fps, (poses.width, poses.height), path)


def _draw(cv2: ModuleType, frame: np.ndarray, layout: str, points: np.ndarray, visibility: np.ndarray,
          label: str) -> np.ndarray:
    image = frame.copy()
    spec = BUILTIN_LAYOUTS[layout]
    size = max(1, round(min(image.shape[:2]) / 300))
    seen = visibility >= MIN_VISIBILITY
    colour = [_LEFT if n.startswith("left_") else _RIGHT if n.startswith("right_") else _MIDDLE
              for n in spec.joint_names]
    xy = np.round(points).astype(int)
    for a, b in spec.edges:
        if seen[a] and seen[b]:
            cv2.line(image, tuple(xy[a]), tuple(xy[b]), colour[b] if colour[a] == _MIDDLE else colour[a],
                     size + 1, cv2.LINE_AA)
    for v in np.flatnonzero(seen):
        cv2.circle(image, tuple(xy[v]), size + 2, colour[v], -1, cv2.LINE_AA)
    if label:
        scale = 0.5 * size
        (w, h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, size)
        cv2.rectangle(image, (0, 0), (w + 12, h + base + 12), (0, 0, 0), -1)
        cv2.putText(image, label, (6, h + 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), size, cv2.LINE_AA)
    return image


def _write_mp4(cv2: ModuleType, frames: Iterable[np.ndarray], fps: float, size: tuple[int, int], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
    os.close(fd)
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    try:
        if not writer.isOpened():
            raise InputError(f"{path}: OpenCV cannot write MP4 video here")
        for frame in frames:
            writer.write(frame)
        writer.release()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        writer.release()
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_gif(cv2: ModuleType, frames: Iterable[np.ndarray], fps: float, path: Path) -> Path:
    import io

    from PIL import Image

    from aclnet.fileio import atomic_write_bytes

    step = max(1, round(fps / GIF_FPS))
    images = []
    for t, frame in enumerate(frames):
        if t % step:
            continue
        height, width = frame.shape[:2]
        if width > GIF_WIDTH:
            frame = cv2.resize(frame, (GIF_WIDTH, round(height * GIF_WIDTH / width)), interpolation=cv2.INTER_AREA)
        images.append(Image.fromarray(np.ascontiguousarray(frame[..., ::-1])))
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 * step / fps),
                   loop=0)
    atomic_write_bytes(path, buffer.getvalue())
    return path
