"""NW-UCLA skeleton JSON as released with CTR-GCN (`all_sqe/`): one file per clip.

File `aAA_sSS_eEE_vVV.json` (action, subject, episode, view) holding
`{"file_name": "aAA_sSS_eEE_vVV", "skeletons": T x 20 x 3, "label": 1..10}` (Kinect v1 world
coordinates; label numbers the ten actions a01-a06, a08, a09, a11, a12 in order).
Source: a folder of such files or one file. Each clip is a sample: id = `file_name` (the file's stem
when absent), keypoint (1, T, 20, 3) in the `kinect-sdk` layout, label = label - 1, meta subject,
view and sequence (the episode). Splits: `train` views 1 and 2, `test` view 3.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from aclnet.data.class_names import class_names_for
from aclnet.data.sample import Sample, SampleSet, validate_sample
from aclnet.errors import InputError

NUM_JOINTS = 20
NUM_CLASSES = 10
TRAIN_VIEWS = (1, 2)
_NAME = re.compile(r"a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})")


def read(source: Path) -> SampleSet:
    """Read a folder of NW-UCLA JSON clips (or one clip) into a validated sample set."""
    source = Path(source)
    files = [source] if source.is_file() else sorted(source.glob("*.json"))
    if not files:
        raise InputError(f"{source}: no .json clip files")
    classes = class_names_for("nw-ucla")
    samples = [validate_sample(_read_clip(p), str(p), num_classes=len(classes), num_joints=NUM_JOINTS) for p in files]
    splits = {
        "train": [s.sample_id for s in samples if s.meta["view"] in TRAIN_VIEWS],
        "test": [s.sample_id for s in samples if s.meta["view"] not in TRAIN_VIEWS],
    }
    return SampleSet(samples, splits, "kinect-sdk", classes)


def _read_clip(path: Path) -> Sample:
    """One (not yet validated) sample from a clip file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or "skeletons" not in doc or "label" not in doc:
        raise InputError(f"{path}: expected {{'file_name', 'skeletons': T x 20 x 3, 'label': 1..10}}")
    sample_id = str(doc.get("file_name", path.stem))
    match = _NAME.fullmatch(sample_id)
    if match is None:
        raise InputError(f"{path}: clip name '{sample_id}' is not aAA_sSS_eEE_vVV")
    _, subject, episode, view = (int(g) for g in match.groups())
    try:
        joints = np.array(doc["skeletons"], dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: 'skeletons' is not a T x 20 x 3 array of numbers") from exc
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise InputError(f"{path}: 'skeletons' has shape {joints.shape}, expected T x {NUM_JOINTS} x 3")
    label = doc["label"]
    if isinstance(label, bool) or not isinstance(label, int) or not 1 <= label <= NUM_CLASSES:
        raise InputError(f"{path}: sample '{sample_id}': label {label!r} is not an integer 1..{NUM_CLASSES}")
    meta: dict[str, int | str] = {"subject": subject, "view": view, "sequence": episode}
    return Sample(sample_id, joints[None], label - 1, meta=meta)
