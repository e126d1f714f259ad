"""Videos, format `video`: one person's skeleton per frame, found by BlazePose (`aclnet.data.pose_estimator`).

Source: one video file, or a folder searched recursively for video files (`VIDEO_SUFFIXES`, sorted by relative
path). One file is one sequence and one sample: id = the file's relative path without its suffix (posix), or
the stem for a single file.

Options:

* `layout`: `blazepose` (default: BlazePose's 33 landmarks) or `coco` (the same 17 joints as COCO-17, in its
  order, so a model trained on COCO-17 poses runs on the result);
* `coordinates`: `pixels` (default: x, y in pixels, BlazePose's visibility as the score) or `world` (BlazePose's
  metric landmarks, x, y, z in metres around the hips, with the same score);
* `name_pattern`: meta fields and labels from the file names, as in `pose-json`
  (`aclnet.data.formats.file_names`); without it, samples are labelled by their folder;
* `skip_invalid`: skip (and report) videos that cannot be read instead of stopping at the first.

Output: keypoint (1, T, V, C) float32, score (1, T, V), `img_shape` (height, width); every frame of the video
is kept, a frame without a person as zeros with score 0 (the frame rate is the video's: not resampled). Meta:
`frames_without_person`; one line per read logs the frames and the frames without a person. A video in which
no frame has a person is an invalid file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aclnet.data.formats import InvalidFiles
from aclnet.data.formats.file_names import NamedFile, compile_pattern, label_files, meta_from_name, named_file
from aclnet.data.pose_estimator import COORDINATES, LAYOUTS, NUM_LANDMARKS, VideoPoses, extract_poses
from aclnet.data.sample import Sample, SampleSet, describe, validate_sample
from aclnet.data.video_frames import VIDEO_SUFFIXES, is_video
from aclnet.errors import InputError
from aclnet.skeleton.builtin import BLAZEPOSE_TO_COCO

logger = logging.getLogger(__name__)


def read(
    source: Path,
    *,
    layout: str = "blazepose",
    coordinates: str = "pixels",
    name_pattern: str | None = None,
    skip_invalid: bool = False,
) -> SampleSet:
    """Read one video or a folder of videos into one single-person sample per video."""
    if layout not in LAYOUTS:
        raise InputError(f"option layout: a video gives one of {', '.join(LAYOUTS)}, got {describe(layout)}")
    if coordinates not in COORDINATES:
        raise InputError(f"option coordinates: one of {', '.join(COORDINATES)}, got {describe(coordinates)}")
    pattern = compile_pattern(name_pattern)
    invalid = InvalidFiles(skip_invalid)
    named: list[tuple[Path, str, str, dict[str, int | str], str | None]] = []
    for path, sample_id, folder in video_files(Path(source)):  # every name is checked before any video is read
        try:
            named.append((path, sample_id, folder, *meta_from_name(path, pattern)))
        except InputError as exc:
            invalid.skip(path, exc)
    entries: list[NamedFile] = []
    for path, sample_id, folder, meta, subject in named:
        sample = invalid.read(path, _read_video, path, sample_id, layout, coordinates, meta)
        if sample is not None:
            entries.append(named_file(sample, folder, subject))
    invalid.report(logger, Path(source), "videos")
    if not entries:
        raise invalid.nothing_valid(Path(source), "videos")
    classes = label_files(entries, pattern)
    samples = [e.sample for e in entries]
    missing = sum(int(s.meta["frames_without_person"]) for s in samples)
    (logger.warning if missing else logger.info)(
        "%s: %d videos, %d frames; %d frames without a person (kept as zeros with score 0)",
        source, len(samples), sum(s.num_frames for s in samples), missing,
    )
    return SampleSet(samples, {"all": [s.sample_id for s in samples]}, layout, classes)


def video_files(source: Path) -> list[tuple[Path, str, str]]:
    """(path, sample id, relative folder) of each video to read."""
    if source.is_file():
        if not is_video(source):
            raise InputError(f"{source}: not a video file by its suffix ({', '.join(VIDEO_SUFFIXES)})")
        return [(source, source.stem, ".")]
    found = sorted((p.relative_to(source).as_posix(), p) for p in source.rglob("*") if p.is_file() and is_video(p))
    if not found:
        raise InputError(f"{source}: no video files ({', '.join(VIDEO_SUFFIXES)})")
    return [(p, rel[: -len(p.suffix)], p.parent.relative_to(source).as_posix()) for rel, p in found]


def _read_video(path: Path, sample_id: str, layout: str, coordinates: str, meta: dict[str, int | str]) -> Sample:
    return video_sample(extract_poses(path), sample_id, layout, coordinates, meta)


def video_sample(poses: VideoPoses, sample_id: str, layout: str = "blazepose", coordinates: str = "pixels",
                 meta: dict[str, int | str] | None = None) -> Sample:
    """The single-person sample of a video's poses in `layout` and `coordinates`."""
    if not poses.found.any():
        raise InputError(f"{poses.source}: no person found in any of its {poses.num_frames} frames")
    keypoint, score = poses.keypoints(layout, coordinates)
    fields = {**(meta or {}), "frames_without_person": poses.frames_without_person}
    sample = Sample(sample_id, keypoint[None], 0, score=score[None], img_shape=(poses.height, poses.width),
                    meta=fields)
    validate_sample(sample, str(poses.source), num_joints=keypoint.shape[1])
    return sample


def model_options(num_joints: int, channels: int | None) -> dict[str, str]:
    """The options that read a video as a model's input: its joint count picks the layout (33: blazepose, 17:
    coco), its coordinate channels the coordinates (2: pixels, 3: world)."""
    layouts = {NUM_LANDMARKS: "blazepose", len(BLAZEPOSE_TO_COCO): "coco"}
    if num_joints not in layouts:
        raise InputError(f"a video gives BlazePose's {NUM_LANDMARKS} landmarks or COCO's 17 joints; this model's "
                         f"layout has {num_joints} joints, so it cannot run on video")
    if channels not in (None, 2, 3):
        raise InputError(f"a video gives 2D pixels or 3D world coordinates; this model takes {channels} channels")
    return {"layout": layouts[num_joints], "coordinates": "world" if channels == 3 else "pixels"}
