"""Trained runs' feature spaces in 2-D, and how well each group of confusable classes separates in
them.

    python -m tools.embed work_dir/demo/joint_baseline work_dir/demo/joint --epoch last \\
        --labels baseline SF-Head --out work_dir/demo/embed

For each run (a training run's folder: config.yaml and best.pt / last.pt) it reads the test split
as `main.py --phase test` would and passes it through the checkpoint's model in evaluation mode,
keeping the pooled features that the classifier reads (`model.forward_head(...,
pre_logits=True)`). It writes beside the run:

- `features_<epoch>.npz`: features (N, C), labels, names (and class_names, checkpoint_epoch);
- `separability_<epoch>.json`: per group (`--groups`, default the run's ambiguous_groups) the
  silhouette, k-NN and linear-probe accuracy of the group's classes (torchlight/separability.py),
  which tools/compare.py and tools/tables.py show beside the group accuracies.

It prints those numbers as a table and draws into --out (default: `embed_<epoch>` in the runs'
common parent folder) `embed_<group>.png` per group, the group's classes embedded in 2-D with one
panel per run, side by side, and `embed_all.png` with every class. t-SNE (or PCA), the subsample
and the folds are seeded: the same run gives the same figures and numbers.
"""

import argparse
import io
import json
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from main import build_trainer, parse_args
from tools.compare import folder_names
from torchlight import plots
from torchlight.distributed import Context
from torchlight.files import atomic_write, check_output_folder
from torchlight.metrics import load_groups
from torchlight.registry import ConfigError
from torchlight.separability import group_separability, separability_file

SEED = 0
METHOD_NAMES = {'tsne': 't-SNE', 'pca': 'PCA'}
# the fewest samples that a 2-D embedding is drawn of
MIN_EMBEDDED = 3


@dataclass
class Features:
    """One run's test-split features (N, C), labels (N,), sample names and class names."""

    dir: str
    config: dict
    checkpoint_epoch: int
    features: np.ndarray
    labels: np.ndarray
    names: list
    class_names: list

    @classmethod
    def of_run(cls, run_dir, epoch, device=None):
        """Extracted with the run's checkpoint `epoch` ('best' or 'last')."""
        trainer = rebuilt_for_testing(run_dir, epoch, device)
        features, labels = pooled_features(trainer)
        return cls(run_dir, trainer.cfg, trainer.loaded.get('epoch'), features, labels,
                   list(trainer.test_set.names), list(trainer.class_names))

    def save(self, path):
        buffer = io.BytesIO()
        np.savez(buffer, features=self.features, labels=self.labels, names=np.array(self.names),
                 class_names=np.array(self.class_names),
                 checkpoint_epoch=np.array(self.checkpoint_epoch))
        atomic_write(path, buffer.getvalue())


def rebuilt_for_testing(run_dir, epoch, device):
    """The run's Trainer in test mode (config, test split, model with the checkpoint's weights,
    checked against it), as `main.py --config <run>/config.yaml --phase test --weights ...`."""
    config = os.path.join(run_dir, 'config.yaml')
    if not os.path.isfile(config):
        raise ConfigError(f'{run_dir} is not a training run: it has no config.yaml')
    argv = ['--config', config, '--phase', 'test', '--weights',
            os.path.join(run_dir, f'{epoch}.pt')]
    cfg, _ = parse_args(argv + (['--device', device] if device else []))
    return build_trainer(cfg, Context())


@torch.no_grad()
def pooled_features(trainer):
    """(features (N, C) float32, labels (N,)) of the test split, in its order."""
    model = trainer.model.eval()
    features, labels = [], []
    for data, label, _ in trainer.loader(trainer.test_set):
        with trainer.autocast():   # as the run's scores were computed
            pooled = model.forward_head(model.forward_features(data.to(trainer.device)),
                                        pre_logits=True)
        features.append(pooled.float().cpu().numpy())
        labels.append(label.numpy())
    return np.concatenate(features), np.concatenate(labels)


def check_same_split(runs):
    first = runs[0]
    for run in runs[1:]:
        if run.names != first.names or run.class_names != first.class_names:
            raise ConfigError(f'{run.dir} was tested on another test split than {first.dir}: '
                              f'embeddings side by side need the same samples')


def embed_2d(features, method, seed=SEED):
    """(n, 2) coordinates of features (n, C): t-SNE (perplexity 30, or less for few samples) or
    PCA."""
    if method == 'pca':
        return PCA(2, svd_solver='full').fit_transform(features)
    perplexity = min(30.0, (len(features) - 1) / 3)
    return TSNE(2, perplexity=perplexity, init='pca', random_state=seed).fit_transform(features)


def class_colours(count):
    from matplotlib import colormaps

    if count <= 10:
        return [colormaps['tab10'](i) for i in range(count)]
    if count <= 20:
        return [colormaps['tab20'](i) for i in range(count)]
    return [colormaps['turbo'](i / (count - 1)) for i in range(count)]


def embedding_figure(panels, classes, class_names, title, method):
    """One scatter panel per run, side by side: `panels` [(label, coordinates (n, 2), labels (n,),
    caption)], the points of `classes` coloured by class (the same colour in every panel)."""
    figure = plots.new_figure(3.6 * len(panels) + 1.2, 4.0)
    figure.suptitle(title)
    colours = class_colours(len(classes))
    for index, (label, coordinates, labels, caption) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        for colour, c in zip(colours, classes):
            points = coordinates[labels == c]
            axes.scatter(points[:, 0], points[:, 1], s=9, color=colour, label=class_names[c],
                         alpha=0.8, linewidths=0)
        axes.set_title(f'{label}\n{caption}', fontsize=9)
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_xlabel(f'{METHOD_NAMES[method]} 1', fontsize=8)
        axes.set_ylabel(f'{METHOD_NAMES[method]} 2', fontsize=8)
    if len(classes) <= 20:
        # right of the last panel, where the constrained layout keeps room for it
        axes.legend(loc='center left', bbox_to_anchor=(1.02, 0.5), fontsize=8, markerscale=1.5)
    return figure


def caption(numbers):
    if numbers is None:
        return ''
    if 'skipped' in numbers:
        return f"not measured: {numbers['skipped']}"
    return (f"silhouette {numbers['silhouette']:.2f}, k-NN {numbers['knn']:.1f} %, "
            f"probe {numbers['probe']:.1f} %")


def figures_to_draw(runs, groups):
    """The figure files that have enough test samples to embed, {file: group, or None for every
    class}; a line says which are left out, and why, before anything is written."""
    drawn = {}
    for group, classes in groups.items():
        samples = int(np.isin(runs[0].labels, classes).sum())
        if samples < MIN_EMBEDDED:
            print(f'{group}: {samples} test sample(s), fewer than {MIN_EMBEDDED}: no figure')
        else:
            drawn[file_name(group)] = group
    samples = len(runs[0].labels)    # the runs share their test split
    if samples < MIN_EMBEDDED:
        print(f"embed_all.png: the test split of {', '.join(run.dir for run in runs)} has "
              f'{samples} sample(s), fewer than {MIN_EMBEDDED}: no figure')
    else:
        drawn['embed_all.png'] = None
    return drawn


def group_figure(runs, labels, group, classes, numbers, method):
    """The figure of one group: each run's samples of the group's classes, embedded on their own
    (at least MIN_EMBEDDED of them: figures_to_draw)."""
    panels = []
    for run, label, measured in zip(runs, labels, numbers):
        inside = np.isin(run.labels, classes)
        coordinates = embed_2d(run.features[inside], method)
        panels.append((label, coordinates, run.labels[inside], caption(measured.get(group))))
    return embedding_figure(panels, classes, runs[0].class_names,
                            f'{group} ({METHOD_NAMES[method]})', method)


def all_classes_figure(runs, labels, method, max_samples):
    """Every class; at most `max_samples` test samples (a seeded choice, the same in every run)."""
    count = len(runs[0].labels)
    chosen = np.arange(count)
    if count > max_samples:
        chosen = np.sort(np.random.default_rng(SEED).choice(count, max_samples, replace=False))
    panels = [(label, embed_2d(run.features[chosen], method), run.labels[chosen],
               f'{len(chosen)} of {count} test samples') for run, label in zip(runs, labels)]
    classes = list(range(len(runs[0].class_names)))
    return embedding_figure(panels, classes, runs[0].class_names,
                            f'all classes ({METHOD_NAMES[method]})', method)


def file_name(group):
    return f'embed_{plots.file_stem(group)}.png'


def print_table(runs, labels, numbers, epoch):
    print(f'separability of each group\'s classes in feature space ({epoch} epoch; silhouette, '
          f'k-NN (k = 5) and linear probe accuracy, stratified 5-fold cross-validation)')
    groups = list(numbers[0])
    width = max([len(g) for g in groups] + [len(label) for label in labels] + [5])
    print(f"{'group':{width}s}  {'run':{width}s}  samples  silhouette  k-NN %  probe %")
    for group in groups:
        for index, (label, measured) in enumerate(zip(labels, numbers)):
            entry = measured[group]
            name = group if index == 0 else ''
            if 'skipped' in entry:
                print(f"{name:{width}s}  {label:{width}s}  {entry['samples']:7d}  not measured: "
                      f"{entry['skipped']}")
                continue
            folds = f"  ({entry['folds']} folds, k = {entry['neighbours']})" if (
                entry['folds'] < 5 or entry['neighbours'] < 5) else ''
            print(f"{name:{width}s}  {label:{width}s}  {entry['samples']:7d}  "
                  f"{entry['silhouette']:10.3f}  {entry['knn']:6.2f}  {entry['probe']:7.2f}{folds}")


def run_labels(run_dirs, labels):
    """Names of the runs in the figures: --labels, or each folder below the runs' common parent."""
    if labels:
        if len(labels) != len(run_dirs):
            raise ConfigError(f'--labels names {len(labels)} runs, but {len(run_dirs)} are given')
        return labels
    return folder_names(run_dirs)


def default_out(run_dirs, epoch):
    absolute = [os.path.abspath(r) for r in run_dirs]
    parent = os.path.commonpath(absolute) if len(absolute) > 1 else os.path.dirname(absolute[0])
    return os.path.join(parent, f'embed_{epoch}')


def analyse(run_dirs, epoch, *, groups_file=None, method='tsne', out=None, labels=None,
            max_samples=5000, device=None):
    """Extract, measure, save and draw; returns {figure file: [panel titles]}."""
    if not plots.available():
        raise ConfigError('tools/embed.py draws with matplotlib (pip install matplotlib)')
    labels = run_labels(run_dirs, labels)
    out = out or default_out(run_dirs, epoch)
    check_output_folder(out, '--out')
    runs = [Features.of_run(run_dir, epoch, device) for run_dir in run_dirs]
    check_same_split(runs)
    first = runs[0]
    groups = load_groups(groups_file or first.config.get('ambiguous_groups'),
                         first.class_names) or {}
    drawn = figures_to_draw(runs, groups)
    numbers = []
    for run in runs:
        measured = group_separability(run.features, run.labels, groups, run.class_names, SEED)
        numbers.append(measured)
        run.save(os.path.join(run.dir, f'features_{epoch}.npz'))
        record = {'epoch': epoch, 'checkpoint_epoch': run.checkpoint_epoch,
                  'groups_file': groups_file or first.config.get('ambiguous_groups'),
                  'seed': SEED, 'groups': measured}
        atomic_write(separability_file(run.dir, epoch), json.dumps(record, indent=2).encode())
    if groups:
        print_table(runs, labels, numbers, epoch)
    figures = {}
    for name, group in drawn.items():
        if group is None:
            figures[name] = all_classes_figure(runs, labels, method, max_samples)
        else:
            figures[name] = group_figure(runs, labels, group, groups[group], numbers, method)
    if figures:
        os.makedirs(out, exist_ok=True)
    for name, figure in figures.items():
        plots.save(figure, os.path.join(out, name))
    print(f'\nfeatures_{epoch}.npz and separability_{epoch}.json written to each run; '
          f'figures to {out}/: {", ".join(figures) or "none"}')
    return {name: [axes.get_title() for axes in figure.axes] for name, figure in figures.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('runs', nargs='+', help='training run folders (e.g. baseline, SF-Head)')
    parser.add_argument('--epoch', choices=['best', 'last'], required=True,
                        help='which checkpoint: best.pt or last.pt')
    parser.add_argument('--groups', help="groups of confusable classes (YAML); default: the first "
                                         "run's ambiguous_groups")
    parser.add_argument('--method', choices=['tsne', 'pca'], default='tsne',
                        help='2-D embedding (default tsne)')
    parser.add_argument('--out', help='folder for the figures (default: embed_<epoch> in the '
                                      "runs' common parent folder)")
    parser.add_argument('--labels', nargs='+', help='names of the runs in the figures')
    parser.add_argument('--max-samples', type=int, default=5000,
                        help='test samples drawn in the all-classes figure (default 5000)')
    parser.add_argument('--device', help="cpu or a GPU id (default: the run's config)")
    args = parser.parse_args(argv)
    try:
        if args.max_samples < MIN_EMBEDDED:
            raise ConfigError(f'--max-samples must be at least {MIN_EMBEDDED}, '
                              f'got {args.max_samples}')
        analyse(args.runs, args.epoch, groups_file=args.groups, method=args.method,
                out=args.out, labels=args.labels, max_samples=args.max_samples,
                device=args.device)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
