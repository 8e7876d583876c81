"""NTU RGB+D preparation: parsing real files, the reference's denoising rules on constructed cases,
splits."""

import os
import shutil

import h5py
import numpy as np
import pytest

from data.ntu import SkeletonFileError, prepare_sequence, read_bodies
from data.ntu_splits import split_orders
from data.prepare import main as prepare_main
from data.storage import read_index
from feeders import build_feeder
from torchlight.registry import ConfigError

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'ntu')
ONE_BODY_LF = os.path.join(FIXTURES, 'S001C001P001R001A005.skeleton')
TWO_BODIES_CRLF = os.path.join(FIXTURES, 'S001C003P008R002A058.skeleton')


# --------------------------------------------------------------------------------------- real files


def test_parse_real_files_lf_and_crlf(tmp_path):
    bodies, frames = read_bodies(ONE_BODY_LF)
    assert frames == 54 and len(bodies) == 1 and bodies[0].length == 54
    assert bodies[0].stacked().shape == (54, 25, 3)
    # The first joint line of the file: "0.2187878 0.1726486 3.785524 ..." (x y z first).
    first = open(ONE_BODY_LF).read().split('\n')[4].split()[:3]
    np.testing.assert_array_equal(bodies[0].joints[0][0], np.array(first, dtype=np.float32))
    crlf = tmp_path / 'S001C001P001R001A005.skeleton'
    crlf.write_bytes(open(ONE_BODY_LF, 'rb').read().replace(b'\n', b'\r\n'))
    again, _ = read_bodies(str(crlf))
    np.testing.assert_array_equal(again[0].stacked(), bodies[0].stacked())


def test_two_person_real_sample():
    bodies, frames = read_bodies(TWO_BODIES_CRLF)
    assert frames == 70 and [b.length for b in bodies] == [70, 70]
    out = prepare_sequence(TWO_BODIES_CRLF)
    assert out.shape == (70, 2, 25, 3)
    # Actor 1 is the body that moves more; the origin is its spine-middle joint in the first frame.
    motions = [np.var(b.stacked().reshape(-1, 3), axis=0).sum() for b in bodies]
    actor1 = bodies[int(np.argmax(motions))].stacked()
    np.testing.assert_allclose(out[0, 0, 1], 0, atol=1e-7)
    np.testing.assert_allclose(out[:, 0], actor1 - actor1[0, 1], atol=1e-6)


def test_one_person_sample_is_translated_to_its_first_spine_middle():
    out = prepare_sequence(ONE_BODY_LF)
    raw = read_bodies(ONE_BODY_LF)[0][0].stacked()
    assert out.shape == (54, 1, 25, 3)
    np.testing.assert_array_equal(out[:, 0], raw - raw[0, 1])


# -------------------------------------------------------------------------------- constructed files


def standing_body(x=0.0, spread_x=0.2, spread_y=1.2, wobble=0.0):
    """25 joints on a vertical line; x spread `spread_x`, y spread `spread_y`, shifted by x and
    wobble."""
    joints = np.zeros((25, 3))
    joints[:, 0] = x + np.linspace(-spread_x / 2, spread_x / 2, 25) + wobble
    joints[:, 1] = np.linspace(-spread_y / 2, spread_y / 2, 25)
    joints[:, 2] = 3.0
    return joints


def write_skeleton(path, frames):
    """frames: per frame a list of (body id, (25, 3) joints). Written in the dataset's text
    format."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, joints in bodies:
            lines.append(f'{body_id} 0 1 1 1 1 0 0.0 0.0 2')
            lines.append('25')
            lines += [f'{x:.6f} {y:.6f} {z:.6f} 0 0 0 0 0 0 0 0 2' for x, y, z in joints]
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def test_short_lived_extra_body_is_dropped(tmp_path):
    frames = [
        [('1', standing_body(wobble=0.01 * f))] + ([('2', standing_body(x=1.0))] if f < 11 else [])
        for f in range(40)
    ]
    out = prepare_sequence(write_skeleton(tmp_path / 'S001C001P001R001A001.skeleton', frames))
    # 11 frames <= 11: noise; one actor left
    assert out.shape == (40, 1, 25, 3)


def test_body_with_large_spread_is_dropped(tmp_path):
    # Body 2 is wider than tall (x-spread 1.5 > 0.8 × y-spread 1.2) in 30 of 40 frames: 75 % >=
    # 69.754 %.
    frames = [
        [
            ('1', standing_body(wobble=0.01 * f)),
            ('2', standing_body(x=2.0, spread_x=1.5 if f < 30 else 0.2, wobble=0.05 * f)),
        ]
        for f in range(40)
    ]
    out = prepare_sequence(write_skeleton(tmp_path / 'S001C001P001R001A001.skeleton', frames))
    assert out.shape == (40, 1, 25, 3)
    # At 50 % wide frames it stays, as the second actor.
    frames = [
        [
            ('1', standing_body(wobble=0.01 * f)),
            ('2', standing_body(x=2.0, spread_x=1.5 if f < 20 else 0.2, wobble=0.05 * f)),
        ]
        for f in range(40)
    ]
    assert (
        prepare_sequence(write_skeleton(tmp_path / 'S001C001P001R001A002.skeleton', frames)).shape[
            1
        ]
        == 2
    )


def test_actor_assignment_and_missing_frames(tmp_path):
    # Body 'a' moves most and is seen in frames 0-14 and 30-44, so its (compacted) interval is [0,
    # 29]. Body 'b' (frames 10-40) overlaps it: actor 2. Body 'c' (frames 5-20) overlaps both:
    # dropped. Frames 41-44 then hold nothing in either slot: removed, 41 frames remain.
    frames = []
    for f in range(45):
        bodies = []
        if f < 15 or f >= 30:
            bodies.append(('a', standing_body(x=0.5 * np.sin(f))))
        if 10 <= f <= 40:
            bodies.append(('b', standing_body(x=3.0, wobble=0.02 * f)))
        if 5 <= f <= 20:
            bodies.append(('c', standing_body(x=-3.0, wobble=0.01 * f)))
        frames.append(bodies)
    out = prepare_sequence(write_skeleton(tmp_path / 'S001C001P001R001A050.skeleton', frames))
    assert out.shape == (41, 2, 25, 3)
    a = np.stack([standing_body(x=0.5 * np.sin(f)) for f in list(range(15)) + list(range(30, 45))])
    origin = a[0, 1].astype(np.float32)
    # actor 1 compacted into 0-29
    np.testing.assert_allclose(out[:30, 0], a - origin, atol=1e-5)
    np.testing.assert_allclose(out[30:, 0], 0)  # then empty (re-zeroed)
    np.testing.assert_allclose(out[:10, 1], 0)  # actor 2 from frame 10
    # body b, right of the origin
    assert np.all(out[10:41, 1, :, 0] > 2.0)


def test_body_after_actor_one_ends_joins_its_slot(tmp_path):
    # 'a' (frames 0-19) moves most; 'b' (frames 19-39) touches it at one frame only: not an overlap
    # for the reference, so 'b' fills actor 1's slot from frame 19 on (overwriting a's last frame).
    frames = [
        [
            (n, standing_body(x=x + 0.3 * np.sin(f) * (n == 'a')))
            for n, x, lo, hi in (('a', 0.0, 0, 19), ('b', 2.0, 19, 39))
            if lo <= f <= hi
        ]
        for f in range(40)
    ]
    out = prepare_sequence(write_skeleton(tmp_path / 'S001C001P001R001A050.skeleton', frames))
    assert out.shape == (40, 2, 25, 3)
    np.testing.assert_array_equal(out[:, 1], 0)  # nobody in actor 2's slot
    assert np.all(out[19:, 0, :, 0] > 1.0) and np.all(out[:19, 0, :, 0] < 1.0)


@pytest.mark.parametrize(
    'text, message',
    [
        ('3\n1\n', 'file ends early'),
        ('1\n1\nbody 0 1 1 1 1 0 0 0 2\n24\n', 'must have 25 joints'),
        ('x\n', 'expected the frame count'),
        ('2\n0\n0\n', 'no frame has a body'),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, text, message):
    path = tmp_path / 'S001C001P001R001A001.skeleton'
    path.write_text(text)
    with pytest.raises(SkeletonFileError, match=f'{path}.*{message}'):
        prepare_sequence(str(path))


def test_nan_is_refused(tmp_path):
    path = write_skeleton(
        tmp_path / 'S001C001P001R001A001.skeleton', [[('1', standing_body())]] * 3
    )
    text = open(path).read().replace('3.000000', 'nan', 1)
    open(path, 'w').write(text)
    with pytest.raises(SkeletonFileError, match=r'\.skeleton:5: NaN or Inf'):
        prepare_sequence(path)


# ------------------------------------------------------------------------------------------- splits


def test_splits_follow_the_reference_id_lists_and_order():
    names = [
        'S001C001P003R001A001',
        'S001C002P001R001A001',
        'S001C003P002R001A001',
        'S002C001P001R001A002',
        'S002C002P041R001A001',
        'S018C001P045R001A061',
    ]
    orders = split_orders(names[:5], 'ntu60', 'xsub')
    # Train performers 1, 2 (in that order), each in name order; performer 3 tests; 41 is in neither
    # list.
    assert orders == {'train': [1, 3, 2], 'test': [0]}
    assert split_orders(names[:5], 'ntu60', 'xview') == {'train': [1, 4, 2], 'test': [0, 3]}
    assert split_orders(names, 'ntu120', 'xset') == {'train': [3, 4, 5], 'test': [0, 1, 2]}
    assert split_orders(names, 'ntu120', 'xsub') == {'train': [1, 3, 2, 5], 'test': [0, 4]}


# --------------------------------------------------------------------------------- the command line


def test_prepare_command_writes_both_benchmarks(tmp_path, capsys):
    raw = tmp_path / 'raw'
    shutil.copytree(FIXTURES, raw)
    (raw / 'S001C001P002R001A010.skeleton').write_text('3\n1\n')  # truncated
    # on the official missing list
    shutil.copy(ONE_BODY_LF, raw / 'S001C002P005R002A008.skeleton')
    # an NTU-120 action in NTU-60 setups
    shutil.copy(ONE_BODY_LF, raw / 'S001C002P005R002A061.skeleton')
    out = tmp_path / 'ntu60'
    assert prepare_main(['ntu60', '--raw', str(raw), '--out', str(out), '--workers', '2']) == 0
    printed = capsys.readouterr().out
    assert (
        '3 samples prepared from 5 files, 2 skipped as unreadable, '
        '1 left out as on the official list'
        in printed
    )
    assert 'S001C002P005R002A061.skeleton: unknown action id A061 for ntu60 (A001..A060)' in printed
    assert 'S001C001P002R001A010.skeleton:3: file ends early' in printed
    train = build_feeder(
        'skeleton', data_path=str(out / 'ntu60.h5'), benchmark='xsub', split='train', window_size=8
    )
    # Performers 1, 8 and 15 all train, in that order; labels are A - 1.
    assert train.names == ['S001C001P001R001A005', 'S001C003P008R002A058', 'S003C001P015R001A034']
    assert train.labels.tolist() == [4, 57, 33]
    assert read_index(str(out / 'ntu60.h5'), 'xsub', 'test')['names'] == []
    assert train.meta['class_names'][57] == 'handshaking' and train.meta['num_class'] == 60
    assert train.meta['centred'] == 'first actor'   # predict.py centres inputs so
    stored = train.reader[0]
    expected = prepare_sequence(ONE_BODY_LF)
    assert stored.shape == (54, 2, 25, 3)
    np.testing.assert_array_equal(stored[:, 0], expected[:, 0])
    np.testing.assert_array_equal(stored[:, 1], 0)  # NTU-60: second slot empty
    # camera 3
    with pytest.raises(ConfigError, match=r'ntu60.h5 holds the benchmarks xsub, xview; no '
                                          r"benchmark was named \(set the config's top-level "
                                          r'key benchmark to one of them\)'):
        build_feeder('skeleton', data_path=str(out / 'ntu60.h5'), split='test')
    # One file; each sample's frames stored once, whatever the benchmarks that use it.
    assert os.listdir(out) == ['ntu60.h5']
    with h5py.File(out / 'ntu60.h5', 'r') as f:
        assert sorted(f['splits']) == ['xsub', 'xview'] and len(f['names']) == 3
        frames = sum(len(train.reader[i]) for i in range(3))
        assert f['joints'].shape[0] == f['length'][:].sum() == frames
    assert read_index(str(out / 'ntu60.h5'), 'xview', 'train')['names'] == ['S001C003P008R002A058']
    assert read_index(str(out / 'ntu60.h5'), 'xview', 'test')['names'] == [
        'S001C001P001R001A005',
        'S003C001P015R001A034',
    ]


def test_ntu120_repeats_a_single_actor_and_strict_stops_cleanly(tmp_path, capsys):
    raw = tmp_path / 'raw'
    shutil.copytree(FIXTURES, raw)
    out = tmp_path / 'ntu120'
    assert prepare_main(['ntu120', '--raw', str(raw), '--out', str(out), '--workers', '1']) == 0
    stored = build_feeder(
        'skeleton', data_path=str(out / 'ntu120.h5'), benchmark='xsub', split='train', window_size=8
    ).reader[0]
    np.testing.assert_array_equal(stored[:, 1], stored[:, 0])
    (raw / 'S001C001P002R001A010.skeleton').write_text('3\n1\n')
    strict_out = tmp_path / 'strict'
    assert prepare_main(['ntu120', '--raw', str(raw), '--out', str(strict_out), '--strict']) == 2
    assert 'file ends early' in capsys.readouterr().err
    assert not any(f.endswith('.h5') for _, _, files in os.walk(strict_out) for f in files)
    assert prepare_main(['ntu60', '--raw', str(tmp_path / 'nowhere'), '--out', str(out)]) == 2
    assert 'is not a directory' in capsys.readouterr().err
