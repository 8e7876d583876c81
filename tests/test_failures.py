"""Issue 14: every failure tried as a new user would, each built from the failing input. Where an
error is due it is one line, `error: ...` on stderr, naming the file or option, with exit code 2."""

import json
import os
import pickle
import re
import shutil
import time
from typing import Annotated

import h5py
import numpy as np
import pytest
import torch
import yaml

from data.prepare import main as prepare_main
from data.storage import read_index, write_split
from feeders import build_feeder
from graph import get_layout
from main import build_datasets, build_trainer, main, parse_args
from tests.conftest import write_tiny_config
from tests.runs import checkpoint_test_args
from tools.ensemble import main as ensemble_main
from tools.tables import main as tables_main
from torchlight.checkpoint import load_checkpoint
from torchlight.distributed import Context
from torchlight.files import atomic_write, check_output_file, check_output_folder
from torchlight.metrics import ambiguous_metrics, format_groups, format_metrics
from torchlight.outputs import RunOutputs
from torchlight.registry import ConfigError, Registry
from torchlight.trainer import differences
from torchlight.validation import Range
from torchlight.workdir import WorkDirLock, new_test_folder, open_training_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NTU = os.path.join(ROOT, 'tests', 'fixtures', 'ntu')
UCLA = os.path.join(ROOT, 'tests', 'fixtures', 'nwucla')
DEAD_PID = 99999999  # above any pid_max: no such process


def refused(capsys, *argv, run=main):
    """Run a command that must fail; returns its one error line."""
    assert run(list(map(str, argv))) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('error: ') and 'Traceback' not in err, err
    return err.strip()


def tree(folder):
    return sorted(
        os.path.relpath(os.path.join(r, f), folder) for r, _, fs in os.walk(folder) for f in fs
    )


# ------------------------------------------------------------------------------ 1. --overwrite


def test_overwrite_refuses_a_folder_that_holds_no_run(tiny_config, tmp_path, capsys):
    config, _ = tiny_config
    checkout = tmp_path / 'checkout'
    (checkout / '.git').mkdir(parents=True)
    (checkout / '.git' / 'HEAD').write_text('ref: refs/heads/main\n')
    (checkout / 'README.md').write_text('mine\n')
    before = tree(checkout)
    error = refused(capsys, '--config', config, '--work-dir', checkout, '--overwrite')
    assert f'work_dir {checkout} holds .git, README.md, not a run of this framework' in error
    assert tree(checkout) == before


def test_a_run_stopped_before_its_first_epoch_is_replaced_with_overwrite_only(tmp_path):
    # what a run stopped in its first epoch leaves (Ctrl-C, or a loss that became NaN)
    stopped = tmp_path / 'stopped'
    stopped.mkdir()
    for name in ('config.yaml', 'log.txt', '.lock'):
        (stopped / name).write_text('written by the stopped run\n')
    with pytest.raises(ConfigError, match='holds a run that stopped before its first epoch was '
                                          'saved; pass --overwrite to start it again'):
        open_training_folder(str(stopped), resume=False, overwrite=False)
    assert tree(stopped) == ['.lock', 'config.yaml', 'log.txt']
    lock, notes = open_training_folder(str(stopped), resume=False, overwrite=True)
    lock.release()
    assert tree(stopped) == ['.lock'] and notes == [f'replaced the run in {stopped} (--overwrite)']
    # CTR-GCN's work dirs hold a config.yaml and a log.txt too, but never this framework's lock
    theirs = tmp_path / 'ctrgcn_run'
    theirs.mkdir()
    for name in ('config.yaml', 'log.txt'):
        (theirs / name).write_text('written by CTR-GCN\n')
    with pytest.raises(ConfigError, match='not a run of this framework'):
        open_training_folder(str(theirs), resume=False, overwrite=True)
    assert tree(theirs) == ['config.yaml', 'log.txt']


# --------------------------------------------------------------- 2, 3, 14. data/prepare.py inputs


def prepare(raw, out, *extra):
    return prepare_main(['ntu60', '--raw', str(raw), '--out', str(out), '--workers', '1', *extra])


def test_preparation_of_only_bad_files_keeps_the_good_splits(tmp_path, capsys):
    out = tmp_path / 'ntu60'
    assert prepare(NTU, out) == 0
    good = read_index(str(out / 'ntu60.h5'), 'xsub', 'train')['names']
    bad = tmp_path / 'bad'
    bad.mkdir()
    for name in os.listdir(NTU):
        (bad / name).write_text('3\n1\n')
    capsys.readouterr()
    error = refused(
        capsys,
        'ntu60',
        '--raw',
        bad,
        '--out',
        out,
        '--workers',
        '1',
        '--overwrite',
        run=prepare_main,
    )
    assert 'no sample could be prepared from the 3 files found in --raw (3 unreadable' in error
    assert 'nothing written' in error
    assert read_index(str(out / 'ntu60.h5'), 'xsub', 'train')['names'] == good
    assert prepare(NTU, out, '--overwrite') == 0
    printed = capsys.readouterr().out
    assert f"{out / 'ntu60.h5'}: 3 xsub train, 0 xsub test, " in printed
    assert '(replaced a file of 3 samples)' in printed


def test_preparing_an_existing_output_again_says_so_and_rewrites_nothing(tmp_path, capsys):
    out = tmp_path / 'ntu60'
    assert prepare(NTU, out) == 0
    before = {path: os.path.getmtime(out / path) for path in tree(out)}
    capsys.readouterr()
    assert prepare(NTU, out) == 0
    printed = capsys.readouterr().out
    # The three fixture files, each sample stored once.
    assert printed == (
        f"ntu60 is prepared already: {out / 'ntu60.h5'} (3 samples); nothing rewritten (add "
        f"--overwrite to prepare it again)\n"
    )
    assert {path: os.path.getmtime(out / path) for path in tree(out)} == before


def test_preparation_removes_what_a_killed_one_left(tmp_path, capsys):
    out = tmp_path / 'ntu60'
    out.mkdir()
    (out / f'ntu60.h5.tmp{DEAD_PID}').write_bytes(b'x' * 1000)
    (out / f'.prepare-{DEAD_PID}').mkdir()
    (out / f'.prepare-{DEAD_PID}' / 'ntu60.h5').write_bytes(b'y' * 100)
    alive = out / f'NTU60_CS.npz.tmp{os.getpid()}'  # a running preparation's file stays
    alive.write_bytes(b'z')
    # the preparation writes at the top of --out only: a user's files below are not its own
    (out / 'notes').mkdir()
    (out / 'notes' / f'draft.txt.tmp{DEAD_PID}').write_text('mine')
    assert prepare(NTU, out) == 0
    printed = capsys.readouterr().out
    assert 'removed 2 files left by a killed preparation (0.0 MiB)' in printed
    assert f'ntu60.h5.tmp{DEAD_PID}' in printed
    assert not (out / f'ntu60.h5.tmp{DEAD_PID}').exists()
    assert not (out / f'.prepare-{DEAD_PID}').exists() and alive.exists()
    assert (out / 'notes' / f'draft.txt.tmp{DEAD_PID}').read_text() == 'mine'


def skeleton_file(folder, name, text):
    path = folder / f'{name}.skeleton'
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    return path


def joint_lines(numbers=12, value='0.5'):
    return '\n'.join([' '.join([value] * numbers)] * 25)


def one_frame(numbers=12, value='0.5'):
    return f'1\nbody 0 1 1 1 1 0 0.0 0.0 2\n25\n{joint_lines(numbers, value)}\n'


@pytest.mark.parametrize(
    'name, text, reason',
    [
        (
            'S001C001P002R001A010',
            bytes(range(256)) * 4,
            'not a text file (byte 0x80 at offset 128)',
        ),
        (
            'S001C001P002R001A011',
            '2\n' + one_frame(value='0') * 2,
            'every joint coordinate is zero',
        ),
        ('my_recording', '1\n' + one_frame(), 'not an NTU sample name (SsssCcccPpppRrrrAaaa)'),
        (
            'S001C001P002R001A012',
            '1\n' + one_frame() * 2,
            ':30: more lines after the 1 frames that the file declares',
        ),
        (
            'S001C001P002R001A013',
            '1\n' + one_frame(numbers=11),
            ':5: a joint line has 11 numbers, expected 12',
        ),
    ],
)
def test_bad_skeleton_files_are_reported_and_skipped(tmp_path, capsys, name, text, reason):
    raw = tmp_path / 'raw'
    shutil.copytree(NTU, raw)
    path = skeleton_file(raw, name, text)
    assert prepare(raw, tmp_path / 'out') == 0
    printed = capsys.readouterr().out
    assert '3 samples prepared from 4 files, 1 skipped as unreadable' in printed
    assert f'{path}' in printed and reason in printed


def test_binary_ucla_file_is_reported_and_skipped(tmp_path, capsys):
    raw = tmp_path / 'raw'
    shutil.copytree(UCLA, raw)
    (raw / 'a06_s02_e00_v03.json').write_bytes(b'\xff\xfe\x00binary' * 10)
    assert (
        prepare_main(['ucla', '--raw', str(raw), '--out', str(tmp_path / 'out'), '--workers', '1'])
        == 0
    )
    printed = capsys.readouterr().out
    assert '2 samples prepared from 3 files, 1 skipped as unreadable' in printed
    assert 'a06_s02_e00_v03.json: not a text file (byte 0xff at offset 0)' in printed


def test_out_naming_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / 'data.txt'
    target.write_text('keep me')
    error = refused(capsys, 'ntu60', '--raw', NTU, '--out', target, run=prepare_main)
    assert error == f'error: --out {target} is a file, not a folder'
    assert target.read_text() == 'keep me'


# ---------------------------------------------------------------- 3, 5, 16. the work dir


def test_a_run_removes_the_temporary_files_of_a_killed_one(tmp_path):
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    (work_dir / 'config.yaml').write_text('{}')
    (work_dir / 'last.pt').write_bytes(b'checkpoint')
    (work_dir / f'last.pt.tmp{DEAD_PID}').write_bytes(b'x' * 2**20)
    (work_dir / f'results.json.tmp{DEAD_PID}').write_bytes(b'{')
    lock, notes = open_training_folder(str(work_dir), resume=True, overwrite=False)
    lock.release()
    assert notes == [
        f'removed 2 temporary files left by a killed run (1.0 MiB): '
        f'{work_dir}/last.pt.tmp{DEAD_PID}, {work_dir}/results.json.tmp{DEAD_PID}'
    ]
    assert sorted(os.listdir(work_dir)) == ['.lock', 'config.yaml', 'last.pt']


def test_a_refused_folder_keeps_its_temporary_looking_files(tiny_config, tmp_path, capsys):
    # a user's folder is judged first: nothing in it is removed when it is refused
    config, _ = tiny_config
    theirs = tmp_path / 'theirs'
    (theirs / 'sub').mkdir(parents=True)
    (theirs / 'notes.txt').write_text('x')
    (theirs / f'draft.tex.tmp{DEAD_PID}').write_text('draft')
    (theirs / 'sub' / f'thesis.tex.tmp{DEAD_PID}').write_text('thesis')
    before = tree(theirs)
    for extra in ([], ['--overwrite']):
        error = refused(capsys, '--config', config, '--work-dir', theirs, *extra)
        assert 'not a run of this framework' in error
        assert tree(theirs) == before


@pytest.mark.slow
def test_a_second_writer_is_refused_with_the_pid_of_the_first(trained, capsys):
    config, work_dir = trained
    before = tree(work_dir)
    lock = WorkDirLock(work_dir)
    try:
        error = refused(capsys, '--config', config, '--resume', '--num_epoch', '6')
    finally:
        lock.release()
    assert error == (
        f'error: work_dir {work_dir} is in use by process {os.getpid()}, which is '
        f'still running; wait for it to end or stop it first'
    )
    assert tree(work_dir) == before


def test_work_dir_that_is_a_file_or_not_writable(tiny_config, tmp_path, capsys, monkeypatch):
    config, _ = tiny_config
    a_file = tmp_path / 'notes.txt'
    a_file.write_text('keep')
    error = refused(capsys, '--config', config, '--work-dir', a_file)
    assert error == f'error: work_dir {a_file} is a file, not a folder'
    locked = tmp_path / 'locked'

    def no_permission(path, *args, **kwargs):
        raise PermissionError(13, 'Permission denied', path)

    monkeypatch.setattr(os, 'makedirs', no_permission)  # root may write anywhere: simulated
    error = refused(capsys, '--config', config, '--work-dir', locked)
    assert error == f'error: cannot create work_dir {locked}: Permission denied'


def test_two_test_runs_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    same_second = time.strftime('%Y%m%d-%H%M%S')
    monkeypatch.setattr(
        time, 'strftime', lambda pattern: pattern.replace('%Y%m%d-%H%M%S', same_second)
    )
    first, second = (new_test_folder(str(tmp_path)) for _ in range(2))
    assert os.path.basename(first) == f'test_{same_second}'
    assert os.path.basename(second) == f'test_{same_second}-2'


# -------------------------------------------------------- 4. a crash between the final steps


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / 'results.json'
    path.write_text('{"old": 1}')

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(path), b'{"new": 2}')
    assert path.read_text() == '{"old": 1}' and os.listdir(tmp_path) == ['results.json']


def test_ctrl_c_while_the_data_loads_says_nothing_was_written(tmp_path, capsys, monkeypatch):
    import main as main_module

    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(main_module, 'build_datasets', interrupted)
    work_dir = tmp_path / 'new'
    config = os.path.join(ROOT, 'config', 'demo', 'joint.yaml')
    assert main(['--config', config, '--work-dir', str(work_dir)]) == 130
    assert capsys.readouterr().err == (
        f'interrupted: the run stopped before writing anything in {work_dir}\n'
    )
    assert not work_dir.exists()


@pytest.mark.slow
def test_ctrl_c_before_the_first_epoch_ends_says_there_is_nothing_to_resume(
    tiny_config, tmp_path, capsys, monkeypatch, interrupt_at_epoch
):
    config, _ = tiny_config
    stopped = str(tmp_path / 'stopped')
    interrupt_at_epoch(0)
    assert main(['--config', config, '--work-dir', stopped]) == 130
    assert capsys.readouterr().err == (
        f'interrupted: no epoch was finished, nothing to resume in {stopped}; add --overwrite to '
        f'start again\n'
    )
    # and --overwrite does start it again
    monkeypatch.undo()
    assert main(['--config', config, '--work-dir', stopped, '--num_epoch', '1',
                 '--overwrite']) == 0


@pytest.mark.slow
def test_resume_finishes_a_run_that_crashed_before_results_json(
    trained, tmp_path, monkeypatch, capsys
):
    config, work_dir = trained
    crashed = str(tmp_path / 'crashed')

    def crash(self, results):
        raise KeyboardInterrupt

    monkeypatch.setattr(RunOutputs, 'results', crash)
    assert main(['--config', config, '--work-dir', crashed]) == 130
    last = os.path.join(crashed, 'last.pt')
    assert capsys.readouterr().err == (
        f'interrupted: {last} holds the last finished epoch; add --resume to continue from it\n'
    )
    assert not os.path.exists(os.path.join(crashed, 'results.json'))
    monkeypatch.undo()
    capsys.readouterr()
    assert main(['--config', config, '--work-dir', crashed, '--resume']) == 0
    assert 'every epoch was done before the run stopped' in capsys.readouterr().out
    with (
        open(os.path.join(crashed, 'results.json')) as f,
        open(os.path.join(work_dir, 'results.json')) as g,
    ):
        assert json.load(f) == json.load(g)
    error = refused(capsys, '--config', config, '--work-dir', crashed, '--resume')
    assert 'nothing to resume' in error


# --------------------------------------------------------------------------- 6. NaN and Inf


@pytest.mark.slow
def test_a_diverging_run_stops_at_the_first_nan_loss(tiny_config, capsys):
    config, work_dir = tiny_config
    error = refused(capsys, '--config', config, '--base_lr', '1e6')
    assert error.startswith('error: the training loss is nan at epoch ')
    assert '(a too large base_lr?)' in error
    for name in ('best.pt', 'last.pt'):
        path = os.path.join(work_dir, name)
        if os.path.exists(path):
            assert all(
                torch.isfinite(v).all()
                for v in load_checkpoint(path)['model'].values()
                if v.is_floating_point()
            )
    assert 'results.json' not in os.listdir(work_dir)


def data_with_a_nan_sample(demo_root, folder, bad=5):
    """The demo train split with sample `bad` holding a NaN; the demo test split."""
    os.makedirs(folder)
    shutil.copy(os.path.join(demo_root, 'test.h5'), folder)
    feeder = build_feeder('skeleton', data_path=demo_root, split='train')
    sequences = [np.array(feeder.reader[i]) for i in range(len(feeder.labels))]
    sequences[bad][:, 0, 7, 1] = np.nan  # every frame: no crop leaves it out
    write_split(
        os.path.join(folder, 'train.h5'), sequences, feeder.labels, feeder.names, **feeder.meta
    )
    return feeder.names[bad]


@pytest.mark.slow
def test_a_nan_in_the_data_is_named(demo_root, tmp_path, capsys):
    data = str(tmp_path / 'nan_data')
    name = data_with_a_nan_sample(demo_root, data)
    config, work_dir = write_tiny_config(tmp_path, data)
    error = refused(capsys, '--config', config, '--train_feeder_args', 'debug=false')
    assert error.startswith('error: the training loss is nan at epoch 1, step ')
    assert f'the input holds NaN or Inf in sample {name};' in error


@pytest.mark.slow
def test_non_finite_weights_are_refused_in_testing(trained, tmp_path, capsys):
    config, work_dir = trained
    checkpoint = load_checkpoint(os.path.join(work_dir, 'best.pt'))
    key = next(k for k in checkpoint['model'] if k.endswith('fc.weight'))
    checkpoint['model'][key][0, 0] = float('nan')
    torch.save(checkpoint, tmp_path / 'nan.pt')
    args = checkpoint_test_args(work_dir, tmp_path / 'nan.pt', '--work-dir', tmp_path / 'tested')
    error = refused(capsys, *args)
    assert (
        'the model gives NaN or Inf scores for 100 of 100 test samples (e.g. S001C001P003R001A001)'
    ) in error
    assert 'results.json' not in tree(tmp_path / 'tested')[0:1]


def test_ensemble_refuses_non_finite_scores_and_weights(tmp_path, capsys):
    np.save(tmp_path / 'labels.npy', np.array([0, 1]))
    scores = {'a': np.array([1.0, 0.0]), 'b': np.array([np.nan, 1.0])}
    with open(tmp_path / 'nan.pkl', 'wb') as f:
        pickle.dump(scores, f)
    error = refused(
        capsys,
        '--scores',
        tmp_path / 'nan.pkl',
        '--labels',
        tmp_path / 'labels.npy',
        run=ensemble_main,
    )
    assert error == (
        f'error: {tmp_path}/nan.pkl: 1 score vectors hold NaN or Inf (e.g. b); no '
        f'accuracy is computed from them'
    )
    scores['b'] = np.array([0.0, 1.0])
    with open(tmp_path / 'ok.pkl', 'wb') as f:
        pickle.dump(scores, f)
    error = refused(
        capsys,
        '--scores',
        tmp_path / 'ok.pkl',
        tmp_path / 'ok.pkl',
        '--weights',
        '1',
        'nan',
        '--labels',
        tmp_path / 'labels.npy',
        run=ensemble_main,
    )
    assert error == 'error: --weights must be finite numbers, got 1.0 nan'


# ------------------------------------------------------------------------ 18. CUDA random state


@pytest.mark.slow
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_a_resumed_gpu_run_equals_an_uninterrupted_one(
    tiny_config, tmp_path, monkeypatch, interrupt_at_epoch
):
    # Dropout draws from CUDA's random state, which the restarted process reseeds: without restoring
    # it the masks differ and so do the weights (far beyond the GPU's rounding differences).
    config, _ = tiny_config
    whole, stopped = str(tmp_path / 'whole'), str(tmp_path / 'stopped')
    args = ['--config', config, '--device', '0', '--num_epoch', '3']
    assert main([*args, '--work-dir', whole]) == 0
    interrupt_at_epoch(2)
    assert main([*args, '--work-dir', stopped]) == 130
    assert load_checkpoint(os.path.join(stopped, 'last.pt'))['rng']['cuda'][0] is not None
    monkeypatch.undo()
    assert main([*args, '--work-dir', stopped, '--resume']) == 0
    final = [load_checkpoint(os.path.join(d, 'last.pt'))['model'] for d in (whole, stopped)]
    for key in final[0]:
        torch.testing.assert_close(final[1][key], final[0][key], rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------ 7. stream mismatch


def test_one_stream_key_sets_both_feeders(tiny_config):
    """--stream bone: the train and the test samples are bones of the joint samples (NTU pair
    (1, 2): bone 1 = joint 1 − joint 2; pair (21, 21): bone 21 is zero)."""
    config, _ = tiny_config
    joint = build_datasets(parse_args(['--config', config])[0])
    bone = build_datasets(parse_args(['--config', config, '--stream', 'bone'])[0])
    for split in ('train', 'test'):
        assert joint[split].stream == 'joint' and bone[split].stream == 'bone'
        x, y = joint[split][3][0], bone[split][3][0]  # (C, T, V, M)
        np.testing.assert_allclose(y[:, :, 0], x[:, :, 0] - x[:, :, 1], atol=1e-6)
        assert not y[:, :, 20].any() and x[:, :, 20].any()


# ------------------------------------------------------------------ 8. --resume with options


@pytest.mark.slow
def test_resume_refuses_changed_options(trained, capsys):
    config, work_dir = trained
    before = tree(work_dir)
    error = refused(
        capsys, '--config', config, '--resume', '--base_lr', '0.001', '--momentum', '0.5'
    )
    assert error == (
        f'error: --resume continues the configuration saved in {work_dir}/last.pt; '
        f'these options differ from it: base_lr, momentum (start a new run to '
        f'change them)'
    )
    error = refused(capsys, '--config', config, '--resume', '--num_epoch', '2')
    assert 'num_epoch may be raised, not lowered (the run was set to 4 epochs)' in error
    assert tree(work_dir) == before


@pytest.mark.slow
def test_resume_may_raise_num_epoch_and_prints_one_line_per_epoch(trained, tmp_path, capsys):
    config, work_dir = trained
    longer = tmp_path / 'longer'
    shutil.copytree(work_dir, longer)
    capsys.readouterr()
    assert (
        main(['--config', config, '--work-dir', str(longer), '--resume', '--num_epoch', '5']) == 0
    )
    out, err = capsys.readouterr()
    assert load_checkpoint(str(longer / 'last.pt'))['epoch'] == 5
    assert load_checkpoint(str(longer / 'last.pt'))['config']['num_epoch'] == 5
    # Standard output is not a terminal here: no progress-bar fragments, one line for the epoch.
    assert err == '' and '\r' not in out
    assert [line for line in out.splitlines() if line.startswith('epoch ')] == [
        line for line in out.splitlines() if line.startswith('epoch 5/5: ')
    ]


# ---------------------------------------------------------------- 9, 13. prepared splits


def write_h5(path, joints, labels, start, length, layout='ntu25', num_class=3):
    with h5py.File(path, 'w') as f:
        f['joints'] = joints
        f['labels'] = np.asarray(labels)
        f['start'] = np.asarray(start)
        f['length'] = np.asarray(length)
        f.create_dataset(
            'names',
            data=np.array([f's{i}' for i in range(len(start))], dtype=object),
            dtype=h5py.string_dtype(),
        )
        f.attrs.update(layout=layout, num_class=num_class)
    return str(path)


@pytest.mark.parametrize(
    'joints, labels, start, length, message',
    [
        (
            (10, 2, 25, 3),
            [0, 1],
            [0, 5, 8],
            [5, 3, 2],
            'labels holds 2 samples but names 3, start 3, length 3',
        ),
        (
            (10, 2, 25, 3),
            [0, 1],
            [0, 5],
            [5, 6],
            'sample s1 spans frames 5 to 11, outside the 10 stored frames',
        ),
        (
            (10, 2, 20, 3),
            [0, 1],
            [0, 5],
            [5, 5],
            r'joints has shape \(10, 2, 20, 3\); the ntu25 layout needs '
            r'\(frames, persons, 25 joints, 3 channels\)',
        ),
        ((10, 2, 25, 2), [0, 1], [0, 5], [5, 5], r'joints has shape \(10, 2, 25, 2\)'),
        ((10, 25, 3), [0, 1], [0, 5], [5, 5], r'joints has shape \(10, 25, 3\)'),
        (
            (10, 2, 25, 3),
            [0, 3],
            [0, 5],
            [5, 5],
            r'sample s1 has label 3, outside the 3 classes \(0 to 2\)',
        ),
    ],
)
def test_prepared_split_counts_and_shapes_are_checked_on_opening(
    tmp_path, joints, labels, start, length, message
):
    path = write_h5(tmp_path / 'test.h5', np.ones(joints, np.float32), labels, start, length)
    with pytest.raises(ConfigError, match=f'{path}: {message}'):
        build_feeder('skeleton', data_path=str(tmp_path), split='test')


@pytest.mark.slow
def test_tables_name_a_corrupt_results_json(trained, tmp_path, capsys):
    _, work_dir = trained
    runs = tmp_path / 'runs'
    shutil.copytree(work_dir, runs / 'good')
    (runs / 'broken').mkdir()
    shutil.copy(os.path.join(work_dir, 'config.yaml'), runs / 'broken')
    (runs / 'broken' / 'results.json').write_text('{"meta": ')
    assert tables_main([str(runs), '--epoch', 'best']) == 0
    out = capsys.readouterr().out
    assert (
        f'- {runs}/broken/results.json is not valid JSON: Expecting value: line 1 column 10 '
        f'(char 9); left out' in out
    )


def test_ensemble_labels_beyond_the_scores_width(tmp_path, capsys):
    with open(tmp_path / 's.pkl', 'wb') as f:
        pickle.dump({'a': np.array([1.0, 0.0]), 'b': np.array([0.0, 1.0])}, f)
    np.save(tmp_path / 'labels.npy', np.array([0, 7]))
    error = refused(
        capsys,
        '--scores',
        tmp_path / 's.pkl',
        '--labels',
        tmp_path / 'labels.npy',
        run=ensemble_main,
    )
    assert error == (
        f'error: {tmp_path}/labels.npy: class id 7 is outside the 2 classes that the '
        f'scores hold (0 to 1)'
    )


# ------------------------------------------------------------------ 10. a small training set


def test_training_set_smaller_than_a_batch_is_refused_before_writing(tiny_config, capsys):
    config, work_dir = tiny_config
    error = refused(capsys, '--config', config, '--batch_size', '200')
    assert error == (
        'error: the training set holds 100 samples, fewer than one batch of '
        'batch_size 200: lower batch_size to at most 100'
    )
    assert not os.path.exists(work_dir)


# ---------------------------------------------------------------- 11. scientific notation


def test_scientific_notation_is_a_number(tiny_config, tmp_path):
    config, _ = tiny_config
    with open(config, 'a') as f:
        f.write('weight_decay: 5e-4\n')
    cfg, _ = parse_args(['--config', config, '--base_lr', '1e-3'])
    assert cfg['base_lr'] == 0.001 and cfg['weight_decay'] == 0.0005


# ---------------------------------------------------------------------------- 12. checkpoints


@pytest.mark.parametrize(
    'content, message',
    [
        (b'', r'is empty \(0 bytes\): not a checkpoint'),
        ('list', r'holds a list, not a checkpoint \(a mapping of weight names to tensors\)'),
        (
            'truncated',
            r'cannot load .* as a checkpoint: it is truncated \(an incomplete zip archive\)',
        ),
        (
            b'weights: none\n',
            'cannot load .* as a checkpoint: it is not a file written by torch.save',
        ),
        ('legacy_truncated', 'cannot load .* as a checkpoint: it is truncated'),
    ],
)
def test_bad_checkpoints_get_plain_messages(tmp_path, content, message):
    path = tmp_path / 'model.pt'
    if content == 'list':
        torch.save([torch.ones(2)], path)
    elif content == 'truncated':
        torch.save({'w': torch.ones(100)}, path)
        path.write_bytes(path.read_bytes()[:300])
    elif content == 'legacy_truncated':
        torch.save({'w': torch.ones(100)}, path, _use_new_zipfile_serialization=False)
        path.write_bytes(path.read_bytes()[:60])
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_checkpoint(str(path))


@pytest.mark.slow
def test_a_bad_checkpoint_is_one_error_line(trained, tmp_path, capsys):
    _, work_dir = trained
    (tmp_path / 'empty.pt').write_bytes(b'')
    args = checkpoint_test_args(work_dir, tmp_path / 'empty.pt', '--work-dir', tmp_path / 'out')
    error = refused(capsys, *args)
    assert error == f'error: {tmp_path}/empty.pt is empty (0 bytes): not a checkpoint'


# ------------------------------------------------------------- 15. values checked by type


@pytest.mark.parametrize(
    'override, message',
    [
        (
            ['--train_feeder_args', 'window_size=0'],
            'train_feeder_args.window_size must be an integer >= 1, got 0',
        ),
        (
            ['--train_feeder_args', 'p_interval=[0.5, 0.2]'],
            r'train_feeder_args.p_interval must be a list \(each item a number in \(0, 1\]\) '
            r'of 1 to 2 items in ascending order, got \[0.5, 0.2\]',
        ),
        (
            ['--test_feeder_args', 'p_interval=[5]'],
            r'test_feeder_args.p_interval must be .*, got \[5\]',
        ),
        (['--momentum', '5'], r'momentum must be a number in \[0, 1\), got 5'),
        (['--nesterov', 'maybe'], "nesterov must be true or false, got 'maybe'"),
        (
            ['--train_feeder_args', 'random_rot="yes"'],
            "train_feeder_args.random_rot must be true or false, got 'yes'",
        ),
        (['--lr_decay_rate', '-3'], r'lr_decay_rate must be a number in \(0, 1\], got -3'),
        (['--amp', 'fp8'], "amp must be one of off, bf16, fp16, got 'fp8'"),
        (['--momentum', '0', '--nesterov', 'true'], 'nesterov: true needs momentum > 0'),
    ],
)
def test_values_are_checked_against_their_declared_types(tiny_config, override, message):
    config, _ = tiny_config
    with pytest.raises(ConfigError, match=message):
        parse_args(['--config', config, *override])


def test_duplicate_keys_are_refused_naming_file_and_key(tiny_config, capsys):
    config, _ = tiny_config
    with open(config, 'a') as f:
        f.write('base_lr: 0.1\nbase_lr: 0.01\n')
    error = refused(capsys, '--config', config)
    assert error.startswith(f"error: {config} is not valid YAML: line ") and error.endswith(
        ": duplicate key 'base_lr'"
    )


def test_a_registered_builder_declares_its_ranges():
    toys = Registry('model')

    @toys.register('toy')
    def toy(num_class: Annotated[int, Range(ge=1)] = 60, width=8):
        return num_class, width

    with pytest.raises(ConfigError, match='model_args.num_class must be an integer >= 1, got -3'):
        toys.build('toy', num_class=-3)
    assert toys.build('toy', num_class=3, width='unchecked') == (3, 'unchecked')


# --------------------------------------------------------------------- 17. the demo feeder


def test_a_mistyped_demo_path_generates_nothing(tmp_path):
    typo = tmp_path / 'data' / 'dmeo' / 'xsub'
    with pytest.raises(
        ConfigError,
        match=f'data file not found: {typo}/train.h5 \\(the demo data '
        f'is generated only at data/demo/xsub, or elsewhere '
        f'with generate: true\\)',
    ):
        build_feeder('demo', data_path=str(typo), split='test')
    assert not (tmp_path / 'data').exists()
    feeder = build_feeder('demo', data_path=str(typo), split='test', generate=True)
    assert len(feeder) == 360


# ------------------------------------------------------------------------- smaller points


def test_groups_without_test_samples_say_so():
    cm = np.diag([3, 2, 0, 0])
    metrics = {
        'top1': 100.0,
        'top5': 100.0,
        'mean_class': 100.0,
        'ambiguous': ambiguous_metrics(cm, {'a vs b': [2, 3]}),
    }
    assert format_metrics(metrics).endswith('mean class 100.00 %, ambiguous: no test samples')
    assert format_groups(metrics) == ['    a vs b: no test samples']


# ------------------------------------------------------------- data that the model cannot read


@pytest.mark.parametrize('override, said', [
    (['--model_args', 'in_channels=2'], 'in_channels 2'),
    (['--model_args', 'num_person=1'], 'num_person 1'),
    (['--model_args', 'graph=coco17', 'num_point=17'], 'num_point 17, num_person 2 (graph coco17)'),
])
def test_data_the_model_cannot_read_is_refused_before_anything_is_written(
        tiny_config, capsys, override, said):
    config, work_dir = tiny_config
    error = refused(capsys, '--config', config, *override)
    assert 'gives samples of 3 channels, 25 joints (ntu25) and 2 person slots' in error
    assert said in error and 'set model_args to fit the data' in error
    assert not os.path.exists(work_dir)


def test_fewer_scores_than_the_datas_classes_are_refused_before_anything_is_written(
        tiny_config, capsys):
    # training stopped at the first label past the last score, with a traceback
    config, work_dir = tiny_config
    error = refused(capsys, '--config', config, '--model_args', 'num_class=5')
    assert error.endswith('holds 10 classes, but model_args.num_class is 5: set num_class to 10')
    assert not os.path.exists(work_dir)


# ------------------------------------------------------------------ output options of the tools


def test_an_output_file_never_replaces_an_input_or_a_file_of_another_kind(tmp_path):
    checkpoint = tmp_path / 'best.pt'
    checkpoint.write_bytes(b'weights')
    scores = tmp_path / 'scores.json'
    scores.write_text('{}')
    cases = [
        (checkpoint, 'the output must be a .json file'),
        (tmp_path, 'is a folder; name a .json file'),
        (tmp_path / 'gone' / 'out.json', f'the folder {tmp_path / "gone"} does not exist'),
        (scores, 'is also an input of this command'),
    ]
    for path, said in cases:
        with pytest.raises(ConfigError, match=re.escape(said)):
            check_output_file(str(path), '--json', ('.json',),
                              inputs=[str(checkpoint), str(scores)])
    assert checkpoint.read_bytes() == b'weights' and scores.read_text() == '{}'
    check_output_file(str(tmp_path / 'new.json'), '--json', ('.json',), inputs=[str(checkpoint)])
    with pytest.raises(ConfigError, match='is a file, not a folder'):
        check_output_folder(str(checkpoint), '--out')
    check_output_folder(str(tmp_path / 'figures'), '--out')


def test_data_of_another_skeleton_than_the_models_graph_is_refused(tiny_config, tmp_path, capsys):
    config, work_dir = tiny_config
    ntu = get_layout('ntu25')
    rig = tmp_path / 'ntu_from_the_hip.yaml'               # NTU's joints and edges, another centre
    rig.write_text(yaml.safe_dump({'joints': list(ntu.joints),
                                   'edges': [list(e) for e in ntu.inward], 'centre': 'spine_base'}))
    error = refused(capsys, '--config', config, '--model_args', f'graph={rig}')
    assert f'was prepared with the layout ntu25, but model_args.graph is {rig}' in error
    assert not os.path.exists(work_dir)


def test_a_checkpoint_of_another_setting_is_refused_naming_only_what_differs():
    saved = {'model_args': {'num_point': 17, 'graph': 'coco17', 'sf_head': {'groups': 8}},
             'class_names': ['wave', 'salute', 'hop'], 'stream': 'joint'}
    current = {'model_args': {'num_point': 25, 'graph': 'ntu25', 'sf_head': {'groups': 8}},
               'class_names': ['wave', 'clap', 'bow'], 'stream': 'joint'}
    assert [d for k in saved for d in differences(k, saved[k], current[k])] == [
        "model_args.graph: checkpoint 'coco17', config 'ntu25'",
        'model_args.num_point: checkpoint 17, config 25',
        "class_names[1]: checkpoint 'salute', config 'clap'",
    ]


def test_only_class_names_may_be_missing_from_a_checkpoints_record(tiny_config, capsys):
    config, _ = tiny_config
    cfg, _ = parse_args(['--config', config])
    trainer = build_trainer(cfg, Context())
    older = {k: v for k, v in trainer.meta.items() if k != 'class_names'}
    trainer.check_meta(older, 'older.pt')                      # accepted
    without_stream = {k: v for k, v in trainer.meta.items() if k != 'stream'}
    with pytest.raises(ConfigError, match="stream: checkpoint None, config 'joint'"):
        trainer.check_meta(without_stream, 'odd.pt')
