"""python -m data.prepare pyskl: pyskl annotation files built here in pyskl's exact format (3D and
2D), their benchmarks, layouts and bad records."""

import os
import pickle

import numpy as np
import pytest

from data.prepare import main as prepare_main
from data.storage import SequenceReader, read_index
from feeders import build_feeder


def record_3d(rng, name, label, frames, persons=1):
    """A record as in pyskl's ntu60_3danno.pkl: float16 joints (M, T, 25, 3)."""
    return {'frame_dir': name, 'label': label, 'total_frames': frames,
            'keypoint': rng.normal(size=(persons, frames, 25, 3)).astype(np.float16)}


def record_2d(rng, name, label, frames, persons=1, shape=(1080, 1920)):
    """A record as in pyskl's ntu60_hrnet.pkl: 2D keypoints (M, T, 17, 2), keypoint_score
    (M, T, 17), img_shape and original_shape (height, width)."""
    score = rng.uniform(0.2, 1, (persons, frames, 17)).astype(np.float16)
    score[:, 0, 3] = 0  # one keypoint not detected
    return {'frame_dir': name, 'label': label, 'total_frames': frames, 'img_shape': shape,
            'original_shape': shape,
            'keypoint': rng.uniform(0, 1000, (persons, frames, 17, 2)).astype(np.float16),
            'keypoint_score': score}


def write_pickle(path, splits, annotations):
    """As pyskl writes its files (mmcv.dump: pickle protocol 2)."""
    with open(path, 'wb') as f:
        pickle.dump({'split': splits, 'annotations': annotations}, f, protocol=2)
    return str(path)


def prepare(path, out, *extra):
    return prepare_main(['pyskl', '--raw', path, '--out', str(out), '--workers', '1', *extra])


NAMES = ['S001C001P001R001A001', 'S001C002P002R001A002', 'S001C003P001R002A001',
         'S001C001P003R001A003']
SPLITS = {'xsub_train': NAMES[:3:2], 'xsub_val': NAMES[1::2],
          'xview_train': NAMES[1:3], 'xview_val': [NAMES[0], NAMES[3]]}


def test_a_3d_file_becomes_benchmarks_with_its_splits_order_and_ntu_names(tmp_path, capsys):
    rng = np.random.default_rng(0)
    records = [record_3d(rng, n, int(n[-3:]) - 1, 10 + i, persons=1 + i % 2)
               for i, n in enumerate(NAMES)]
    path = write_pickle(tmp_path / 'ntu60_3danno.pkl', SPLITS, records)
    assert prepare(path, tmp_path / 'out') == 0
    printed = capsys.readouterr().out
    assert '4 samples prepared from 4 records, 0 skipped' in printed
    # actions 1 to 3 are held: classes 3 to 59 are named as having no sample
    assert '57 of the 60 classes have no sample: 3-59' in printed
    stored = str(tmp_path / 'out' / 'ntu60_3danno.h5')
    for benchmark in ('xsub', 'xview'):
        for split, key in (('train', 'train'), ('test', 'val')):
            index = read_index(stored, benchmark, split)
            assert index['names'] == SPLITS[f'{benchmark}_{key}']
    index = read_index(stored)
    assert index['attrs']['layout'] == 'ntu25' and index['attrs']['num_class'] == 60
    assert index['attrs']['channels'] == 'x, y, z' and index['attrs']['centred'] == 'first actor'
    assert index['attrs']['class_names'][2] == 'brushing teeth'
    assert 'image_size' not in index
    feeder = build_feeder('skeleton', data_path=stored, benchmark='xview', split='test')
    for position, name in enumerate(SPLITS['xview_val']):
        keypoint = records[NAMES.index(name)]['keypoint']   # (M, T, V, C) float16
        frames = feeder.reader[position]                    # (T, 2, V, C) float32
        # centred on the spine middle (joint 1) of the first person's first frame
        expected = np.zeros((keypoint.shape[1], 2, 25, 3), dtype=np.float32)
        origin = keypoint[0, 0, 1].astype(np.float32)
        expected[:, : len(keypoint)] = keypoint.astype(np.float32).transpose(1, 0, 2, 3) - origin
        np.testing.assert_allclose(frames, expected, atol=1e-6)


def test_a_2d_file_gets_coco17_scores_as_third_channel_and_image_sizes(tmp_path):
    rng = np.random.default_rng(1)
    shapes = [(1080, 1920), (480, 640), (720, 1280, 3)]          # the last as an image's shape
    names = ['clip_a', 'clip_b', 'clip_c']
    records = [record_2d(rng, n, i, 6, persons=3, shape=s)
               for i, (n, s) in enumerate(zip(names, shapes))]
    # The train list's order is not the records' order: image sizes follow the split's order.
    path = write_pickle(tmp_path / 'mine_hrnet.pkl',
                        {'train1': [names[2], names[0]], 'test1': [names[1]]}, records)
    assert prepare(path, tmp_path / 'out') == 0
    stored = str(tmp_path / 'out' / 'mine_hrnet.h5')
    train = read_index(stored, 'split1', 'train')
    assert train['names'] == ['clip_c', 'clip_a']
    assert train['attrs']['layout'] == 'coco17' and train['attrs']['class_names'] == ['0', '1', '2']
    assert train['attrs']['channels'] == 'x, y, score' and train['attrs']['centred'] == ''
    np.testing.assert_array_equal(train['image_size'], [shapes[2][:2], shapes[0]])
    np.testing.assert_array_equal(read_index(stored, 'split1', 'test')['image_size'], [shapes[1]])
    feeder = build_feeder('pose2d', data_path=stored, benchmark='split1', split='train')
    frames = feeder.reader[1]                                # clip_a (T, 2, 17, 3): 2 persons kept
    keypoint = records[0]['keypoint'][:2].astype(np.float32).transpose(1, 0, 2, 3)
    score = records[0]['keypoint_score'][:2].astype(np.float32).transpose(1, 0, 2)
    np.testing.assert_array_equal(frames[..., :2], keypoint * (score[..., None] > 0))
    np.testing.assert_array_equal(frames[..., 2], score)
    assert not frames[0, :, 3].any()                         # the missed keypoint is (0, 0, 0)
    assert feeder.sample_info(1)['image_size'] == shapes[0]


def test_bad_records_are_named_by_frame_dir_and_skipped(tmp_path, capsys):
    rng = np.random.default_rng(2)
    good = [record_2d(rng, f'ok{i}', 0, 5) for i in range(2)]
    no_score = record_2d(rng, 'no_score', 0, 5)
    del no_score['keypoint_score']
    wrong_joints = record_2d(rng, 'wrong_joints', 0, 5)
    wrong_joints['keypoint'] = wrong_joints['keypoint'][:, :, :10]
    short = record_2d(rng, 'short', 0, 5)
    short['total_frames'] = 9
    nan = record_2d(rng, 'nan', 0, 5)
    nan['keypoint'][0, 2, 4, 0] = np.nan
    bad_label = record_2d(rng, 'bad_label', 'walk', 5)
    zeros = record_2d(rng, 'zeros', 0, 5)
    zeros['keypoint_score'][:] = 0
    repeated = record_2d(rng, 'ok0', 0, 5)
    records = [*good, no_score, wrong_joints, short, nan, bad_label, zeros, repeated, ['x']]
    names = [r['frame_dir'] for r in records[:-2]] + ['not_there']
    path = write_pickle(tmp_path / 'bad.pkl', {'a_train': names[:4], 'a_test': names[4:]},
                        records)
    assert prepare(path, tmp_path / 'out') == 0
    printed = capsys.readouterr().out
    assert '2 samples prepared from 10 records, 8 skipped as unreadable, 1 left out as listed ' \
           'in a split without a record' in printed
    for name, problem in (
        ('no_score', '2D keypoints need keypoint_score of shape (1, 5, 17)'),
        ('wrong_joints', 'keypoint has shape (1, 5, 10, 2)'),
        ('short', 'total_frames is 9 but keypoint holds 5 frames'),
        ('nan', 'keypoint holds NaN or Inf'),
        ('bad_label', "label 'walk' is not a class id"),
        ('zeros', 'every keypoint of the first person is zero'),
        ('ok0', 'a second record of that frame_dir'),
    ):
        assert f'{path}: {name}: {problem}' in printed
    assert f'{path}: annotation 9 is not a record with a frame_dir' in printed
    assert read_index(str(tmp_path / 'out' / 'bad.h5'), 'a', 'train')['names'] == ['ok0', 'ok1']


def test_layout_option_overrides_the_inferred_one(tmp_path, capsys):
    rng = np.random.default_rng(3)
    path = write_pickle(tmp_path / 'f.pkl', {'x_train': ['a'], 'x_val': ['b']},
                        [record_3d(rng, 'a', 0, 4), record_3d(rng, 'b', 1, 4)])
    assert prepare(path, tmp_path / 'out', '--layout', 'coco17') == 2
    err = capsys.readouterr().err
    assert err.startswith('error: no sample could be prepared from the 2 records')
    assert 'f.pkl: a: keypoint has shape (1, 4, 25, 3)' in err


@pytest.mark.parametrize('content, problem', [
    ({'split': {'xsub_train': ['a']}, 'annotations': []}, 'no benchmark found'),
    ({'annotations': []}, "not a pyskl annotation file (a dict with 'split' and 'annotations')"),
    ({'split': {'a_train': ['a'], 'a_val': []},
      'annotations': [{'frame_dir': 'a', 'label': 0, 'keypoint': np.zeros((1, 2, 7, 2))}]},
     'keypoints of 7 joints x 2 channels name no layout'),
])
def test_files_that_are_no_pyskl_file_are_refused(tmp_path, capsys, content, problem):
    path = tmp_path / 'x.pkl'
    path.write_bytes(pickle.dumps(content))
    assert prepare(str(path), tmp_path / 'out') == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and problem in err and len(err.splitlines()) == 1
    assert not os.path.exists(tmp_path / 'out' / 'x.h5')


def test_a_pickle_asking_for_code_is_refused_before_it_runs(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (os.system, ('touch ' + str(tmp_path / 'ran'),))

    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps({'split': {}, 'annotations': [Payload()]}))
    assert prepare(str(path), tmp_path / 'out') == 2
    assert 'refused: the pickle asks for' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'ran')


def test_empty_person_slots_stay_zero_after_centring_whatever_their_number(tmp_path):
    rng = np.random.default_rng(3)
    record = record_3d(rng, NAMES[0], 0, 12, persons=1)
    path = write_pickle(tmp_path / 'one.pkl', {'xsub_train': [NAMES[0]], 'xsub_val': [NAMES[0]]},
                        [record])
    assert prepare(path, tmp_path / 'out', '--persons', '3') == 0
    frames = SequenceReader(str(tmp_path / 'out' / 'one.h5'), *starts_and_lengths(tmp_path))[0]
    assert frames.shape == (12, 3, 25, 3)
    assert not frames[:, 1:].any()                        # the two empty slots
    expected = record['keypoint'][0].astype(np.float32) - record['keypoint'][0, 0, 1]
    np.testing.assert_allclose(frames[:, 0], expected, rtol=0, atol=1e-6)


def starts_and_lengths(tmp_path):
    index = read_index(str(tmp_path / 'out' / 'one.h5'), 'xsub', 'train')
    return index['start'], index['length']


def test_an_ntu_record_whose_label_disagrees_with_its_name_is_skipped(tmp_path, capsys):
    # one record of an NTU-60 file says label 70 (action 71 does not exist in NTU-60): it must
    # not make the file a 71-class dataset with numbered classes
    rng = np.random.default_rng(3)
    # (two records per action: the stray one ties with the one that agrees)
    names = [f'S001C001P{p:03d}R001A{a:03d}' for p in (1, 2) for a in (1, 2, 3)]
    records = [record_3d(rng, n, int(n[-3:]) - 1, 8) for n in names]
    records[4]['label'] = 70                                   # P002, action 2
    path = write_pickle(tmp_path / 'ntu60_3danno.pkl',
                        {'xsub_train': names[:3], 'xsub_val': names[3:]}, records)
    assert prepare(path, tmp_path / 'out') == 0
    printed = capsys.readouterr().out
    assert '5 samples prepared from 6 records, 1 skipped' in printed
    assert (f"{path}: {names[4]}: label 70 disagrees with the name's action id (label 1)"
            in printed)
    attrs = read_index(str(tmp_path / 'out' / 'ntu60_3danno.h5'))['attrs']
    assert attrs['num_class'] == 60 and attrs['class_names'][0] == 'drink water'


def test_numbered_labels_name_the_classes_without_a_sample(tmp_path, capsys):
    # labels 0, 1 and a stray 6: seven numbered classes, of which 2 to 5 have no sample
    rng = np.random.default_rng(4)
    records = [record_2d(rng, f'clip{i}', label, 5) for i, label in enumerate((0, 1, 6, 0))]
    names = [r['frame_dir'] for r in records]
    path = write_pickle(tmp_path / 'mine.pkl', {'train1': names[:2], 'test1': names[2:]}, records)
    assert prepare(path, tmp_path / 'out') == 0
    assert '4 of the 7 classes have no sample: 2-5' in capsys.readouterr().out


def test_an_ntu_subset_relabelled_from_zero_gets_numbered_classes(tmp_path, capsys):
    # actions 1, 2, 3 and 50 relabelled 0 to 3: the first three happen to agree with their names,
    # action 50's records all say 3, so the file is numbered and no record is dropped
    rng = np.random.default_rng(5)
    names = [f'S001C001P{p:03d}R001A{a:03d}' for p in (1, 2) for a in (1, 2, 3, 50)]
    records = [record_3d(rng, n, i % 4, 6) for i, n in enumerate(names)]
    path = write_pickle(tmp_path / 'subset.pkl',
                        {'xsub_train': names[:4], 'xsub_val': names[4:]}, records)
    assert prepare(path, tmp_path / 'out') == 0
    assert '8 samples prepared from 8 records, 0 skipped' in capsys.readouterr().out
    attrs = read_index(str(tmp_path / 'out' / 'subset.h5'))['attrs']
    assert attrs['class_names'] == ['0', '1', '2', '3']
