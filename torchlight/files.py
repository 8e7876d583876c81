"""Files written so that a crash never leaves a half-written one under its final name, and the
cleanup of the temporary files that a killed process leaves behind."""

import os
import re
import shutil

from torchlight.errors import ConfigError

# `<final name>.tmp<PID>`: what atomic writes (and the data preparation) write before renaming.
TEMPORARY = re.compile(r'\.tmp(\d+)$')


def temporary_name(path):
    return f'{path}.tmp{os.getpid()}'


def atomic_write(path, data):
    """Write bytes to a temporary file, then rename it over `path`."""
    tmp = temporary_name(path)
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def check_output_file(path, option, suffixes, inputs=()):
    """Refuse, before any work is done, an output file that would destroy something: a name
    without one of `suffixes` (e.g. a checkpoint named by mistake), a folder, a folder that does
    not exist, or one of the command's `inputs`."""
    if os.path.isdir(path):
        raise ConfigError(f'{option} {path} is a folder; name a {suffixes[0]} file')
    if not path.lower().endswith(tuple(suffixes)):
        raise ConfigError(f'{option} {path}: the output must be a {" or ".join(suffixes)} file')
    folder = os.path.dirname(path) or '.'
    if not os.path.isdir(folder):
        raise ConfigError(f'{option} {path}: the folder {folder} does not exist')
    for source in inputs:
        if os.path.exists(path) and os.path.exists(source) and os.path.samefile(path, source):
            raise ConfigError(f'{option} {path} is also an input of this command; name another '
                              f'file')


def check_output_folder(path, option):
    """Refuse an output folder that names an existing file."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f'{option} {path} is a file, not a folder')


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        pass
    return True


def is_leftover(name, pattern=TEMPORARY):
    """Whether a file name matches `pattern` (its group: a PID) of a process that is gone."""
    match = pattern.search(name)
    return bool(match) and not process_alive(int(match.group(1)))


def remove_leftovers(folder, pattern=TEMPORARY, recursive=True):
    """Remove the leftovers (is_leftover) in `folder`, and with `recursive` in its subfolders;
    returns [(path, bytes)] of what was removed. Only for a folder that this framework writes."""
    removed = []
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            if is_leftover(name, pattern):
                path = os.path.join(root, name)
                removed.append((path, size_of(path)))
                remove(path)
        dirs[:] = [d for d in dirs if recursive and os.path.isdir(os.path.join(root, d))]
    return removed


def size_of(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files
    )


def remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def describe_removed(removed, why):
    """One line saying what `remove_leftovers` removed, or None."""
    if not removed:
        return None
    total = sum(size for _, size in removed)
    names = ', '.join(path for path, _ in removed[:5]) + (', ...' if len(removed) > 5 else '')
    return f'removed {len(removed)} {why} ({total / 2**20:.1f} MiB): {names}'
