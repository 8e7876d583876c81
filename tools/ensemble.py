"""Fuse the test scores of several streams (joint, bone, joint motion, bone motion, ...) with
weights.

    python -m tools.ensemble --scores work_dir/ntu60/joint work_dir/ntu60/bone
    work_dir/ntu60/joint_motion \\
        work_dir/ntu60/bone_motion --epoch best
    python -m tools.ensemble --scores J.pkl B.pkl JM.pkl BM.pkl --weights 0.6 0.6 0.4 0.4 --labels
    NTU60_CV.npz

Each stream is a score file (ours or the reference codebases' epoch1_test_score.pkl: a pickled dict
sample name → score vector, read without running any code) or a run directory, whose best or last
epoch is chosen with --epoch. Raw scores are summed with the weights, as the references do. Labels
come from --labels FILE, or the prepared test split of --dataset/--benchmark, or the first run's
config. Without --weights, a dataset's reference weights apply to the streams of run directories by
stream, or to four score files taken as joint, bone, joint motion, bone motion in that order;
otherwise all weights are 1. --search-weights tunes the weights on validation scores (never on the
test labels it reports) and then reports the test split.
"""

import argparse
import itertools
import json
import math
import os
import sys

import numpy as np

from data.synthetic import ensure_demo_dataset
from feeders import run_split
from feeders.feeder import open_split
from torchlight.files import atomic_write, check_output_file
from torchlight.fusion import REFERENCE_WEIGHTS, STREAMS, fuse, load_streams
from torchlight.metrics import (
    evaluate_scores,
    format_groups,
    format_metrics,
    load_groups,
    topk_accuracy,
)
from torchlight.registry import ConfigError
from torchlight.scores import align, load_label_file, read_run, run_meta

SEARCH_GRID = np.round(np.arange(0, 1.01, 0.2), 2)


class Evaluation:
    """What the scores are measured against: labels (in sample order), names, class names,
    groups."""

    def __init__(self, names, labels, class_names, groups_path, dataset=None, benchmark=None):
        self.names, self.labels = names, np.asarray(labels)
        self.class_names = class_names
        self.groups = load_groups(groups_path, class_names) if groups_path else None
        self.dataset, self.benchmark = dataset, benchmark

    def metrics(self, scores):
        return evaluate_scores(scores, self.labels, len(self.class_names), self.groups)


def data_split(args, first_run, split):
    """(path, index) of the prepared split the scores belong to: --dataset/--benchmark, else the
    run's config (whose feeder is built, so that the demo data is generated if needed)."""
    if args.dataset:
        if not args.benchmark:
            raise ConfigError('--dataset needs --benchmark (e.g. xsub)')
        if args.dataset == 'demo':  # the demo's split files, generated on first use
            data = os.path.join(args.data_root, 'demo', args.benchmark)
            ensure_demo_dataset(data)
        else:
            data = os.path.join(args.data_root, args.dataset, f'{args.dataset}.h5')
        path, index, _ = open_split(data, split, args.benchmark)
        return path, index
    if first_run is None:
        raise ConfigError(
            'say where the labels are: --labels FILE, --dataset and --benchmark, or give run '
            'directories'
        )
    feeder = run_split(read_run(first_run)[0], split)
    return feeder.path, {'names': feeder.names, 'labels': feeder.labels, 'attrs': feeder.meta}


def evaluation_for(args, first_run, names, num_class):
    """Labels for the scores (aligned by name where names are known) and the class groups."""
    groups_path, dataset, benchmark = args.groups, args.dataset, args.benchmark
    if first_run and not groups_path:
        groups_path = read_run(first_run)[0].get('ambiguous_groups')
    if args.labels:
        label_names, labels = load_label_file(args.labels)
        class_names = [str(c) for c in range(num_class)]
    else:
        _, index = data_split(args, first_run, 'test')
        label_names, labels = index['names'], index['labels']
        attrs = index['attrs']
        class_names = attrs.get('class_names') or [str(c) for c in range(attrs['num_class'])]
        dataset, benchmark = dataset or attrs.get('dataset'), benchmark or attrs.get('benchmark')
        if not groups_path and os.path.isfile(
            os.path.join('config', 'ambiguous', f'{dataset}.yaml')
        ):
            groups_path = os.path.join('config', 'ambiguous', f'{dataset}.yaml')
    source = args.labels or 'the prepared test split'
    if label_names is not None:
        labels = align(label_names, labels, names, source)
    elif len(labels) != len(names):
        raise ConfigError(
            f'{args.labels} holds {len(labels)} labels for {len(names)} scored samples'
        )
    outside = [label for label in labels if not 0 <= label < num_class]
    if outside:
        raise ConfigError(
            f'{source}: class id {outside[0]} is outside the {num_class} classes '
            f'that the scores hold (0 to {num_class - 1})'
        )
    return Evaluation(
        names, labels, class_names, groups_path=groups_path, dataset=dataset, benchmark=benchmark
    )


def default_weights(sources, evaluation):
    """The reference weights where they apply, else ones; and a line saying which."""
    reference = REFERENCE_WEIGHTS.get((evaluation.dataset, evaluation.benchmark))
    if reference is None:
        return [1.0] * len(sources), 'weights 1 (no reference weights for this dataset)'
    by_stream = dict(zip(STREAMS, reference))
    if all(os.path.isdir(s) for s in sources):
        streams = [run_meta(s)['stream'] for s in sources]
        return (
            [by_stream.get(s, 1.0) for s in streams],
            f'reference weights of {evaluation.dataset} {evaluation.benchmark} '
            f'by stream ({", ".join(streams)})',
        )
    if len(sources) == 4:
        return list(reference), (
            f'reference weights of {evaluation.dataset} {evaluation.benchmark}, the files '
            f'taken as {", ".join(STREAMS)}'
        )
    return [1.0] * len(sources), 'weights 1 (reference weights need the four streams)'


def search_weights(val_streams, val_labels):
    """The grid weights with the best validation top-1 (ties: the first in grid order)."""
    best, best_top1 = None, -1.0
    for weights in itertools.product(SEARCH_GRID, repeat=len(val_streams)):
        if not any(weights):
            continue
        top1 = topk_accuracy(fuse(val_streams, weights), val_labels, 1)
        if top1 > best_top1:
            best, best_top1 = list(weights), top1
    return best, best_top1


def validation_labels(args, first_run, names):
    """Labels of the validation samples: --val-labels, else looked up by name in the prepared train
    split (the validation samples are held-out training samples)."""
    if args.val_labels:
        label_names, labels = load_label_file(args.val_labels)
        if label_names is None and len(labels) != len(names):
            raise ConfigError(
                f'{args.val_labels} holds {len(labels)} labels for {len(names)} validation samples'
            )
        return labels if label_names is None else align(label_names, labels, names, args.val_labels)
    path, index = data_split(args, first_run, 'train')
    lookup = dict(zip(index['names'], index['labels']))
    missing = [n for n in names if n not in lookup]
    if missing:
        raise ConfigError(
            f'{path} has no sample {missing[0]} of the validation scores; give --val-labels'
        )
    return np.asarray([lookup[n] for n in names])


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--scores', nargs='+', required=True, help='score files or run directories, one per stream'
    )
    parser.add_argument('--weights', nargs='+', type=float, help='one weight per stream')
    parser.add_argument('--epoch', choices=['best', 'last'], help='which epoch of a run directory')
    parser.add_argument(
        '--labels', help='.npy/.txt class ids, reference .npz (y_test) or NW-UCLA val_label.pkl'
    )
    parser.add_argument(
        '--dataset', help='labels from the prepared data: ntu60, ntu120, ucla, pkummd, demo'
    )
    parser.add_argument('--benchmark', help='with --dataset: xsub, xview, xset')
    parser.add_argument(
        '--data-root', default='data', help='where prepared datasets are (default data/)'
    )
    parser.add_argument(
        '--groups', help='ambiguous class groups (YAML); default: the run\'s or the dataset\'s'
    )
    parser.add_argument(
        '--search-weights', action='store_true', help='tune weights on validation scores'
    )
    parser.add_argument('--val-scores', nargs='+', help='validation score files, one per stream')
    parser.add_argument(
        '--val-labels', help='labels of the validation scores (default: from the train split)'
    )
    parser.add_argument('--json', help='write the figures to this file')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.json:
            # refused before any work: the name of a checkpoint or of a score file it reads
            check_output_file(args.json, '--json', ('.json',),
                              inputs=[*args.scores, *(args.val_scores or [])])
        report = run(args)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if args.json:
        atomic_write(args.json, (json.dumps(report, indent=2) + '\n').encode())
    return 0


def run(args):
    if args.weights and len(args.weights) != len(args.scores):
        raise ConfigError(f'{len(args.weights)} weights for {len(args.scores)} streams')
    if args.weights and not all(math.isfinite(w) for w in args.weights):
        given = ' '.join(map(str, args.weights))
        raise ConfigError(f'--weights must be finite numbers, got {given}')
    first_run = next((s for s in args.scores if os.path.isdir(s)), None)
    streams = load_streams(args.scores, args.epoch)
    names, num_class = streams[0].names, streams[0].scores.shape[1]
    evaluation = evaluation_for(args, first_run, names, num_class)
    if args.search_weights:
        sources = args.val_scores or args.scores
        if args.val_scores and len(args.val_scores) != len(args.scores):
            raise ConfigError(
                f'{len(args.val_scores)} validation score files for {len(args.scores)} streams'
            )
        val_streams = load_streams(sources, args.epoch, 'val')
        weights, val_top1 = search_weights(
            val_streams, validation_labels(args, first_run, val_streams[0].names)
        )
        how = (f'weights searched on {len(val_streams[0].names)} validation samples '
               f'(val top-1 {val_top1:.2f} %)')
    elif args.weights:
        weights, how = args.weights, 'weights given'
    else:
        weights, how = default_weights(args.scores, evaluation)
    report = {}
    print(f'{len(names)} test samples, {num_class} classes')
    for stream, source in zip(streams, args.scores):
        metrics = evaluation.metrics(stream.scores)
        report[source] = summary(metrics)
        print(f'  {source}: {format_metrics(metrics)}')
    fused = evaluation.metrics(fuse(streams, weights))
    report['fused'] = {**summary(fused), 'weights': [float(w) for w in weights]}
    print(f"fused ({how}: {' '.join(f'{w:g}' for w in weights)}): {format_metrics(fused)}")
    for line in format_groups(fused):
        print(line)
    return report


def summary(metrics):
    out = {key: metrics[key] for key in ('top1', 'top5', 'mean_class')}
    if 'ambiguous' in metrics:
        out['ambiguous'] = metrics['ambiguous']
    return out


if __name__ == '__main__':
    sys.exit(main())
