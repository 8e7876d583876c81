"""A run's logger: messages to the console and to <work_dir>/log.txt."""
import logging
import os
import sys


def make_logger(work_dir, name='sfhead'):
    logger = logging.getLogger(f'{name}.{os.path.abspath(work_dir)}')
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter('%(message)s'))
    to_file = logging.FileHandler(os.path.join(work_dir, 'log.txt'))
    to_file.setFormatter(logging.Formatter('[%(asctime)s] %(message)s', '%Y-%m-%d %H:%M:%S'))
    logger.addHandler(console)
    logger.addHandler(to_file)
    return logger


def silent_logger(name='sfhead.silent'):
    """The logger of the processes that do not write (under torchrun, all but rank 0)."""
    logger = logging.getLogger(name)
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


def close_logger(logger):
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
