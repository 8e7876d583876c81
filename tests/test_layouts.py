"""The coco17 and mediapipe33 layouts, and layouts read from YAML files (graph/layout_file.py)."""

import os

import numpy as np
import pytest
import torch

from feeders.transforms import joint_to_bone
from graph import distance_partition, get_layout, spatial_adjacency
from model import build_model
from torchlight.registry import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_coco17_spatial_adjacency_hand_checked():
    inward, outward = spatial_adjacency(get_layout('coco17'))[1:]
    assert inward[:, 0].sum() == 0           # the nose is the centre: no parent
    assert inward[13, 15] == 1.0             # left ankle → left knee
    assert inward[5, 11] == 1.0              # left hip → left shoulder
    assert inward[0, 6] == 1.0               # right shoulder → nose
    for child in (1, 2, 5, 6):               # the nose sends to both eyes and both shoulders
        assert outward[child, 0] == 0.25
    assert outward[7, 5] == outward[11, 5] == 0.5    # left shoulder: elbow and hip
    assert outward[3, 1] == 1.0              # left eye: left ear only
    for leaf in (3, 4, 9, 10, 15, 16):       # ears, wrists, ankles
        assert outward[:, leaf].sum() == 0


def test_coco17_distance_partition_hand_checked():
    """ST-GCN's partition, with hops truncated at one (graph/__init__.py): each column holds the
    joint and its neighbours, 1 / (1 + degree) each."""
    root, centripetal, centrifugal = distance_partition(get_layout('coco17'))
    # The nose (degree 4): itself, then its four neighbours, all farther from the centre.
    assert root[0, 0] == pytest.approx(1 / 5)
    for j in (1, 2, 5, 6):
        assert centripetal[j, 0] == pytest.approx(1 / 5) and centrifugal[j, 0] == 0
    # The left shoulder (degree 3, one hop from the nose): the nose is nearer the centre, the
    # elbow and hip are beyond one hop (infinite, so "same or farther").
    assert root[5, 5] == pytest.approx(1 / 4)
    assert centrifugal[0, 5] == pytest.approx(1 / 4) and centripetal[0, 5] == 0
    assert centripetal[7, 5] == centripetal[11, 5] == pytest.approx(1 / 4)
    # The left ankle (a leaf): itself and the knee, 1/2 each.
    assert root[15, 15] == centripetal[13, 15] == pytest.approx(1 / 2)
    np.testing.assert_allclose((root + centripetal + centrifugal).sum(axis=0), 1, rtol=1e-6)


def test_coco17_bones_follow_the_graph_towards_the_nose():
    layout = get_layout('coco17')
    joints = np.random.default_rng(0).normal(size=(3, 2, 17, 1))  # (C, T, V, M)
    bone = joint_to_bone(joints, layout.bone_pairs)
    np.testing.assert_array_equal(bone[:, :, 15], joints[:, :, 15] - joints[:, :, 13])
    np.testing.assert_array_equal(bone[:, :, 11], joints[:, :, 11] - joints[:, :, 5])
    np.testing.assert_array_equal(bone[:, :, 3], joints[:, :, 3] - joints[:, :, 1])
    assert not bone[:, :, 0].any()           # the nose is its own origin


def test_mediapipe33_is_a_spanning_tree_of_its_connections_plus_face_links():
    layout = get_layout('mediapipe33')
    assert layout.num_joints == 33 and layout.root == layout.centre == 0
    assert len(layout.inward) == 32 and sorted(c for c, _ in layout.inward) == list(range(1, 33))
    # MediaPipe's POSE_CONNECTIONS; the tree keeps all but its loops' closing links and adds
    # mouth and shoulders to the nose.
    connections = {(0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
                   (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14),
                   (14, 16), (16, 18), (16, 20), (16, 22), (18, 20), (11, 23), (12, 24), (23, 24),
                   (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (28, 30), (29, 31), (30, 32),
                   (27, 31), (28, 32)}
    tree = {tuple(sorted(edge)) for edge in layout.inward}
    assert tree - connections == {(0, 9), (0, 10), (0, 11), (0, 12)}
    assert connections - tree == {(9, 10), (11, 12), (17, 19), (18, 20), (23, 24), (29, 31),
                                  (30, 32)}
    assert layout.joints[19] == 'left_index' and layout.joints[32] == 'right_foot_index'


RIG = """
joints: [hip, spine, head, left_knee, right_knee]
edges: [[hip, spine], [2, 1], [left_knee, hip], [hip, right_knee]]
centre: spine
"""


def write(tmp_path, text, name='rig.yaml'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_layout_file_is_turned_towards_its_centre(tmp_path):
    layout = get_layout(write(tmp_path, RIG))
    assert layout.name.endswith('rig.yaml') and layout.centre == layout.root == 1
    assert set(layout.inward) == {(0, 1), (2, 1), (3, 0), (4, 0)}
    inward, outward = spatial_adjacency(layout)[1:]
    assert outward[0, 1] == outward[2, 1] == 0.5      # the spine sends to hip and head
    assert outward[3, 0] == outward[4, 0] == 0.5      # the hip to both knees
    assert sorted(layout.bone_pairs) == [(0, 1), (1, 1), (2, 1), (3, 0), (4, 0)]


def test_a_layout_file_may_name_its_own_bones(tmp_path):
    layout = get_layout(write(tmp_path, RIG + 'bones: [[head, hip], [3, 4]]\n'))
    assert layout.bone_pairs == ((2, 0), (3, 4))


def test_a_model_builds_on_a_layout_file(tmp_path):
    path = write(tmp_path, RIG)
    model = build_model('ctrgcn', num_class=4, num_point=5, graph=path, channels=[8, 8],
                        strides=[1, 2])
    assert model(torch.zeros(2, 3, 8, 5, 2)).shape == (2, 4)


@pytest.mark.parametrize(
    'text, problem',
    [
        ('[1, 2]', 'expected a mapping'),
        (RIG + 'center: hip\n', "unknown key 'center'"),
        ('joints: [a, b]\nedges: [[a, b]]\n', 'centre is missing'),
        ('joints: a\nedges: []\ncentre: 0\n', 'joints must be a non-empty list'),
        ('joints: [a, 3]\nedges: [[a, 3]]\ncentre: 0\n', 'joint name 3 is not'),
        ('joints: [a, a]\nedges: [[0, 1]]\ncentre: 0\n', "joint 'a' is named twice"),
        ('joints: [a, b]\nedges: [[a, b]]\ncentre: c\n', "centre names an unknown joint 'c'"),
        ('joints: [a, b]\nedges: [[a, b]]\ncentre: 2\n', 'centre: joint index 2 is out of range'),
        ('joints: [a, b]\nedges: [[a, 5]]\ncentre: a\n', 'edges[0]: joint index 5 is out of range'),
        ('joints: [a, b]\nedges: [[a, 1.5]]\ncentre: a\n', 'neither a joint name nor an index'),
        ('joints: [a, b]\nedges: [[a, b, a]]\ncentre: a\n', 'edges[0] is'),
        ('joints: [a, b]\nedges: [[a, a]]\ncentre: a\n', "links 'a' to itself"),
        ('joints: [a, b, c]\nedges: [[a, b], [b, a]]\ncentre: a\n', "repeats the edge 'b'-'a'"),
        ('joints: [a, b, c]\nedges: [[a, b], [b, c], [c, a]]\ncentre: a\n', 'form a loop'),
        ('joints: [a, b, c, d]\nedges: [[a, b], [c, d]]\ncentre: a\n',
         'not connected: no edge path links c, d to the centre'),
        ('joints: [a, b, c, d]\nedges: [[a, b], [c, d], [d, c]]\ncentre: a\n', 'repeats'),
        (RIG + 'bones: [[head, spine], [2, hip]]\n', "gives joint 'head' a second bone"),
        (RIG + 'bones: [[head, 7]]\n', 'bones[0]: joint index 7 is out of range'),
        ('joints: [a\n', 'is not valid YAML: line'),
    ],
)
def test_each_layout_file_problem_is_named(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        get_layout(path)
    assert path in str(err.value) and problem in str(err.value)


def test_a_missing_layout_file_and_an_unknown_name_are_named(tmp_path):
    with pytest.raises(ConfigError, match='layout file not found: .*nothere.yaml'):
        get_layout(str(tmp_path / 'nothere.yaml'))
    with pytest.raises(ConfigError, match="unknown graph layout 'coco18'.*coco17"):
        get_layout('coco18')


def test_the_shipped_openpose_layout_is_st_gcns_graph():
    layout = get_layout(os.path.join(ROOT, 'layouts', 'openpose18.yaml'))
    assert layout.num_joints == 18 and layout.centre == 1
    # ST-GCN's openpose neighbour links, 0-based
    links = {(4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2),
             (5, 1), (2, 1), (0, 1), (15, 0), (14, 0), (17, 15), (16, 14)}
    assert set(layout.inward) == links
