"""Where does the gain come from? Compare two runs (e.g. baseline vs SF-Head) on the same test
split.

    python -m tools.compare work_dir/demo/joint_baseline work_dir/demo/joint --epoch last \\
        --plots work_dir/compare
    python -m tools.compare work_dir/ntu60/backbones/ctrgcn --epoch best --top-pairs 10 \\
        --write-groups confused.yaml

With two runs it prints overall accuracies, then per group of confusable classes (`--groups`,
default the runs' `ambiguous_groups`) and per class of those groups: the accuracy of each run, the
difference and the sample count; then the class pairs whose mutual confusion fell and rose most.
The runs are named by what tells them apart in their configs (backbone, "baseline" or "SF-Head",
stream), or else by their folders (`--labels` names them otherwise).
Overall and per group, McNemar's exact test on the samples that only one run got right says
whether the difference is more than chance (counts and two-sided p-value). Where tools/embed.py
has measured a run's epoch (`<run>/separability_<epoch>.json`), each group's silhouette, k-NN and
linear-probe accuracy in feature space sit beside its accuracies.
Groups can also come from the data: the `--top-pairs` class pairs most confused in the first
(baseline) run. With one run it lists those pairs (and `--write-groups` saves them as a groups file
for `ambiguous_groups`). `--plots DIR` writes the per-class accuracy difference and both runs'
confusion matrices restricted to the groups (needs matplotlib).
"""

import argparse
import os
import sys
from typing import NamedTuple

import numpy as np
import yaml

from feeders import run_split
from tools.tables import BACKBONES, HEADINGS, has_sf_head
from torchlight import plots
from torchlight.files import atomic_write, check_output_file, check_output_folder
from torchlight.metrics import (
    ambiguous_metrics,
    confusion_matrix,
    load_groups,
    mcnemar_exact,
    per_class_accuracy,
    topk_accuracy,
)
from torchlight.registry import ConfigError
from torchlight.scores import align, read_run, scores_of
from torchlight.separability import read_separability

# The separability numbers shown beside the group accuracies: (key, heading, format).
SEPARABILITY = (('silhouette', 'silhouette', '.2f'), ('knn', 'k-NN %', '.1f'),
                ('probe', 'probe %', '.1f'))


class Run:
    """A run's test predictions, confusion matrix and per-class accuracy, aligned to `names` if
    given."""

    def __init__(self, run_dir, epoch, names=None):
        self.dir = run_dir
        self.config, results = read_run(run_dir)
        sample_names, scores, self.score_file = scores_of(run_dir, epoch)
        self.names = names or sample_names
        self.scores = align(sample_names, scores, self.names, self.score_file)
        # {group: numbers} that tools/embed.py measured for this epoch, or None
        self.separability, note = read_separability(run_dir, epoch, results)
        if note:
            print(f'note: {note}')

    def evaluate(self, labels, num_class):
        self.predictions = self.scores.argmax(axis=1)
        self.correct = self.predictions == np.asarray(labels)
        self.cm = confusion_matrix(labels, self.predictions, num_class)
        self.per_class = per_class_accuracy(self.cm)
        self.top1 = topk_accuracy(self.scores, np.asarray(labels), 1)


def test_split(run):
    """Names, labels and class names of the run's test split (read through its own feeder)."""
    feeder = run_split(run.config)
    return feeder.names, feeder.labels, feeder.class_names


class Confused(NamedTuple):
    """Class pair (i, j), i < j, and how many samples of either were predicted as the other."""

    i: int
    j: int
    count: int


class Change(NamedTuple):
    """Class pair (i, j), i < j, confused `before` times in the first run, `after` in the second."""

    i: int
    j: int
    before: int
    after: int


def most_confused_pairs(cm, k):
    """[Confused]: the k unordered class pairs with the most samples of one predicted as the
    other."""
    mutual = cm + cm.T
    pairs = [
        Confused(i, j, int(mutual[i, j]))
        for i in range(len(cm))
        for j in range(i + 1, len(cm))
        if mutual[i, j]
    ]
    return sorted(pairs, key=lambda p: (-p.count, p.i, p.j))[:k]


def confusion_changes(first, second):
    """[Change] for every unordered pair confused in either run, by change (fell first)."""
    before, after = first + first.T, second + second.T
    pairs = [
        Change(i, j, int(before[i, j]), int(after[i, j]))
        for i in range(len(first))
        for j in range(i + 1, len(first))
        if before[i, j] or after[i, j]
    ]
    return sorted(pairs, key=lambda p: (p.after - p.before, p.i, p.j))


def print_pairs(title, pairs, class_names):
    print(title)
    if not pairs:
        print('  (none)')
    for pair in pairs:
        if isinstance(pair, Change):
            change = f'{pair.before} → {pair.after} ({pair.after - pair.before:+d})'
        else:
            change = f'{pair.count}'
        print(f'  {class_names[pair.i]} ↔ {class_names[pair.j]}: {change}')


def compare(first, second, labels, class_names, groups, top, label_names):
    counts = np.bincount(labels, minlength=len(class_names))
    a, b = label_names
    print(f'{len(labels)} test samples; {a}: {first.score_file}; {b}: {second.score_file}')
    print(f'overall top-1: {a} {first.top1:.2f} %, {b} {second.top1:.2f} %, '
          f'difference {second.top1 - first.top1:+.2f}')
    test = mcnemar_exact(first.correct, second.correct)
    print(f"McNemar's exact test: only {a} right {test.only_first}, only {b} right "
          f'{test.only_second}, p = {test.p_value:.3g} (two-sided; the chance of a split at least '
          f'this uneven if both runs were equally accurate)')
    names = list(groups) + [class_names[c] for m in groups.values() for c in m]
    width = max([len(n) for n in names] + [10])
    print_group_table(first, second, labels, groups, label_names, width)
    print(f"\n{'class':{width}s}  {a:>9s}  {b:>9s}  {'diff':>7s}  samples")
    for c in dict.fromkeys(c for members in groups.values() for c in members):
        print(
            f'{class_names[c]:{width}s}  {first.per_class[c]:8.2f}%  {second.per_class[c]:8.2f}%  '
            f'{second.per_class[c] - first.per_class[c]:+7.2f}  {counts[c]:7d}'
        )
    changes = confusion_changes(first.cm, second.cm)
    print()
    print_pairs(
        f'pairs whose confusion fell most (samples of either class predicted as the other, '
        f'{a} → {b})',
        [p for p in changes if p.after < p.before][:top],
        class_names,
    )
    print_pairs(
        'pairs whose confusion rose most',
        [p for p in reversed(changes) if p.after > p.before][:top],
        class_names,
    )


def print_group_table(first, second, labels, groups, label_names, width):
    """Per group: both accuracies, their difference, samples, McNemar's test on the group's samples
    and (where measured) the separability in feature space, first run → second."""
    a, b = label_names
    measured = first.separability is not None or second.separability is not None
    first_groups = ambiguous_metrics(first.cm, groups)
    second_groups = ambiguous_metrics(second.cm, groups)
    heading = (f"\n{'group':{width}s}  {a:>9s}  {b:>9s}  {'diff':>7s}  samples  "
               f"{'only ' + a:>10s}  {'only ' + b:>10s}  {'p':>7s}")
    if measured:
        heading += ''.join(f'  {title:>13s}' for _, title, _ in SEPARABILITY)
    print(heading)
    members = [c for classes in groups.values() for c in classes]
    rows = [('all groups', first_groups, second_groups, members)]
    rows += [(name, first_groups['groups'][name], second_groups['groups'][name], classes)
             for name, classes in groups.items()]
    for name, x, y, classes in rows:
        inside = np.isin(labels, classes)
        test = mcnemar_exact(first.correct[inside], second.correct[inside])
        line = (f"{name:{width}s}  {x['accuracy']:8.2f}%  {y['accuracy']:8.2f}%  "
                f"{y['accuracy'] - x['accuracy']:+7.2f}  {int(inside.sum()):7d}  "
                f'{test.only_first:10d}  {test.only_second:10d}  {test.p_value:7.3g}')
        if measured and name in groups:
            line += ''.join(f'  {separability_change(first, second, name, key, form):>13s}'
                            for key, _, form in SEPARABILITY)
        print(line)
    if measured:
        print(f'(separability of the group\'s classes in feature space, {a} → {b}: silhouette, '
              f'k-NN and linear probe accuracy, measured by tools/embed.py)')


def separability_change(first, second, group, key, form):
    """'0.12 → 0.31': a separability number of both runs ('—' where a run has none)."""
    values = []
    for run in (first, second):
        numbers = (run.separability or {}).get(group) or {}
        values.append(format(numbers[key], form) if key in numbers else '—')
    return ' → '.join(values)


def description(config):
    """{what: name}: what tells runs apart in their configs, as the default labels name it."""
    return {
        'backbone': BACKBONES.get(config.get('model'), config.get('model')),
        'sf_head': 'SF-Head' if has_sf_head(config) else 'baseline',
        'stream': HEADINGS.get(config.get('stream', 'joint')),
    }


def folder_names(run_dirs):
    """Each run folder's path below the runs' common parent (a lone run: its folder's name)."""
    absolute = [os.path.abspath(r) for r in run_dirs]
    if len(absolute) == 1:
        return [os.path.basename(absolute[0])]
    parent = os.path.commonpath(absolute)
    return [os.path.relpath(r, parent) for r in absolute]


def default_labels(runs):
    """The two runs' names: what differs between their configs (backbone, with or without
    SF-Head, stream), or else their folders ('first run', 'second run' for one folder twice)."""
    described = [description(run.config) for run in runs]
    differing = [what for what in described[0] if described[0][what] != described[1][what]]
    if differing:
        return [' '.join(d[what] for what in differing) for d in described]
    labels = folder_names([run.dir for run in runs])
    return labels if labels[0] != labels[1] else ['first run', 'second run']


def check_outputs(args):
    """Refuse, before any work, outputs that would replace something else or could not be
    written."""
    if args.write_groups:
        check_output_file(args.write_groups, '--write-groups', ('.yaml', '.yml'),
                          inputs=yaml_inputs(args))
    if args.plots:
        check_output_folder(args.plots, '--plots')
        if not plots.available():
            raise ConfigError('--plots needs matplotlib (pip install matplotlib)')
    if args.labels and args.labels[0] == args.labels[1]:
        # the figures are named by them
        raise ConfigError(f'--labels: the two runs need two names, got {args.labels[0]} twice')


def yaml_inputs(args):
    """The YAML files that compare reads: --groups, each run's config.yaml and the groups file
    that it names."""
    configs = [os.path.join(run, 'config.yaml') for run in args.runs]
    named = [read_run(run)[0].get('ambiguous_groups') for run in args.runs]
    return [path for path in [args.groups, *configs, *named] if path]


def write_groups(path, groups, class_names, score_file):
    """Groups {name: [class, ...]} as a groups file for `ambiguous_groups`, by class name."""
    named = {name: [class_names[c] for c in classes] for name, classes in groups.items()}
    text = f'# The {len(groups)} class pairs most confused in {score_file}.\n'
    text += yaml.safe_dump(named, sort_keys=False, allow_unicode=True)
    atomic_write(path, text.encode())


def write_plots(folder, first, second, class_names, groups, label_names):
    os.makedirs(folder, exist_ok=True)
    counts = first.cm.sum(axis=1)
    classes = [c for c in range(len(class_names)) if counts[c]]
    subset = [class_names[c] for c in classes]
    figure = plots.accuracy_difference_figure(
        subset,
        first.per_class[classes],
        second.per_class[classes],
        counts=counts[classes],
        labels=label_names,
        title=f'per-class accuracy, {label_names[1]} vs {label_names[0]}',
    )
    plots.save(figure, os.path.join(folder, 'accuracy_difference.png'))
    for run, label in zip((first, second), label_names):
        figure = plots.ambiguous_confusion_figure(
            run.cm, class_names, groups, f'{label}: ambiguous groups'
        )
        name = f'confusion_ambiguous_{plots.file_stem(label)}.png'
        plots.save(figure, os.path.join(folder, name))
    print(f'\nplots written to {folder}/')


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        'runs', nargs='+', help='one run (most confused pairs) or two runs (baseline, other)'
    )
    parser.add_argument('--epoch', choices=['best', 'last'], help='which epoch of training runs')
    parser.add_argument(
        '--labels',
        nargs=2,
        help='names of the two runs (default: what tells their configs apart, else their folders)',
    )
    parser.add_argument(
        '--groups', help='groups of confusable classes (YAML); default: the runs\' ambiguous_groups'
    )
    parser.add_argument('--top-pairs', type=int, default=5, help='how many class pairs to list')
    parser.add_argument(
        '--data-groups',
        action='store_true',
        help='also compare on the --top-pairs pairs most confused in the first run',
    )
    parser.add_argument(
        '--write-groups', help='save the most confused pairs of the first run as a groups file'
    )
    parser.add_argument('--plots', help='folder for the figures')
    args = parser.parse_args(argv)
    try:
        if len(args.runs) > 2:
            raise ConfigError(f'give one or two runs, not {len(args.runs)}')
        check_outputs(args)
        first = Run(args.runs[0], args.epoch)
        names, labels, class_names = test_split(first)
        runs = [first] + [Run(r, args.epoch, first.names) for r in args.runs[1:]]
        labels = align(names, labels, first.names, 'the test split')
        for run in runs:
            run.evaluate(labels, len(class_names))
        pairs = most_confused_pairs(first.cm, args.top_pairs)
        data_groups = {f'{class_names[i]} / {class_names[j]}': [i, j] for i, j, _ in pairs}
        if args.write_groups:
            write_groups(args.write_groups, data_groups, class_names, first.score_file)
        if len(runs) == 1:
            print_pairs(
                f'the {len(pairs)} class pairs most confused in {first.score_file} '
                f'(samples of either class predicted as the other)',
                pairs,
                class_names,
            )
            return 0
        groups = load_groups(args.groups or first.config.get('ambiguous_groups'), class_names) or {}
        if args.data_groups or not groups:
            groups = {**groups, **data_groups}
        label_names = args.labels or default_labels(runs)
        compare(*runs, labels, class_names, groups, args.top_pairs, label_names)
        if args.plots:
            write_plots(args.plots, *runs, class_names, groups, label_names)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
