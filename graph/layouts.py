"""Skeleton layouts: joint names, graph edges, bone pairs and centre joint, one entry per skeleton.

Indices in this module are 0-based. The edge lists follow the reference graphs of CTR-GCN
(`graph/ntu_rgb_d.py`, `graph/ucla.py`) and pyskl (`coco`): each (child, parent) pair points
inwards, towards the body centre. A layout of your own is a YAML file (graph/layout_file.py).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    name: str
    joints: tuple  # joint names, index = joint id
    inward: tuple  # (child, parent) edges of the graph, a tree with one root
    centre: int  # joint used to centre a sequence
    bones: tuple = ()  # (joint, origin) pairs of the bone stream; empty: the inward edges

    def same_skeleton(self, other):
        """Whether `other` describes this skeleton (joints, edges, centre), whatever its name (a
        layout file's path may be written in several ways)."""
        return (self.joints, self.inward, self.centre) == (other.joints, other.inward, other.centre)

    @property
    def num_joints(self):
        return len(self.joints)

    @property
    def outward(self):
        return tuple((parent, child) for child, parent in self.inward)

    @property
    def root(self):
        """The joint without a parent: the centre of ST-GCN's spatial partition."""
        children = {child for child, _ in self.inward}
        return next(j for j in range(self.num_joints) if j not in children)

    @property
    def bone_pairs(self):
        """(joint, origin) pairs: bone = x[joint] − x[origin]; by default one per joint, the root
        its own origin (a zero bone).

        The defaults are the reference bone streams' pairs (CTR-GCN `feeders/bone_pairs.py`), whose
        order does not matter since each pair writes its own joint.
        """
        return self.bones or tuple(sorted(self.inward + ((self.root, self.root),)))


def _zero_based(pairs):
    return tuple((a - 1, b - 1) for a, b in pairs)


NTU25 = Layout(
    name='ntu25',
    joints=(
        'spine_base',
        'spine_mid',
        'neck',
        'head',
        'left_shoulder',
        'left_elbow',
        'left_wrist',
        'left_hand',
        'right_shoulder',
        'right_elbow',
        'right_wrist',
        'right_hand',
        'left_hip',
        'left_knee',
        'left_ankle',
        'left_foot',
        'right_hip',
        'right_knee',
        'right_ankle',
        'right_foot',
        'spine_shoulder',
        'left_hand_tip',
        'left_thumb',
        'right_hand_tip',
        'right_thumb',
    ),
    inward=_zero_based(
        [
            (1, 2),
            (2, 21),
            (3, 21),
            (4, 3),
            (5, 21),
            (6, 5),
            (7, 6),
            (8, 7),
            (9, 21),
            (10, 9),
            (11, 10),
            (12, 11),
            (13, 1),
            (14, 13),
            (15, 14),
            (16, 15),
            (17, 1),
            (18, 17),
            (19, 18),
            (20, 19),
            (22, 23),
            (23, 8),
            (24, 25),
            (25, 12),
        ]
    ),
    centre=1,  # spine_mid, the origin of the prepared NTU data
)

UCLA20 = Layout(
    name='ucla20',
    joints=(
        'hip_centre',
        'spine',
        'shoulder_centre',
        'head',
        'left_shoulder',
        'left_elbow',
        'left_wrist',
        'left_hand',
        'right_shoulder',
        'right_elbow',
        'right_wrist',
        'right_hand',
        'left_hip',
        'left_knee',
        'left_ankle',
        'left_foot',
        'right_hip',
        'right_knee',
        'right_ankle',
        'right_foot',
    ),
    inward=_zero_based(
        [
            (1, 2),
            (2, 3),
            (4, 3),
            (5, 3),
            (6, 5),
            (7, 6),
            (8, 7),
            (9, 3),
            (10, 9),
            (11, 10),
            (12, 11),
            (13, 1),
            (14, 13),
            (15, 14),
            (16, 15),
            (17, 1),
            (18, 17),
            (19, 18),
            (20, 19),
        ]
    ),
    centre=1,  # the reference NW-UCLA feeder centres on joint index 1 of the first frame
)

COCO17 = Layout(
    name='coco17',
    # The COCO keypoints that HRNet, RTMPose, ViTPose and YOLO-pose output, in their order.
    joints=(
        'nose',
        'left_eye',
        'right_eye',
        'left_ear',
        'right_ear',
        'left_shoulder',
        'right_shoulder',
        'left_elbow',
        'right_elbow',
        'left_wrist',
        'right_wrist',
        'left_hip',
        'right_hip',
        'left_knee',
        'right_knee',
        'left_ankle',
        'right_ankle',
    ),
    # pyskl's `coco` graph: the face hangs from the nose, the shoulders from the nose, the hips
    # from the shoulders. (pyskl's bone stream instead takes the hips' bones from the nose; ours
    # follows the graph's edges, as for NTU.)
    inward=(
        (15, 13),
        (13, 11),
        (16, 14),
        (14, 12),
        (11, 5),
        (12, 6),
        (9, 7),
        (7, 5),
        (10, 8),
        (8, 6),
        (5, 0),
        (6, 0),
        (1, 0),
        (3, 1),
        (2, 0),
        (4, 2),
    ),
    centre=0,  # the nose, as in pyskl
)

MEDIAPIPE33 = Layout(
    name='mediapipe33',
    # MediaPipe BlazePose's landmarks, in its order (PoseLandmark).
    joints=(
        'nose',
        'left_eye_inner',
        'left_eye',
        'left_eye_outer',
        'right_eye_inner',
        'right_eye',
        'right_eye_outer',
        'left_ear',
        'right_ear',
        'mouth_left',
        'mouth_right',
        'left_shoulder',
        'right_shoulder',
        'left_elbow',
        'right_elbow',
        'left_wrist',
        'right_wrist',
        'left_pinky',
        'right_pinky',
        'left_index',
        'right_index',
        'left_thumb',
        'right_thumb',
        'left_hip',
        'right_hip',
        'left_knee',
        'right_knee',
        'left_ankle',
        'right_ankle',
        'left_heel',
        'right_heel',
        'left_foot_index',
        'right_foot_index',
    ),
    # MediaPipe's POSE_CONNECTIONS (35 links) is not a tree: the face and the mouth are not linked
    # to the body, and the hands, feet, shoulders and hips close loops. The partitions and the bone
    # stream need one parent per joint, so this is a spanning tree built like coco17's: the mouth
    # corners and the shoulders hang from the nose (links MediaPipe lacks), and the loops are cut
    # where the two ends are siblings (pinky-index, heel-toe, shoulder-shoulder, hip-hip), keeping
    # the links to the wrist, the ankle and the shoulder.
    inward=(
        (1, 0),
        (2, 1),
        (3, 2),
        (7, 3),
        (4, 0),
        (5, 4),
        (6, 5),
        (8, 6),
        (9, 0),
        (10, 0),
        (11, 0),
        (12, 0),
        (13, 11),
        (15, 13),
        (17, 15),
        (19, 15),
        (21, 15),
        (14, 12),
        (16, 14),
        (18, 16),
        (20, 16),
        (22, 16),
        (23, 11),
        (25, 23),
        (27, 25),
        (29, 27),
        (31, 27),
        (24, 12),
        (26, 24),
        (28, 26),
        (30, 28),
        (32, 28),
    ),
    centre=0,  # the nose, as in coco17
)

LAYOUTS = {layout.name: layout for layout in (NTU25, UCLA20, COCO17, MEDIAPIPE33)}
