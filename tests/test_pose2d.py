"""2D input (x, y, score): the transforms of feeders/transforms.py, the pose2d feeder and the
synthetic demo's COCO-17 keypoints."""

import numpy as np
import pytest

from data.storage import read_index, write_split
from data.synthetic import IMAGE_SIZES, generate
from feeders import build_feeder
from feeders.transforms import (
    bone_with_scores,
    in_plane,
    motion_with_scores,
    normalise_2d,
    resample_nearest,
)
from graph import get_layout
from torchlight.registry import ConfigError


def frames_2d(points):
    """(C=3, T, V, M=1) from a list of frames, each a list of (x, y, score) joints."""
    return np.asarray(points, dtype=np.float32).transpose(2, 0, 1)[..., None]


def test_normalise_2d_by_the_image_size():
    # centre joint 0 at (100, 200) in frame 0; image 400 high, 800 wide: scale 800
    data = frames_2d([[(100, 200, 0.9), (500, 600, 0.8), (7, 9, 0.0)],
                      [(180, 120, 0.7), (100, 200, 0.5), (0, 0, 0.0)]])
    out = normalise_2d(data, centre=0, image_size=(400, 800))
    np.testing.assert_allclose(out[:, 0, :, 0].T, [[0, 0, 0.9], [0.5, 0.5, 0.8], [0, 0, 0]])
    np.testing.assert_allclose(out[:, 1, :, 0].T, [[0.1, -0.1, 0.7], [0, 0, 0.5], [0, 0, 0]])


def test_normalise_2d_by_the_extent_from_the_first_frame_that_sees_the_centre():
    # The centre (joint 1) is missed in frame 0: frame 1's (300, 260) is the origin. Detected
    # joints span x 100..300 and y 200..260: extent 200.
    data = frames_2d([[(100, 200, 0.9), (0, 0, 0.0)],
                      [(200, 230, 0.8), (300, 260, 0.6)]])
    out = normalise_2d(data, centre=1, image_size=(0, 0))
    np.testing.assert_allclose(out[:2, :, :, 0].transpose(1, 2, 0),
                               [[[-1.0, -0.3], [0, 0]], [[-0.5, -0.15], [0, 0]]], rtol=1e-6)


def test_in_plane_rotates_about_the_view_axis_scales_and_shifts():
    data = frames_2d([[(1, 0, 0.9), (0, 2, 0.5), (0, 0, 0.0)]])
    out = in_plane(data, angle=np.pi / 2, scale=2.0, offset=(0.1, -0.1))
    # (1, 0) → (0, 1)·2, (0, 2) → (−2, 0)·2, then + (0.1, −0.1); the missed joint stays zero
    np.testing.assert_allclose(out[:, 0, :, 0].T, [[0.1, 1.9, 0.9], [-3.9, -0.1, 0.5], [0, 0, 0]],
                               atol=1e-6)


def test_bones_and_motion_carry_mean_scores_and_zero_where_an_end_is_missed():
    data = frames_2d([[(1.0, 2.0, 0.8), (0.5, 1.0, 0.6), (3.0, 3.0, 0.0)],
                      [(1.5, 2.5, 0.4), (0.0, 0.0, 0.0), (2.0, 1.0, 0.2)]])
    bone = bone_with_scores(data, ((0, 1), (1, 1), (2, 0)))
    np.testing.assert_allclose(bone[:, 0, :, 0].T, [[0.5, 1.0, 0.7], [0, 0, 0.6], [0, 0, 0]])
    np.testing.assert_allclose(bone[:, 1, :, 0].T, [[0, 0, 0], [0, 0, 0], [0.5, -1.5, 0.3]])
    motion = motion_with_scores(data)
    np.testing.assert_allclose(motion[:, 0, :, 0].T, [[0.5, 0.5, 0.6], [0, 0, 0], [0, 0, 0]])
    assert not motion[:, 1].any()


@pytest.mark.parametrize('length, window, picks', [(4, 8, [0, 0, 1, 1, 2, 2, 3, 3]),
                                                   (10, 5, [1, 3, 5, 7, 9]), (3, 3, [0, 1, 2])])
def test_resample_nearest_picks_frames(length, window, picks):
    data = np.arange(length, dtype=np.float32).reshape(1, length, 1, 1)
    np.testing.assert_array_equal(resample_nearest(data, window)[0, :, 0, 0], picks)


# ---------------------------------------------------------------------------------- the feeder


@pytest.fixture(scope='module')
def split_2d(tmp_path_factory):
    """Two random 2D COCO-17 sequences with a fifth of the joints missed, one with an image size
    and one without."""
    root = tmp_path_factory.mktemp('pose2d')
    rng = np.random.default_rng(3)
    sequences = []
    for frames in (30, 45):
        data = np.concatenate([rng.uniform(0, 640, (frames, 1, 17, 2)),
                               rng.uniform(0.1, 1, (frames, 1, 17, 1))], axis=-1)
        data[rng.random((frames, 1, 17)) < 0.2] = 0
        sequences.append(data.astype(np.float32))
    for split in ('train', 'test'):
        write_split(str(root / f'{split}.h5'), sequences, [0, 1], ['a', 'b'],
                    per_sample={'image_size': np.array([[480, 640], [0, 0]])},
                    dataset='mine', layout='coco17', num_class=2)
    return str(root), sequences


def test_the_feeder_normalises_by_the_stored_image_size_else_the_extent(split_2d):
    root, sequences = split_2d
    feeder = build_feeder('pose2d', data_path=root, split='test', window_size=30,
                          p_interval=[1.0], min_crop=1)
    for index, scale in ((0, 640.0), (1, None)):
        raw = sequences[index][:, 0]                        # (T, V, 3)
        seen = raw[..., 2] > 0
        if scale is None:
            points = raw[..., :2][seen]
            scale = (points.max(axis=0) - points.min(axis=0)).max()
        first = np.flatnonzero(seen[:, 0])[0]               # the nose, the centre
        expected = np.where(seen[..., None], (raw[..., :2] - raw[first, 0, :2]) / scale, 0)
        data, label, _ = feeder[index]
        picks = np.floor((np.arange(30) + 0.5) * len(raw) / 30).astype(int)
        np.testing.assert_allclose(data[:2, :, :, 0].transpose(1, 2, 0), expected[picks],
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(data[2, :, :, 0], raw[picks, :, 2])


def loop_bones(joints, pairs):
    """A second implementation of the 2D bone stream, joint by joint and frame by frame."""
    bones = np.zeros_like(joints)
    for v, origin in pairs:
        for t in range(joints.shape[1]):
            a, b = joints[:, t, v, 0], joints[:, t, origin, 0]
            if a[2] > 0 and b[2] > 0:
                bones[:, t, v, 0] = [a[0] - b[0], a[1] - b[1], (a[2] + b[2]) / 2]
    return bones


def test_missed_joints_stay_zero_through_augmentation_and_every_stream(split_2d):
    root, _ = split_2d
    args = dict(data_path=root, split='train', window_size=24, p_interval=[0.5, 1], min_crop=8,
                random_rot=True, random_scale=0.2, random_shift=0.3)
    streams = {s: build_feeder('pose2d', stream=s, **args)
               for s in ('joint', 'bone', 'joint_motion', 'bone_motion')}
    pairs = get_layout('coco17').bone_pairs
    for index in range(2):
        joints = streams['joint'][index][0]
        missed = joints[2] == 0
        assert missed.any() and not joints[:, missed].any()
        bones = loop_bones(joints, pairs)
        np.testing.assert_allclose(streams['bone'][index][0], bones, atol=1e-6)
        for stream, source in (('joint_motion', joints), ('bone_motion', bones)):
            expected = np.zeros_like(source)
            both = (source[2:, 1:] > 0) & (source[2:, :-1] > 0)
            step = np.concatenate([source[:2, 1:] - source[:2, :-1],
                                   (source[2:, 1:] + source[2:, :-1]) / 2])
            expected[:, :-1] = np.where(both, step, 0)
            np.testing.assert_allclose(streams[stream][index][0], expected, atol=1e-6)


def test_augmentation_is_in_plane_only(split_2d):
    """Rotation, one scale and a shift: the distances between detected joints of a frame all
    change by the same factor, and scores do not change."""
    root, _ = split_2d
    args = dict(data_path=root, split='train', window_size=24, p_interval=[1.0], min_crop=1)
    plain = build_feeder('pose2d', **args)[0][0]
    moved = build_feeder('pose2d', random_rot=True, random_scale=0.2, random_shift=0.3,
                         **args)[0][0]
    np.testing.assert_array_equal(plain[2], moved[2])
    seen = plain[2, 0, :, 0] > 0
    a, b = plain[:2, 0, seen, 0], moved[:2, 0, seen, 0]
    distances = [np.linalg.norm(x[:, :, None] - x[:, None, :], axis=0) for x in (a, b)]
    ratio = distances[1][distances[0] > 0] / distances[0][distances[0] > 0]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
    assert 0.8 <= ratio[0] <= 1.2 and not np.allclose(a, b)


def test_the_feeder_refuses_3d_joints(demo_root):
    with pytest.raises(ConfigError, match='holds 3D joints .*use the skeleton feeder'):
        build_feeder('pose2d', data_path=demo_root, split='test')


# ------------------------------------------------------------------------------- the 2D demo


@pytest.mark.slow  # both demo datasets generated
def test_the_2d_demo_projects_the_3d_demos_motions(tmp_path, demo_root):
    generate(str(tmp_path), layout='coco17')
    for split in ('train', 'test'):
        flat, projected = (read_index(f'{root}/{split}.h5') for root in (demo_root, tmp_path))
        assert projected['names'] == flat['names']
        np.testing.assert_array_equal(projected['labels'], flat['labels'])
        np.testing.assert_array_equal(projected['length'], flat['length'])
        cameras = [int(name[5:8]) for name in projected['names']]
        sizes = [IMAGE_SIZES[camera - 1] for camera in cameras]
        np.testing.assert_array_equal(projected['image_size'], sizes)
        assert projected['attrs']['layout'] == 'coco17'
    feeder = build_feeder('demo2d', data_path=str(tmp_path), split='test', window_size=32)
    data = np.stack([feeder[i][0] for i in range(0, len(feeder), 7)])
    scores = data[:, 2]
    assert 0.01 < (scores == 0).mean() < 0.06          # about 3 % missed
    assert scores.max() <= 1 and np.abs(data[:, :2]).max() < 1
