"""Everything a run writes into its folder, in one place: checkpoints, score files, results.json,
confusion figures and tensorboard scalars.

Only process 0 writes (under torchrun every process holds the same weights and gathered scores);
the others pass through the same calls, so that a refusal (non-finite weights) stops every process.
"""

import json
import os
import pickle

from torch.utils.data import Subset
from torch.utils.tensorboard import SummaryWriter

from torchlight import plots
from torchlight.checkpoint import check_finite_weights, save_checkpoint
from torchlight.files import atomic_write


def sample_names(dataset):
    if isinstance(dataset, Subset):
        return [dataset.dataset.names[i] for i in dataset.indices]
    return dataset.names


# CTR-GCN's test phase names its scores as epoch 1's, whichever checkpoint it tests, and the
# reference ensemble scripts read that name; a test run here does the same (its results.json keeps
# the checkpoint's own epoch).
TEST_PHASE_EPOCH = 1


def score_file(epoch, split='test'):
    """A score file's name, CTR-GCN's: epoch{N}_test_score.pkl."""
    return f'epoch{epoch}_{split}_score.pkl'


class RunOutputs:
    def __init__(self, work_dir, context, class_names, groups):
        self.work_dir = work_dir
        self.writes = context.is_main
        self.class_names, self.groups = class_names, groups
        self.writer = None  # tensorboard, opened on the first scalar

    def path(self, name):
        return os.path.join(self.work_dir, name)

    def scalars(self, prefix, values, step):
        if not self.writes:
            return
        if self.writer is None:
            self.writer = SummaryWriter(self.path('tensorboard'))
        for name, value in values.items():
            self.writer.add_scalar(f'{prefix}/{name}', value, step)

    def evaluation(self, split, metrics, step):
        """An evaluation's scalars and (test split) confusion figures in tensorboard."""
        values = {key: metrics[key] for key in ('top1', 'top5', 'mean_class', 'loss')}
        if 'ambiguous' in metrics:
            values['ambiguous'] = metrics['ambiguous']['accuracy']
        self.scalars(split, values, step)
        if split == 'test' and self.writes:
            for name, figure in self.confusion_figures(metrics, f'test, epoch {step}').items():
                self.writer.add_figure(f'test/{name}', figure, step)

    def confusion_figures(self, metrics, title):
        """{name: figure}: the full confusion matrix and, with groups, the one restricted to
        them."""
        if not plots.available():
            return {}
        cm = metrics['confusion_matrix']
        figures = {'confusion': plots.confusion_figure(cm, self.class_names, title)}
        if self.groups:
            figures['confusion_ambiguous'] = plots.ambiguous_confusion_figure(
                cm, self.class_names, self.groups, f'{title}, ambiguous groups'
            )
        return figures

    def confusion_pngs(self, metrics, title):
        if self.writes:
            for name, figure in self.confusion_figures(metrics, title).items():
                plots.save(figure, self.path(f'{name}.png'))

    def checkpoint(self, state, name):
        """Refuse NaN or Inf weights (on every process), then write `name` atomically."""
        check_finite_weights(state['model'], f"after epoch {state['epoch']}", self.path(name))
        if self.writes:
            save_checkpoint(state, self.path(name))

    def scores(self, epoch, scored):
        """CTR-GCN's score format per split: a dict sample name → score vector, in dataset order;
        `scored` {split: (dataset, scores (N, K))}."""
        if self.writes:
            for split, (dataset, scores) in scored.items():
                content = dict(zip(sample_names(dataset), scores))
                atomic_write(self.path(score_file(epoch, split)), pickle.dumps(content))

    def remove_scores(self, epoch, splits):
        """The score files of an epoch no longer the best (nor the last)."""
        for split in splits if self.writes else ():
            stale = self.path(score_file(epoch, split))
            if os.path.exists(stale):
                os.remove(stale)

    def results(self, results):
        if self.writes:
            atomic_write(self.path('results.json'), json.dumps(results, indent=2).encode())

    def close(self):
        if self.writer is not None:
            self.writer.close()
