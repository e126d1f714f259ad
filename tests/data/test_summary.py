"""`aclnet inspect`: real persons (not the padding), split entries without a valid sample named."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from aclnet.data.annotations import read_annotations
from aclnet.data.summary import summarize


def test_inspect_counts_real_persons_and_names_missing_split_entries(tmp_path: Path) -> None:
    one = np.zeros((2, 5, 25, 3), np.float32)
    one[0] = 1.0  # the second person is padding
    two = np.ones((2, 5, 25, 3), np.float32)
    annotations = [{"frame_dir": "a", "label": 0, "total_frames": 5, "keypoint": one},
                   {"frame_dir": "b", "label": 1, "total_frames": 5, "keypoint": two}]
    path = tmp_path / "ann.pkl"
    path.write_bytes(pickle.dumps({"split": {"train": ["a", "b", "ghost"]}, "annotations": annotations}, protocol=4))
    sample_set, problems = read_annotations(path, skip_invalid=True)
    text = summarize(sample_set, problems)
    assert "persons (with any non-zero joint): {1: 1, 2: 1}" in text
    assert "split 'train': 1 entries have no annotation, e.g. ['ghost']" in text
