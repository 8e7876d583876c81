"""Prepare a dataset from its raw download, one command per dataset:

    python -m data.prepare ntu60  --raw <dir of .skeleton files>  --out data/ntu60
    python -m data.prepare ntu120 --raw <dir of .skeleton files>  --out data/ntu120
    python -m data.prepare ucla   --raw <the all_sqe directory>   --out data/ucla
    python -m data.prepare pkummd --raw <dir of skeleton, label and split files> --out data/pkummd
    python -m data.prepare pyskl  --raw ntu60_hrnet.pkl [--layout coco17] --out data/pyskl
    python -m data.prepare custom --raw <dir of sequences> --layout coco17 --out data/mine

writes <out>/<dataset>.h5 (see data/storage.py): every sample once, with each benchmark's train and
test splits as lists of its samples; or with --format npz the reference codebases' layout
(<out>/NTU60_CS.npz, ...; see data/npz.py). pyskl data is named after its file (ntu60_hrnet.h5),
custom data after its folder (of sequence files, labels.csv and classes.txt). It prints what was
kept and what was left out, and why. Files are read in parallel (--workers) and streamed to disk:
memory does not grow with the number of files.
A file (or pyskl record) that cannot be read is reported with its name (and line) and skipped, or
stops the run with --strict; output files appear only when complete.
"""

import argparse
import functools
import multiprocessing
import os
import re
import shutil
import sys
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from data import DataFileError
from data.npz import member_layout, write_reference_npz
from data.recipes import build_recipe
from data.storage import SplitWriter, read_index
from torchlight.files import describe_removed, remove_leftovers
from torchlight.log import interactive
from torchlight.registry import ConfigError

PREPARATION_VERSION = 1
# What a killed preparation leaves: `<output>.tmp<PID>` files and `.prepare-<PID>` scratch folders.
LEFTOVER = re.compile(r'(?:\.tmp|^\.prepare-)(\d+)$')


def read_source(read, source):
    """(samples, problems) for the worker pool; a source that cannot be read is one problem."""
    try:
        return read(source)
    except (DataFileError, OSError) as err:
        return [], [str(err)]


class Placed(NamedTuple):
    """A sample's place in a split: sorted by (rank, clip) it comes in the split's order."""

    rank: int  # of its source in the split's list
    clip: int  # its index among its source's clips
    stored: int  # its index among the stored samples (arrival order)


def split_keys(recipe):
    """(benchmark, split) of every split the recipe defines."""
    return [(b, s) for b, splits in recipe.splits.items() for s in splits]


def dataset_file(recipe, out):
    """Where the dataset's frames are written, once: <out>/<dataset>.h5."""
    return os.path.join(out, f'{recipe.dataset}.h5')


def output_paths(recipe, out, file_format):
    if file_format == 'npz':
        return [os.path.join(out, name) for name in recipe.npz_names.values()]
    return [dataset_file(recipe, out)]


def prepare(recipe, out, workers=1, strict=False):
    """Read every source in a worker pool and stream each sample, once, into the dataset file,
    with each benchmark's splits as lists of its samples in the split's order."""
    keys = split_keys(recipe)
    path = dataset_file(recipe, out)
    rank = {(b, s): {source: i for i, source in enumerate(recipe.splits[b][s])} for b, s in keys}
    placed = {key: [] for key in keys}
    names, labels = [], []  # per stored sample
    per_sample = {key: [] for key in recipe.per_sample}
    problems, samples = list(recipe.problems), 0
    if problems and strict:
        raise ConfigError(f'{problems[0]} (stopped by --strict)')
    os.makedirs(out, exist_ok=True)
    writer = SplitWriter(path, recipe.sample_shape)
    try:
        for source, (clips, trouble) in enumerate(read_all(recipe, workers)):
            if trouble and strict:
                raise ConfigError(f'{trouble[0]} (stopped by --strict)')
            problems += trouble
            samples += len(clips)
            splits_of_source = [key for key in keys if source in rank[key]]
            for clip, (name, label, frames, *extras) in enumerate(
                clips if splits_of_source else ()
            ):
                stored = writer.add(frames)
                names.append(name)
                labels.append(label)
                for key, values in per_sample.items():
                    values.append(extras[0][key])
                for key in splits_of_source:
                    placed[key].append(Placed(rank[key][source], clip, stored))
        if not samples:
            found = len(recipe.sources) + len(recipe.problems)
            raise ConfigError(
                f'no sample could be prepared from the {found} {recipe.source_kind} found in --raw '
                f'({len(problems)} unreadable, e.g. '
                f'{problems[0] if problems else "none"}): nothing written'
            )
    except BaseException:
        writer.abort()
        raise
    splits = {b: {} for b in recipe.splits}
    for benchmark, split in keys:
        splits[benchmark][split] = [e.stored for e in sorted(placed[benchmark, split])]
    replaced = {path: samples_held(path)}
    writer.close(
        order=range(len(names)),
        labels=labels,
        names=names,
        splits=splits,
        per_sample={key: np.asarray(values) for key, values in per_sample.items()},
        dataset=recipe.dataset,
        layout=recipe.layout,
        num_class=len(recipe.class_names),
        class_names=recipe.class_names,
        preparation_version=PREPARATION_VERSION,
        centred=recipe.centred,
        **({'channels': recipe.channels} if recipe.channels else {}),
    )
    sizes = {path: {f'{b} {s}': len(splits[b][s]) for b, s in keys}}
    return {
        'sources': len(recipe.sources) + len(recipe.problems),
        'samples': samples,
        'problems': problems,
        'sizes': sizes,
        'replaced': replaced,
        'classes_without_sample': sorted(set(range(len(recipe.class_names))) - set(labels)),
    }


def read_all(recipe, workers):
    """(clips, problems) of every source, in source order, read by a pool of `workers`."""
    with multiprocessing.Pool(workers) as pool:
        results = pool.imap(
            functools.partial(read_source, recipe.read), recipe.sources, chunksize=8
        )
        yield from tqdm(
            results, total=len(recipe.sources), desc=recipe.dataset, disable=not interactive()
        )


def samples_held(path):
    """How many samples an existing output holds (None when there is none), before replacing it."""
    if not os.path.exists(path):
        return None
    try:
        if path.endswith('.npz'):
            shapes = [member_layout(path, f'x_{split}')[1] for split in ('train', 'test')]
            return sum(samples for samples, *_ in shapes)
        return len(read_index(path)['labels'])
    except (ConfigError, OSError, ValueError):
        return 'an unreadable number of'


def prepare_npz(recipe, out, workers=1, strict=False):
    """The reference layout: prepare the HDF5 splits in a scratch folder, then pad every benchmark's
    samples to the longest sequence of the dataset and write one .npz per benchmark."""
    if not recipe.npz_names:
        raise ConfigError(
            f'the reference .npz layout is written for NTU RGB+D and PKU-MMD only (their '
            f'benchmarks\' files); {recipe.dataset} is neither: use --format h5'
        )
    scratch = os.path.join(out, f'.prepare-{os.getpid()}')
    try:
        summary = prepare(recipe, scratch, workers, strict)
        source = dataset_file(recipe, scratch)
        longest = int(read_index(source)['length'].max(initial=0))
        counts = summary['sizes'][source]
        sizes, summary['replaced'] = {}, {}
        for benchmark, file_name in recipe.npz_names.items():
            splits = {split: (source, benchmark) for split in ('train', 'test')}
            path = os.path.join(out, file_name)
            summary['replaced'][path] = samples_held(path)
            write_reference_npz(path, splits, recipe.class_names, longest)
            sizes[path] = {split: counts[f'{benchmark} {split}'] for split in splits}
        summary['sizes'] = sizes
        summary['frames'] = longest
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return summary


def print_summary(recipe, summary):
    left_out = ''.join(
        f', {len(names)} left out as {reason}' for reason, names in recipe.left_out.items() if names
    )
    print(
        f"{recipe.dataset}: {summary['samples']} samples prepared from {summary['sources']} "
        f"{recipe.source_kind}, "
        f"{len(summary['problems'])} skipped as unreadable{left_out}"
    )
    for problem in summary['problems'][:10]:
        print(f'    {problem}')
    if len(summary['problems']) > 10:
        print(f"    ... and {len(summary['problems']) - 10} more unreadable")
    for path, size in summary['sizes'].items():
        counts = (
            ', '.join(f'{n} {split}' for split, n in size.items())
            if isinstance(size, dict)
            else size
        )
        held = summary['replaced'][path]
        replaced = '' if held is None else f' (replaced a file of {held} samples)'
        print(f'  {path}: {counts} samples{replaced}')
    if 'frames' in summary:
        print(f"  frames padded to {summary['frames']}, the longest sequence")
    empty_splits = [split for size in summary['sizes'].values() if isinstance(size, dict)
                    for split, count in size.items() if not count]
    if empty_splits:
        print(f"  no sample in {', '.join(empty_splits)}: a run needs samples in both splits of "
              f"its benchmark")
    empty = summary['classes_without_sample']
    if empty:
        # with numbered labels the class count is the largest label + 1: a stray label shows here
        print(f'  {len(empty)} of the {len(recipe.class_names)} classes have no sample: '
              f'{describe_classes(empty, recipe.class_names)}')


def describe_classes(ids, names):
    """Class ids as ranges of 0-based ids, with their names when few and not numbers."""
    named = [names[i] for i in ids]
    if len(ids) > 5 or named == [str(i) for i in ids]:
        return id_ranges(ids)
    return ', '.join(f'{i} ({name})' for i, name in zip(ids, named))


def id_ranges(ids):
    """Sorted class ids as ranges: [0, 1, 2, 5] → '0-2, 5'."""
    spans = []
    for i in ids:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ', '.join(str(a) if a == b else f'{a}-{b}' for a, b in spans)


def already_prepared(dataset, outputs):
    held = ', '.join(f'{path} ({samples_held(path)} samples)' for path in outputs)
    return (
        f'{dataset} is prepared already: {held}; nothing rewritten (add --overwrite to prepare '
        f'it again)'
    )


def clean_output_folder(out):
    """Refuse an --out that is not a folder; remove what a killed preparation left in it."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f'--out {out} is a file, not a folder')
    if os.path.isdir(out):
        # its own leftovers only: the outputs and scratch folders it writes at the top of --out
        removed = remove_leftovers(out, LEFTOVER, recursive=False)
        note = describe_removed(removed, 'files left by a killed preparation')
        if note:
            print(note)


def check_options(args):
    if args.persons < 1:
        raise ConfigError(f'--persons {args.persons}: at least one person slot is needed')
    if not 0 <= args.test_ratio < 1:
        raise ConfigError(f'--test-ratio {args.test_ratio} is outside [0, 1)')


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('dataset', choices=['ntu60', 'ntu120', 'ucla', 'pkummd', 'pyskl', 'custom'])
    parser.add_argument(
        '--raw', required=True, help='directory of the raw files (pyskl: the annotation .pkl)'
    )
    parser.add_argument('--out', required=True, help='output directory, e.g. data/ntu60')
    parser.add_argument(
        '--format',
        choices=['h5', 'npz'],
        default='h5',
        help='h5: our lazily read splits (default); npz: the reference codebases\' padded layout',
    )
    parser.add_argument(
        '--layout',
        help='pyskl, custom: the skeleton layout (ntu25, ucla20, coco17, mediapipe33 or a layout '
        'file .yaml); pyskl infers it from the keypoints\' shape when not given',
    )
    parser.add_argument(
        '--persons', type=int, default=2,
        help='pyskl, custom: person slots per frame (more persons are dropped, fewer padded with '
        'zeros; default 2)',
    )
    parser.add_argument(
        '--test-ratio', type=float, default=0.2,
        help='custom without a split column: share of each class drawn for the test split',
    )
    parser.add_argument('--seed', type=int, default=0, help='custom: seed of that draw')
    parser.add_argument('--workers', type=int, default=os.cpu_count(), help='parallel readers')
    parser.add_argument('--strict', action='store_true', help='stop at the first unreadable file')
    parser.add_argument(
        '--overwrite', action='store_true', help='prepare again when every output exists already'
    )
    args = parser.parse_args(argv)
    run = prepare_npz if args.format == 'npz' else prepare
    try:
        check_options(args)
        clean_output_folder(args.out)
        recipe = build_recipe(
            args.dataset, args.raw, layout=args.layout, persons=args.persons,
            test_ratio=args.test_ratio, seed=args.seed,
        )
        outputs = output_paths(recipe, args.out, args.format)
        # no outputs: a format this dataset cannot take, which `run` refuses
        if outputs and not args.overwrite and all(os.path.exists(p) for p in outputs):
            print(already_prepared(recipe.dataset, outputs))
            return 0
        summary = run(recipe, args.out, max(1, args.workers), args.strict)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print_summary(recipe, summary)
    return 0


if __name__ == '__main__':
    sys.exit(main())
