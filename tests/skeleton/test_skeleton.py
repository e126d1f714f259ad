"""Layouts: derived tables, user layout files, adjacency builders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aclnet.skeleton import BUILTIN_LAYOUTS, PART_NAMES, LayoutError, adjacency, get_layout, make_layout


def test_ntu_tables_match_pyskl_conventions():
    ntu = get_layout("nturgb+d")
    assert ntu.num_joints == 25 and ntu.center == 20
    # PYSKL's NTU bone pairs (1-based child, parent) with the center mapped to itself.
    pyskl = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
             (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
             (20, 19), (21, 21), (22, 23), (23, 8), (24, 25), (25, 12)]
    assert ntu.bone_pairs == tuple((a - 1, b - 1) for a, b in pyskl)
    assert ntu.two_hop_pairs[3] == (3, 20)  # head -> neck -> spine shoulder
    assert ntu.two_hop_pairs[20] == (20, 20)
    flip = ntu.flip_index
    assert flip[4] == 8 and flip[8] == 4 and flip[0] == 0
    assert sorted(flip) == list(range(25))


@pytest.mark.parametrize("name", sorted(BUILTIN_LAYOUTS))
def test_builtin_layouts_are_trees_with_all_parts(name):
    layout = BUILTIN_LAYOUTS[name]
    # GaitGraph's graph closes the shoulders' and the hips' loops; BlazePose's closes seven (torso, mouth, the
    # hands' and the feet's triangles, the shoulders through the nose).
    loops = {"coco-gaitgraph": 2, "blazepose": 7}.get(name, 0)
    assert len(layout.edges) == layout.num_joints - 1 + loops  # a spanning tree (plus the loops)
    assert set(layout.parts) == set(PART_NAMES)
    for v in range(layout.num_joints):
        steps = 0
        while v != layout.center:  # every joint reaches the center by following parents
            v, steps = layout.parents[v], steps + 1
            assert steps <= layout.num_joints
    index = layout.flip_index
    assert [index[i] for i in index] == list(range(layout.num_joints))  # an involution


def test_make_layout_errors_name_the_entry():
    with pytest.raises(LayoutError, match="edge #1 .* outside 0..2"):
        make_layout("x", ["a", "b", "c"], [(0, 1), (1, 3)], 0)
    with pytest.raises(LayoutError, match="not connected.*'c'"):
        make_layout("x", ["a", "b", "c"], [(0, 1)], 0)
    with pytest.raises(LayoutError, match="center 5"):
        make_layout("x", ["a", "b", "c"], [(0, 1), (1, 2)], 5)
    with pytest.raises(LayoutError, match="joins a joint to itself"):
        make_layout("x", ["a", "b"], [(0, 0)], 0)


def test_layout_file_by_names_and_one_based(tmp_path):
    path = tmp_path / "arm.yaml"
    path.write_text(
        "name: arm\njoints: [chest, left_hand, right_hand]\n"
        "edges: [[chest, left_hand], [1, 3]]\nbase: 1\ncenter: chest\nparts: {hands: [left_hand, 3]}\n"
    )
    layout = get_layout(path)
    assert layout.name == "arm" and layout.parents == (0, 0, 0)
    assert layout.flip_pairs == ((1, 2),)
    assert layout.parts == {"hands": (1, 2)}


def test_layout_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"joints": 3, "edges": [[0, 1], [1, 7]], "center": 0}))
    with pytest.raises(LayoutError, match=r"bad.json: edges\[1\]: joint 7 is out of range 0..2"):
        get_layout(bad)
    bad.write_text(json.dumps({"joints": 3, "edges": [[0, 1]], "center": 0, "colour": 1}))
    with pytest.raises(LayoutError, match=r"bad.json: unknown keys \['colour'\]"):
        get_layout(bad)
    bad.write_text(json.dumps({"joints": 3, "edges": [[0, 1]], "center": 0}))
    with pytest.raises(LayoutError, match="not connected"):
        get_layout(bad)
    with pytest.raises(LayoutError, match="unknown layout 'nope'"):
        get_layout("nope")


@pytest.mark.parametrize(("entries", "message"), [
    ({"joints": 100_000_000}, r"'joints' must be a count from 1 to 1000 or a list of up to 1000 names, got 100000000"),
    ({"joints": ["j"] * 1001}, r"'joints' must be a count from 1 to 1000 .*got a list of 1001"),
    ({"flip_pairs": 5}, r"'flip_pairs' must be a list, e\.g\. \[\[left_hand, right_hand\], \.\.\.\]; got int"),
    ({"parts": ["a"]}, r"'parts' must be a dict, e\.g\. \{arms: \[joints\.\.\.\], \.\.\.\}; got list"),
])
def test_layout_files_are_bounded_and_typed(tmp_path, entries, message):
    path = tmp_path / "layout.yaml"
    path.write_text(json.dumps({"joints": 3, "edges": [[0, 1], [1, 2]], "center": 0, **entries}))
    with pytest.raises(LayoutError, match=r"layout.yaml: " + message):
        get_layout(path)
    path.write_bytes(b"joints: \xff\xfe\n")
    with pytest.raises(LayoutError, match=r"layout.yaml: not a text file \(not UTF-8 at byte 8\)"):
        get_layout(path)


def test_spatial_adjacency_by_hand():
    chain = make_layout("chain", ["a", "b", "c"], [(0, 1), (1, 2)], 1)
    graphs = adjacency.spatial(chain)
    np.testing.assert_array_equal(graphs[0], np.eye(3))
    # inward edges a->b, c->b: A[b, a] = A[b, c] = 1, each column normalised by its sum.
    np.testing.assert_array_equal(graphs[1], [[0, 0, 0], [1, 0, 1], [0, 0, 0]])
    # outward edges b->a, b->c: column b sums to 2.
    np.testing.assert_array_equal(graphs[2], [[0, 0.5, 0], [0, 0, 0], [0, 0.5, 0]])
    norm = adjacency.normalized(chain)
    deg = np.array([2.0, 3.0, 2.0])
    expected = (adjacency.binary(chain)) / np.sqrt(deg[:, None] * deg[None, :])
    np.testing.assert_allclose(norm, expected, rtol=1e-6)
    rand = adjacency.random_graphs(25, 8, 0.04, 0.02, seed=0)
    assert rand.shape == (8, 25, 25) and abs(rand.mean() - 0.04) < 0.005


def test_blazepose_to_coco_picks_the_same_17_points_with_the_same_sides():
    from aclnet.skeleton.builtin import BLAZEPOSE_TO_COCO

    # MediaPipe's PoseLandmark numbers of nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles.
    assert BLAZEPOSE_TO_COCO == (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
    blaze, coco = BUILTIN_LAYOUTS["blazepose"], BUILTIN_LAYOUTS["coco"]
    assert [blaze.joint_names[i] for i in BLAZEPOSE_TO_COCO] == list(coco.joint_names)
    # Mirroring then mapping equals mapping then mirroring: the sides agree.
    assert [blaze.flip_index[i] for i in BLAZEPOSE_TO_COCO] == [BLAZEPOSE_TO_COCO[j] for j in coco.flip_index]


def test_every_builtin_layout_says_which_side_is_left():
    from aclnet.skeleton.builtin import LEFT_SIDE

    assert set(LEFT_SIDE) == set(BUILTIN_LAYOUTS)
    assert "own left" in LEFT_SIDE["blazepose"] and "own left" in LEFT_SIDE["coco"]
    assert "mirror" in LEFT_SIDE["nturgb+d"]
