"""The NW-UCLA feeder on real NW-UCLA samples, against the reference feeder's rules worked out by
hand."""

import glob
import json
import os

import numpy as np
import pytest

from data.storage import write_split
from feeders import build_feeder
from feeders.transforms import ucla_view_transform

FIXTURES = sorted(
    glob.glob(os.path.join(os.path.dirname(__file__), 'fixtures', 'nwucla', '*.json'))
)


@pytest.fixture(scope='module')
def ucla_root(tmp_path_factory):
    """The fixture files written in the prepared format, one person, labels 0-based."""
    root = tmp_path_factory.mktemp('ucla')
    samples = [json.load(open(path)) for path in FIXTURES]
    # (T, M=1, V, C)
    sequences = [np.asarray(s['skeletons'], dtype=np.float32)[:, None] for s in samples]
    write_split(
        str(root / 'test.h5'),
        sequences,
        [s['label'] - 1 for s in samples],
        [s['file_name'] for s in samples],
        dataset='ucla',
        layout='ucla20',
        num_class=10,
    )
    return str(root), samples


def reference_test_sample(skeletons, window=52):
    """The reference's test path, spelled out: centre, min-max to [−1, 1] per axis, evenly spaced
    frames."""
    x = np.asarray(skeletons, dtype=np.float64)  # (T, V, C)
    x = x - x[0, 1]
    flat = x.reshape(-1, 3)
    flat = (flat - flat.min(0)) / (flat.max(0) - flat.min(0)) * 2 - 1
    x = flat.reshape(x.shape)
    # (C, T, V, 1)
    return x[np.linspace(0, len(x) - 1, window).astype(int)].transpose(2, 0, 1)[..., None]


def test_test_samples_follow_the_reference(ucla_root):
    root, samples = ucla_root
    feeder = build_feeder('ucla', data_path=root, split='test')
    for i, sample in enumerate(samples):
        data, label, _ = feeder[i]
        assert data.shape == (3, 52, 20, 1) and label == sample['label'] - 1
        np.testing.assert_allclose(data, reference_test_sample(sample['skeletons']), atol=1e-5)
    assert len(samples[1]['skeletons']) == 1  # a one-frame file gives 52 copies of its frame
    assert np.all(feeder[1][0] == feeder[1][0][:, :1])


def test_view_transform_by_hand():
    point = np.zeros((3, 1, 1, 1))
    point[1] = 1.0  # the unit y vector
    # p → p · (Ry Rx s): with x = 90°, y = 0°, s = 2, y goes to 2·z.
    np.testing.assert_allclose(
        ucla_view_transform(point, 90, 0, 2.0)[:, 0, 0, 0], [0, 0, 2], atol=1e-12
    )
    point = np.zeros((3, 1, 1, 1))
    point[0] = 1.0
    # With y = 90°, x = 0°: x goes to −z (Ry's first row is [cos, 0, −sin]).
    np.testing.assert_allclose(
        ucla_view_transform(point, 0, 90, 1.0)[:, 0, 0, 0], [0, 0, -1], atol=1e-12
    )


def test_training_augmentation_and_repeat(ucla_root):
    root, samples = ucla_root
    feeder = build_feeder(
        'ucla',
        data_path=root,
        split='test',
        random_rot=True,
        random_choose=True,
        repeat=5,
        stream='bone',
    )
    assert len(feeder) == 5 * len(samples)
    first, _, _ = feeder[0]
    # the same sample in the second pass: other draws
    again, label, index = feeder[len(samples)]
    assert index == len(samples) and label == samples[0]['label'] - 1
    assert not np.allclose(first, again)
    joints = build_feeder(
        'ucla', data_path=root, split='test', random_rot=True, random_choose=True
    )[0][0]
    # Min-max normalised (before the frames are drawn) whatever the rotation and scale.
    assert joints.min() >= -1 - 1e-6 and joints.max() <= 1 + 1e-6
    every_frame = build_feeder(
        'ucla',
        data_path=root,
        split='test',
        random_rot=True,
        window_size=len(samples[0]['skeletons']),
    )[0][0]
    for axis in range(3):
        assert every_frame[axis].min() == pytest.approx(-1) and every_frame[
            axis
        ].max() == pytest.approx(1)
    # shoulder centre is its own bone origin: zero bone
    np.testing.assert_allclose(first[:, :, 2], 0)
