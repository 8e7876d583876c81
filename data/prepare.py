"""Prepare a dataset from its raw download, one command per dataset:

    python data/prepare.py ntu60  --raw <dir of .skeleton files>  --out data/ntu60
    python data/prepare.py ntu120 --raw <dir of .skeleton files>  --out data/ntu120
    python data/prepare.py ucla   --raw <the all_sqe directory>   --out data/ucla
    python data/prepare.py pkummd --raw <dir with the skeleton files, label files and split files>  --out data/pkummd

writes <out>/<benchmark>/{train,test}.h5 (see feeders/storage.py) for each benchmark of the dataset, or with
--format npz the reference codebases' layout (<out>/NTU60_CS.npz, ...; see feeders/npz.py), and prints what was
kept and what was left out, and why. Files are read in parallel (--workers) and streamed to disk: memory does
not grow with the number of files. A file that cannot be read is reported with its name (and line) and skipped,
or stops the run with --strict; output files appear only when complete.
"""
import argparse
import functools
import multiprocessing
import os
import re
import shutil
import sys

from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data import DataFileError  # noqa: E402
from data.recipes import build_recipe  # noqa: E402
from feeders.npz import member_layout, write_reference_npz  # noqa: E402
from feeders.storage import SplitWriter, read_index  # noqa: E402
from torchlight.files import describe_removed, remove_leftovers  # noqa: E402
from torchlight.log import interactive  # noqa: E402
from torchlight.registry import ConfigError  # noqa: E402

PREPARATION_VERSION = 1
# What a killed preparation leaves: `<output>.tmp<PID>` files and `.prepare-<PID>` scratch folders.
LEFTOVER = re.compile(r'(?:\.tmp|^\.prepare-)(\d+)$')


def read_source(read, source):
    """(samples, problems) for the worker pool; a source that cannot be read is one problem."""
    try:
        return read(source)
    except (DataFileError, OSError) as err:
        return [], [str(err)]


def prepare(recipe, out, workers=1, strict=False):
    """Read every source in a worker pool and stream each sample into the split files of every benchmark."""
    keys = [(b, s) for b, splits in recipe.splits.items() for s in splits]
    paths = {key: os.path.join(out, key[0], f'{key[1]}.h5') for key in keys}
    rank = {key: {source: i for i, source in enumerate(recipe.splits[key[0]][key[1]])} for key in keys}
    placed = {key: [] for key in keys}      # (rank of the source, clip, arrival index, name, label)
    problems, samples = list(recipe.problems), 0
    writers = {}
    if problems and strict:
        raise ConfigError(f'{problems[0]} (stopped by --strict)')
    try:
        for key in keys:
            os.makedirs(os.path.dirname(paths[key]), exist_ok=True)
            writers[key] = SplitWriter(paths[key], recipe.sample_shape)
        with multiprocessing.Pool(workers) as pool:
            results = pool.imap(functools.partial(read_source, recipe.read), recipe.sources, chunksize=8)
            for source, (clips, trouble) in enumerate(tqdm(results, total=len(recipe.sources),
                                                           desc=recipe.dataset,
                                                           disable=not interactive())):
                if trouble and strict:
                    raise ConfigError(f'{trouble[0]} (stopped by --strict)')
                problems += trouble
                samples += len(clips)
                for clip, (name, label, frames) in enumerate(clips):
                    for key in keys:
                        if source in rank[key]:
                            placed[key].append((rank[key][source], clip, writers[key].add(frames), name, label))
        if not samples:
            found = len(recipe.sources) + len(recipe.problems)
            raise ConfigError(f'no sample could be prepared from the {found} files found in --raw '
                              f'({len(problems)} unreadable, e.g. '
                              f'{problems[0] if problems else "none"}): nothing written')
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    sizes, replaced = {}, {}
    for key, writer in writers.items():
        entries = sorted(placed[key])
        replaced[paths[key]] = samples_held(paths[key])
        writer.close([e[2] for e in entries], [e[4] for e in entries], [e[3] for e in entries],
                     dataset=recipe.dataset, benchmark=key[0], split=key[1], layout=recipe.layout,
                     num_class=len(recipe.class_names), class_names=recipe.class_names,
                     preparation_version=PREPARATION_VERSION)
        sizes[paths[key]] = len(entries)
    return {'sources': len(recipe.sources) + len(recipe.problems), 'samples': samples,
            'problems': problems, 'sizes': sizes, 'replaced': replaced}


def samples_held(path):
    """How many samples an existing output holds (None when there is none), before replacing it."""
    if not os.path.exists(path):
        return None
    try:
        if path.endswith('.npz'):
            return sum(member_layout(path, f'x_{split}')[1][0] for split in ('train', 'test'))
        return len(read_index(path)['labels'])
    except (ConfigError, OSError, ValueError):
        return 'an unreadable number of'


def prepare_npz(recipe, out, workers=1, strict=False):
    """The reference layout: prepare the HDF5 splits in a scratch folder, then pad every benchmark's samples to
    the longest sequence of the dataset and write one .npz per benchmark."""
    if not recipe.npz_names:
        raise ConfigError(f'the reference .npz layout is for 2 persons x 25 joints; {recipe.dataset} has none: '
                          f'use --format h5')
    scratch = os.path.join(out, f'.prepare-{os.getpid()}')
    try:
        summary = prepare(recipe, scratch, workers, strict)
        longest = max([int(read_index(p)['length'].max(initial=0)) for p in summary['sizes']])
        sizes, summary['replaced'] = {}, {}
        for benchmark, file_name in recipe.npz_names.items():
            splits = {split: os.path.join(scratch, benchmark, f'{split}.h5') for split in ('train', 'test')}
            path = os.path.join(out, file_name)
            summary['replaced'][path] = samples_held(path)
            write_reference_npz(path, splits, recipe.class_names, longest)
            sizes[path] = {split: summary['sizes'][p] for split, p in splits.items()}
        summary['sizes'] = sizes
        summary['frames'] = longest
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return summary


def print_summary(recipe, summary):
    left_out = ''.join(f', {len(names)} left out as {reason}' for reason, names in recipe.left_out.items() if names)
    print(f"{recipe.dataset}: {summary['samples']} samples prepared from {summary['sources']} files, "
          f"{len(summary['problems'])} skipped as unreadable{left_out}")
    for problem in summary['problems'][:10]:
        print(f'    {problem}')
    if len(summary['problems']) > 10:
        print(f"    ... and {len(summary['problems']) - 10} more unreadable")
    for path, size in summary['sizes'].items():
        counts = ', '.join(f'{n} {split}' for split, n in size.items()) if isinstance(size, dict) else size
        held = summary['replaced'][path]
        replaced = '' if held is None else f' (replaced a file of {held} samples)'
        print(f'  {path}: {counts} samples{replaced}')
    if 'frames' in summary:
        print(f"  frames padded to {summary['frames']}, the longest sequence")


def clean_output_folder(out):
    """Refuse an --out that is not a folder; remove what a killed preparation left in it."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f'--out {out} is a file, not a folder')
    if os.path.isdir(out):
        removed = remove_leftovers(out, LEFTOVER)
        note = describe_removed(removed, 'files left by a killed preparation')
        if note:
            print(note)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('dataset', choices=['ntu60', 'ntu120', 'ucla', 'pkummd'])
    parser.add_argument('--raw', required=True, help='directory of the raw files')
    parser.add_argument('--out', required=True, help='output directory, e.g. data/ntu60')
    parser.add_argument('--format', choices=['h5', 'npz'], default='h5',
                        help='h5: our lazily read splits (default); npz: the reference codebases\' padded layout')
    parser.add_argument('--workers', type=int, default=os.cpu_count(), help='parallel readers')
    parser.add_argument('--strict', action='store_true', help='stop at the first unreadable file')
    args = parser.parse_args(argv)
    run = prepare_npz if args.format == 'npz' else prepare
    try:
        clean_output_folder(args.out)
        recipe = build_recipe(args.dataset, args.raw)
        summary = run(recipe, args.out, max(1, args.workers), args.strict)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print_summary(recipe, summary)
    return 0


if __name__ == '__main__':
    sys.exit(main())
