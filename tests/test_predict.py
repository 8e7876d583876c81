"""Prediction on new sequences (predict.py, data/inputs.py) and the feeders' transforms built
without their data (feeders/feeder.py)."""

import numpy as np
import pytest

from data.storage import write_split
from feeders import FEEDERS, build_feeder

# ------------------------------------------------------------- transforms without the data source


@pytest.fixture(scope='module')
def ucla_like_root(tmp_path_factory):
    """A one-person, 20-joint split file of random walks (the NW-UCLA layout)."""
    root = tmp_path_factory.mktemp('ucla_like')
    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(t, 1, 20, 3)).cumsum(0).astype(np.float32) for t in (9, 70)]
    write_split(str(root / 'test.h5'), sequences, [0, 1], ['a', 'b'], dataset='ucla',
                layout='ucla20', num_class=10)
    return str(root)


@pytest.mark.parametrize('name, stream, args', [
    ('skeleton', 'joint', {'window_size': 20, 'p_interval': [0.9]}),
    ('demo', 'bone_motion', {'window_size': 16}),
    ('ucla', 'bone', {'window_size': 12}),
])
def test_transforms_from_args_are_the_feeders_own(name, stream, args, demo_root, ucla_like_root):
    root = ucla_like_root if name == 'ucla' else demo_root
    feeder = build_feeder(name, data_path=root, split='test', stream=stream, **args)
    transforms = FEEDERS.get(name).transforms_from_args(
        {'data_path': 'elsewhere', **args}, layout=feeder.layout, stream=stream
    )
    assert type(transforms) is type(feeder.transforms)
    assert vars(transforms) == vars(feeder.transforms)
    for index in range(2):
        data, _, _ = feeder[index]
        again = transforms(feeder.frames(index), np.random.default_rng(), {'where': 'array'})
        np.testing.assert_array_equal(again, data)
