import os

import numpy as np
import pytest
import torch

from data.storage import read_index, write_split
from feeders import build_feeder
from feeders.feeder import prepare_command
from feeders.transforms import (
    crop_resize,
    joint_to_bone,
    random_move,
    random_rotation,
    random_scale,
    random_shift,
    rotation_matrix,
    to_motion,
)
from graph import get_layout
from torchlight.registry import ConfigError


def test_centre_crop_keeps_frames_b_to_valid_minus_b():
    data = np.arange(40, dtype=np.float32).reshape(1, 40, 1, 1)
    # b = int((1 - 0.95) · 40 / 2) = 1 → frames 1..38; resizing 38 → 38 frames changes nothing.
    out = crop_resize(data, 40, [0.95], 38)
    np.testing.assert_allclose(out[0, :, 0, 0], np.arange(1, 39))


def test_linear_resize_by_hand():
    data = np.array([0.0, 4.0], dtype=np.float32).reshape(1, 2, 1, 1)
    # align_corners=False: output i samples input position (i + 0.5)·2/4 − 0.5, clamped to [0,
    # 1].
    out = crop_resize(data, 2, [1.0], 4)
    np.testing.assert_allclose(out[0, :, 0, 0], [0.0, 1.0, 3.0, 4.0])


def test_random_crop_length_rules():
    rng = np.random.default_rng(0)
    data = np.ones((3, 100, 25, 2), dtype=np.float32)
    for _ in range(20):
        out = crop_resize(data, 100, [0.5, 1.0], 32, rng, min_length=64)
        assert out.shape == (3, 32, 25, 2)
    # With fewer valid frames than min_length, the whole valid range is used: a ramp keeps its end
    # points.
    ramp = np.broadcast_to(
        np.arange(30, dtype=np.float32)[None, :, None, None], (3, 30, 25, 2)
    ).copy()
    out = crop_resize(ramp, 30, [0.5, 1.0], 30, rng, min_length=64)
    np.testing.assert_allclose(out[0, :, 0, 0], np.arange(30))


def test_rotation_conventions():
    x = np.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(rotation_matrix(0, 0, np.pi / 2) @ x, [0, -1, 0], atol=1e-7)
    np.testing.assert_allclose(rotation_matrix(np.pi / 2, 0, 0) @ [0, 1, 0], [0, 0, -1], atol=1e-7)
    r = rotation_matrix(0.1, -0.2, 0.3)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-6)
    data = np.random.default_rng(1).normal(size=(3, 5, 25, 2)).astype(np.float32)
    rotated = random_rotation(data, np.random.default_rng(2))
    np.testing.assert_allclose(
        np.linalg.norm(rotated, axis=0), np.linalg.norm(data, axis=0), rtol=1e-5
    )


def test_bone_and_motion_by_hand():
    layout = get_layout('ntu25')
    data = np.zeros((3, 2, 25, 1), dtype=np.float32)
    data[:, 0, 0, 0] = [1, 2, 3]  # spine base
    data[:, 0, 1, 0] = [1, 0, 0]  # spine mid
    data[:, 1, 1, 0] = [4, 0, 0]
    bone = joint_to_bone(data, layout.bone_pairs)
    np.testing.assert_allclose(bone[:, 0, 0, 0], [0, 2, 3])  # spine base − spine mid
    np.testing.assert_allclose(bone[:, 0, 20, 0], [0, 0, 0])  # the (21, 21) pair
    motion = to_motion(data)
    np.testing.assert_allclose(motion[:, 0, 1, 0], [3, 0, 0])
    np.testing.assert_allclose(motion[:, 1], 0)


def two_person_sample(seed=0, frames=6):
    """(3, T, 25, 2) with the second person absent in the first two frames."""
    data = np.random.default_rng(seed).normal(size=(3, frames, 25, 2)).astype(np.float32)
    data[:, :2, :, 1] = 0
    return data


def test_random_scale_and_shift_by_hand():
    data = two_person_sample()
    factors = np.random.default_rng(7).uniform(0.8, 1.2, size=3)  # what the transform draws
    np.testing.assert_allclose(
        random_scale(data, np.random.default_rng(7), 0.2),
        data * factors[:, None, None, None],
        rtol=1e-6,
    )
    offset = np.random.default_rng(8).uniform(-0.5, 0.5, size=3)
    shifted = random_shift(data, np.random.default_rng(8), 0.5)
    np.testing.assert_allclose(
        shifted[:, :, :, 0], data[:, :, :, 0] + offset[:, None, None], rtol=1e-6, atol=1e-6
    )
    # an absent person stays absent
    np.testing.assert_array_equal(shifted[:, :2, :, 1], 0)
    np.testing.assert_allclose(
        shifted[:, 2:, :, 1], data[:, 2:, :, 1] + offset[:, None, None], rtol=1e-6, atol=1e-6
    )


def test_random_move_is_st_gcn_move_frame_by_frame():
    data = two_person_sample(frames=5)
    moved = random_move(data, np.random.default_rng(3))
    # the draws, at frames 0 and T = 5
    rng = np.random.default_rng(3)
    angle, scale, dx, dy = (
        rng.choice(c, 2)
        for c in (
            (-10, -5, 0, 5, 10),
            (0.9, 1.0, 1.1),
            (-0.2, -0.1, 0, 0.1, 0.2),
            (-0.2, -0.1, 0, 0.1, 0.2),
        )
    )
    for t in range(5):
        # ramps reach the end at frame T − 1
        w = t / 4
        a = np.radians(angle[0] + w * (angle[1] - angle[0]))
        s = scale[0] + w * (scale[1] - scale[0])
        shift = np.array([dx[0] + w * (dx[1] - dx[0]), dy[0] + w * (dy[1] - dy[0])])
        rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        for m in range(2):
            expected = rot @ data[:2, t, :, m] + shift[:, None]
            if t < 2 and m == 1:
                expected = 0 * expected  # absent: stays zero
            np.testing.assert_allclose(moved[:2, t, :, m], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(moved[2], data[2])  # z untouched


def test_extra_augmentations_are_off_by_default_and_seeded(demo_root):
    plain = build_feeder('skeleton', data_path=demo_root, split='train', window_size=16)
    augmented = build_feeder(
        'skeleton',
        data_path=demo_root,
        split='train',
        window_size=16,
        random_scale=0.1,
        random_shift=0.2,
        random_move=True,
    )
    # Off by default: the centre crop resized to the window, nothing else.
    frames = plain.frames(4)
    only_cropped = crop_resize(frames, len(plain.reader[4]), [0.95], 16)
    np.testing.assert_allclose(plain[4][0], only_cropped, rtol=1e-6, atol=1e-6)
    assert not np.allclose(augmented[4][0], plain[4][0])
    # a function of (seed, epoch, index): the same draw again, another at the next epoch
    first = augmented[4][0]
    np.testing.assert_array_equal(first, augmented[4][0])
    augmented.set_epoch(1)
    assert not np.allclose(first, augmented[4][0])


def test_storage_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(t, 2, 25, 3)).astype(np.float32) for t in (5, 9, 1)]
    path = str(tmp_path / 'train.h5')
    write_split(
        path, sequences, [3, 1, 0], ['a', 'b', 'c'], dataset='x', layout='ntu25', num_class=4
    )
    index = read_index(path)
    assert index['names'] == ['a', 'b', 'c']
    np.testing.assert_array_equal(index['start'], [0, 5, 14])
    np.testing.assert_array_equal(index['length'], [5, 9, 1])
    assert index['attrs']['dataset'] == 'x'
    feeder = build_feeder(
        'skeleton', data_path=str(tmp_path), split='train', window_size=9, p_interval=[1.0]
    )
    data, label, _ = feeder[1]
    assert label == 1
    np.testing.assert_allclose(data, sequences[1].transpose(3, 0, 2, 1), rtol=1e-6)


def test_streamed_samples_take_the_final_order(tmp_path):
    from data.storage import SplitWriter

    rng = np.random.default_rng(1)
    sequences = [rng.normal(size=(t, 1, 25, 3)).astype(np.float32) for t in (3, 7, 2)]
    writer = SplitWriter(str(tmp_path / 'test.h5'), (1, 25, 3))
    for frames in sequences:
        writer.add(frames)
    assert not (tmp_path / 'test.h5').exists()  # nothing under the final name before close
    writer.close([2, 0, 1], [7, 5, 6], ['c', 'a', 'b'], layout='ntu25', num_class=8)
    feeder = build_feeder(
        'skeleton', data_path=str(tmp_path), split='test', window_size=3, p_interval=[1.0]
    )
    assert feeder.names == ['c', 'a', 'b']
    np.testing.assert_allclose(feeder[1][0], sequences[0].transpose(3, 0, 2, 1), rtol=1e-6)
    assert feeder[0][1] == 7 and feeder.reader.length.tolist() == [2, 3, 7]
    assert os.listdir(tmp_path) == ['test.h5']


def test_missing_data_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=f'data file not found: {tmp_path}/train.h5'):
        build_feeder('skeleton', data_path=str(tmp_path), split='train')
    (tmp_path / 'test.h5').write_text('not hdf5')
    with pytest.raises(ConfigError, match='cannot read .*test.h5 as HDF5'):
        build_feeder('skeleton', data_path=str(tmp_path), split='test')


def test_augmentation_differs_between_epochs_not_between_runs_or_workers(demo_root):
    feeder = build_feeder(
        'skeleton',
        data_path=demo_root,
        split='train',
        window_size=16,
        p_interval=[0.5, 1],
        random_rot=True,
    )
    feeder.set_epoch(0, seed=5)
    first = feeder[3][0]
    np.testing.assert_array_equal(feeder[3][0], first)
    feeder.set_epoch(1)
    assert not np.allclose(feeder[3][0], first)

    def batches(workers):
        feeder.set_epoch(2)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(feeder, range(8)), batch_size=4, num_workers=workers
        )
        return torch.cat([b[0] for b in loader])

    torch.testing.assert_close(batches(0), batches(2), rtol=0, atol=0)


@pytest.mark.slow  # the demo dataset generated twice
def test_demo_dataset_is_deterministic_and_subject_wise(tmp_path, demo_root):
    from data.synthetic import TRAIN_SUBJECTS, generate

    generate(str(tmp_path))
    for split in ('train', 'test'):
        a, b = (
            read_index(os.path.join(demo_root, f'{split}.h5')),
            read_index(str(tmp_path / f'{split}.h5')),
        )
        assert a['names'] == b['names']
        subjects = {int(n[9:12]) for n in a['names']}
        assert (
            subjects <= set(TRAIN_SUBJECTS)
            if split == 'train'
            else not subjects & set(TRAIN_SUBJECTS)
        )
        fa = build_feeder('skeleton', data_path=demo_root, split=split, window_size=16)
        fb = build_feeder('skeleton', data_path=str(tmp_path), split=split, window_size=16)
        np.testing.assert_array_equal(fa[7][0], fb[7][0])
    assert sorted(set(read_index(os.path.join(demo_root, 'test.h5'))['labels'])) == list(range(10))


def test_missing_data_names_the_command_and_the_folder_that_writes_it():
    assert prepare_command('data/ntu60/ntu60.h5') == (
        'write it with: python -m data.prepare ntu60 --raw <the folder of .skeleton files> '
        '--out data/ntu60')
    pyskl = prepare_command(os.path.join('data', 'pyskl', 'ntu60_hrnet.h5'))
    assert 'pyskl --raw ntu60_hrnet.pkl' in pyskl and pyskl.endswith('--out data/pyskl')
    assert prepare_command('mine.h5').endswith('--out .')
