"""PYSKL-style annotation pickles: a restricted (safe) reader, validation, and an atomic writer.

Layout: `{'split': {name: [frame_dir, ...]}, 'annotations': [ann, ...]}` with the optional
extensions `classes` (list of class names) and `layout` (layout name), which PYSKL ignores.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from aclnet.data.sample import META_KEYS, Sample, SampleError, SampleSet, validate_sample
from aclnet.errors import InputError
from aclnet.fileio import atomic_write_bytes

# Only containers, numbers, strings and NumPy arrays may be rebuilt from a pickle.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "slice"),
    ("codecs", "encode"),
    ("_codecs", "encode"),
}
_DTYPE_CLASSES = {f"{k}DType" for k in (
    "Float16", "Float32", "Float64", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16",
    "UInt32", "UInt64", "Bool", "Str", "Bytes", "LongDouble",
)}


class UnsafePickleError(InputError):
    """The pickle refers to something other than containers, numbers, strings and arrays."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        allowed = (module, name) in _ALLOWED_GLOBALS or (
            module in ("numpy.dtypes",) and name in _DTYPE_CLASSES
        )
        if not allowed:
            raise UnsafePickleError(
                f"{self._source}: refused to load: the pickle refers to '{module}.{name}'; only "
                "containers, numbers, strings and NumPy arrays are allowed in annotation files"
            )
        return super().find_class(module, name)


def safe_load_pickle(path: str | Path) -> Any:
    """Unpickle `path` admitting only containers, numbers, strings and NumPy arrays."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        return _RestrictedUnpickler(io.BytesIO(data), str(path)).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise InputError(f"{path}: not a readable annotation pickle (truncated or corrupt): {exc}") from exc


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
    annotation dict.
    """
    path = Path(path)
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
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise InputError(f"{source}: 'classes' must be a list of strings")
    layout_name = layout or raw.get("layout")
    num_joints = None
    if layout_name is not None:
        from aclnet.skeleton import get_layout

        num_joints = get_layout(layout_name).num_joints
    num_classes = len(classes) if classes is not None else None
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
    clean_splits: dict[str, list[str]] = {}
    for name, ids in splits.items():
        if not isinstance(ids, (list, tuple)):
            raise InputError(f"{source}: split '{name}' must be a list of sample ids")
        missing = [i for i in ids if i not in seen]
        if missing and not skip_invalid:
            raise InputError(f"{source}: split '{name}' names {len(missing)} unknown samples, e.g. {missing[:3]}")
        clean_splits[str(name)] = [str(i) for i in ids if i in seen]
    return SampleSet(samples, clean_splits, layout_name or _guess_layout(num_joints), classes), problems


def _guess_layout(num_joints: int | None) -> str:
    return {25: "nturgb+d", 17: "coco", 18: "openpose", 20: "coco_new"}.get(num_joints or 0, "unknown")


def _sample_from_dict(ann: Any, k: int, source: str, keypoint_loader: Any) -> Sample:
    if not isinstance(ann, dict):
        raise SampleError(f"{source}: annotation #{k} is a {type(ann).__name__}, expected a dict")
    sample_id = str(ann.get("frame_dir", f"#{k}"))
    if "keypoint" not in ann:
        if keypoint_loader is None:
            raise SampleError(
                f"{source}: sample '{sample_id}': no 'keypoint' array (keypoints kept in separate "
                "files need the Kinetics-style loader)"
            )
        ann = {**ann, **keypoint_loader(ann)}
    if "label" not in ann:
        raise SampleError(f"{source}: sample '{sample_id}': no 'label'")
    img_shape = ann.get("img_shape")
    return Sample(
        sample_id=sample_id,
        keypoint=ann["keypoint"],
        label=ann["label"],
        score=ann.get("keypoint_score"),
        img_shape=tuple(int(x) for x in img_shape) if img_shape is not None else None,
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
