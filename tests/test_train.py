"""End-to-end runs on the demo dataset: train, test, resume, refusals."""

import json
import os
import pickle

import numpy as np
import pytest
import torch
import yaml

from feeders import build_feeder
from main import main
from tests.runs import checkpoint_test_args
from tools.ensemble import main as ensemble_main
from torchlight.checkpoint import load_checkpoint


def run(*args):
    assert main(list(args)) == 0


def read_config(work_dir):
    with open(os.path.join(work_dir, 'config.yaml')) as f:
        return yaml.safe_load(f)


def read_results(work_dir):
    with open(os.path.join(work_dir, 'results.json')) as f:
        return json.load(f)


def assert_same_weights(path_a, path_b):
    a, b = load_checkpoint(path_a)['model'], load_checkpoint(path_b)['model']
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.slow
def test_training_writes_checkpoints_scores_and_report(trained, capsys):
    path, work_dir = trained
    files = set(os.listdir(work_dir))
    assert {'config.yaml', 'log.txt', 'best.pt', 'last.pt', 'results.json', 'tensorboard'} <= files
    results = read_results(work_dir)
    assert results['last']['epoch'] == 4 and results['best']['chosen_on'] == 'test'
    with open(os.path.join(work_dir, results['last']['scores']), 'rb') as f:
        scores = pickle.load(f)
    test_set = build_feeder(
        'skeleton',
        split='test',
        **load_checkpoint(os.path.join(work_dir, 'last.pt'))['config']['test_feeder_args'],
    )
    assert list(scores) == test_set.names  # dataset order
    stacked = np.stack(list(scores.values()))
    assert stacked.shape == (100, 10) and stacked.dtype == np.float32
    top1 = 100.0 * np.mean(stacked.argmax(1) == test_set.labels)
    assert top1 == pytest.approx(results['last']['test']['top1'])
    assert f"epoch{results['best']['epoch']}_test_score.pkl" in files
    log = open(os.path.join(work_dir, 'log.txt')).read()
    assert 'last epoch (4)' in log and 'chosen on the test split' in log and 'wave vs salute' in log
    # SF-Head losses, logged per epoch
    assert 'sf_redundancy' in log and 'sf_consistency' in log


@pytest.mark.slow
def test_test_phase_reproduces_the_best_epoch(trained, tmp_path):
    path, work_dir = trained
    out = str(tmp_path / 'tested')  # not the shared run's folder: other tests test it too
    run(*checkpoint_test_args(work_dir, os.path.join(work_dir, 'best.pt'), '--work-dir', out))
    tests = os.listdir(out)
    assert len(tests) == 1 and tests[0].startswith('test_')
    tested = read_results(os.path.join(out, tests[0]))
    best = read_results(work_dir)['best']
    assert tested['test']['top1'] == best['test']['top1']
    assert tested['test']['ambiguous'] == best['test']['ambiguous']
    with (
        open(os.path.join(out, tests[0], tested['scores']), 'rb') as f,
        open(os.path.join(work_dir, best['scores']), 'rb') as g,
    ):
        new, old = pickle.load(f), pickle.load(g)
    assert all(np.array_equal(new[k], old[k]) for k in old)
    # the test folder is a run the tools read: the ensemble of it with the run it tested (the
    # same scores twice) gives the best epoch's top-1
    report = os.path.join(str(tmp_path), 'ensemble.json')
    assert ensemble_main(['--scores', os.path.join(out, tests[0]), work_dir, '--epoch', 'best',
                          '--json', report]) == 0
    with open(report) as f:
        assert json.load(f)['fused']['top1'] == pytest.approx(best['test']['top1'])


@pytest.mark.slow
def test_test_phase_refuses_a_checkpoint_of_another_stream(trained, capsys):
    path, work_dir = trained
    assert (
        main(
            [
                '--config',
                path,
                '--phase',
                'test',
                '--weights',
                os.path.join(work_dir, 'best.pt'),
                '--stream',
                'bone',
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "stream: checkpoint 'joint', config 'bone'" in err


@pytest.mark.slow
def test_existing_work_dir_is_not_overwritten(trained, capsys):
    path, work_dir = trained
    before = os.path.getmtime(os.path.join(work_dir, 'last.pt'))
    assert main(['--config', path]) == 2
    assert 'already holds a run' in capsys.readouterr().err
    assert os.path.getmtime(os.path.join(work_dir, 'last.pt')) == before


@pytest.mark.slow
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(
    trained, tmp_path, monkeypatch, interrupt_at_epoch
):
    path, work_dir = trained
    resumed_dir = str(tmp_path / 'resumed')
    interrupt_at_epoch(2)
    assert main(['--config', path, '--work-dir', resumed_dir]) == 130
    assert load_checkpoint(os.path.join(resumed_dir, 'last.pt'))['epoch'] == 2
    monkeypatch.undo()
    run('--config', path, '--work-dir', resumed_dir, '--resume')
    assert_same_weights(os.path.join(work_dir, 'last.pt'), os.path.join(resumed_dir, 'last.pt'))
    assert read_results(resumed_dir) == read_results(work_dir)


@pytest.mark.slow
def test_same_seed_same_result_with_workers_and_validation_split(tiny_config, tmp_path):
    path, _ = tiny_config
    dirs = [str(tmp_path / name) for name in ('a', 'b')]
    for work_dir, workers in zip(dirs, (0, 2)):
        run(
            '--config',
            path,
            '--work-dir',
            work_dir,
            '--num_worker',
            str(workers),
            '--num_epoch',
            '2',
            '--val_ratio',
            '0.2',
        )
    assert_same_weights(os.path.join(dirs[0], 'last.pt'), os.path.join(dirs[1], 'last.pt'))
    results = read_results(dirs[0])
    assert results['best']['chosen_on'] == 'val'
    assert 'held-out validation split' in open(os.path.join(dirs[0], 'log.txt')).read()


@pytest.mark.slow
def test_test_phase_accepts_a_reference_style_state_dict(trained, tmp_path):
    path, work_dir = trained
    state = load_checkpoint(os.path.join(work_dir, 'best.pt'))['model']
    reference = tmp_path / 'reference.pt'
    # as DataParallel code saves
    torch.save({'module.' + k: v for k, v in state.items()}, reference)
    out = tmp_path / 'tested'
    run(*checkpoint_test_args(work_dir, reference, '--work-dir', out))
    tested = read_results(os.path.join(out, os.listdir(out)[0]))
    # the reference's test phase names its scores epoch1_test_score.pkl, whatever it tested
    assert tested['epoch'] is None and tested['scores'] == 'epoch1_test_score.pkl'
    assert tested['test']['top1'] == read_results(work_dir)['best']['test']['top1']


@pytest.mark.slow
def test_branch_heads_are_dropped_at_inference(tiny_config, tmp_path, capsys):
    path, _ = tiny_config
    work_dir = str(tmp_path / 'branch')
    run(
        '--config',
        path,
        '--work-dir',
        work_dir,
        '--num_epoch',
        '2',
        '--model_args',
        'sf_head.mode=branch',
    )
    trained = read_results(work_dir)['last']['test']['top1']
    run(*checkpoint_test_args(work_dir, os.path.join(work_dir, 'last.pt'),
                              '--model_args', 'sf_head=null'))
    tested = [d for d in os.listdir(work_dir) if d.startswith('test_')][0]
    assert read_results(os.path.join(work_dir, tested))['test']['top1'] == trained
    # Inline heads change the function: dropping them is refused, naming the difference.
    inline_dir = str(tmp_path / 'inline')
    run('--config', path, '--work-dir', inline_dir, '--num_epoch', '1')
    last = os.path.join(inline_dir, 'last.pt')
    assert main(checkpoint_test_args(inline_dir, last, '--model_args', 'sf_head=null')) == 2
    assert "model_args.sf_head: checkpoint {'groups': 2}, config None" in capsys.readouterr().err


@pytest.mark.slow
def test_bf16_autocast_on_cpu_trains_and_fp16_needs_cuda(tiny_config, tmp_path, capsys):
    config, _ = tiny_config
    work_dir = tmp_path / 'bf16'
    run('--config', config, '--amp', 'bf16', '--num_epoch', '2', '--work-dir', str(work_dir))
    results = read_results(work_dir)
    assert np.isfinite(results['last']['test']['loss'])
    with open(work_dir / 'epoch2_test_score.pkl', 'rb') as f:
        scores = pickle.load(f)
    # scores stored as float32, the reported top-1 theirs
    assert all(v.dtype == np.float32 for v in scores.values())
    labels = build_feeder(
        'skeleton', split='test', **read_config(work_dir)['test_feeder_args']
    ).labels
    top1 = 100.0 * np.mean(np.stack(list(scores.values())).argmax(1) == labels)
    assert results['last']['test']['top1'] == pytest.approx(top1)
    if not torch.cuda.is_available():
        assert (
            main(['--config', config, '--amp', 'fp16', '--work-dir', str(tmp_path / 'fp16')]) == 2
        )
        assert 'amp fp16 needs CUDA; on CPU use amp bf16' in capsys.readouterr().err


@pytest.mark.slow
def test_a_sweep_stopped_in_a_seeds_first_epoch_resumes(
    tiny_config, tmp_path, capsys, monkeypatch, interrupt_at_epoch
):
    path, _ = tiny_config
    sweep = str(tmp_path / 'sweep')
    args = ['--config', path, '--num_epoch', '1', '--seeds', '1', '2', '--work-dir', sweep]
    interrupt_at_epoch(0)
    assert main(args) == 130
    assert capsys.readouterr().err == (
        f'interrupted: the finished seeds are kept; add --resume to continue the sweep in '
        f'{sweep}\n'
    )
    assert not os.path.exists(os.path.join(sweep, 'seed1', 'last.pt'))
    monkeypatch.undo()
    assert main([*args, '--resume']) == 0
    for seed in ('seed1', 'seed2'):
        assert read_results(os.path.join(sweep, seed))['last']['epoch'] == 1


@pytest.mark.slow
def test_a_seeds_sweep_trains_each_seed_as_its_single_run_would(tiny_config, tmp_path, capsys):
    path, _ = tiny_config
    sweep, single = str(tmp_path / 'sweep'), str(tmp_path / 'single')
    run('--config', path, '--num_epoch', '1', '--seeds', '1', '2', '--work-dir', sweep)
    run('--config', path, '--num_epoch', '1', '--seed', '2', '--work-dir', single)
    assert sorted(os.listdir(sweep)) == ['seed1', 'seed2']
    saved = read_config(os.path.join(sweep, 'seed2'))
    assert (saved['seed'], saved['seeds'], saved['work_dir']) == (2, None, f'{sweep}/seed2')
    assert_same_weights(os.path.join(sweep, 'seed2', 'last.pt'), os.path.join(single, 'last.pt'))
    seed1 = load_checkpoint(os.path.join(sweep, 'seed1', 'last.pt'))['model']
    seed2 = load_checkpoint(os.path.join(sweep, 'seed2', 'last.pt'))['model']
    assert not torch.equal(seed1['fc.weight'], seed2['fc.weight'])
    # resuming a finished sweep skips every seed and rewrites nothing
    before = os.path.getmtime(os.path.join(sweep, 'seed1', 'results.json'))
    capsys.readouterr()
    run('--config', path, '--num_epoch', '1', '--seeds', '1', '2', '--work-dir', sweep,
        '--resume')
    assert capsys.readouterr().out.count('is finished; skipped') == 2
    assert os.path.getmtime(os.path.join(sweep, 'seed1', 'results.json')) == before
    # a raised num_epoch continues every seed from its last epoch
    run('--config', path, '--num_epoch', '2', '--seeds', '1', '2', '--work-dir', sweep,
        '--resume')
    for seed in ('seed1', 'seed2'):
        assert load_checkpoint(os.path.join(sweep, seed, 'last.pt'))['epoch'] == 2
        assert read_results(os.path.join(sweep, seed))['last']['epoch'] == 2
