"""The obvious non-learned baseline of gait recognition and re-identification: a person's body proportions.

Each sequence becomes the median length of every bone over the frames where both of its joints are present
(missing joints are zeros); for 2D poses in pixels, whose scale follows the distance to the camera, the
lengths are divided by their sum (scale-free). The features are z-scored with the training sequences' mean
and spread, and every probe is matched to its nearest gallery sequence by Euclidean distance, through the
task's own protocol and metrics. A learned model is worth its training where it beats this.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aclnet.data.sample import Sample
from aclnet.errors import InputError
from aclnet.skeleton import Layout
from aclnet.tasks.retrieval import RetrievalTask

NAME = "bone-length nearest neighbour"


def bone_lengths(samples: list[Sample], layout: Layout, *, scale_free: bool) -> np.ndarray:
    """(N, B) median length of each of the layout's B bones per sequence (the first person), NaN for a bone
    never seen whole; `scale_free` divides each row by its sum."""
    bones = np.array([(i, j) for i, j in layout.bone_pairs if i != j])  # not the centre's zero "bone"
    rows = []
    for sample in samples:
        joints = sample.keypoint[0].astype(np.float64)  # (T, V, C)
        present = np.any(joints != 0, axis=-1)  # (T, V)
        lengths = np.linalg.norm(joints[:, bones[:, 0]] - joints[:, bones[:, 1]], axis=-1)  # (T, B)
        lengths[~(present[:, bones[:, 0]] & present[:, bones[:, 1]])] = np.nan
        with np.errstate(all="ignore"):
            rows.append(np.nanmedian(lengths, axis=0) if len(lengths) else np.full(len(bones), np.nan))
    table = np.array(rows)
    if scale_free:
        with np.errstate(all="ignore"):
            table = table / np.nansum(table, axis=1, keepdims=True)
    return table


def standardised(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """`test` z-scored per column with `train`'s mean and standard deviation; unseen bones (NaN) become 0."""
    with np.errstate(all="ignore"):
        mean, std = np.nanmean(train, axis=0), np.nanstd(train, axis=0)
    std = np.where(np.isfinite(std) & (std > 1e-9), std, 1.0)
    return np.nan_to_num((test - np.nan_to_num(mean)) / std, nan=0.0)


def is_pixel_data(samples: list[Sample]) -> bool:
    """Whether the sequences are 2D poses (pixels of a camera, with a confidence per joint)."""
    return samples[0].keypoint.shape[-1] == 2


def baseline_report(task: Any) -> dict[str, Any]:
    """The baseline's test report on a retrieval task's protocol (the same numbers as `aclnet test` gives a
    model): its metrics, and what was matched."""
    if not isinstance(task, RetrievalTask):
        raise InputError(f"the {NAME} baseline is for gait recognition and re-identification; task "
                         f"'{task.name}' gives classes")
    data = task.load_data(for_training=False)
    scale_free = is_pixel_data(data.train)
    train = bone_lengths(data.train, data.layout, scale_free=scale_free)
    test = standardised(train, bone_lengths(data.test, data.layout, scale_free=scale_free))
    evaluation = task.evaluate_embeddings(test, data.test, normalise=False)
    return {"task": task.name, "method": NAME, "scale_free": scale_free, "features": int(train.shape[1]),
            "samples": len(data.test), **evaluation.metrics, **evaluation.details,
            "selection": "none", "note": f"{NAME}: no training, bone lengths z-scored on the training sequences"
                                         + (", divided by their sum (2D pixels)" if scale_free else "")}
