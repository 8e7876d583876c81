"""The training and evaluation loop: it takes a built model and datasets (main.py builds them from
the config) and knows no model's internals. A model's forward(x, return_aux=True) gives logits and
its auxiliary losses {name: weighted scalar}, which the loop adds to the cross-entropy and logs by
name."""

import os
import random
import time

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm import tqdm

from torchlight import plots
from torchlight.checkpoint import apply_weights, extract_state_dict, load_checkpoint
from torchlight.config import parse_device
from torchlight.distributed import (
    Context,
    any_over_processes,
    gather_in_order,
    gather_objects,
    shard,
    share_buffers,
    sum_over_processes,
)
from torchlight.log import interactive
from torchlight.metrics import evaluate_scores, format_groups, format_metrics, load_groups
from torchlight.outputs import TEST_PHASE_EPOCH, RunOutputs, sample_names, score_file
from torchlight.registry import ConfigError


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def select_device(spec):
    device = parse_device(spec)
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cpu':
        return torch.device('cpu')
    if not torch.cuda.is_available():
        raise ConfigError(
            f'device {device} asks for a GPU but CUDA is not available; use --device cpu'
        )
    if len(device) > 1:
        raise ConfigError(
            f'device {device} names several GPUs; one process uses one GPU: start one process per '
            f'GPU with torchrun --nproc_per_node {len(device)} main.py ...'
        )
    return torch.device(f'cuda:{device[0]}')


def lr_factor(cfg):
    """Multiplier of base_lr at a (0-based) epoch: linear warm-up, then step or cosine decay."""
    warm, steps, total = cfg['warm_up_epoch'], np.array(cfg['step']), cfg['num_epoch']

    def factor(epoch):
        if epoch < warm:
            return (epoch + 1) / warm
        if cfg['lr_scheduler'] == 'cosine':
            return 0.5 * (1 + np.cos(np.pi * (epoch - warm) / max(total - warm, 1)))
        return cfg['lr_decay_rate'] ** int(np.sum(epoch >= steps))

    return factor


def require_full_batch(loader, samples, batch_size, context):
    """Refuse, before anything is written, a training set that gives no full batch (the last,
    smaller one is dropped, as the reference does)."""
    if len(loader) == 0:
        over = f' over {context.world_size} processes' if context.active else ''
        raise ConfigError(
            f'the training set holds {samples} samples, fewer than one batch of '
            f'batch_size {batch_size}{over}: lower batch_size to at most {samples}'
        )


def refuse_non_finite(scores, dataset, split):
    """NaN or Inf scores are never turned into an accuracy."""
    bad = np.flatnonzero(~np.isfinite(scores).all(axis=1))
    if len(bad):
        raise ConfigError(
            f'the model gives NaN or Inf scores for {len(bad)} of {len(scores)} '
            f'{split} samples (e.g. {sample_names(dataset)[bad[0]]}): no accuracy '
            f'computed from them'
        )


def json_metrics(m):
    """Metrics without the confusion matrix, as plain JSON-able values."""
    return {k: v for k, v in m.items() if k != 'confusion_matrix'}


def differences(name, saved, current):
    """Where a checkpoint's recorded setting differs from the config's, one line per difference:
    mappings key by key, lists at their first differing item."""
    if isinstance(saved, dict) and isinstance(current, dict):
        return [diff for key in sorted({*saved, *current}, key=str)
                for diff in differences(f'{name}.{key}', saved.get(key), current.get(key))]
    if isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current):
        return [diff for i, (a, b) in enumerate(zip(saved, current))
                for diff in differences(f'{name}[{i}]', a, b)][:1]
    return [] if saved == current else [f'{name}: checkpoint {saved!r}, config {current!r}']


class Trainer:
    """Trains (`fit`) or evaluates (`test`) a built model on built datasets.

    `datasets`: {'test', and for training 'train' and, with val_ratio > 0, 'held_out' (the training
    split read with the test transforms)}; `meta`: what a checkpoint must agree with (model, its
    inference arguments, dataset, benchmark, stream, ...), recorded in checkpoints and results.
    """

    def __init__(self, cfg, model, datasets, meta, context=Context()):
        self.cfg, self.meta, self.context = cfg, meta, context
        self.device = (
            torch.device(context.device) if context.active else select_device(cfg['device'])
        )
        self.amp = {'off': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}[cfg['amp']]
        if self.amp == torch.float16 and self.device.type != 'cuda':
            raise ConfigError('amp fp16 needs CUDA; on CPU use amp bf16')
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.amp == torch.float16)
        self.test_set = datasets['test']
        self.class_names = self.test_set.class_names
        self.groups = load_groups(cfg['ambiguous_groups'], self.class_names)
        self.model = model.to(self.device)
        self.loss = nn.CrossEntropyLoss(label_smoothing=cfg['label_smoothing'])
        self.loaded = self.load(cfg['weights']) if cfg['weights'] else None
        if cfg['phase'] == 'train':
            self.build_training(datasets['train'], datasets.get('held_out'))

    def load(self, path, checkpoint=None):
        """Load a checkpoint's weights (read from `path` unless given), first refusing one written
        for another model, dataset or stream; the model adapts the state dict to itself."""
        checkpoint = load_checkpoint(path) if checkpoint is None else checkpoint
        extract_state_dict(checkpoint, path)  # refuses what is not a state dict, first
        if 'meta' in checkpoint:
            self.check_meta(checkpoint['meta'], path)
        apply_weights(self.model, checkpoint, path)
        return checkpoint

    def check_meta(self, saved, source):
        """Refuse a checkpoint whose model, data or stream differ from this config's (class names
        only where it records them: earlier versions did not)."""
        diffs = [diff for k, v in self.meta.items() if k in saved or k != 'class_names'
                 for diff in differences(k, saved.get(k), v)]
        if diffs:
            raise ConfigError(f'{source} was trained with a different setting; ' + '; '.join(diffs))

    def build_training(self, train_set, held_out):
        cfg = self.cfg
        self.train_set = train_set
        indices = np.arange(len(train_set))
        self.val_set = None
        if held_out is not None:
            # A validation split held out from training, read with the test transforms, chooses the
            # best epoch.
            order = np.random.default_rng(cfg['seed']).permutation(len(train_set))
            n_val = max(1, int(round(cfg['val_ratio'] * len(train_set))))
            self.val_set = Subset(held_out, sorted(order[:n_val]))
            indices = sorted(order[n_val:])
        subset = Subset(train_set, indices)
        self.shuffle = torch.Generator()
        self.sampler = self.distributed_sampler(subset)
        self.train_loader = self.training_loader(subset)
        self.net = self.training_net()
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=cfg['base_lr'],
            momentum=cfg['momentum'],
            nesterov=cfg['nesterov'],
            weight_decay=cfg['weight_decay'],
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(cfg))
        self.start_epoch = 0
        self.best = None  # {'epoch', 'chosen_on', 'top1', 'test', 'scores'} of the best so far
        self.last = None  # {'epoch', 'test', 'scores'} of the latest evaluation

    def distributed_sampler(self, subset):
        """Several processes (torchrun): each takes its share of every global batch; one: None (a
        seeded shuffle instead)."""
        context = self.context
        if not context.active:
            return None
        if self.cfg['batch_size'] % context.world_size:
            raise ConfigError(
                f"batch_size {self.cfg['batch_size']} (the global batch) does not "
                f"split over {context.world_size} processes"
            )
        return DistributedSampler(
            subset,
            context.world_size,
            context.rank,
            shuffle=True,
            seed=self.cfg['seed'],
            drop_last=True,
        )

    def training_loader(self, subset):
        cfg = self.cfg
        per_process = cfg['batch_size'] // self.context.world_size
        loader = DataLoader(
            subset,
            batch_size=per_process,
            drop_last=True,
            num_workers=cfg['num_worker'],
            sampler=self.sampler,
            shuffle=self.sampler is None,
            generator=self.shuffle if self.sampler is None else None,
        )
        require_full_batch(loader, len(subset), cfg['batch_size'], self.context)
        return loader

    def training_net(self):
        """The model itself, or under torchrun its DDP wrapper (which averages the gradients)."""
        if not self.context.active:
            return self.model
        devices = [self.device] if self.device.type == 'cuda' else None
        return DistributedDataParallel(self.model, device_ids=devices)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None)

    # ----------------------------------------------------------------------------------- evaluation

    def loader(self, dataset):
        return DataLoader(
            dataset,
            batch_size=self.cfg['test_batch_size'],
            shuffle=False,
            num_workers=self.cfg['num_worker'],
        )

    @torch.no_grad()
    def predict(self, dataset, desc):
        """Scores (N, K) in dataset order, with the mean loss. Under torchrun each process scores a
        contiguous slice and the slices are gathered: every sample counted once."""
        self.model.eval()
        local = (
            Subset(dataset, shard(len(dataset), self.context)) if self.context.active else dataset
        )
        scores, labels, total_loss = [], [], 0.0
        for data, label, _ in tqdm(
            self.loader(local),
            desc=desc,
            leave=False,
            dynamic_ncols=True,
            disable=not (self.context.is_main and interactive()),
        ):
            with self.autocast():
                logits = self.model(data.to(self.device)).float()
            total_loss += self.loss(logits, label.to(self.device)).item() * len(label)
            scores.append(logits.cpu().numpy())
            labels.append(label.numpy())
        num_class = len(self.class_names)
        scores = gather_in_order(
            np.concatenate(scores) if scores else np.zeros((0, num_class), np.float32), self.context
        )
        labels = gather_in_order(
            np.concatenate(labels) if labels else np.zeros(0, np.int64), self.context
        )
        total_loss = sum_over_processes({'loss': total_loss}, self.context)['loss']
        return scores, labels, total_loss / len(labels)

    def evaluate(self, dataset, desc):
        scores, labels, loss = self.predict(dataset, desc)
        refuse_non_finite(scores, dataset, desc)
        metrics = evaluate_scores(scores, labels, len(self.class_names), self.groups)
        metrics['loss'] = loss
        return scores, metrics

    # ------------------------------------------------------------------------------------- training

    def train_epoch(self, epoch):
        self.model.train()
        self.train_set.set_epoch(epoch, self.cfg['seed'])
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        else:
            self.shuffle.manual_seed(self.cfg['seed'] * 100_003 + epoch)
        sums = {}
        bar = tqdm(
            self.train_loader,
            desc=f'epoch {epoch + 1}',
            leave=False,
            dynamic_ncols=True,
            disable=not (self.context.is_main and interactive()),
        )
        for step, (data, label, index) in enumerate(bar, 1):
            data, label = data.to(self.device), label.to(self.device)
            with self.autocast():
                # the auxiliary losses come weighted by the model's own arguments
                logits, aux = self.net(data, return_aux=True)
                parts = {'cross_entropy': self.loss(logits.float(), label), **aux}
                loss = parts['cross_entropy'] + sum(aux.values())
            self.stop_if_not_finite(loss, data, index, f'epoch {epoch + 1}, step {step}')
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            for name, value in {'loss': loss, **parts}.items():
                sums[name] = sums.get(name, 0.0) + value.item() * len(label)
            sums['correct'] = sums.get('correct', 0) + (logits.argmax(1) == label).sum().item()
            sums['seen'] = sums.get('seen', 0) + len(label)
            bar.set_postfix(loss=f'{loss.item():.3f}')
        share_buffers(self.model, self.context)
        sums = sum_over_processes(sums, self.context)
        seen, correct = sums.pop('seen'), sums.pop('correct')
        return {
            **{name: total / seen for name, total in sums.items()},
            'top1': 100.0 * correct / seen,
        }

    def stop_if_not_finite(self, loss, data, index, where):
        """Stop before a NaN or Inf loss reaches the weights, on every process at the same step;
        name the samples whose input holds NaN or Inf."""
        finite = bool(torch.isfinite(loss))
        if not any_over_processes(not finite, self.context):
            return
        bad = [
            self.train_set.names[i % len(self.train_set.labels)]
            for i, sample in zip(index.tolist(), data)
            if not torch.isfinite(sample).all()
        ]
        bad = sum(gather_objects(bad, self.context), [])
        value = 'is not finite on another process' if finite else f'is {loss.item()}'
        cause = (
            f'; the input holds NaN or Inf in sample {", ".join(bad)}'
            if bad
            else ' (a too large base_lr?)'
        )
        raise ConfigError(
            f'the training loss {value} at {where}{cause}; training stopped, the '
            f'checkpoints keep the last finite weights'
        )

    def state(self, epoch):
        """Everything `resume` needs, with the random states of every process (CPU, and CUDA's)."""
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == 'cuda' else None
        rng = gather_objects({'torch': torch.get_rng_state(), 'cuda': cuda}, self.context)
        return {
            'model': self.model.state_dict(),
            'optimizer': self.optimizer.state_dict(),
            'scheduler': self.scheduler.state_dict(),
            'epoch': epoch,
            'best': self.best,
            'last': self.last,
            'rng': {key: [r[key] for r in rng] for key in ('torch', 'cuda')},
            'config': self.cfg,
            'meta': self.meta,
        }

    def resume(self, checkpoint, path):
        """Continue from a checkpoint written by `fit` (epoch, optimiser, schedule, RNG, best so
        far); one whose epochs are all done only lacks its results.json, which `fit` then writes."""
        missing = [
            k for k in ('optimizer', 'scheduler', 'epoch', 'rng', 'best') if k not in checkpoint
        ]
        if missing:
            raise ConfigError(
                f'{path} is not a training checkpoint of this version: it has no '
                f'{", ".join(missing)}'
            )
        self.load(path, checkpoint)
        self.optimizer.load_state_dict(checkpoint['optimizer'])
        self.scheduler.load_state_dict(checkpoint['scheduler'])
        self.restore_rng(checkpoint['rng'], path)
        self.start_epoch = checkpoint['epoch']
        self.best, self.last = checkpoint['best'], checkpoint.get('last')
        if self.start_epoch < self.cfg['num_epoch']:
            return
        if os.path.isfile(os.path.join(os.path.dirname(path), 'results.json')):
            raise ConfigError(
                f"nothing to resume: {path} has finished all {self.start_epoch} "
                f"epochs (raise --num_epoch to train longer)"
            )
        if self.last is None:
            raise ConfigError(
                f'{path} has all its epochs but no record of the last evaluation (an '
                f'older version wrote it): raise --num_epoch to train on, or start '
                f'again'
            )

    def restore_rng(self, rng, path):
        """This process's random states: each process draws its own dropout masks. (Checkpoints
        of older versions hold one CPU state.)"""
        states = rng['torch'] if isinstance(rng['torch'], list) else [rng['torch']]
        if len(states) != self.context.world_size:
            raise ConfigError(
                f'{path} was written by {len(states)} process(es); resume it with as '
                f'many (torchrun --nproc_per_node {len(states)}), not '
                f'{self.context.world_size}'
            )
        torch.set_rng_state(states[self.context.rank])
        cuda = rng.get('cuda', [None])[self.context.rank]
        if cuda is not None and self.device.type == 'cuda':
            torch.cuda.set_rng_state(cuda, self.device)

    # -------------------------------------------------------------------------------------- the run

    def fit(self, work_dir, logger):
        """Train the remaining epochs; each: train, evaluate (when due), choose the best, write."""
        outputs = RunOutputs(work_dir, self.context, self.class_names, self.groups)
        self.log_start(logger, work_dir)
        for epoch in range(self.start_epoch, self.cfg['num_epoch']):
            started, lr = time.time(), self.optimizer.param_groups[0]['lr']
            train = self.train_epoch(epoch)
            self.scheduler.step()
            done = epoch + 1
            outputs.scalars('train', {**train, 'lr': lr}, done)
            line = epoch_line(done, self.cfg['num_epoch'], lr, train, time.time() - started)
            if done % self.cfg['eval_interval'] == 0 or done == self.cfg['num_epoch']:
                line += self.evaluate_epoch(done, outputs)
            logger.info(line)
            outputs.checkpoint(self.state(done), 'last.pt')
        outputs.close()
        results = {'meta': self.meta, 'last': self.last, 'best': self.best}
        outputs.results(results)
        self.report(logger, results)
        return results

    def log_start(self, logger, work_dir):
        if self.start_epoch:
            logger.info(f'resumed from {work_dir}/last.pt after epoch {self.start_epoch}')
        if self.start_epoch == self.cfg['num_epoch']:
            logger.info('every epoch was done before the run stopped: writing its results.json')
        meta = self.meta
        held_out = f', {len(self.val_set)} validation samples' if self.val_set is not None else ''
        logger.info(
            f"{meta['model']} on {meta['dataset']} {meta['benchmark']} ({meta['stream']}), "
            f"{sum(p.numel() for p in self.model.parameters()):,} parameters, device "
            f"{self.device}; {len(self.train_loader.dataset)} training samples, "
            f"{len(self.test_set)} test samples{held_out}"
        )
        if not plots.available():
            logger.info(
                'matplotlib is not installed: no confusion-matrix figures (pip install matplotlib)'
            )

    def evaluate_epoch(self, epoch, outputs):
        """Evaluate on the test (and validation) split, keep the best epoch and the files of the
        best and the last; returns the epoch line's evaluation part."""
        final = epoch == self.cfg['num_epoch']
        scores, test = self.evaluate(self.test_set, 'test')
        scored, chooser = {'test': (self.test_set, scores)}, test
        outputs.evaluation('test', test, epoch)
        line = f' | test {format_metrics(test)}'
        if self.val_set is not None:
            val_scores, chooser = self.evaluate(self.val_set, 'val')
            scored['val'] = (self.val_set, val_scores)
            outputs.evaluation('val', chooser, epoch)
            line += f" | val top-1 {chooser['top1']:.2f} %"
        if final:
            outputs.confusion_pngs(test, f'test, epoch {epoch}')
        if self.best is None or chooser['top1'] > self.best['top1']:
            previous = self.best
            self.best = {
                'epoch': epoch,
                'chosen_on': 'val' if self.val_set is not None else 'test',
                'top1': chooser['top1'],
                'test': json_metrics(test),
                'scores': score_file(epoch),
            }
            outputs.checkpoint(self.state(epoch), 'best.pt')
            outputs.scores(epoch, scored)
            if previous is not None and previous['epoch'] != epoch:
                outputs.remove_scores(previous['epoch'], scored)
        self.last = {'epoch': epoch, 'test': json_metrics(test), 'scores': score_file(epoch)}
        if final:
            outputs.scores(epoch, scored)
        return line

    def report(self, logger, results):
        last, best = results['last'], results['best']
        how = (
            'on the held-out validation split'
            if best['chosen_on'] == 'val'
            else 'on the test split, as the reference code does: an optimistic figure'
        )
        logger.info('final report')
        logger.info(f"  last epoch ({last['epoch']}): test {format_metrics(last['test'])}")
        for line in format_groups(last['test']):
            logger.info(line)
        logger.info(
            f"  best epoch ({best['epoch']}, chosen {how}): test {format_metrics(best['test'])}"
        )

    def test(self, work_dir, logger):
        """Evaluate the loaded weights on the test split; write their scores and results.json."""
        outputs = RunOutputs(work_dir, self.context, self.class_names, self.groups)
        source = self.cfg['weights']
        epoch = self.loaded.get('epoch') if isinstance(self.loaded.get('epoch'), int) else None
        scores, metrics = self.evaluate(self.test_set, 'test')
        outputs.scores(TEST_PHASE_EPOCH, {'test': (self.test_set, scores)})
        logger.info(
            f"tested {source} on {self.meta['dataset']} {self.meta['benchmark']} "
            f"({self.meta['stream']}, {len(self.test_set)} samples)"
        )
        logger.info(f'  test {format_metrics(metrics)}')
        for line in format_groups(metrics):
            logger.info(line)
        outputs.confusion_pngs(metrics, f'test, {os.path.basename(source)}')
        results = {
            'meta': self.meta,
            'weights': source,
            'epoch': epoch,
            'test': json_metrics(metrics),
            'scores': score_file(TEST_PHASE_EPOCH),
        }
        outputs.results(results)
        return results


def epoch_line(epoch, num_epoch, lr, train, seconds):
    """'epoch 3/65: lr 0.1000, train loss 1.2345 (cross_entropy 1.2, sf_redundancy 0.01, ...),
    top-1 55.00 % (12.3 s)': every loss part by its name."""
    parts = ', '.join(f'{k} {v:.4f}' for k, v in train.items() if k not in ('loss', 'top1'))
    return (
        f"epoch {epoch}/{num_epoch}: lr {lr:.4f}, train loss {train['loss']:.4f} ({parts}), "
        f"top-1 {train['top1']:.2f} % ({seconds:.1f} s)"
    )
