"""Run by tests/test_distributed.py under torchrun: main.py, and each process's final weights saved beside the
run (rank<r>.pt) so that the test can compare them across processes."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import main as entry  # noqa: E402
from torchlight.trainer import Trainer  # noqa: E402

fit = Trainer.fit


def fit_and_keep_weights(self, work_dir, logger):
    results = fit(self, work_dir, logger)
    torch.save(self.model.state_dict(), os.path.join(sys.argv[1], f'rank{self.context.rank}.pt'))
    return results


Trainer.fit = fit_and_keep_weights
sys.exit(entry.main(sys.argv[2:]))
