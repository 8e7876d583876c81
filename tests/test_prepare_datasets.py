"""Preparation of NW-UCLA and PKU-MMD from (real-format) fixtures, and the reference .npz layout."""

import json
import os
import shutil

import numpy as np
import pytest

from data import DataFileError
from data.pkummd import read_labels, read_split_file, translate_clip
from data.prepare import main as prepare_main
from data.storage import read_index
from feeders import build_feeder

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')
PKU = os.path.join(FIXTURES, 'pkummd')


def raw_rows(path):
    """A PKU-MMD skeleton file as (F, 2, 25, 3), read independently of data/pkummd.py."""
    return np.loadtxt(path, dtype=np.float32).reshape(-1, 2, 25, 3)


# ------------------------------------------------------------------------------------------ NW-UCLA


def test_ucla_keeps_the_reference_lists_order_and_one_frame_files(tmp_path, capsys):
    out = tmp_path / 'ucla'
    assert (
        prepare_main(
            ['ucla', '--raw', os.path.join(FIXTURES, 'nwucla'), '--out', str(out), '--workers', '1']
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert (
        '3 samples prepared from 3 files, 0 skipped as unreadable, 1481 left out as listed by the '
        'reference' in printed
    )
    train = read_index(str(out / 'ucla.h5'), 'xview', 'train')
    # Reference train list positions 58 and 967; labels 1 and 2 in the lists, 0-based here.
    assert train['names'] == ['a01_s01_e00_v01', 'a02_s09_e04_v02']
    assert train['labels'].tolist() == [0, 1] and train['length'].tolist() == [44, 1]
    assert train['attrs']['channels'] == 'x, y, z'
    test = build_feeder('ucla', data_path=str(out / 'ucla.h5'), benchmark='xview', split='test')
    assert test.names == ['a06_s02_e00_v03'] and test.labels.tolist() == [5]
    raw = np.asarray(
        json.load(open(os.path.join(FIXTURES, 'nwucla', 'a06_s02_e00_v03.json')))['skeletons']
    )
    # stored untouched
    np.testing.assert_array_equal(test.reader[0][:, 0], raw.astype(np.float32))
    # The one-frame sample goes through the train pipeline: 52 copies of its single frame.
    single = build_feeder(
        'ucla',
        data_path=str(out / 'ucla.h5'),
        benchmark='xview',
        split='train',
        random_rot=True,
        random_choose=True,
    )[1][0]
    assert single.shape == (3, 52, 20, 1) and np.all(single == single[:, :1])


def test_ucla_bad_json_is_reported_and_skipped(tmp_path, capsys):
    raw = tmp_path / 'raw'
    shutil.copytree(os.path.join(FIXTURES, 'nwucla'), raw)
    (raw / 'a01_s01_e00_v01.json').write_text(
        '{"file_name": "a01_s01_e00_v01",\n "skeletons": [[1, 2]\n'
    )
    (raw / 'a06_s02_e00_v03.json').write_text(json.dumps({'skeletons': [[[0, 0, 0]] * 19]}))
    assert (
        prepare_main(['ucla', '--raw', str(raw), '--out', str(tmp_path / 'out'), '--workers', '1'])
        == 0
    )
    printed = capsys.readouterr().out
    assert '1 samples prepared from 3 files, 2 skipped as unreadable' in printed
    assert 'a01_s01_e00_v01.json:3: not valid JSON' in printed
    assert (
        'a06_s02_e00_v03.json: "skeletons" has shape (1, 19, 3), expected (T >= 1, 20, 3)'
        in printed
    )
    assert read_index(str(tmp_path / 'out' / 'ucla.h5'), 'xview', 'test')['names'] == []


# ------------------------------------------------------------------------------------------ PKU-MMD


@pytest.mark.parametrize(
    'text, train, test',
    [
        (
            'Training videos: \n0002-L, 0004-R\nValidataion videos: \n0003-M\n',
            ['0002-L', '0004-R'],
            ['0003-M'],
        ),
        (
            'Training videos: 0002-L,0004-R\r\nValidation videos: 0003-M, 0005-L,\r\n',
            ['0002-L', '0004-R'],
            ['0003-M', '0005-L'],
        ),
    ],
)
def test_split_files_are_read_leniently(tmp_path, text, train, test):
    path = tmp_path / 'cross-subject.txt'
    path.write_text(text)
    assert read_split_file(str(path)) == (train, test)


@pytest.mark.parametrize(
    'text, message',
    [
        ('0002-L, 0004-R\n0003-M\n', 'no sequence id .* after a "Training videos:" line'),
        (
            'Training videos:\n0002-L\nValidation videos:\n\n',
            'no sequence id .* after a "Validation videos:" line',
        ),
        (
            'Training videos:\n0002-L\nValidation videos:\n0002-L\n',
            '1 sequences are listed for both',
        ),
    ],
)
def test_bad_split_files_fail_clearly(tmp_path, text, message):
    path = tmp_path / 'cross-view.txt'
    path.write_text(text)
    with pytest.raises(DataFileError, match=f'{path}: {message}'):
        read_split_file(str(path))


def test_label_lines_with_problems_are_named():
    path = os.path.join(PKU, 'label', '0002-L.txt')
    intervals, problems = read_labels(path)
    assert intervals == [(1, 5, 10, 25), (2, 14, 28, 70), (5, 7, 90, 130)]
    assert problems == [
        f'{path}:3: unknown action id 52 (1..51)',
        f'{path}:4: expected action_id,start_frame,end_frame,confidence',
    ]


def test_clip_translation_by_hand():
    clip = np.zeros((4, 2, 25, 3), dtype=np.float32)
    clip[1, 1] = 5.0  # frame 1: only body 2 → the origin is its joint 1
    clip[1, 1, 1] = [1, 2, 3]
    clip[2, 0] = 7.0  # frame 2: only body 1; frames 0 and 3 hold nobody
    out = translate_clip(clip)
    assert out.shape == (2, 2, 25, 3)
    # absent body stays zero
    np.testing.assert_array_equal(out[0, 0], 0)
    np.testing.assert_array_equal(out[0, 1, 1], [0, 0, 0])
    np.testing.assert_array_equal(out[0, 1, 0], [4, 3, 2])
    np.testing.assert_array_equal(out[1, 0, 0], [6, 5, 4])
    np.testing.assert_array_equal(out[1, 1], 0)


def test_pkummd_clips_splits_and_summary(tmp_path, capsys):
    out = tmp_path / 'pkummd'
    assert prepare_main(['pkummd', '--raw', PKU, '--out', str(out), '--workers', '2']) == 0
    printed = capsys.readouterr().out
    assert (
        'pkummd: 5 samples prepared from 2 files, 2 skipped as unreadable, 1 left out as listed in '
        'a split file without a skeleton file, 1 left out as in no split list'
    ) in printed
    assert 'label/0002-L.txt:3: unknown action id 52' in printed
    xsub_train = build_feeder(
        'skeleton',
        data_path=str(out / 'pkummd.h5'),
        benchmark='xsub',
        split='train',
        window_size=16,
    )
    assert xsub_train.names == ['0002-L_001', '0002-L_002', '0002-L_005']
    assert xsub_train.labels.tolist() == [4, 13, 6]
    assert (
        xsub_train.meta['class_names'][13] == 'handshaking' and xsub_train.meta['num_class'] == 51
    )
    rows = raw_rows(os.path.join(PKU, 'skeleton', '0002-L.txt'))
    # Clip 2 is frames 28..70; the second body enters at frame 32.
    clip = xsub_train.reader[1]
    origin = rows[28, 0, 1]
    assert clip.shape == (43, 2, 25, 3)
    np.testing.assert_allclose(clip[:, 0], rows[28:71, 0] - origin, atol=1e-6)
    np.testing.assert_array_equal(clip[:4, 1], 0)
    np.testing.assert_allclose(clip[4:, 1], rows[32:71, 1] - origin, atol=1e-6)
    # 90..130 cut at the file's end
    assert xsub_train.reader[2].shape == (11, 2, 25, 3)
    assert read_index(str(out / 'pkummd.h5'), 'xsub', 'test')['names'] == [
        '0003-M_001',
        '0003-M_002',
    ]
    assert read_index(str(out / 'pkummd.h5'), 'xview', 'train')['names'] == [
        '0003-M_001',
        '0003-M_002',
    ]
    assert read_index(str(out / 'pkummd.h5'), 'xview', 'test')['labels'].tolist() == [4, 13, 6]
    data, label, _ = build_feeder(
        'skeleton',
        data_path=str(out / 'pkummd.h5'),
        benchmark='xview',
        split='test',
        window_size=16,
    )[1]
    assert data.shape == (3, 16, 25, 2) and label == 13


def test_pkummd_without_split_files_is_a_clear_error(tmp_path, capsys):
    raw = tmp_path / 'raw'
    shutil.copytree(PKU, raw)
    os.remove(raw / 'split' / 'cross-view.txt')
    assert prepare_main(['pkummd', '--raw', str(raw), '--out', str(tmp_path / 'out')]) == 2
    assert 'holds no cross-view.txt (the PKU-MMD split files)' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


# ---------------------------------------------------------------------------- reference .npz layout


def test_npz_layout_matches_the_h5_splits_and_feeds_identically(tmp_path, capsys):
    raw = os.path.join(FIXTURES, 'ntu')
    assert (
        prepare_main(['ntu60', '--raw', raw, '--out', str(tmp_path / 'h5'), '--workers', '1']) == 0
    )
    assert (
        prepare_main(
            [
                'ntu60',
                '--raw',
                raw,
                '--out',
                str(tmp_path / 'npz'),
                '--format',
                'npz',
                '--workers',
                '1',
            ]
        )
        == 0
    )
    # The longest fixture file: S003C001P015R001A034, 71 frames (its first line), all with a body.
    assert 'frames padded to 71, the longest sequence' in capsys.readouterr().out
    # no scratch left
    assert sorted(os.listdir(tmp_path / 'npz')) == ['NTU60_CS.npz', 'NTU60_CV.npz']
    # what another codebase's loader sees
    with np.load(tmp_path / 'npz' / 'NTU60_CV.npz') as f:
        x_train, y_train, x_test, y_test = f['x_train'], f['y_train'], f['x_test'], f['y_test']
    h5_train = read_index(str(tmp_path / 'h5' / 'ntu60.h5'), 'xview', 'train')
    h5_test = read_index(str(tmp_path / 'h5' / 'ntu60.h5'), 'xview', 'test')
    assert (
        x_train.shape == (1, 71, 150)
        and x_test.shape == (2, 71, 150)
        and x_train.dtype == np.float32
    )
    assert y_test.shape == (2, 60) and y_test.sum(axis=1).tolist() == [1, 1]
    assert np.where(y_test > 0)[1].tolist() == h5_test['labels'].tolist()
    assert np.where(y_train > 0)[1].tolist() == h5_train['labels'].tolist()
    h5_feeder = build_feeder(
        'skeleton',
        data_path=str(tmp_path / 'h5' / 'ntu60.h5'),
        benchmark='xview',
        split='test',
        window_size=32,
    )
    for i, length in enumerate(h5_test['length']):
        stored = h5_feeder.reader[i].reshape(length, 150)
        np.testing.assert_array_equal(x_test[i, :length], stored)
        np.testing.assert_array_equal(x_test[i, length:], 0)  # zero padding
    npz_feeder = build_feeder(
        'skeleton', data_path=str(tmp_path / 'npz' / 'NTU60_CV.npz'), split='test', window_size=32
    )
    assert npz_feeder.names == h5_feeder.names and npz_feeder.class_names == h5_feeder.class_names
    for i in range(2):
        np.testing.assert_array_equal(npz_feeder[i][0], h5_feeder[i][0])


def test_plain_reference_npz_is_read_with_reference_names(tmp_path):
    x = np.zeros((3, 20, 150), dtype=np.float32)
    x[:, :12] = np.random.default_rng(0).normal(size=(3, 12, 150))
    y = np.eye(60)[[7, 0, 59]]
    np.savez(tmp_path / 'NTU60_CS.npz', x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    feeder = build_feeder(
        'skeleton',
        data_path=str(tmp_path / 'NTU60_CS.npz'),
        split='train',
        window_size=12,
        p_interval=[1.0],
    )
    assert feeder.names == ['train_0', 'train_1', 'train_2'] and feeder.labels.tolist() == [
        7,
        0,
        59,
    ]
    data, label, _ = feeder[2]
    assert label == 59
    # The reference reshape: (T, 150) → (T, 2, 25, 3) → (C, T, V, M); 12 valid frames resized to
    # 12.
    np.testing.assert_allclose(
        data, x[2, :12].reshape(12, 2, 25, 3).transpose(3, 0, 2, 1), atol=1e-6
    )


def test_bad_npz_inputs_are_named(tmp_path):
    np.savez_compressed(
        tmp_path / 'packed.npz', x_train=np.zeros((1, 5, 150), np.float32), y_train=np.eye(1)
    )
    with pytest.raises(Exception, match='packed.npz is compressed'):
        build_feeder('skeleton', data_path=str(tmp_path / 'packed.npz'), split='train')
    np.savez(tmp_path / 'ucla.npz', x_train=np.zeros((1, 5, 60), np.float32), y_train=np.eye(1))
    with pytest.raises(
        Exception, match=r'ucla.npz: x_train has shape \(1, 5, 60\), expected \(N, T, 150\)'
    ):
        build_feeder('skeleton', data_path=str(tmp_path / 'ucla.npz'), split='train')
    with pytest.raises(Exception, match='has no x_test array'):
        build_feeder('skeleton', data_path=str(tmp_path / 'ucla.npz'), split='test')
