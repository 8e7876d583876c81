"""Skeleton layouts: joint names, graph edges, bone pairs and centre joint, one entry per skeleton.

Indices in this module are 0-based. The edge lists follow the reference graphs of CTR-GCN
(`graph/ntu_rgb_d.py`, `graph/ucla.py`): each (child, parent) pair points inwards, towards the body
centre.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    name: str
    joints: tuple  # joint names, index = joint id
    inward: tuple  # (child, parent) edges of the graph, a tree with one root
    centre: int  # joint used to centre a sequence

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
        """(joint, origin) per joint: bone = x[joint] − x[origin]; the root is its own origin (a
        zero bone).

        These are the reference bone streams' pairs (CTR-GCN `feeders/bone_pairs.py`), whose order
        does not matter since each pair writes its own joint.
        """
        return tuple(sorted(self.inward + ((self.root, self.root),)))


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

LAYOUTS = {layout.name: layout for layout in (NTU25, UCLA20)}
