"""The training and evaluation loop."""
import json
import os
import pickle
import random
import time

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from feeders import build_feeder
from model import build_model, full_model_args
from torchlight import plots
from torchlight.checkpoint import (apply_weights, check_finite_weights, extract_state_dict,
                                   load_checkpoint, save_checkpoint)
from torchlight.config import parse_device
from torchlight.distributed import (Context, any_over_processes, gather_in_order, gather_objects,
                                    shard, share_buffers, sum_over_processes)
from torchlight.files import atomic_write
from torchlight.log import interactive
from torchlight.metrics import evaluate_scores, format_groups, format_metrics, load_groups
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
        raise ConfigError(f'device {device} asks for a GPU but CUDA is not available; use --device cpu')
    if len(device) > 1:
        raise ConfigError(f'device {device} names several GPUs; one process uses one GPU: start one process per '
                          f'GPU with torchrun --nproc_per_node {len(device)} main.py ...')
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


def inference_args(name, model_args):
    """The model arguments that change what a trained model computes at test time: all but dropout and
    SF-Heads in branch mode (they only feed the training losses)."""
    args = full_model_args(name, model_args)
    del args['drop_out']
    if (args.get('sf_head') or {}).get('mode') == 'branch':
        args['sf_head'] = None
    return args


def require_full_batch(loader, samples, batch_size, context):
    """Refuse, before anything is written, a training set that gives no full batch (the last,
    smaller one is dropped, as the reference does)."""
    if len(loader) == 0:
        over = f' over {context.world_size} processes' if context.active else ''
        raise ConfigError(f'the training set holds {samples} samples, fewer than one batch of '
                          f'batch_size {batch_size}{over}: lower batch_size to at most {samples}')


def sample_names(dataset):
    if isinstance(dataset, Subset):
        return [dataset.dataset.names[i] for i in dataset.indices]
    return dataset.names


def refuse_non_finite(scores, dataset, split):
    """NaN or Inf scores are never turned into an accuracy."""
    bad = np.flatnonzero(~np.isfinite(scores).all(axis=1))
    if len(bad):
        raise ConfigError(f'the model gives NaN or Inf scores for {len(bad)} of {len(scores)} '
                          f'{split} samples (e.g. {sample_names(dataset)[bad[0]]}): no accuracy '
                          f'computed from them')


class NoWriter:
    """Stands in for the tensorboard writer in the processes that do not write (all but rank 0)."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def json_metrics(m):
    """Metrics without the confusion matrix, as plain JSON-able values."""
    return {k: v for k, v in m.items() if k != 'confusion_matrix'}


class Trainer:
    """Builds data, model and optimiser from a resolved config; `fit` trains, `test` evaluates."""

    def __init__(self, cfg, context=Context()):
        self.cfg = cfg
        self.context = context
        seed_everything(cfg['seed'] + context.rank)     # process 0's weights are broadcast to the others
        self.device = torch.device(context.device) if context.active else select_device(cfg['device'])
        self.amp = {'off': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}[cfg['amp']]
        if self.amp == torch.float16 and self.device.type != 'cuda':
            raise ConfigError('amp fp16 needs CUDA; on CPU use amp bf16')
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.amp == torch.float16)
        self.test_set = build_feeder(cfg['feeder'], **{**cfg['test_feeder_args'], 'split': 'test'})
        self.class_names = self.test_set.class_names
        self.groups = load_groups(cfg['ambiguous_groups'], self.class_names)
        self.model = build_model(cfg['model'], **cfg['model_args']).to(self.device)
        self.loss = nn.CrossEntropyLoss(label_smoothing=cfg['label_smoothing'])
        self.meta = {   # what a checkpoint must agree with
            'model': cfg['model'], 'model_args': inference_args(cfg['model'], cfg['model_args']),
            'dataset': self.test_set.meta.get('dataset'),
            'benchmark': self.test_set.meta.get('benchmark'), 'layout': self.test_set.meta.get('layout'),
            'stream': self.test_set.stream, 'num_class': len(self.class_names),
        }
        self.loaded = self.load(cfg['weights']) if cfg['weights'] else None
        if cfg['phase'] == 'train':
            self._build_training()

    def load(self, path, checkpoint=None):
        """Load a checkpoint's weights (read from `path` unless given), first refusing one written
        for another model, dataset or stream.

        Branch-mode SF-Heads of a checkpoint are left out when this config's model has none.
        """
        checkpoint = load_checkpoint(path) if checkpoint is None else checkpoint
        state = extract_state_dict(checkpoint, path)
        if 'meta' in checkpoint:
            self.check_meta(checkpoint['meta'], path)
            has_heads = any('.sf_head.' in k for k in self.model.state_dict())
            if not has_heads and checkpoint['config']['model_args'].get('sf_head'):
                state = {k: v for k, v in state.items() if '.sf_head.' not in k}
        apply_weights(self.model, state, path)
        return checkpoint

    def check_meta(self, saved, source):
        """Refuse a checkpoint whose model, data or stream differ from this config's."""
        diffs = [f'{k}: checkpoint {saved.get(k)!r}, config {v!r}' for k, v in self.meta.items() if saved.get(k) != v]
        if diffs:
            raise ConfigError(f'{source} was trained with a different setting; ' + '; '.join(diffs))

    def _build_training(self):
        cfg = self.cfg
        train_set = build_feeder(cfg['feeder'], **{**cfg['train_feeder_args'], 'split': 'train'})
        self.train_set = train_set
        indices = np.arange(len(train_set))
        self.val_set = None
        if cfg['val_ratio'] > 0:
            # A validation split held out from training, read with the test transforms, chooses the best epoch.
            order = np.random.default_rng(cfg['seed']).permutation(len(train_set))
            n_val = max(1, int(round(cfg['val_ratio'] * len(train_set))))
            held_out = build_feeder(cfg['feeder'], **{**cfg['test_feeder_args'], 'split': 'train'})
            self.val_set = Subset(held_out, sorted(order[:n_val]))
            indices = sorted(order[n_val:])
        self.train_loader, self.net = self.training_loader_and_net(Subset(train_set, indices))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg['base_lr'], momentum=cfg['momentum'],
                                         nesterov=cfg['nesterov'], weight_decay=cfg['weight_decay'])
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(cfg))
        self.start_epoch = 0
        self.best = None   # {'epoch', 'split', 'top1', 'test'} of the best evaluation so far
        self.last = None   # {'epoch', 'test', 'scores'} of the latest evaluation

    def training_loader_and_net(self, subset):
        """One process: a seeded shuffle and the model itself. Several (torchrun): each process takes its share
        of every global batch of `batch_size` through a DistributedSampler, and DDP averages the gradients."""
        cfg, context = self.cfg, self.context
        self.shuffle, self.sampler = torch.Generator(), None
        if not context.active:
            loader = DataLoader(subset, batch_size=cfg['batch_size'], shuffle=True, drop_last=True,
                                num_workers=cfg['num_worker'], generator=self.shuffle)
            require_full_batch(loader, len(subset), cfg['batch_size'], context)
            return loader, self.model
        if cfg['batch_size'] % context.world_size:
            raise ConfigError(f"batch_size {cfg['batch_size']} (the global batch) does not split over "
                              f"{context.world_size} processes")
        self.sampler = DistributedSampler(subset, context.world_size, context.rank, shuffle=True, seed=cfg['seed'],
                                          drop_last=True)
        loader = DataLoader(subset, batch_size=cfg['batch_size'] // context.world_size, sampler=self.sampler,
                            drop_last=True, num_workers=cfg['num_worker'])
        require_full_batch(loader, len(subset), cfg['batch_size'], context)
        devices = [self.device] if self.device.type == 'cuda' else None
        return loader, DistributedDataParallel(self.model, device_ids=devices)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None)

    # ----------------------------------------------------------------------------------------- evaluation

    def loader(self, dataset):
        return DataLoader(dataset, batch_size=self.cfg['test_batch_size'], shuffle=False,
                          num_workers=self.cfg['num_worker'])

    @torch.no_grad()
    def predict(self, dataset, desc):
        """Scores (N, K) in dataset order, with the mean loss. Under torchrun each process scores a contiguous
        slice and the slices are gathered: every sample counted once."""
        self.model.eval()
        local = Subset(dataset, shard(len(dataset), self.context)) if self.context.active else dataset
        scores, labels, total_loss = [], [], 0.0
        for data, label, _ in tqdm(self.loader(local), desc=desc, leave=False, dynamic_ncols=True,
                                   disable=not (self.context.is_main and interactive())):
            with self.autocast():
                logits = self.model(data.to(self.device)).float()
            total_loss += self.loss(logits, label.to(self.device)).item() * len(label)
            scores.append(logits.cpu().numpy())
            labels.append(label.numpy())
        num_class = len(self.class_names)
        scores = gather_in_order(np.concatenate(scores) if scores else np.zeros((0, num_class), np.float32),
                                 self.context)
        labels = gather_in_order(np.concatenate(labels) if labels else np.zeros(0, np.int64), self.context)
        total_loss = sum_over_processes({'loss': total_loss}, self.context)['loss']
        return scores, labels, total_loss / len(labels)

    def evaluate(self, dataset, desc):
        scores, labels, loss = self.predict(dataset, desc)
        refuse_non_finite(scores, dataset, desc)
        metrics = evaluate_scores(scores, labels, len(self.class_names), self.groups)
        metrics['loss'] = loss
        return scores, metrics

    @staticmethod
    def save_scores(dataset, scores, path):
        """CTR-GCN's score format: a dict sample name → score vector, in dataset order."""
        atomic_write(path, pickle.dumps(dict(zip(sample_names(dataset), scores))))

    # ------------------------------------------------------------------------------------------- training

    def train_epoch(self, epoch):
        self.model.train()
        self.train_set.set_epoch(epoch, self.cfg['seed'])
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        else:
            self.shuffle.manual_seed(self.cfg['seed'] * 100_003 + epoch)
        sums = {}
        bar = tqdm(self.train_loader, desc=f'epoch {epoch + 1}', leave=False, dynamic_ncols=True,
                   disable=not (self.context.is_main and interactive()))
        for step, (data, label, index) in enumerate(bar, 1):
            data, label = data.to(self.device), label.to(self.device)
            with self.autocast():
                logits, aux = self.net(data, return_aux=True)
                parts = {'cross_entropy': self.loss(logits.float(), label), **aux}
                # total = CE + Σ λ_name · aux_name, the λs from loss_args
                loss = parts['cross_entropy'] + sum(self.cfg['loss_args'][k] * v for k, v in aux.items())
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
        return {**{name: total / seen for name, total in sums.items()}, 'top1': 100.0 * correct / seen}

    def stop_if_not_finite(self, loss, data, index, where):
        """Stop before a NaN or Inf loss reaches the weights, on every process at the same step;
        name the samples whose input holds NaN or Inf."""
        finite = bool(torch.isfinite(loss))
        if not any_over_processes(not finite, self.context):
            return
        bad = [self.train_set.names[i % len(self.train_set.labels)]
               for i, sample in zip(index.tolist(), data) if not torch.isfinite(sample).all()]
        bad = sum(gather_objects(bad, self.context), [])
        value = 'is not finite on another process' if finite else f'is {loss.item()}'
        cause = (f'; the input holds NaN or Inf in sample {", ".join(bad)}' if bad
                 else ' (a too large base_lr?)')
        raise ConfigError(f'the training loss {value} at {where}{cause}; training stopped, the '
                          f'checkpoints keep the last finite weights')

    def state(self, epoch):
        """Everything `resume` needs, with the random states of every process (CPU, and CUDA's)."""
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == 'cuda' else None
        rng = gather_objects({'torch': torch.get_rng_state(), 'cuda': cuda}, self.context)
        return {
            'model': self.model.state_dict(), 'optimizer': self.optimizer.state_dict(),
            'scheduler': self.scheduler.state_dict(), 'epoch': epoch, 'best': self.best,
            'last': self.last, 'rng': {key: [r[key] for r in rng] for key in ('torch', 'cuda')},
            'config': self.cfg, 'meta': self.meta,
        }

    def resume(self, checkpoint, path):
        """Continue from a checkpoint written by `fit` (epoch, optimiser, schedule, RNG, best so
        far); one whose epochs are all done only lacks its results.json, which `fit` then writes."""
        missing = [k for k in ('optimizer', 'scheduler', 'epoch', 'rng', 'best')
                   if k not in checkpoint]
        if missing:
            raise ConfigError(f'{path} is not a training checkpoint of this version: it has no '
                              f'{", ".join(missing)}')
        self.load(path, checkpoint)
        self.optimizer.load_state_dict(checkpoint['optimizer'])
        self.scheduler.load_state_dict(checkpoint['scheduler'])
        self.restore_rng(checkpoint['rng'], path)
        self.start_epoch = checkpoint['epoch']
        self.best, self.last = checkpoint['best'], checkpoint.get('last')
        if self.start_epoch < self.cfg['num_epoch']:
            return
        if os.path.isfile(os.path.join(os.path.dirname(path), 'results.json')):
            raise ConfigError(f"nothing to resume: {path} has finished all {self.start_epoch} "
                              f"epochs (raise --num_epoch to train longer)")
        if self.last is None:
            raise ConfigError(f'{path} has all its epochs but no record of the last evaluation (an '
                              f'older version wrote it): raise --num_epoch to train on, or start '
                              f'again')

    def restore_rng(self, rng, path):
        """This process's random states: each process draws its own dropout masks. (Checkpoints
        of older versions hold one CPU state.)"""
        states = rng['torch'] if isinstance(rng['torch'], list) else [rng['torch']]
        if len(states) != self.context.world_size:
            raise ConfigError(f'{path} was written by {len(states)} process(es); resume it with as '
                              f'many (torchrun --nproc_per_node {len(states)}), not '
                              f'{self.context.world_size}')
        torch.set_rng_state(states[self.context.rank])
        cuda = rng.get('cuda', [None])[self.context.rank]
        if cuda is not None and self.device.type == 'cuda':
            torch.cuda.set_rng_state(cuda, self.device)

    def fit(self, work_dir, logger):
        cfg = self.cfg
        if self.start_epoch:
            logger.info(f'resumed from {work_dir}/last.pt after epoch {self.start_epoch}')
        if self.start_epoch == cfg['num_epoch']:
            logger.info('every epoch was done before the run stopped: writing its results.json')
        choose_on = 'val' if self.val_set is not None else 'test'
        logger.info(f"{cfg['model']} on {self.meta['dataset']} {self.meta['benchmark']} ({self.meta['stream']}), "
                    f"{sum(p.numel() for p in self.model.parameters()):,} parameters, device {self.device}; "
                    f"{len(self.train_loader.dataset)} training samples, {len(self.test_set)} test samples"
                    + (f', {len(self.val_set)} validation samples' if self.val_set is not None else ''))
        if not plots.available():
            logger.info('matplotlib is not installed: no confusion-matrix figures (pip install matplotlib)')
        writes = self.context.is_main
        writer = SummaryWriter(os.path.join(work_dir, 'tensorboard')) if writes else NoWriter()
        for epoch in range(self.start_epoch, cfg['num_epoch']):
            start = time.time()
            lr = self.optimizer.param_groups[0]['lr']
            train = self.train_epoch(epoch)
            self.scheduler.step()
            done = epoch + 1
            for name, value in {**train, 'lr': lr}.items():
                writer.add_scalar(f'train/{name}', value, done)
            aux = ''.join(f', {k} {v:.4f}' for k, v in train.items() if k.startswith('sf_'))
            message = (f"epoch {done}/{cfg['num_epoch']}: lr {lr:.4f}, train loss {train['loss']:.4f}{aux}, "
                       f"top-1 {train['top1']:.2f} % ({time.time() - start:.1f} s)")
            if done % cfg['eval_interval'] == 0 or done == cfg['num_epoch']:
                scores, test = self.evaluate(self.test_set, 'test')
                self.log_metrics(writer, 'test', test, done)
                for name, figure in (self.confusion_figures(test, f'test, epoch {done}') if writes else {}).items():
                    writer.add_figure(f'test/{name}', figure, done)
                if done == cfg['num_epoch']:
                    self.save_confusion(test, f'test, epoch {done}', work_dir)
                message += f' | test {format_metrics(test)}'
                chooser, scores = test, {'test': scores}
                if self.val_set is not None:
                    scores['val'], chooser = self.evaluate(self.val_set, 'val')
                    self.log_metrics(writer, 'val', chooser, done)
                    message += f" | val top-1 {chooser['top1']:.2f} %"
                if self.best is None or chooser['top1'] > self.best['top1']:
                    self.update_best(work_dir, done, choose_on, chooser['top1'], test, scores)
                self.last = {'epoch': done, 'test': json_metrics(test),
                             'scores': f'epoch{done}_test_score.pkl'}
                if done == cfg['num_epoch']:
                    self.save_epoch_scores(work_dir, done, scores)
            logger.info(message)
            self.save(self.state(done), os.path.join(work_dir, 'last.pt'))
        writer.close()
        results = {'meta': self.meta, 'last': self.last, 'best': self.best}
        self.write_results(results, work_dir)
        self.report(logger, results)
        return results

    def update_best(self, work_dir, epoch, split, top1, test, scores):
        previous = self.best
        self.best = {'epoch': epoch, 'chosen_on': split, 'top1': top1, 'test': json_metrics(test),
                     'scores': f'epoch{epoch}_test_score.pkl'}
        self.save(self.state(epoch), os.path.join(work_dir, 'best.pt'))
        self.save_epoch_scores(work_dir, epoch, scores)
        if self.context.is_main and previous is not None and previous['epoch'] != epoch:
            for split in scores:
                stale = os.path.join(work_dir, f"epoch{previous['epoch']}_{split}_score.pkl")
                if os.path.exists(stale):
                    os.remove(stale)

    # Files are written by process 0 only (under torchrun every process holds the same state and scores).

    def save(self, state, path):
        check_finite_weights(state['model'], f"after epoch {state['epoch']}", path)
        if self.context.is_main:
            save_checkpoint(state, path)

    def write_results(self, results, work_dir):
        if self.context.is_main:
            atomic_write(os.path.join(work_dir, 'results.json'),
                         json.dumps(results, indent=2).encode())

    def save_epoch_scores(self, work_dir, epoch, scores):
        """epoch{N}_test_score.pkl, and epoch{N}_val_score.pkl when a validation split is held out."""
        if not self.context.is_main:
            return
        for split, values in scores.items():
            dataset = self.test_set if split == 'test' else self.val_set
            self.save_scores(dataset, values, os.path.join(work_dir, f'epoch{epoch}_{split}_score.pkl'))

    def confusion_figures(self, metrics, title):
        """{name: figure}: the full confusion matrix and, with groups, the one restricted to them."""
        if not plots.available():
            return {}
        cm = metrics['confusion_matrix']
        figures = {'confusion': plots.confusion_figure(cm, self.class_names, title)}
        if self.groups:
            figures['confusion_ambiguous'] = plots.ambiguous_confusion_figure(
                cm, self.class_names, self.groups, f'{title}, ambiguous groups')
        return figures

    def save_confusion(self, metrics, title, work_dir):
        if not self.context.is_main:
            return
        for name, figure in self.confusion_figures(metrics, title).items():
            plots.save(figure, os.path.join(work_dir, f'{name}.png'))

    @staticmethod
    def log_metrics(writer, split, metrics, step):
        for key in ('top1', 'top5', 'mean_class', 'loss'):
            writer.add_scalar(f'{split}/{key}', metrics[key], step)
        if 'ambiguous' in metrics:
            writer.add_scalar(f'{split}/ambiguous', metrics['ambiguous']['accuracy'], step)

    def report(self, logger, results):
        last, best = results['last'], results['best']
        how = ('on the held-out validation split' if best['chosen_on'] == 'val'
               else 'on the test split, as the reference code does: an optimistic figure')
        logger.info('final report')
        logger.info(f"  last epoch ({last['epoch']}): test {format_metrics(last['test'])}")
        for line in format_groups(last['test']):
            logger.info(line)
        logger.info(f"  best epoch ({best['epoch']}, chosen {how}): test {format_metrics(best['test'])}")

    # -------------------------------------------------------------------------------------------- testing

    def test(self, work_dir, logger):
        source = self.cfg['weights']
        epoch = self.loaded.get('epoch') if isinstance(self.loaded.get('epoch'), int) else None
        scores, metrics = self.evaluate(self.test_set, 'test')
        name = f'epoch{epoch}_test_score.pkl' if epoch is not None else 'test_score.pkl'
        if self.context.is_main:
            self.save_scores(self.test_set, scores, os.path.join(work_dir, name))
        logger.info(f"tested {source} on {self.meta['dataset']} {self.meta['benchmark']} "
                    f"({self.meta['stream']}, {len(self.test_set)} samples)")
        logger.info(f'  test {format_metrics(metrics)}')
        for line in format_groups(metrics):
            logger.info(line)
        self.save_confusion(metrics, f'test, {os.path.basename(source)}', work_dir)
        results = {'meta': self.meta, 'weights': source, 'epoch': epoch, 'test': json_metrics(metrics), 'scores': name}
        self.write_results(results, work_dir)
        return results
