"""PYSKL-style annotation pickles: reading (through the safe unpickler) with validation, and an atomic writer.

Layout: `{'split': {name: [frame_dir, ...]}, 'annotations': [ann, ...]}` with the optional
extensions `classes` (list of class names) and `layout` (layout name), which PYSKL ignores.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from aclnet.data.safe_pickle import safe_load_pickle
from aclnet.data.sample import META_KEYS, Sample, SampleError, SampleSet, describe, validate_sample
from aclnet.errors import InputError
from aclnet.fileio import atomic_write_bytes

UNKNOWN_LAYOUT = "unknown"  # what a set whose joint count matches no built-in layout is given


def read_annotations(
    path: str | Path,
    *,
    layout: str | None = None,
    skip_invalid: bool = False,
    keypoint_loader: Any = None,
) -> tuple[SampleSet, list[str]]:
    """Read and validate an annotation pickle into a `SampleSet`.

    Returns the set and the list of problems found; with `skip_invalid` invalid samples are
    dropped (and listed), otherwise the first problem raises `SampleError`. `keypoint_loader`
    fills in samples whose keypoints live in separate files (Kinetics style) and is given the
    annotation dict. The layout is `layout`, else the file's own `layout` entry, else guessed from
    the joint count (`UNKNOWN_LAYOUT` when no built-in layout has that count; a stored
    `UNKNOWN_LAYOUT` counts as no entry).
    """
    path = Path(path)
    if not isinstance(skip_invalid, bool):
        raise InputError(f"skip_invalid must be true or false, got {describe(skip_invalid)}")
    raw = safe_load_pickle(path)
    source = str(path)
    if isinstance(raw, list):  # older mmaction2 files: a bare list of annotations
        raw = {"split": {}, "annotations": raw}
    if not isinstance(raw, dict) or "annotations" not in raw:
        raise InputError(f"{source}: expected a dict with 'split' and 'annotations' (PYSKL layout)")
    anns = raw["annotations"]
    splits = raw.get("split", {})
    if not isinstance(anns, list) or not isinstance(splits, dict):
        raise InputError(f"{source}: 'annotations' must be a list and 'split' a dict of lists")
    classes = raw.get("classes")
    if classes is not None:
        if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
            raise InputError(f"{source}: 'classes' must be a list of strings")
        classes = [str(c) for c in classes]
    file_layout = raw.get("layout")
    if file_layout is not None and not isinstance(file_layout, str):
        raise InputError(f"{source}: 'layout' is {describe(file_layout)}, expected a layout name")
    if file_layout == UNKNOWN_LAYOUT:
        file_layout = None
    layout_name = layout or file_layout
    num_joints = None
    if layout_name is not None:
        from aclnet.skeleton import get_layout

        num_joints = get_layout(layout_name).num_joints
    num_classes = len(classes) if classes is not None else None
    _check_decoded_size(anns, path)
    samples: list[Sample] = []
    problems: list[str] = []
    seen: set[str] = set()
    for k, ann in enumerate(anns):
        try:
            sample = _sample_from_dict(ann, k, source, keypoint_loader)
            if sample.sample_id in seen:
                raise SampleError(f"{source}: sample '{sample.sample_id}': duplicate frame_dir")
            validate_sample(sample, source, num_classes=num_classes, num_joints=num_joints)
        except SampleError as exc:
            if not skip_invalid:
                raise
            problems.append(str(exc))
            continue
        seen.add(sample.sample_id)
        samples.append(sample)
    if num_joints is None and samples:
        num_joints = samples[0].keypoint.shape[2]
        for s in samples:
            if s.keypoint.shape[2] != num_joints:
                msg = f"{source}: sample '{s.sample_id}': has {s.keypoint.shape[2]} joints, others have {num_joints}"
                raise SampleError(msg)
    annotated = {ann["frame_dir"] for ann in anns if isinstance(ann, dict) and isinstance(ann.get("frame_dir"), str)}
    clean_splits = _splits(splits, seen, source, skip_invalid, problems, annotated)
    channels = samples[0].keypoint.shape[3] if samples else None
    return SampleSet(samples, clean_splits, layout_name or guess_layout(num_joints, channels), classes), problems


DECODED_PER_BYTE = 16
"""Most float32 keypoint and score bytes the annotations may decode to per byte of the file: each array is
stored once (float16 or int8 values at most quadruple), so more means one array shared by many annotations."""


def _check_decoded_size(anns: list[Any], path: Path) -> None:
    """Refuse annotations whose arrays, counted once per annotation that refers to them, decode to more
    float32 than the file can justify (a pickle may refer to one array from any number of places)."""
    decoded = sum(4 * value.size for ann in anns if isinstance(ann, dict)
                  for value in (ann.get("keypoint"), ann.get("keypoint_score")) if isinstance(value, np.ndarray))
    size = path.stat().st_size
    if decoded > DECODED_PER_BYTE * size + (1 << 20):
        raise InputError(f"{path}: its annotations would decode to {decoded / 2**20:.0f} MiB of float32 keypoints, "
                         f"more than {DECODED_PER_BYTE} times the file's {size} bytes: one array is shared by several "
                         "annotations (each annotation needs keypoints of its own)")


def _splits(splits: dict[Any, Any], seen: set[str], source: str, skip_invalid: bool,
            problems: list[str], annotated: set[str]) -> dict[str, list[str]]:
    """The splits as lists of the ids read; names and ids must be strings. With `skip_invalid`, entries that
    name no valid sample are dropped; those with no annotation at all are named in `problems` (the invalid
    samples are named there already)."""
    clean: dict[str, list[str]] = {}
    for name, ids in splits.items():
        if not isinstance(name, str):
            raise InputError(f"{source}: a split name is {describe(name)}, expected a string")
        if not isinstance(ids, (list, tuple)):
            raise InputError(f"{source}: split '{name}' must be a list of sample ids")
        bad = next((k for k, i in enumerate(ids) if not isinstance(i, str)), None)
        if bad is not None:
            shown = describe(ids[bad])
            raise InputError(f"{source}: split '{name}': entry {bad} is {shown}, expected a sample id (a string)")
        missing = [i for i in ids if i not in seen]
        if missing and not skip_invalid:
            raise InputError(f"{source}: split '{name}' names {len(missing)} unknown samples, e.g. {missing[:3]}")
        unannotated = [str(i) for i in missing if i not in annotated]
        if unannotated:
            problems.append(f"{source}: split '{name}': {len(unannotated)} entries have no annotation, "
                            f"e.g. {unannotated[:3]}")
        clean[str(name)] = [str(i) for i in ids if i in seen]
    return clean


def guess_layout(num_joints: int | None, channels: int | None) -> str:
    """The built-in layout a file that names none most likely uses, from its joints and channels: 3D data
    with 20 joints comes from a Kinect v1, 2D with 20 from the COCO -> coco_new conversion.
    A guess: `aclnet inspect` lists the other layouts with as many joints."""
    table = {25: "nturgb+d", 17: "coco", 18: "openpose", 20: "kinect-sdk" if channels == 3 else "coco_new"}
    return table.get(num_joints or 0, UNKNOWN_LAYOUT)  # 15 joints (SBU, Florence 3D) must be named


def _sample_from_dict(ann: Any, k: int, source: str, keypoint_loader: Any) -> Sample:
    if not isinstance(ann, dict):
        raise SampleError(f"{source}: annotation #{k} is a {type(ann).__name__}, expected a dict")
    frame_dir = ann.get("frame_dir", f"#{k}")
    if isinstance(frame_dir, (bool, np.bool_)) or not isinstance(frame_dir, (str, int, np.integer)):
        raise SampleError(f"{source}: annotation #{k}: frame_dir is {describe(frame_dir)}, expected a string")
    sample_id = str(frame_dir)
    if "keypoint" not in ann:
        if keypoint_loader is None:
            raise SampleError(
                f"{source}: sample '{sample_id}': no 'keypoint' array (keypoints kept in separate "
                "files need the Kinetics-style loader)"
            )
        ann = {**ann, **keypoint_loader(ann)}
    if "label" not in ann:
        raise SampleError(f"{source}: sample '{sample_id}': no 'label'")
    return Sample(
        sample_id=sample_id,
        keypoint=ann["keypoint"],
        label=ann["label"],
        score=ann.get("keypoint_score"),
        img_shape=ann.get("img_shape"),  # checked by validate_sample
        meta={key: ann[key] for key in META_KEYS if key in ann},
    )


def sample_to_dict(sample: Sample) -> dict[str, Any]:
    """The PYSKL annotation dict of a sample (keypoints float32; meta fields as extra keys)."""
    ann: dict[str, Any] = {
        "frame_dir": sample.sample_id,
        "label": int(sample.label),
        "total_frames": sample.num_frames,
        "keypoint": np.ascontiguousarray(sample.keypoint, dtype=np.float32),
    }
    if sample.score is not None:
        ann["keypoint_score"] = np.ascontiguousarray(sample.score, dtype=np.float32)
    if sample.img_shape is not None:
        ann["img_shape"] = tuple(sample.img_shape)
        ann["original_shape"] = tuple(sample.img_shape)
    ann.update(sample.meta)
    return ann


def write_annotations(sample_set: SampleSet, path: str | Path, *, force: bool = False) -> None:
    """Write atomically (temporary file, fsync, rename); never replace a file unless `force`."""
    path = Path(path)
    if path.exists() and not force:
        raise InputError(f"{path}: already exists; pass --force to replace it")
    payload: dict[str, Any] = {
        "split": {name: list(ids) for name, ids in sample_set.splits.items()},
        "annotations": [sample_to_dict(s) for s in sample_set.samples],
        "layout": sample_set.layout,
    }
    if sample_set.classes is not None:
        payload["classes"] = list(sample_set.classes)
    atomic_write_bytes(path, pickle.dumps(payload, protocol=4))
