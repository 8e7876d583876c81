"""A run's logger: messages to the console and to <work_dir>/log.txt."""

import logging
import os
import sys


def interactive():
    """Whether progress bars are wanted: on a terminal only (redirected to a file, they would fill
    it with fragments; the log has one line per epoch)."""
    return sys.stdout.isatty() and sys.stderr.isatty()


class BelowError(logging.Filter):
    def filter(self, record):
        return record.levelno < logging.ERROR


def make_logger(work_dir, name='sfhead'):
    """Information to stdout, errors to stderr, both to <work_dir>/log.txt."""
    logger = logging.getLogger(f'{name}.{os.path.abspath(work_dir)}')
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stdout)
    console.addFilter(BelowError())
    errors = logging.StreamHandler(sys.stderr)
    errors.setLevel(logging.ERROR)
    for handler in (console, errors):
        handler.setFormatter(logging.Formatter('%(message)s'))
    to_file = logging.FileHandler(os.path.join(work_dir, 'log.txt'))
    to_file.setFormatter(logging.Formatter('[%(asctime)s] %(message)s', '%Y-%m-%d %H:%M:%S'))
    for handler in (console, errors, to_file):
        logger.addHandler(handler)
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
