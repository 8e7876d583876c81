"""DDP through torchrun on CPU (gloo): identical weights on every process, exact evaluation."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from main import main
from tests.runs import checkpoint_test_args
from torchlight.distributed import Context, shard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_shards_cover_every_sample_once_in_order():
    for count in (0, 1, 7, 100, 101):
        for world in (1, 2, 3):
            parts = [shard(count, Context(rank, world)) for rank in range(world)]
            assert np.concatenate(parts).tolist() == list(range(count))


def read_scores(path):
    with open(path, 'rb') as f:
        scores = pickle.load(f)
    return list(scores), np.stack(list(scores.values()))


def torchrun(folder, *args, **env):
    """tests/ddp_worker.py (main.py) in two CPU processes; returns the finished process."""
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': ROOT, **env}
    command = [
        sys.executable,
        '-m',
        'torch.distributed.run',
        '--standalone',
        '--nproc_per_node',
        '2',
        os.path.join(ROOT, 'tests', 'ddp_worker.py'),
        str(folder),
        *map(str, args),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_processes_train_identical_weights_and_score_like_one_process(tiny_config, tmp_path):
    config, work_dir = tiny_config
    done = torchrun(tmp_path, '--config', config, '--num_epoch', '2')
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # Gradients are averaged every step: both processes end with the very same weights.
    rank0, rank1 = (torch.load(tmp_path / f'rank{r}.pt', weights_only=True) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    # Only process 0 wrote the run; its test scores hold each of the 100 test samples once, in
    # dataset order, and equal what one process computes with the saved weights.
    names, scores = read_scores(os.path.join(work_dir, 'epoch2_test_score.pkl'))
    last = os.path.join(work_dir, 'last.pt')
    assert main(checkpoint_test_args(work_dir, last, '--work-dir', tmp_path / 'single')) == 0
    test_dir = next((tmp_path / 'single').iterdir())
    single_names, single_scores = read_scores(test_dir / 'epoch1_test_score.pkl')
    assert names == single_names and len(set(names)) == 100
    np.testing.assert_allclose(scores, single_scores, rtol=0, atol=1e-5)
    for name, value in rank0.items():
        saved = torch.load(os.path.join(work_dir, 'last.pt'), weights_only=True)['model'][name]
        assert torch.equal(saved, value)


@pytest.mark.slow
def test_a_killed_and_resumed_two_process_run_equals_an_uninterrupted_one(tiny_config, tmp_path):
    # The tiny model has dropout: each process draws its own masks from its own random state
    # (seed + rank), so the resumed run matches only if every process's state is saved and restored.
    config, _ = tiny_config
    whole, killed = tmp_path / 'whole', tmp_path / 'killed'
    done = torchrun(tmp_path, '--config', config, '--num_epoch', '3', '--work-dir', whole)
    assert done.returncode == 0, done.stderr[-3000:]
    done = torchrun(
        tmp_path, '--config', config, '--num_epoch', '3', '--work-dir', killed, STOP_AT_EPOCH='2'
    )
    assert done.returncode != 0
    saved = torch.load(killed / 'last.pt', weights_only=True)
    assert saved['epoch'] == 2 and len(saved['rng']['torch']) == 2
    assert not torch.equal(saved['rng']['torch'][0], saved['rng']['torch'][1])
    done = torchrun(
        tmp_path, '--config', config, '--num_epoch', '3', '--work-dir', killed, '--resume'
    )
    assert done.returncode == 0, done.stderr[-3000:]
    final = [
        torch.load(folder / 'last.pt', weights_only=True)['model'] for folder in (whole, killed)
    ]
    assert all(torch.equal(final[0][k], final[1][k]) for k in final[0])
    results = [(folder / 'results.json').read_text() for folder in (whole, killed)]
    assert results[0] == results[1].replace(str(killed), str(whole))
