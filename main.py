"""Train or test a skeleton action recognition model: python main.py --config config/demo/joint.yaml"""
import os
import shutil
import sys
import time

from torchlight.config import parse_args, save_config
from torchlight.log import close_logger, make_logger
from torchlight.registry import ConfigError
from torchlight.trainer import Trainer


def prepare_work_dir(cfg, flags):
    """The directory this run writes to; never silently replaces earlier results."""
    work_dir = cfg['work_dir']
    if cfg['phase'] == 'test':
        # A test run writes beside the training run it evaluates, in a new folder each time.
        out = os.path.join(work_dir, time.strftime('test_%Y%m%d-%H%M%S'))
        os.makedirs(out, exist_ok=False)
        return out
    if flags['resume']:
        if not os.path.isfile(os.path.join(work_dir, 'last.pt')):
            raise ConfigError(f'--resume: no {work_dir}/last.pt to resume from')
        return work_dir
    if os.path.isdir(work_dir) and os.listdir(work_dir):
        if not flags['overwrite']:
            raise ConfigError(f'work_dir {work_dir} already holds a run; pass --resume to continue it, '
                              f'--overwrite to replace it, or --work-dir to write elsewhere')
        shutil.rmtree(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    return work_dir


def main(argv=None):
    try:
        cfg, flags = parse_args(argv)
        trainer = Trainer(cfg)
        if flags['resume'] and cfg['phase'] == 'train':
            trainer.resume(os.path.join(cfg['work_dir'], 'last.pt'))
        work_dir = prepare_work_dir(cfg, flags)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if not flags['resume']:
        save_config(cfg, os.path.join(work_dir, 'config.yaml'))
    logger = make_logger(work_dir)
    try:
        if cfg['phase'] == 'train':
            trainer.fit(work_dir, logger)
        else:
            trainer.test(work_dir, logger)
    except ConfigError as err:
        logger.error(f'error: {err}')
        return 2
    finally:
        close_logger(logger)
    return 0


if __name__ == '__main__':
    sys.exit(main())
