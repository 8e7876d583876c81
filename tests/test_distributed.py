"""DDP through torchrun on CPU (gloo): identical weights on every process, exact evaluation."""
import os
import pickle
import subprocess
import sys

import numpy as np
import torch

from main import main
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


def test_two_processes_train_identical_weights_and_score_like_one_process(tiny_config, tmp_path):
    config, work_dir = tiny_config
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': ROOT}
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
               os.path.join(ROOT, 'tests', 'ddp_worker.py'), str(tmp_path), '--config', config, '--num_epoch', '2']
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # Gradients are averaged every step: both processes end with the very same weights.
    rank0, rank1 = (torch.load(tmp_path / f'rank{r}.pt', weights_only=True) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    # Only process 0 wrote the run; its test scores hold each of the 100 test samples once, in dataset order,
    # and equal what one process computes with the saved weights.
    names, scores = read_scores(os.path.join(work_dir, 'epoch2_test_score.pkl'))
    assert main(['--config', os.path.join(work_dir, 'config.yaml'), '--phase', 'test',
                 '--weights', os.path.join(work_dir, 'last.pt'), '--work-dir', str(tmp_path / 'single')]) == 0
    test_dir = next((tmp_path / 'single').iterdir())
    single_names, single_scores = read_scores(test_dir / 'epoch2_test_score.pkl')
    assert names == single_names and len(set(names)) == 100
    np.testing.assert_allclose(scores, single_scores, rtol=0, atol=1e-5)
    for name, value in rank0.items():
        saved = torch.load(os.path.join(work_dir, 'last.pt'), weights_only=True)['model'][name]
        assert torch.equal(saved, value)
