"""Train or test a skeleton action recognition model: python main.py --config config/demo/joint.yaml"""
import os
import shutil
import sys
import time

from torchlight import distributed
from torchlight.config import parse_args, save_config
from torchlight.distributed import Context
from torchlight.log import close_logger, make_logger, silent_logger
from torchlight.registry import ConfigError
from torchlight.trainer import Trainer, select_device


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
    """One process, or one of the processes of `torchrun --nproc_per_node N main.py ...` (DDP)."""
    context = Context()
    try:
        cfg, flags = parse_args(argv)
        context = distributed.init_from_environment(use_cuda=select_device(cfg['device']).type == 'cuda')
        trainer = Trainer(cfg, context)
        if flags['resume'] and cfg['phase'] == 'train':
            trainer.resume(os.path.join(cfg['work_dir'], 'last.pt'))
        # Process 0 prepares the folder (and says why not); the others learn its name, or the error, from it.
        work_dir, problem = None, None
        if context.is_main:
            try:
                work_dir = prepare_work_dir(cfg, flags)
            except ConfigError as err:
                problem = str(err)
        work_dir, problem = distributed.broadcast((work_dir, problem), context)
        if problem:
            raise ConfigError(problem)
    except ConfigError as err:
        if context.is_main:
            print(f'error: {err}', file=sys.stderr)
        distributed.shutdown()
        return 2
    if context.is_main and not flags['resume']:
        save_config(cfg, os.path.join(work_dir, 'config.yaml'))
    logger = make_logger(work_dir) if context.is_main else silent_logger()
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
        distributed.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
