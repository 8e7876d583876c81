"""Custom datasets: the sequence-file reader and `python -m data.prepare custom`."""

import json
import os

import numpy as np
import pytest

from data import DataFileError
from data.custom import read_sequence_file
from data.prepare import main as prepare_main
from data.storage import read_index
from feeders import build_feeder
from main import main


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
        ('a.json', {'keypoints': None}, '"keypoints" array'),
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
    for name, problem in (('a.npy', 'not a NumPy array file'), ('b.json', 'not a readable JSON'),
                          ('c.txt', 'not a sequence file'), ('d.npy', 'not a readable .npy'),
                          ('e.npy', 'no frame, joint or person')):
        with pytest.raises(DataFileError, match=problem):
            read_sequence_file(str(tmp_path / name))


# -------------------------------------------------------------- python -m data.prepare custom

EXAMPLE = os.path.join(os.path.dirname(__file__), 'fixtures', 'custom')


def prepare(raw, out, *extra):
    return prepare_main(['custom', '--raw', str(raw), '--out', str(out), '--workers', '1', *extra])


def test_the_three_file_example_prepares_and_feeds(tmp_path, capsys):
    assert prepare(EXAMPLE, tmp_path, '--layout', 'coco17', '--persons', '1') == 0
    assert 'custom: 3 samples prepared from 3 files, 0 skipped' in capsys.readouterr().out
    stored = str(tmp_path / 'custom.h5')
    train, test = (read_index(stored, 'default', split) for split in ('train', 'test'))
    assert train['names'] == ['wave_01', 'salute_01'] and test['names'] == ['kick_01']
    assert train['labels'].tolist() == [0, 1] and test['labels'].tolist() == [2]
    assert train['attrs']['class_names'] == ['wave', 'salute', 'kick']
    assert 'channels' not in train['attrs']      # three channels: x, y, z or x, y, score?
    feeder = build_feeder('pose2d', data_path=stored, benchmark='default', split='train',
                          window_size=16)
    # The JSON file, read here without data/custom.py: missed keypoints become (0, 0, 0).
    with open(os.path.join(EXAMPLE, 'wave_01.json')) as f:
        content = json.load(f)
    keypoints, scores = np.array(content['keypoints']), np.array(content['scores'])
    expected = np.concatenate([keypoints * (scores[..., None] > 0), scores[..., None]], axis=-1)
    np.testing.assert_allclose(feeder.reader[0][:, 0], expected, rtol=1e-6)
    assert (scores == 0).any()
    kick = build_feeder('pose2d', data_path=stored, benchmark='default', split='test')
    raw = np.load(os.path.join(EXAMPLE, 'kick_01.npy'))[0]    # (T, V, 2), no scores
    np.testing.assert_array_equal(kick.reader[0][:, 0, :, 2], raw.any(axis=-1))
    data, label, _ = feeder[1]
    assert data.shape == (3, 16, 17, 1) and label == 1


def write_dataset(folder, rows, classes=('a', 'b'), joints=17):
    """Sequence files of random 2D keypoints for `rows` (name, label[, split]) and the two lists."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, *_ in rows:
        np.save(os.path.join(folder, f'{name}.npy'), rng.uniform(1, 100, (5, joints, 2)))
    with open(os.path.join(folder, 'labels.csv'), 'w') as f:
        f.write(''.join(','.join(row) + '\n' for row in rows))
    with open(os.path.join(folder, 'classes.txt'), 'w') as f:
        f.write('\n'.join(classes) + '\n')
    return str(folder)


def test_without_a_split_column_each_class_is_split_by_a_seeded_draw(tmp_path):
    rows = [(f'a{i}', 'a') for i in range(6)] + [(f'b{i}', '1') for i in range(4)]
    raw = write_dataset(tmp_path / 'raw', rows)
    splits = {}
    for seed in ('0', '0', '5'):
        out = tmp_path / f'out{len(splits)}'
        assert prepare(raw, out, '--layout', 'coco17', '--test-ratio', '0.25', '--seed', seed) == 0
        test = read_index(str(out / 'raw.h5'), 'default', 'test')
        splits[len(splits)] = test['names']
        # 6 · 0.25 = 1.5 → 2 of class a; 4 · 0.25 = 1 of class b
        assert sorted(test['labels'].tolist()) == [0, 0, 1]
        train = read_index(str(out / 'raw.h5'), 'default', 'train')['names']
        assert sorted(train + test['names']) == sorted(name for name, _ in rows)
    assert splits[0] == splits[1] and splits[0] != splits[2]


def test_missing_and_misshapen_files_are_reported_and_skipped(tmp_path, capsys):
    raw = write_dataset(tmp_path / 'raw', [('a0', 'a', 'train'), ('b0', 'b', 'test')])
    np.save(os.path.join(raw, 'small.npy'), np.ones((5, 12, 2)))
    np.save(os.path.join(raw, 'extra.npy'), np.ones((5, 17, 2)))
    with open(os.path.join(raw, 'labels.csv'), 'a') as f:
        f.write('small,a,train\nghost,b,test\n')
    assert prepare(raw, tmp_path / 'out', '--layout', 'coco17') == 0
    printed = capsys.readouterr().out
    assert ('raw: 2 samples prepared from 4 files, 2 skipped as unreadable, 1 left out as not '
            'listed in labels.csv') in printed
    assert f'{raw}/small.npy: 12 joints per frame; the layout has 17' in printed
    assert f'{raw}/ghost: listed in labels.csv, no file of that name' in printed


def test_names_keep_their_dots_and_upper_case_suffixes_are_found(tmp_path):
    # `subj0.take0` is a name, not a file `subj0` with the suffix `.take0`
    rows = [('subj0.take0', 'a', 'train'), ('subj0.take1', 'b', 'test'), ('s00', 'b', 'train')]
    raw = write_dataset(tmp_path / 'raw', rows)
    os.rename(os.path.join(raw, 's00.npy'), os.path.join(raw, 's00.NPY'))
    assert prepare(raw, tmp_path / 'out', '--layout', 'coco17') == 0
    index = read_index(str(tmp_path / 'out' / 'raw.h5'), 'default', 'train')
    assert index['names'] == ['subj0.take0', 's00']
    # listed with its suffix, in any case, the name loses the suffix only
    (tmp_path / 'raw' / 'labels.csv').write_text(
        'subj0.take0.npy,a,train\nsubj0.take1,b,test\ns00.NPY,b,train\n')
    assert prepare(raw, tmp_path / 'out2', '--layout', 'coco17') == 0
    assert read_index(str(tmp_path / 'out2' / 'raw.h5'), 'default', 'train')['names'] == [
        'subj0.take0', 's00']


@pytest.mark.parametrize('labels, classes, problem', [
    ('a0,c\n', 'a\nb\n', "line 1: label 'c' is neither a class of classes.txt nor a class id"),
    ('a0,2\n', 'a\nb\n', "label '2' is neither"),
    ('name,label,split\na0,a,val\n', 'a\nb\n', "line 2: split 'val' is neither train nor test"),
    ('a0,a\na0,b\n', 'a\nb\n', "line 2: sequence 'a0' is listed twice"),
    ('a0,a\na0.npy,b\n', 'a\nb\n', "line 2: sequence 'a0.npy' is listed twice"),
    ('a0,\u00b2\n', 'a\nb\n', "label '\u00b2' is neither"),
    ('a0,a,train\nb0,b\n', 'a\nb\n', 'some rows give a split and others do not'),
    ('a0\n', 'a\nb\n', "line 1: expected name,label[,split], not 'a0'"),
    ('name,label\n', 'a\nb\n', 'lists no sequence'),
    ('a0,a\n', 'a\na\n', "class 'a' is listed twice"),
    ('a0,a\n', '\n', 'lists no class'),
    ('a0,a,train\n', 'a\nb\n', 'no sequence with a file goes to the test split'),
    ('a0,a\n', 'a\nb\n', 'no sequence with a file goes to the test split'),
])
def test_each_labels_and_classes_problem_is_named(tmp_path, capsys, labels, classes, problem):
    raw = write_dataset(tmp_path / 'raw', [('a0', 'a')])
    (tmp_path / 'raw' / 'labels.csv').write_text(labels)
    (tmp_path / 'raw' / 'classes.txt').write_text(classes)
    assert prepare(raw, tmp_path / 'out', '--layout', 'coco17') == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and problem in err and len(err.splitlines()) == 1


def test_lists_saved_with_a_byte_order_mark_read_as_without(tmp_path):
    # Excel's "CSV UTF-8" and Notepad start the file with U+FEFF; the header row must still be one
    rows = [('name', 'label', 'split'), ('a0', 'a', 'train'), ('b0', 'b', 'test')]
    raw = write_dataset(tmp_path / 'raw', rows[1:])
    for name, text in (('labels.csv', ''.join(','.join(r) + '\n' for r in rows)),
                       ('classes.txt', 'a\nb\n')):
        (tmp_path / 'raw' / name).write_text('\ufeff' + text, encoding='utf-8')
    assert prepare(raw, tmp_path / 'out', '--layout', 'coco17') == 0
    train = read_index(str(tmp_path / 'out' / 'raw.h5'), 'default', 'train')
    assert train['names'] == ['a0'] and train['attrs']['class_names'] == ['a', 'b']


def test_raw_given_as_the_current_folder_names_the_dataset_after_it(tmp_path, monkeypatch):
    raw = write_dataset(tmp_path / 'moves', [('a0', 'a', 'train'), ('b0', 'b', 'test')])
    monkeypatch.chdir(raw)
    assert prepare('.', tmp_path / 'out', '--layout', 'coco17') == 0
    assert os.listdir(tmp_path / 'out') == ['moves.h5']


def test_the_reference_npz_layout_is_refused_for_custom_data_before_anything_is_written(
        tmp_path, capsys):
    raw = write_dataset(tmp_path / 'raw', [('a0', 'a', 'train'), ('b0', 'b', 'test')])
    assert prepare(raw, tmp_path / 'out', '--layout', 'coco17', '--format', 'npz') == 2
    assert capsys.readouterr().err == (
        "error: the reference .npz layout is written for NTU RGB+D and PKU-MMD only (their "
        "benchmarks' files); raw is neither: use --format h5\n")
    assert not (tmp_path / 'out').exists() or os.listdir(tmp_path / 'out') == []


def test_missing_lists_layout_and_bad_options_are_named(tmp_path, capsys):
    raw = write_dataset(tmp_path / 'raw', [('a0', 'a')])
    os.remove(os.path.join(raw, 'classes.txt'))
    for extra, problem in (
        (['--layout', 'coco17'], 'classes.txt not found'),
        ([], '--layout is needed for custom data'),
        (['--layout', 'coco17', '--persons', '0'], '--persons 0'),
        (['--layout', 'coco17', '--test-ratio', '1'], '--test-ratio 1.0 is outside [0, 1)'),
    ):
        assert prepare(raw, tmp_path / 'out', *extra) == 2
        assert problem in capsys.readouterr().err


def test_a_layout_file_is_recorded_and_read_back(tmp_path):
    layout = tmp_path / 'rig.yaml'
    layout.write_text('joints: [a, b, c]\nedges: [[a, b], [b, c]]\ncentre: b\n')
    raw = write_dataset(tmp_path / 'raw', [('a0', 'a', 'train'), ('b0', 'b', 'test')], joints=3)
    assert prepare(raw, tmp_path / 'out', '--layout', str(layout), '--persons', '1') == 0
    feeder = build_feeder('pose2d', data_path=str(tmp_path / 'out' / 'raw.h5'),
                          benchmark='default', split='train', stream='bone')
    assert feeder.meta['layout'] == str(layout) and feeder.layout.centre == 1
    assert feeder[0][0].shape == (3, 64, 3, 1)


def pose2d_config(tmp_path, data, settings):
    """A config training CTR-GCN on the prepared 2D data file `data` (its benchmark `default`),
    into tmp_path/run, with the YAML lines `settings` added."""
    config = tmp_path / 'mine.yaml'
    config.write_text(f"""
work_dir: {tmp_path / 'run'}
feeder: pose2d
benchmark: default
train_feeder_args: {{data_path: {data}, window_size: 16}}
test_feeder_args: {{data_path: {data}, window_size: 16}}
model: ctrgcn
device: cpu
""" + settings)
    return config


@pytest.mark.slow
def test_a_model_trains_on_the_three_file_example(tmp_path):
    assert prepare(EXAMPLE, tmp_path / 'data', '--layout', 'coco17', '--persons', '1') == 0
    config = pose2d_config(tmp_path, tmp_path / 'data' / 'custom.h5', """
model_args: {num_class: 3, num_point: 17, num_person: 1, graph: coco17, channels: [8, 8],
             strides: [1, 2]}
batch_size: 2
test_batch_size: 2
num_epoch: 12
step: [10]
warm_up_epoch: 0
base_lr: 0.05
num_worker: 0
""")
    assert main(['--config', str(config)]) == 0
    with open(tmp_path / 'run' / 'log.txt') as f:
        losses = [float(line.split('train loss ')[1].split()[0]) for line in f
                  if 'train loss' in line]
    assert len(losses) == 12 and losses[-1] < 0.5 * losses[0]


def test_a_split_left_empty_by_bad_files_is_named_and_refused_by_training(tmp_path, capsys):
    raw = write_dataset(tmp_path / 'raw', [('a0', 'a', 'train'), ('b0', 'b', 'train'),
                                           ('b1', 'b', 'test')], classes=('a', 'b', 'kick'))
    np.save(os.path.join(raw, 'b1.npy'), np.ones((5, 25, 2)))     # 25 joints: skipped
    assert prepare(raw, tmp_path / 'data', '--layout', 'coco17', '--persons', '1') == 0
    printed = capsys.readouterr().out
    assert 'no sample in default test: a run needs samples in both splits' in printed
    assert '1 of the 3 classes have no sample: 2 (kick)' in printed

    config = pose2d_config(tmp_path, tmp_path / 'data' / 'raw.h5', """
model_args: {num_class: 3, num_point: 17, num_person: 1, graph: coco17}
""")
    assert main(['--config', str(config)]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'data' / 'raw.h5'}: the test split of benchmark default holds no "
        f"sample; prepare the data with samples in both splits\n")
    assert not (tmp_path / 'run').exists()
