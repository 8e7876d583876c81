"""Custom datasets: the sequence-file reader and `python -m data.prepare custom`."""

import json

import numpy as np
import pytest

from data import DataFileError
from data.custom import read_sequence_file


def write_json(path, content):
    path.write_text(json.dumps(content))
    return str(path)


def test_npy_of_one_person_gets_a_person_axis(tmp_path):
    frames = np.arange(4 * 5 * 3, dtype=np.float64).reshape(4, 5, 3)  # (T, V, C)
    np.save(tmp_path / 'a.npy', frames)
    sequence = read_sequence_file(str(tmp_path / 'a.npy'))
    assert sequence.dtype == np.float32 and sequence.shape == (4, 1, 5, 3)
    np.testing.assert_array_equal(sequence[:, 0], frames)


def test_npy_of_several_persons_is_put_in_frame_order(tmp_path):
    frames = np.random.default_rng(0).normal(size=(2, 4, 5, 3))  # (M, T, V, C)
    np.save(tmp_path / 'a.npy', frames)
    sequence = read_sequence_file(str(tmp_path / 'a.npy'))
    assert sequence.shape == (4, 2, 5, 3)
    np.testing.assert_allclose(sequence[3, 1], frames[1, 3], rtol=1e-6)


def test_json_scores_become_the_third_channel_and_undetected_joints_zero(tmp_path):
    keypoints = [[[10.0, 20.0], [30.0, 40.0]], [[11.0, 21.0], [31.0, 41.0]]]  # (T=2, V=2, 2)
    scores = [[0.9, 0.0], [0.5, 0.7]]
    path = write_json(tmp_path / 'a.json', {'keypoints': keypoints, 'scores': scores})
    sequence = read_sequence_file(path)
    assert sequence.shape == (2, 1, 2, 3)
    np.testing.assert_allclose(sequence[0, 0], [[10, 20, 0.9], [0, 0, 0]], rtol=1e-6)
    np.testing.assert_allclose(sequence[1, 0], [[11, 21, 0.5], [31, 41, 0.7]], rtol=1e-6)


def test_2d_without_scores_scores_each_non_zero_joint_one(tmp_path):
    frames = np.array([[[5.0, 6.0], [0.0, 0.0], [0.0, 2.0]]])  # (T=1, V=3, 2)
    np.save(tmp_path / 'a.npy', frames)
    sequence = read_sequence_file(str(tmp_path / 'a.npy'))
    np.testing.assert_array_equal(sequence[0, 0], [[5, 6, 1], [0, 0, 0], [0, 2, 1]])


@pytest.mark.parametrize(
    'name, content, problem',
    [
        ('a.json', {'frames': []}, '"keypoints" array'),
        ('a.json', {'keypoints': [[[1, 2], [3]]]}, 'not a rectangular array'),
        ('a.json', {'keypoints': [[1.0, 2.0]]}, 'has shape (1, 2); expected (T, V, C)'),
        ('a.json', {'keypoints': [[[1, 2, 3, 4]]]}, '4 channels'),
        ('a.json', {'keypoints': [[[1, 2, 3]]], 'scores': [[1]]}, 'scores go with 2-channel'),
        ('a.json', {'keypoints': [[[1, 2]]], 'scores': [[1, 1]]}, 'expected scores of shape'),
        ('a.json', {'keypoints': [[[1, 2]]], 'scores': [[-1]]}, 'negative'),
        ('a.json', {'keypoints': [[[1, None]]]}, 'NaN or Inf'),
        ('a.json', {'keypoints': []}, 'expected (T, V, C)'),
    ],
)
def test_bad_json_files_are_named_with_their_problem(tmp_path, name, content, problem):
    path = write_json(tmp_path / name, content)
    with pytest.raises(DataFileError) as err:
        read_sequence_file(path)
    assert str(err.value).startswith(path) and problem in str(err.value)


def test_bad_files_of_other_kinds_are_named(tmp_path):
    (tmp_path / 'a.npy').write_bytes(b'not numpy')
    (tmp_path / 'b.json').write_text('{"keypoints": ')
    (tmp_path / 'c.txt').write_text('1 2 3')
    np.save(tmp_path / 'd.npy', np.array([{'x': 1}], dtype=object))
    np.save(tmp_path / 'e.npy', np.zeros((0, 5, 3)))
    for name, problem in (('a.npy', 'not a readable .npy'), ('b.json', 'not a readable JSON'),
                          ('c.txt', 'not a sequence file'), ('d.npy', 'not a readable .npy'),
                          ('e.npy', 'no frame, joint or person')):
        with pytest.raises(DataFileError, match=problem):
            read_sequence_file(str(tmp_path / name))
