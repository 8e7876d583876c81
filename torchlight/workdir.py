"""The folder a run writes to: refused when it is not one, locked against a second writer, cleaned
of the temporary files of a killed run, and replaced (--overwrite) only when it holds a run of this
framework."""

import fcntl
import os
import re
import time

from torchlight.errors import ConfigError
from torchlight.files import describe_removed, is_leftover, remove, remove_leftovers

# Holds the PID of the process writing the run; locked with flock while it runs.
LOCK = '.lock'
# What a training run writes into its work dir before and while it saves its first epoch.
FIRST_EPOCH_OUTPUTS = re.compile(
    r'(config\.yaml|log\.txt|tensorboard|best\.pt|confusion\w*\.png|epoch\d+_\w+_score\.pkl|'
    + re.escape(LOCK) + r')$'
)


def is_run(folder, names=None):
    """A run of this framework: its config.yaml, and results.json or last.pt, or else the lock and
    log of a run that stopped before its first epoch was saved. `names`: the folder's file names,
    when they are not what it now holds (a lock just made by this process is left out)."""
    has = set(os.listdir(folder) if names is None else names)
    return 'config.yaml' in has and bool(
        has & {'results.json', 'last.pt'} or {LOCK, 'log.txt'} <= has
    )


def holds_only_a_stopped_run(folder):
    """Whether `folder` is absent, or holds nothing but what a run stopped before saving its
    first epoch wrote (its temporary files included): what may be replaced without --overwrite."""
    if not os.path.isdir(folder):
        return True
    return all(FIRST_EPOCH_OUTPUTS.match(name) or is_leftover(name) for name in os.listdir(folder))


class WorkDirLock:
    """An exclusive lock on a work dir for the life of this process (the system drops it when the
    process ends, however it ends); a second writer is refused with the first one's PID."""

    def __init__(self, work_dir):
        self.path = path = os.path.join(work_dir, LOCK)
        self.created = not os.path.exists(path)
        try:
            self.file = open(path, 'a+')
        except OSError as err:
            raise ConfigError(f'work_dir {work_dir} is not writable: {err.strerror}') from None
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            owner = self.file.read().strip() or 'unknown'
            self.file.close()
            raise ConfigError(
                f'work_dir {work_dir} is in use by process {owner}, which is still '
                f'running; wait for it to end or stop it first'
            ) from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f'{os.getpid()}\n')
        self.file.flush()

    def release(self, tidy=False):
        """Unlock; with `tidy`, also remove the lock file if this process made it (a refused run
        leaves the folder as it found it)."""
        if tidy and self.created:
            os.remove(self.path)
        self.file.close()


def make_folder(path, option):
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f'{option} {path} is a file, not a folder')
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise ConfigError(f'cannot create {option} {path}: {err.strerror}') from None


def new_test_folder(work_dir):
    """work_dir/test_<date-time>, with -2, -3, ... when runs start in the same second."""
    make_folder(work_dir, 'work_dir')
    stem = os.path.join(work_dir, time.strftime('test_%Y%m%d-%H%M%S'))
    for attempt in range(1, 1000):
        out = stem if attempt == 1 else f'{stem}-{attempt}'
        try:
            os.mkdir(out)
            return out
        except FileExistsError:
            continue
        except OSError as err:
            raise ConfigError(f'cannot write in work_dir {work_dir}: {err.strerror}') from None
    raise ConfigError(f'{work_dir} already holds 999 test folders of {stem}')


def open_training_folder(work_dir, resume, overwrite):
    """Lock work_dir for a training run and clean it up; returns (lock, [lines for the log])."""
    make_folder(work_dir, 'work_dir')
    lock = WorkDirLock(work_dir)
    try:
        # the folder is judged without a killed run's temporary files, which are removed only
        # once it is known to be this framework's
        content = sorted(n for n in os.listdir(work_dir) if n != LOCK and not is_leftover(n))
        if resume and 'last.pt' not in content:
            raise ConfigError(f'--resume: no {work_dir}/last.pt to resume from')
        notes = []
        if content and not resume:
            held_before = set(content) if lock.created else {*content, LOCK}
            replace(work_dir, content, overwrite, is_run(work_dir, held_before))
            notes.append(f'replaced the run in {work_dir} (--overwrite)')
        leftovers = remove_leftovers(work_dir)
        notes.insert(0, describe_removed(leftovers, 'temporary files left by a killed run'))
    except BaseException:
        lock.release(tidy=True)
        raise
    return lock, [note for note in notes if note]


def replace(work_dir, content, overwrite, holds_run):
    """Empty a folder that holds a run, with --overwrite; refuse anything else."""
    shown = ', '.join(content[:8]) + (', ...' if len(content) > 8 else '')
    if not holds_run:
        raise ConfigError(
            f'work_dir {work_dir} holds {shown}, not a run of this framework '
            f'(config.yaml with results.json or last.pt): refused, even with '
            f'--overwrite; choose another --work-dir'
        )
    if not overwrite and 'last.pt' not in content and 'results.json' not in content:
        raise ConfigError(
            f'work_dir {work_dir} holds a run that stopped before its first epoch was saved; '
            f'pass --overwrite to start it again, or --work-dir to write elsewhere'
        )
    if not overwrite:
        raise ConfigError(
            f'work_dir {work_dir} already holds a run; pass --resume to continue it, '
            f'--overwrite to replace it, or --work-dir to write elsewhere'
        )
    for name in content:
        remove(os.path.join(work_dir, name))
