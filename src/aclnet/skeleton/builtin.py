"""Built-in skeleton layouts, each in its own dataset's joint order.

Edges are written 1-based where the dataset's documentation is (NTU, Kinect), then converted.
Body parts follow the occlusion protocol of the paper (Table IX): left arm, right arm, two hands,
two legs, trunk.
"""

from __future__ import annotations

from aclnet.skeleton.layout import Layout, make_layout


def _one_based(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(a - 1, b - 1) for a, b in pairs]


def _by_name(names: list[str], groups: dict[str, list[str]]) -> dict[str, list[int]]:
    index = {n: i for i, n in enumerate(names)}
    return {part: [index[n] for n in joints] for part, joints in groups.items()}


NTU_JOINTS = [
    "spine_base", "spine_mid", "neck", "head",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
    "spine_shoulder", "left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb",
]
NTU_EDGES = _one_based([
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
    (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
    (22, 23), (23, 8), (24, 25), (25, 12),
])
NTU_PARTS = {
    "left_arm": ["left_shoulder", "left_elbow", "left_wrist", "left_hand", "left_hand_tip", "left_thumb"],
    "right_arm": ["right_shoulder", "right_elbow", "right_wrist", "right_hand", "right_hand_tip", "right_thumb"],
    "hands": ["left_wrist", "left_hand", "left_hand_tip", "left_thumb",
              "right_wrist", "right_hand", "right_hand_tip", "right_thumb"],
    "legs": ["left_hip", "left_knee", "left_ankle", "left_foot",
             "right_hip", "right_knee", "right_ankle", "right_foot"],
    "trunk": ["spine_base", "spine_mid", "neck", "head", "spine_shoulder"],
}

COCO_JOINTS = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
]
COCO_LIMBS = [(15, 13), (13, 11), (16, 14), (14, 12), (9, 7), (7, 5), (10, 8), (8, 6),
              (1, 0), (2, 0), (3, 1), (4, 2)]
COCO_EDGES = COCO_LIMBS + [(11, 5), (12, 6), (5, 0), (6, 0)]
COCO_PARTS = {
    "left_arm": ["left_shoulder", "left_elbow", "left_wrist"],
    "right_arm": ["right_shoulder", "right_elbow", "right_wrist"],
    "hands": ["left_wrist", "right_wrist"],
    "legs": ["left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle"],
    "trunk": ["nose", "left_eye", "right_eye", "left_ear", "right_ear"],
}

# GaitGraph's COCO graph (its src/datasets/graph.py): ears linked to the shoulders, the shoulders to each other
# and the hips to each other, no nose-shoulder link; not a tree (the shoulders and hips close two loops).
COCO_GAITGRAPH_EDGES = [(1, 0), (2, 0), (3, 1), (4, 2), (5, 3), (6, 4), (6, 5), (7, 5), (9, 7), (8, 6), (10, 8),
                        (11, 5), (12, 6), (12, 11), (13, 11), (15, 13), (14, 12), (16, 14)]

# COCO plus three joints appended by the COCO -> coco_new conversion (docs/method.md, section 8):
# 17 mid-hip (mean of 11, 12), 18 mid-spine (mean of 17, 19), 19 mid-shoulder (mean of 5, 6).
COCO_NEW_JOINTS = COCO_JOINTS + ["mid_hip", "mid_spine", "mid_shoulder"]
COCO_NEW_EDGES = COCO_LIMBS + [(11, 17), (12, 17), (17, 18), (18, 19), (5, 19), (6, 19), (0, 19)]
COCO_NEW_PARTS = {**COCO_PARTS, "trunk": COCO_PARTS["trunk"] + ["mid_hip", "mid_spine", "mid_shoulder"]}

OPENPOSE_JOINTS = [
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
]
OPENPOSE_EDGES = [(4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5),
                  (8, 2), (5, 1), (2, 1), (0, 1), (15, 0), (14, 0), (17, 15), (16, 14)]
OPENPOSE_PARTS = {
    "left_arm": ["left_shoulder", "left_elbow", "left_wrist"],
    "right_arm": ["right_shoulder", "right_elbow", "right_wrist"],
    "hands": ["left_wrist", "right_wrist"],
    "legs": ["left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle"],
    "trunk": ["nose", "neck", "right_eye", "left_eye", "right_ear", "left_ear"],
}

# Kinect v1, 20 joints. Arms end in wrist + hand, legs in ankle + foot.
KINECT_ARMS_LEGS = {
    "left_arm": ["left_shoulder", "left_elbow", "left_wrist", "left_hand"],
    "right_arm": ["right_shoulder", "right_elbow", "right_wrist", "right_hand"],
    "hands": ["left_wrist", "left_hand", "right_wrist", "right_hand"],
    "legs": ["left_hip", "left_knee", "left_ankle", "left_foot",
             "right_hip", "right_knee", "right_ankle", "right_foot"],
    "trunk": ["hip_center", "spine", "shoulder_center", "head"],
}
KINECT_SDK_JOINTS = [
    "hip_center", "spine", "shoulder_center", "head",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
]
KINECT_SDK_EDGES = _one_based([
    (1, 2), (2, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10), (12, 11),
    (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
])

# MSR Action3D (Vemulapalli et al. release): order and bones from its body_model.mat
# (left hip 5, right hip 6, hip center 7, head 20, left wrist 10, right wrist 11, 1-based).
MSR_JOINTS = [
    "left_shoulder", "right_shoulder", "shoulder_center", "spine", "left_hip", "right_hip",
    "hip_center", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand",
    "right_hand", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_foot",
    "right_foot", "head",
]
MSR_EDGES = _one_based([
    (7, 4), (4, 3), (3, 20), (3, 1), (3, 2), (1, 8), (2, 9), (8, 10), (9, 11), (10, 12), (11, 13),
    (7, 5), (7, 6), (5, 14), (6, 15), (14, 16), (15, 17), (16, 18), (17, 19),
])

# UTD-MHAD: Skeleton/Skeleton_joint_order.txt.
UTD_JOINTS = [
    "head", "shoulder_center", "spine", "hip_center",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
]
UTD_EDGES = _one_based([
    (1, 2), (2, 3), (3, 4), (2, 5), (5, 6), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (11, 12),
    (4, 13), (13, 14), (14, 15), (15, 16), (4, 17), (17, 18), (18, 19), (19, 20),
])

# Florence 3D (README order, bones of its body_model.mat) and SBU (OpenNI order): the same
# 15-joint skeleton; the hips hang from the torso joint.
OPENNI15_JOINTS = [
    "head", "neck", "torso", "left_shoulder", "left_elbow", "left_hand",
    "right_shoulder", "right_elbow", "right_hand", "left_hip", "left_knee", "left_foot",
    "right_hip", "right_knee", "right_foot",
]
OPENNI15_EDGES = _one_based([
    (3, 2), (2, 1), (2, 4), (2, 7), (4, 5), (7, 8), (5, 6), (8, 9), (3, 10), (3, 13), (10, 11),
    (13, 14), (11, 12), (14, 15),
])
OPENNI15_PARTS = {
    "left_arm": ["left_shoulder", "left_elbow", "left_hand"],
    "right_arm": ["right_shoulder", "right_elbow", "right_hand"],
    "hands": ["left_hand", "right_hand"],
    "legs": ["left_hip", "left_knee", "left_foot", "right_hip", "right_knee", "right_foot"],
    "trunk": ["head", "neck", "torso"],
}


# BlazePose (MediaPipe Pose), 33 landmarks in its order; its `POSE_CONNECTIONS`, plus the mouth corners and the
# shoulders linked to the nose (MediaPipe draws the face apart from the body; a graph must be connected).
BLAZEPOSE_JOINTS = [
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "left_mouth", "right_mouth",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
]
BLAZEPOSE_EDGES = [
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (9, 0), (10, 0),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18),
    (16, 20), (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32), (11, 0), (12, 0),
]
BLAZEPOSE_PARTS = {
    "left_arm": ["left_shoulder", "left_elbow", "left_wrist", "left_pinky", "left_index", "left_thumb"],
    "right_arm": ["right_shoulder", "right_elbow", "right_wrist", "right_pinky", "right_index", "right_thumb"],
    "hands": ["left_wrist", "left_pinky", "left_index", "left_thumb",
              "right_wrist", "right_pinky", "right_index", "right_thumb"],
    "legs": ["left_hip", "left_knee", "left_ankle", "left_heel", "left_foot_index",
             "right_hip", "right_knee", "right_ankle", "right_heel", "right_foot_index"],
    "trunk": BLAZEPOSE_JOINTS[:11],
}
BLAZEPOSE_TO_COCO = tuple(BLAZEPOSE_JOINTS.index(name) for name in COCO_JOINTS)
"""The BlazePose landmark of each COCO-17 joint, in COCO's order (the same 17 points, the same sides)."""

_OWN_LEFT = "the person's own left, as the pose estimator's annotation names it"
_KINECT_LEFT = ("as Kinect names it, as in a mirror: 'left' joints are on the image's left for a person facing the "
                "camera, the person's right (seen on NTU RGB+D clips with their video: the hand a person drinks "
                "with, their left, is Kinect's 'right' and BlazePose's 'left')")
LEFT_SIDE = {
    "nturgb+d": _KINECT_LEFT,
    "coco": _OWN_LEFT,
    "coco-gaitgraph": _OWN_LEFT,
    "coco_new": _OWN_LEFT,
    "openpose": _OWN_LEFT,
    "blazepose": _OWN_LEFT,
    "kinect-sdk": _KINECT_LEFT,
    "msr-action3d": _KINECT_LEFT + "; recorded with Kinect v1, not checked against its video",
    "utd-mhad": _KINECT_LEFT + "; recorded with Kinect v1, not checked against its video",
    "florence3d": _KINECT_LEFT + "; recorded with Kinect v1 (OpenNI), not checked against its video",
    "sbu": _KINECT_LEFT + "; recorded with Kinect v1 (OpenNI), not checked against its video",
}
"""Which side each built-in layout calls "left". A model trained on one convention must be given the same:
Kinect's 'left' is BlazePose's and COCO's 'right', so a Kinect-trained model needs the sides swapped
(`Layout.flip_index`) before it sees pose-estimator output."""


def _build() -> dict[str, Layout]:
    specs = [
        ("nturgb+d", NTU_JOINTS, NTU_EDGES, "spine_shoulder", NTU_PARTS),
        ("coco", COCO_JOINTS, COCO_EDGES, "nose", COCO_PARTS),
        ("coco-gaitgraph", COCO_JOINTS, COCO_GAITGRAPH_EDGES, "nose", COCO_PARTS),
        ("coco_new", COCO_NEW_JOINTS, COCO_NEW_EDGES, "mid_spine", COCO_NEW_PARTS),
        ("openpose", OPENPOSE_JOINTS, OPENPOSE_EDGES, "neck", OPENPOSE_PARTS),
        ("kinect-sdk", KINECT_SDK_JOINTS, KINECT_SDK_EDGES, "spine", KINECT_ARMS_LEGS),
        ("msr-action3d", MSR_JOINTS, MSR_EDGES, "spine", KINECT_ARMS_LEGS),
        ("utd-mhad", UTD_JOINTS, UTD_EDGES, "spine", KINECT_ARMS_LEGS),
        ("florence3d", OPENNI15_JOINTS, OPENNI15_EDGES, "torso", OPENNI15_PARTS),
        ("sbu", OPENNI15_JOINTS, OPENNI15_EDGES, "torso", OPENNI15_PARTS),
        ("blazepose", BLAZEPOSE_JOINTS, BLAZEPOSE_EDGES, "nose", BLAZEPOSE_PARTS),
    ]
    return {
        name: make_layout(name, joints, edges, joints.index(center), parts=_by_name(joints, parts))
        for name, joints, edges, center, parts in specs
    }


BUILTIN_LAYOUTS: dict[str, Layout] = _build()
