import numpy as np

from graph import get_layout, spatial_adjacency


def test_ntu_adjacency_hand_checked_entries():
    A = spatial_adjacency(get_layout('ntu25'))
    assert A.shape == (3, 25, 25)
    np.testing.assert_array_equal(A[0], np.eye(25))
    inward, outward = A[1], A[2]
    # Inward: every joint but the spine shoulder (21, index 20) has one parent, so its column sums
    # to 1.
    assert inward[1, 0] == 1.0          # spine base → spine mid
    assert inward[20, 1] == 1.0         # spine mid → spine shoulder
    assert inward[7, 22] == 1.0         # left thumb (23) → left hand (8)
    assert inward[:, 20].sum() == 0.0   # the spine shoulder is the root
    np.testing.assert_allclose(inward.sum(axis=0), [0.0 if j == 20 else 1.0 for j in range(25)])
    # Outward: the spine shoulder sends to spine mid, neck, both shoulders: 1/4 each.
    for child in (1, 2, 4, 8):
        assert outward[child, 20] == 0.25
    # The spine base sends to both hips: 1/2 each; the spine mid only to the spine base: 1.
    assert outward[12, 0] == outward[16, 0] == 0.5
    assert outward[0, 1] == 1.0
    assert outward[:, 3].sum() == 0.0   # the head is a leaf


def test_ucla_adjacency_hand_checked_entries():
    A = spatial_adjacency(get_layout('ucla20'))
    assert A.shape == (3, 20, 20)
    inward, outward = A[1], A[2]
    assert inward[:, 2].sum() == 0.0                 # shoulder centre (3) is the root
    for child in (1, 3, 4, 8):                       # spine, head, both shoulders
        assert outward[child, 2] == 0.25
    assert inward[0, 12] == 1.0                      # left hip (13) → hip centre (1)


def test_bone_pairs_cover_every_joint_once():
    for name in ('ntu25', 'ucla20', 'coco17', 'mediapipe33'):
        layout = get_layout(name)
        assert sorted(v for v, _ in layout.bone_pairs) == list(range(layout.num_joints))


def test_bone_pairs_are_the_reference_streams():
    # CTR-GCN's `ntu_pairs` and `ucla_pairs`, 1-based, as published.
    ntu = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
           (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
           (20, 19), (22, 23), (21, 21), (23, 8), (24, 25), (25, 12)]
    ucla = [(1, 2), (2, 3), (3, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9),
            (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
            (20, 19)]
    for name, pairs in (('ntu25', ntu), ('ucla20', ucla)):
        assert sorted(get_layout(name).bone_pairs) == sorted((a - 1, b - 1) for a, b in pairs)
