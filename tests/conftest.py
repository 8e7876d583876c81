import os

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
torch.set_num_threads(2)


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory):
    """The synthetic demo dataset, generated once per test session."""
    from data.synthetic import generate

    root = tmp_path_factory.mktemp('demo') / 'xsub'
    generate(str(root))
    return str(root)


def write_tiny_config(tmp_path, demo_root):
    """A config file for a small, fast run on the demo dataset; returns (path, work_dir)."""
    path = tmp_path / 'tiny.yaml'
    work_dir = tmp_path / 'run'
    path.write_text(f"""
work_dir: {work_dir}
feeder: skeleton
train_feeder_args: {{data_path: {demo_root}, window_size: 16, p_interval: [0.5, 1],
                    random_rot: true, debug: true}}
test_feeder_args: {{data_path: {demo_root}, window_size: 16, p_interval: [0.95], debug: true}}
model: ctrgcn
model_args: {{num_class: 10, channels: [16, 16], strides: [1, 2], sf_head: {{groups: 2}},
             drop_out: 0.2}}
ambiguous_groups: {os.path.join(ROOT, 'config/ambiguous/demo.yaml')}
batch_size: 16
test_batch_size: 32
num_epoch: 4
step: [3]
warm_up_epoch: 1
num_worker: 0
device: cpu
""")
    return str(path), str(work_dir)


@pytest.fixture
def tiny_config(tmp_path, demo_root):
    return write_tiny_config(tmp_path, demo_root)


@pytest.fixture(scope='session')
def trained(tmp_path_factory, demo_root):
    """One finished tiny run, shared by the tests that only read it; returns (config path,
    work_dir)."""
    from main import main

    path, work_dir = write_tiny_config(tmp_path_factory.mktemp('trained'), demo_root)
    assert main(['--config', path]) == 0
    return path, work_dir


@pytest.fixture
def interrupt_at_epoch(monkeypatch):
    """interrupt_at_epoch(e): training runs stop with KeyboardInterrupt as epoch e (0-based) starts,
    as a killed run would, until `monkeypatch.undo()`."""
    from torchlight.trainer import Trainer

    original = Trainer.train_epoch

    def arm(stop):
        def train_epoch(self, epoch):
            if epoch == stop:
                raise KeyboardInterrupt
            return original(self, epoch)

        monkeypatch.setattr(Trainer, 'train_epoch', train_epoch)

    return arm
