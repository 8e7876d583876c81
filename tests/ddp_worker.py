"""Run by tests/test_distributed.py under torchrun: main.py, and each process's final weights saved
beside the run (rank<r>.pt) so that the test can compare them across processes. With STOP_AT_EPOCH=e
in the environment, process 0 dies at the start of epoch e (0-based) as under kill -9: no exception,
no cleanup."""

import os
import sys

import torch

import main as entry
from torchlight.trainer import Trainer

fit = Trainer.fit
train_epoch = Trainer.train_epoch
STOP_AT_EPOCH = os.environ.get('STOP_AT_EPOCH')


def fit_and_keep_weights(self, work_dir, logger):
    results = fit(self, work_dir, logger)
    torch.save(self.model.state_dict(), os.path.join(sys.argv[1], f'rank{self.context.rank}.pt'))
    return results


def train_epoch_or_die(self, epoch):
    if STOP_AT_EPOCH is not None and epoch == int(STOP_AT_EPOCH) and self.context.is_main:
        os._exit(9)
    return train_epoch(self, epoch)


Trainer.fit = fit_and_keep_weights
Trainer.train_epoch = train_epoch_or_die
sys.exit(entry.main(sys.argv[2:]))
