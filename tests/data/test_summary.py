"""`aclnet inspect`: real persons (not the padding), split entries without a valid sample named."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

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


@pytest.mark.parametrize(("joints", "channels", "layout", "others"), [
    (20, 3, "kinect-sdk", "coco_new, msr-action3d, utd-mhad"),  # a 3D Kinect file, not the 2D coco_new
    (20, 2, "coco_new", "kinect-sdk, msr-action3d, utd-mhad"),
    (18, 2, "openpose", None),  # the only 18-joint layout: nothing to list
])
def test_a_layout_is_guessed_from_joints_and_channels_and_the_alternatives_listed(
        tmp_path, joints, channels, layout, others):
    ann = [{"frame_dir": f"s{i}", "label": 0, "keypoint": np.full((1, 5, joints, channels), 0.5, np.float32)}
           for i in range(2)]
    path = tmp_path / "guess.pkl"
    path.write_bytes(pickle.dumps({"split": {}, "annotations": ann}))
    sample_set, problems = read_annotations(path)
    first = summarize(sample_set, problems).splitlines()[0]
    assert sample_set.layout == layout and first.startswith(f"layout: {layout}")
    if others is None:
        assert first == f"layout: {layout}"
    else:
        expected = f"a guess from {joints} joints x {channels} channels; other layouts with {joints} joints: {others}"
        assert expected in first
