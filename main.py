"""Train or test a skeleton action recognition model: python main.py --config config/demo/joint.yaml

The composition point: the config names a model and a feeder; this file builds them and hands them
to the loop (torchlight/, which knows neither). With `seeds: [1, 2, 3]` (or `--seeds 1 2 3`) it
trains the config once per seed, one after the other, each in its own `<work_dir>/seed<N>`.
"""

import os
import sys

from feeders import FEEDERS, run_split
from graph import get_layout
from model import MODELS, build_model, full_model_args, inference_args
from torchlight import config, distributed
from torchlight.checkpoint import load_checkpoint
from torchlight.config import resumed_config, save_config
from torchlight.distributed import Context
from torchlight.log import close_logger, make_logger, silent_logger
from torchlight.registry import ConfigError
from torchlight.trainer import Trainer, seed_everything, select_device
from torchlight.workdir import (
    holds_only_a_stopped_run,
    is_run,
    new_test_folder,
    open_training_folder,
)

COMPONENTS = {'model': MODELS, 'feeder': FEEDERS}


def parse_args(argv=None):
    """(resolved config, run flags): the command line, the named components' arguments checked."""
    return config.parse_args(argv, COMPONENTS)


def seed_runs(cfg, flags):
    """[(config, flags)] of the runs to do: the config itself, or with `seeds` one run per seed in
    `<work_dir>/seed<N>`, whose saved config holds its own seed and no sweep (so that it reruns,
    tests and resumes alone). With --resume each seed is treated as its single run would be (see
    `resumed_seed_flags`); the seeds already finished are skipped."""
    if cfg['seeds'] is None:
        return [(cfg, flags)]
    if os.path.isdir(cfg['work_dir']) and is_run(cfg['work_dir']):
        raise ConfigError(f"seeds: work_dir {cfg['work_dir']} holds a single run; a sweep writes "
                          f"its seed<N> folders into a folder of its own (choose another "
                          f"--work-dir)")
    runs = []
    for seed in cfg['seeds']:
        seed_cfg = {**cfg, 'seed': seed, 'seeds': None,
                    'work_dir': os.path.join(cfg['work_dir'], f'seed{seed}')}
        run_flags = resumed_seed_flags(seed_cfg, flags) if flags['resume'] else flags
        if run_flags is None:
            print(f"seed {seed}: {seed_cfg['work_dir']} is finished; skipped")
            continue
        runs.append((seed_cfg, run_flags))
    return runs


def resumed_seed_flags(cfg, flags):
    """The flags of one seed of a sweep under --resume, or None when it has finished every epoch
    asked for. A seed with a last.pt continues it, its saved configuration checked first, so that
    a changed option (base_lr, say) is refused before any seed trains, as --resume refuses it for a
    single run, and a raised num_epoch continues it. A seed never started, or stopped before its
    first epoch was saved, starts afresh: its folder is replaced when it holds only what that
    stop left (anything else there is refused, as without --overwrite)."""
    last = os.path.join(cfg['work_dir'], 'last.pt')
    finished = os.path.isfile(os.path.join(cfg['work_dir'], 'results.json'))
    if not os.path.isfile(last):
        if finished:
            return None
        return {**flags, 'resume': False,
                'overwrite': flags['overwrite'] or holds_only_a_stopped_run(cfg['work_dir'])}
    checkpoint = load_checkpoint(last)
    resumed_config(cfg, checkpoint.get('config') or {}, last)
    if finished and checkpoint.get('epoch', 0) >= cfg['num_epoch']:
        return None
    return {**flags, 'resume': True}


def build_datasets(cfg):
    """{'test', and for training 'train' and (val_ratio > 0) 'held_out'}, all of cfg's benchmark
    and stream; a split without samples is refused in one line."""
    datasets = {'test': run_split(cfg, 'test')}
    if cfg['phase'] == 'train':
        datasets['train'] = run_split(cfg, 'train', 'train_feeder_args')
        if cfg['val_ratio'] > 0:
            datasets['held_out'] = run_split(cfg, 'train')
    for split in ('train', 'test'):
        if split in datasets and not len(datasets[split]):
            dataset = datasets[split]
            raise ConfigError(
                f"{dataset.path}: the {split} split of benchmark {dataset.meta.get('benchmark')} "
                f"holds no sample; prepare the data with samples in both splits"
            )
    return datasets


def run_meta(cfg, test_set):
    """What a checkpoint must agree with, recorded in checkpoints and results.json."""
    attrs = test_set.meta
    return {
        'model': cfg['model'],
        'model_args': inference_args(cfg['model'], cfg['model_args']),
        'dataset': attrs.get('dataset'),
        'benchmark': attrs.get('benchmark'),
        'layout': attrs.get('layout'),
        'stream': cfg['stream'],
        'num_class': len(test_set.class_names),
        'class_names': list(test_set.class_names),
    }


def check_data_fits_model(cfg, test_set):
    """Refuse, in one line, data whose samples the model cannot read: the channels, joints and
    person slots of the test split's first sample against in_channels, num_point, num_person, the
    data's layout against the model's graph, and its classes against num_class: a label past the
    last score would stop training with a traceback. More scores than classes stay allowed, as
    FR-Head trains NTU RGB+D 60 with a 120-way classifier."""
    args = full_model_args(cfg['model'], cfg['model_args'])
    classes = len(test_set.class_names)
    if classes > args['num_class']:
        raise ConfigError(
            f"{test_set.path} holds {classes} classes, but model_args.num_class is "
            f"{args['num_class']}: set num_class to {classes}"
        )
    channels, _, joints, persons = test_set[0][0].shape                 # (C, T, V, M)
    given = (channels, joints, persons)
    expected = (args['in_channels'], args['num_point'], args['num_person'])
    if given != expected:
        raise ConfigError(
            f'{test_set.path} gives samples of {channels} channels, {joints} joints '
            f'({test_set.layout.name}) and {persons} person slots, but model_args say in_channels '
            f'{expected[0]}, num_point {expected[1]}, num_person {expected[2]} (graph '
            f"{args['graph']}): set model_args to fit the data"
        )
    model_layout = get_layout(args['graph'])
    if not model_layout.same_skeleton(test_set.layout):
        raise ConfigError(
            f'{test_set.path} was prepared with the layout {test_set.layout.name}, but '
            f"model_args.graph is {args['graph']}, another skeleton (joints, edges or centre): "
            f'set graph to the layout of the data'
        )


def build_trainer(cfg, context):
    """Model and datasets from the config, handed to the loop (the seed first: it draws the
    weights)."""
    # process 0's weights are broadcast to the others
    seed_everything(cfg['seed'] + context.rank)
    datasets = build_datasets(cfg)
    check_data_fits_model(cfg, datasets['test'])
    model = build_model(cfg['model'], **cfg['model_args'])
    return Trainer(cfg, model, datasets, run_meta(cfg, datasets['test']), context)


class Session:
    """What one process of a run holds: its config, trainer, folder and (process 0 of a training
    run) the work dir's lock."""

    def __init__(self):
        self.context, self.lock, self.notes = Context(), None, []

    def start(self, cfg, flags):
        self.flags = flags
        self.context = distributed.init_from_environment(
            use_cuda=select_device(cfg['device']).type == 'cuda'
        )
        checkpoint, last = None, os.path.join(cfg['work_dir'], 'last.pt')
        if self.flags['resume'] and cfg['phase'] == 'train':
            if not os.path.isfile(last):
                raise ConfigError(f'--resume: no {last} to resume from')
            checkpoint = load_checkpoint(last)
            cfg = resumed_config(cfg, checkpoint.get('config') or {}, last)
        self.cfg = cfg
        self.trainer = build_trainer(cfg, self.context)
        if checkpoint is not None:
            self.trainer.resume(checkpoint, last)
        self.work_dir = self.prepare_folder()

    def prepare_folder(self):
        """Process 0 prepares the folder (or says why not); the others learn its name or the
        error."""
        work_dir, problem = None, None
        if self.context.is_main:
            try:
                work_dir = self.open_folder()
            except ConfigError as err:
                problem = str(err)
        work_dir, problem = distributed.broadcast((work_dir, problem), self.context)
        if problem:
            raise ConfigError(problem)
        return work_dir

    def open_folder(self):
        cfg = self.cfg
        if cfg['phase'] == 'test':
            # A test run writes beside the training run it evaluates, in a new folder each time.
            folder = new_test_folder(cfg['work_dir'])
        else:
            self.lock, self.notes = open_training_folder(
                cfg['work_dir'], self.flags['resume'], self.flags['overwrite']
            )
            folder = cfg['work_dir']
        # the tools (ensemble, compare, tables) read a run's data and labels through its config
        save_config(cfg, os.path.join(folder, 'config.yaml'))
        return folder

    def run(self):
        logger = make_logger(self.work_dir) if self.context.is_main else silent_logger()
        try:
            for note in self.notes:
                logger.info(note)
            if self.cfg['phase'] == 'train':
                self.trainer.fit(self.work_dir, logger)
            else:
                self.trainer.test(self.work_dir, logger)
        except ConfigError as err:
            logger.error(f'error: {err}')
            return 2
        finally:
            close_logger(logger)
            self.close()
        return 0

    def close(self):
        if self.lock is not None:
            self.lock.release()


def run_once(cfg, flags):
    """One run of the config; 0, or 2 after printing the error."""
    session = Session()
    try:
        session.start(cfg, flags)
    except ConfigError as err:
        if session.context.is_main:
            print(f'error: {err}', file=sys.stderr)
        session.close()
        return 2
    return session.run()


def main(argv=None):
    """One process, or one of the processes of `torchrun --nproc_per_node N main.py ...` (DDP);
    a seeds sweep keeps one process group for all its runs and stops at the first that fails."""
    try:
        sweep, flags = parse_args(argv)
        runs = seed_runs(sweep, flags)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    try:
        for cfg, flags in runs:
            status = run_once(cfg, flags)
            if status:
                return status
    except KeyboardInterrupt:
        if int(os.environ.get('RANK', 0)) == 0:
            kept = what_is_kept(cfg) if sweep['seeds'] is None else (
                f"the finished seeds are kept; add --resume to continue the sweep in "
                f"{sweep['work_dir']}")
            print(f'interrupted: {kept}', file=sys.stderr)
        return 130
    finally:
        distributed.shutdown()
    return 0


def what_is_kept(cfg):
    """What an interrupted run leaves for the user, in words (checkpoints are written atomically,
    at the end of each epoch)."""
    if cfg['phase'] == 'test':
        return 'the test stopped before writing its scores'
    if not os.path.isfile(os.path.join(cfg['work_dir'], 'config.yaml')):
        return f"the run stopped before writing anything in {cfg['work_dir']}"
    last = os.path.join(cfg['work_dir'], 'last.pt')
    if not os.path.isfile(last):
        return (f"no epoch was finished, nothing to resume in {cfg['work_dir']}; add --overwrite "
                f"to start again")
    return f'{last} holds the last finished epoch; add --resume to continue from it'


if __name__ == '__main__':
    sys.exit(main())
