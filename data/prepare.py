"""Prepare a dataset from its raw download, one command per dataset:

    python data/prepare.py ntu60 --raw <dir of .skeleton files> --out data/ntu60 [--workers N]

writes <out>/<benchmark>/{train,test}.h5 (see feeders/storage.py) for each benchmark of the dataset, then
prints what was kept and what was left out, and why. Files are read in parallel and streamed to disk:
memory does not grow with the number of files. NW-UCLA and PKU-MMD are not supported yet.
"""
import argparse
import multiprocessing
import os
import sys

import numpy as np
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data.ntu import SkeletonFileError, parse_name, prepare_sequence, sample_name  # noqa: E402
from data.ntu_splits import BENCHMARKS, NUM_CLASS, SETUPS, split_orders  # noqa: E402
from feeders.storage import SplitWriter  # noqa: E402
from torchlight.registry import ConfigError  # noqa: E402

META = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ntu_meta')
MISSING_LISTS = {'ntu60': 'NTU_RGBD_samples_with_missing_skeletons.txt',
                 'ntu120': 'NTU_RGBD120_samples_with_missing_skeletons.txt'}
PREPARATION_VERSION = 1


def read_list(path):
    """Sample names in a list file: lines that look like NTU names (headers are skipped)."""
    with open(path) as f:
        return {line.strip() for line in f if line.strip().startswith('S') and len(line.strip()) == 20}


def find_samples(raw, dataset):
    """The dataset's `.skeleton` files under `raw`, sorted by name, and the names left out as known-missing."""
    if not os.path.isdir(raw):
        raise ConfigError(f'--raw {raw} is not a directory')
    names = sorted(f[:-len('.skeleton')] for f in os.listdir(raw) if f.endswith('.skeleton'))
    if not names:
        raise ConfigError(f'--raw {raw} holds no .skeleton file')
    names = [n for n in names if parse_name(n)['setup'] in SETUPS[dataset]]
    missing = read_list(os.path.join(META, MISSING_LISTS[dataset]))
    return [n for n in names if n not in missing], [n for n in names if n in missing]


def prepare_file(path):
    """(name, frames or None, error message or None), for the worker pool."""
    try:
        return sample_name(path), prepare_sequence(path), None
    except (SkeletonFileError, OSError) as err:
        return sample_name(path), None, str(err)


def two_slots(frames, dataset):
    """(T, 2, 25, 3): a single actor's second slot stays empty (NTU-60) or repeats the actor (NTU-120)."""
    if frames.shape[1] == 2:
        return frames
    second = frames if dataset == 'ntu120' else np.zeros_like(frames)
    return np.concatenate([frames, second], axis=1)


def prepare_ntu(dataset, raw, out, workers, strict):
    names, known_missing = find_samples(raw, dataset)
    benchmarks = BENCHMARKS[dataset]
    orders = {b: split_orders(names, dataset, b) for b in benchmarks}
    split_of = {b: {p: s for s, positions in orders[b].items() for p in positions} for b in benchmarks}
    writers = {}
    for benchmark in benchmarks:
        os.makedirs(os.path.join(out, benchmark), exist_ok=True)
        for split in ('train', 'test'):
            writers[benchmark, split] = SplitWriter(os.path.join(out, benchmark, f'{split}.h5'), (2, 25, 3))
    arrival = {key: {} for key in writers}            # position in `names` → index in that writer
    errors = []
    try:
        paths = [os.path.join(raw, f'{n}.skeleton') for n in names]
        with multiprocessing.Pool(workers) as pool:
            results = pool.imap(prepare_file, paths, chunksize=16)
            for position, (name, frames, error) in enumerate(tqdm(results, total=len(paths), desc=dataset)):
                if error:
                    if strict:
                        raise ConfigError(error)
                    errors.append(error)
                    continue
                frames = two_slots(frames, dataset)
                for benchmark in benchmarks:
                    split = split_of[benchmark].get(position)
                    if split is not None:
                        key = (benchmark, split)
                        arrival[key][position] = writers[key].add(frames)
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    class_names = open(os.path.join(META, 'ntu120_class_names.txt')).read().splitlines()[:NUM_CLASS[dataset]]
    sizes = {}
    for (benchmark, split), writer in writers.items():
        kept = [p for p in orders[benchmark][split] if p in arrival[benchmark, split]]
        writer.close([arrival[benchmark, split][p] for p in kept],
                     [parse_name(names[p])['action'] - 1 for p in kept], [names[p] for p in kept],
                     dataset=dataset, benchmark=benchmark, split=split, layout='ntu25',
                     num_class=NUM_CLASS[dataset], class_names=class_names, preparation_version=PREPARATION_VERSION)
        sizes[benchmark, split] = len(kept)
    return {'found': len(names) + len(known_missing), 'known_missing': len(known_missing),
            'errors': errors, 'sizes': sizes}


def print_summary(dataset, out, summary):
    prepared = summary['found'] - summary['known_missing'] - len(summary['errors'])
    print(f"{dataset}: {summary['found']} files found, {prepared} prepared")
    print(f"  left out: {summary['known_missing']} on the official list of samples with missing skeletons, "
          f"{len(summary['errors'])} unreadable")
    for error in summary['errors'][:10]:
        print(f'    {error}')
    if len(summary['errors']) > 10:
        print(f"    ... and {len(summary['errors']) - 10} more")
    for (benchmark, split), size in summary['sizes'].items():
        print(f'  {os.path.join(out, benchmark, split + ".h5")}: {size} samples')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('dataset', choices=sorted(BENCHMARKS))
    parser.add_argument('--raw', required=True, help='directory of the raw files (.skeleton for NTU)')
    parser.add_argument('--out', required=True, help='output directory, e.g. data/ntu60')
    parser.add_argument('--workers', type=int, default=os.cpu_count(), help='parallel readers')
    parser.add_argument('--strict', action='store_true', help='stop at the first unreadable file')
    args = parser.parse_args(argv)
    try:
        summary = prepare_ntu(args.dataset, args.raw, args.out, max(1, args.workers), args.strict)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print_summary(args.dataset, args.out, summary)
    return 0


if __name__ == '__main__':
    sys.exit(main())
