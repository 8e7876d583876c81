"""Run configuration: YAML files with `base:` inheritance, defaults, command-line overrides and
checks.

A config is plain data (torchlight.yamlfile: safe YAML); components are named through registries,
never imported. Every top-level key declares its default and its type below; the feeder's and the
model's arguments are checked against the annotations of the functions that take them.
"""

import argparse
import copy
import numbers
import os
import typing
from typing import Annotated, Any, Literal, NamedTuple, Optional

import yaml

from torchlight.files import atomic_write
from torchlight.registry import ConfigError, check_keys, closest
from torchlight.validation import Range, check_value
from torchlight.yamlfile import parse, read_yaml


class Option(NamedTuple):
    default: Any
    kind: Any  # the type the value must have (torchlight.validation)
    help: str  # what it means, for --help


Count = Annotated[int, Range(ge=0)]
Positive = Annotated[int, Range(ge=1)]
Fraction = Annotated[float, Range(ge=0, lt=1)]
STREAMS = ('joint', 'bone', 'joint_motion', 'bone_motion')

# Every key a config may hold: its default (CTR-GCN's names where CTR-GCN has the key), type and
# meaning.
OPTIONS = {
    'work_dir': Option(
        None, Optional[str], 'run folder (default: work_dir/<config path below config/>)'
    ),
    'phase': Option('train', Literal['train', 'test'], 'train, or test the checkpoint --weights'),
    'weights': Option(
        None, Optional[str], 'checkpoint to test (phase test) or to start training from'
    ),
    'seed': Option(1, Count, 'random seed of weights, shuffling and augmentation'),
    'seeds': Option(
        None,
        Optional[list[Count]],
        'train once per seed, one after the other, each in <work_dir>/seed<N> (replaces seed)',
    ),
    'device': Option('auto', Any, 'auto (CUDA if present) | cpu | a GPU id'),
    'model': Option(None, Optional[str], 'model name: ctrgcn | tcagcn | stgcn'),
    'model_args': Option({}, dict, "the model builder's arguments, e.g. sf_head.groups=8"),
    'feeder': Option(None, Optional[str], 'feeder name: skeleton | ucla | pose2d | demo | demo2d'),
    'train_feeder_args': Option({}, dict, 'training feeder arguments, e.g. window_size=64'),
    'test_feeder_args': Option({}, dict, 'test feeder arguments'),
    'stream': Option(
        'joint',
        Literal[STREAMS],
        'input stream of both feeders: joint | bone | joint_motion | bone_motion',
    ),
    'benchmark': Option(
        None, Optional[str], 'benchmark of a prepared dataset file, e.g. xsub, xview, xset'
    ),
    'val_ratio': Option(
        0.0, Fraction, 'hold out this fraction of the training set to choose the best epoch'
    ),
    'num_worker': Option(2, Count, 'DataLoader worker processes'),
    'batch_size': Option(64, Positive, 'training batch (over all processes)'),
    'test_batch_size': Option(64, Positive, 'evaluation batch'),
    'base_lr': Option(0.1, Annotated[float, Range(gt=0)], 'learning rate after warm-up'),
    'lr_scheduler': Option('step', Literal['step', 'cosine'], 'step or cosine decay'),
    'step': Option(
        [35, 55],
        list[Count],
        'epochs at which the step schedule multiplies the lr by lr_decay_rate',
    ),
    'lr_decay_rate': Option(0.1, Annotated[float, Range(gt=0, le=1)], 'step schedule factor'),
    'warm_up_epoch': Option(5, Count, 'linear warm-up: lr = base_lr (epoch + 1) / warm_up_epoch'),
    'momentum': Option(0.9, Fraction, 'SGD momentum'),
    'nesterov': Option(True, bool, 'Nesterov momentum'),
    'weight_decay': Option(4e-4, Annotated[float, Range(ge=0)], 'SGD weight decay'),
    'label_smoothing': Option(0.0, Fraction, 'label smoothing of the cross-entropy'),
    'num_epoch': Option(65, Positive, 'training epochs'),
    'eval_interval': Option(1, Positive, 'evaluate every this many epochs, and after the last'),
    'ambiguous_groups': Option(
        None, Optional[str], 'YAML file of confusable class groups, e.g. config/ambiguous/demo.yaml'
    ),
    'amp': Option(
        'off',
        Literal['off', 'bf16', 'fp16'],
        'mixed precision: off | bf16 | fp16 (CUDA only, with loss scaling)',
    ),
}
# Keys of older versions: where their setting went.
REMOVED = {
    'loss_args': 'the auxiliary loss weights are model arguments now, e.g. model_args: '
    '{sf_head: {loss_weights: {redundancy: 0.1, consistency: 0.1}}}',
}
# Feeder arguments of older versions, replaced by the top-level stream.
REMOVED_FEEDER_KEYS = ('bone', 'vel')
# Top-level keys that the loop passes to both feeders: never set per feeder.
SHARED_FEEDER_KEYS = ('stream', 'benchmark')
DEFAULTS = {key: option.default for key, option in OPTIONS.items()}
DICT_KEYS = [k for k, v in DEFAULTS.items() if isinstance(v, dict)]


def is_list(kind):
    """Whether a key's type is a list, or a list or null."""
    options = typing.get_args(kind) if typing.get_origin(kind) is typing.Union else (kind,)
    return any(typing.get_origin(option) is list for option in options)


LIST_KEYS = [k for k, option in OPTIONS.items() if is_list(option.kind)]
# What --resume may change: the number of epochs (raised only), what does not change the results,
# and where the run is.
RESUME_MAY_CHANGE = ('num_epoch', 'num_worker', 'work_dir')


def _read_yaml(path):
    if not os.path.isfile(path):
        raise ConfigError(f'config file not found: {path}')
    content = read_yaml(path, 'config file')
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f'{path} must hold a mapping of keys to values')
    return content


def merge(base, override):
    """Recursive dict merge: mappings merge key by key, anything else is replaced."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_yaml_config(path, _seen=()):
    """A config file merged over its `base:` chain (paths relative to the file that names them)."""
    path = os.path.normpath(path)
    if path in _seen:
        raise ConfigError(f'config inheritance loops: {" -> ".join(_seen + (path,))}')
    content = _read_yaml(path)
    refuse_removed(content, path)
    check_keys([k for k in content if k != 'base'], DEFAULTS, path)
    base = content.pop('base', None)
    if base is None:
        return content
    parent = load_yaml_config(os.path.join(os.path.dirname(path), base), _seen + (path,))
    return merge(parent, content)


def refuse_removed(cfg, where):
    """One line saying where the setting of a key of an older version went."""
    for key in cfg:
        if key in REMOVED:
            raise ConfigError(f'{where}: {key} was removed: {REMOVED[key]}')
    for key in ('train_feeder_args', 'test_feeder_args'):
        arguments = cfg.get(key) or {}
        old = [k for k in REMOVED_FEEDER_KEYS if k in arguments]
        if old:
            raise ConfigError(
                f'{where}: {key}.{old[0]} was removed: set the top-level stream '
                f'({" | ".join(STREAMS)}), which applies to both feeders'
            )
        shared = [k for k in SHARED_FEEDER_KEYS if k in arguments]
        if shared:
            raise ConfigError(
                f'{where}: {key}.{shared[0]} is a top-level key: set {shared[0]} once, for both '
                f'feeders'
            )


def default_work_dir(config_path):
    rel = os.path.relpath(os.path.splitext(config_path)[0], 'config')
    return os.path.join('work_dir', rel if not rel.startswith('..') else os.path.basename(rel))


def parse_value(text):
    """A command-line token read as YAML (numbers, booleans, null, lists); never executes code."""
    try:
        return parse(text)
    except yaml.YAMLError:
        return text


def set_dotted(mapping, dotted_key, value):
    *parents, last = dotted_key.split('.')
    for key in parents:
        node = mapping.get(key)
        if not isinstance(node, dict):
            node = mapping[key] = {}
        mapping = node
    mapping[last] = value


def override(cfg, key, tokens):
    """Apply `--key tokens...`: `k=v` pairs (dotted k allowed) for mapping keys, else values."""
    if key in DICT_KEYS:
        args = copy.deepcopy(cfg.get(key) or {})
        for token in tokens:
            if '=' not in token:
                raise ConfigError(
                    f"--{key} takes key=value pairs (e.g. --{key} window_size=32), got '{token}'"
                )
            name, value = token.split('=', 1)
            set_dotted(args, name, parse_value(value))
        cfg[key] = args
    else:
        values = [parse_value(t) for t in tokens]
        # `--seeds null` turns a list key off; any other single value of a list key is a list
        as_list = len(values) > 1 or (key in LIST_KEYS and values != [None])
        cfg[key] = values if as_list else values[0]


def build_parser():
    """The command line; each option's help line is its OPTIONS entry (meaning and default)."""
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        usage='%(prog)s --config FILE [--resume] [--overwrite] [--KEY VALUE ...]',
        description='Train or test a skeleton action recognition model. Every config key can be '
        'given as --key value; mapping keys take key=value pairs (dotted keys '
        'allowed).',
    )
    parser.add_argument('--config', required=True, help='YAML config file')
    parser.add_argument(
        '--resume',
        action='store_true',
        help='continue the run in work_dir from last.pt, with its own config',
    )
    parser.add_argument('--overwrite', action='store_true', help='replace the run in work_dir')
    for key, option in OPTIONS.items():
        flags = [f'--{key}'] + ([f'--{key.replace("_", "-")}'] if '_' in key else [])
        several = key in DICT_KEYS or key in LIST_KEYS or key == 'device'  # device: GPU ids
        parser.add_argument(
            *flags,
            dest=key,
            nargs='+' if several else None,
            default=argparse.SUPPRESS,
            metavar='K=V' if key in DICT_KEYS else key.upper(),
            help=option.help
            if '(default' in option.help
            else f'{option.help} (default: {describe_default(option.default)})',
        )
    return parser


def describe_default(value):
    """A default as a config file writes it: none, true, 0.1, 35 55."""
    if value is None or value == {}:
        return 'none'
    if isinstance(value, bool):
        return str(value).lower()
    return ' '.join(map(str, value)) if isinstance(value, list) else str(value)


def parse_args(argv=None, components=None, own_options=()):
    """The command line: (resolved config, run flags {'resume', 'overwrite', 'config'}).

    `components` {'model': registry, 'feeder': registry} check the named components and their
    arguments (main.py passes them: this library knows no model or feeder). `own_options`: the
    options a tool parsed from the command line itself, offered too when a typo is named."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        flag = next((t for t in unknown if t.startswith('-')), unknown[0])
        if flag.lstrip('-').replace('-', '_') in REMOVED:
            raise ConfigError(f'{flag} was removed: {REMOVED[flag.lstrip("-").replace("-", "_")]}')
        options = [o for a in parser._actions for o in a.option_strings] + list(own_options)
        raise ConfigError(f"unknown option '{flag}'{closest(flag, options)}")
    cfg = load_yaml_config(args.config)
    for key in DEFAULTS:
        if key in vars(args):
            value = getattr(args, key)
            override(cfg, key, value if isinstance(value, list) else [value])
    refuse_removed(cfg, 'the command line')
    cfg = resolve(cfg, args.config, components)
    return cfg, {'resume': args.resume, 'overwrite': args.overwrite, 'config': args.config}


def resolve(cfg, config_path, components=None):
    """Fill defaults, normalise and check values; returns the full config."""
    full = merge(DEFAULTS, cfg)
    if full['work_dir'] is None:
        full['work_dir'] = default_work_dir(config_path)
    if isinstance(full['step'], numbers.Number):
        full['step'] = [full['step']]
    validate(full, components)
    return full


def _require(condition, message):
    if not condition:
        raise ConfigError(message)


def validate(cfg, components=None):
    """Check every value against its declared type, then what involves several keys, then the
    named components' arguments (when `components` are given)."""
    for key, option in OPTIONS.items():
        check_value(key, cfg[key], option.kind)
    _require(cfg['phase'] == 'train' or cfg['weights'], 'phase test needs --weights <checkpoint>')
    # torch's SGD refuses Nesterov without momentum, deep inside the optimiser.
    _require(not (cfg['nesterov'] and cfg['momentum'] == 0), 'nesterov: true needs momentum > 0')
    check_seeds(cfg)
    parse_device(cfg['device'])
    if components:
        check_components(cfg, components['model'], components['feeder'])


def check_seeds(cfg):
    seeds = cfg['seeds']
    if seeds is None:
        return
    _require(seeds, 'seeds must list at least one seed (or be null for one run with seed)')
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    _require(not repeated, f'seeds lists seed {repeated[0] if repeated else ""} twice')
    _require(
        cfg['phase'] == 'train',
        'seeds sweeps train; test each seed\'s run with its own <work_dir>/seed<N>/config.yaml',
    )


def check_components(cfg, models, feeders):
    _require(
        cfg['model'] is not None,
        f"no model given: set 'model' to one of {', '.join(models.names())}",
    )
    _require(
        cfg['feeder'] is not None,
        f"no feeder given: set 'feeder' to one of {', '.join(feeders.names())}",
    )
    models.check(cfg['model'], cfg['model_args'], 'model_args')
    for key in ('train_feeder_args', 'test_feeder_args'):
        feeders.check(cfg['feeder'], cfg[key], key)


def resumed_config(cfg, saved, source):
    """The configuration to continue a run with: its own (`saved`), refusing any other setting on
    the command line or in the config file but a raised num_epoch (and num_worker, work_dir)."""
    changed = [
        key
        for key in DEFAULTS
        if key not in RESUME_MAY_CHANGE and cfg[key] != saved.get(key, DEFAULTS[key])
    ]
    if changed:
        raise ConfigError(
            f'--resume continues the configuration saved in {source}; these options '
            f'differ from it: {", ".join(changed)} (start a new run to change them)'
        )
    if cfg['num_epoch'] < saved['num_epoch']:
        raise ConfigError(
            f"--resume: num_epoch may be raised, not lowered (the run was set to "
            f"{saved['num_epoch']} epochs)"
        )
    return {**DEFAULTS, **saved, **{key: cfg[key] for key in RESUME_MAY_CHANGE}}


def parse_device(device):
    """'auto' | 'cpu' | [GPU ids]; raises ConfigError for anything else."""
    if device in ('auto', 'cpu'):
        return device
    ids = device if isinstance(device, list) else [device]
    if not ids or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
        raise ConfigError(
            f"device must be auto, cpu, or GPU ids such as '0' or '0 1'; got {device!r}"
        )
    return ids


def save_config(cfg, path):
    atomic_write(path, yaml.safe_dump(cfg, sort_keys=False).encode())
