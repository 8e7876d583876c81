"""Run configuration: YAML files with `base:` inheritance, defaults, command-line overrides and
checks.

A config is plain data (torchlight.yamlfile: safe YAML); components are named through registries,
never imported. Every top-level key declares its default and its type below; the feeder's and the
model's arguments are checked against the annotations of the functions that take them.
"""
import argparse
import copy
import inspect
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
    kind: Any           # the type the value must have (torchlight.validation)


Count = Annotated[int, Range(ge=0)]
Positive = Annotated[int, Range(ge=1)]
Fraction = Annotated[float, Range(ge=0, lt=1)]

# Every key a config may hold: its default (CTR-GCN's names where CTR-GCN has the key) and type.
OPTIONS = {
    # default: work_dir/<config path below config/, without .yaml>
    'work_dir': Option(None, Optional[str]),
    'phase': Option('train', Literal['train', 'test']),
    # checkpoint to test (phase test) or to start training from
    'weights': Option(None, Optional[str]),
    'seed': Option(1, Count),
    # auto (CUDA if present) | cpu | GPU id | list of GPU ids: checked by parse_device, its reader
    'device': Option('auto', Any),
    'model': Option(None, Optional[str]),      # name in the model registry, e.g. ctrgcn
    'model_args': Option({}, dict),
    'feeder': Option(None, Optional[str]),     # name in the feeder registry, e.g. skeleton
    'train_feeder_args': Option({}, dict),
    'test_feeder_args': Option({}, dict),
    # > 0: hold out this fraction of the training set to choose the best epoch
    'val_ratio': Option(0.0, Fraction),
    'num_worker': Option(2, Count),            # DataLoader worker processes
    'batch_size': Option(64, Positive),
    'test_batch_size': Option(64, Positive),
    'base_lr': Option(0.1, Annotated[float, Range(gt=0)]),
    'lr_scheduler': Option('step', Literal['step', 'cosine']),
    # epochs at which the step schedule multiplies the lr by lr_decay_rate
    'step': Option([35, 55], list[Count]),
    'lr_decay_rate': Option(0.1, Annotated[float, Range(gt=0, le=1)]),
    # linear warm-up: lr = base_lr · (epoch + 1) / warm_up_epoch
    'warm_up_epoch': Option(5, Count),
    'momentum': Option(0.9, Fraction),
    'nesterov': Option(True, bool),
    'weight_decay': Option(4e-4, Annotated[float, Range(ge=0)]),
    'label_smoothing': Option(0.0, Fraction),
    # weights of the models' auxiliary losses
    'loss_args': Option({'sf_redundancy': 0.1, 'sf_consistency': 0.1},
                        dict[str, Annotated[float, Range(ge=0)]]),
    'num_epoch': Option(65, Positive),
    'eval_interval': Option(1, Positive),      # evaluate every this many epochs, and after the last
    # YAML file of confusable class groups, e.g. config/ambiguous/demo.yaml
    'ambiguous_groups': Option(None, Optional[str]),
    # mixed precision: fp16 on CUDA only, with loss scaling
    'amp': Option('off', Literal['off', 'bf16', 'fp16']),
}
DEFAULTS = {key: option.default for key, option in OPTIONS.items()}
DICT_KEYS = [k for k, v in DEFAULTS.items() if isinstance(v, dict)]
LIST_KEYS = [k for k, option in OPTIONS.items() if typing.get_origin(option.kind) is list]
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
    check_keys([k for k in content if k != 'base'], DEFAULTS, path)
    base = content.pop('base', None)
    if base is None:
        return content
    parent = load_yaml_config(os.path.join(os.path.dirname(path), base), _seen + (path,))
    return merge(parent, content)


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
                raise ConfigError(f"--{key} takes key=value pairs (e.g. --{key} bone=True), "
                                  f"got '{token}'")
            name, value = token.split('=', 1)
            set_dotted(args, name, parse_value(value))
        cfg[key] = args
    else:
        values = [parse_value(t) for t in tokens]
        cfg[key] = values if len(values) > 1 or key in LIST_KEYS else values[0]


def build_parser():
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        description='Train or test a skeleton action recognition model. Every config key can be '
                    'given as --key value; mapping keys take key=value pairs.')
    parser.add_argument('--config', required=True, help='YAML config file')
    parser.add_argument('--resume', action='store_true',
                        help='continue the run in work_dir from last.pt, with its own config')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace the run in work_dir')
    for key in DEFAULTS:
        flags = [f'--{key}'] + ([f'--{key.replace("_", "-")}'] if '_' in key else [])
        parser.add_argument(*flags, dest=key, nargs='+', metavar='VALUE', default=argparse.SUPPRESS)
    return parser


def parse_args(argv=None):
    """The command line: (resolved config, run flags {'resume', 'overwrite', 'config'})."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        flag = next((t for t in unknown if t.startswith('-')), unknown[0])
        options = [o for a in parser._actions for o in a.option_strings]
        raise ConfigError(f"unknown option '{flag}'{closest(flag, options)}")
    cfg = load_yaml_config(args.config)
    for key in DEFAULTS:
        if key in vars(args):
            override(cfg, key, getattr(args, key))
    cfg = resolve(cfg, args.config)
    return cfg, {'resume': args.resume, 'overwrite': args.overwrite, 'config': args.config}


def resolve(cfg, config_path):
    """Fill defaults, normalise and check values; returns the full config."""
    full = merge(DEFAULTS, cfg)
    if full['work_dir'] is None:
        full['work_dir'] = default_work_dir(config_path)
    if isinstance(full['step'], numbers.Number):
        full['step'] = [full['step']]
    validate(full)
    return full


def _require(condition, message):
    if not condition:
        raise ConfigError(message)


def stream_of(feeder, arguments):
    """'joint', 'bone', 'joint_motion' or 'bone_motion', as feeder arguments bone and vel say."""
    from feeders import FEEDERS
    params = inspect.signature(FEEDERS.get(feeder)).parameters
    bone, vel = (arguments.get(key, params[key].default if key in params else False)
                 for key in ('bone', 'vel'))
    return ('bone' if bone else 'joint') + ('_motion' if vel else '')


def validate(cfg):
    """Check every value against its declared type, then what involves several keys."""
    from feeders import FEEDERS
    from model import MODELS
    from model.losses import AUX_LOSSES
    for key, option in OPTIONS.items():
        check_value(key, cfg[key], option.kind)
    _require(cfg['model'] is not None,
             f"no model given: set 'model' to one of {', '.join(MODELS.names())}")
    _require(cfg['feeder'] is not None,
             f"no feeder given: set 'feeder' to one of {', '.join(FEEDERS.names())}")
    MODELS.check(cfg['model'], cfg['model_args'], 'model_args')
    for key in ('train_feeder_args', 'test_feeder_args'):
        FEEDERS.check(cfg['feeder'], cfg[key], key)
    _require(cfg['phase'] == 'train' or cfg['weights'], 'phase test needs --weights <checkpoint>')
    # torch's SGD refuses Nesterov without momentum, deep inside the optimiser.
    _require(not (cfg['nesterov'] and cfg['momentum'] == 0), 'nesterov: true needs momentum > 0')
    check_keys(cfg['loss_args'], AUX_LOSSES, 'loss_args')
    if cfg['phase'] == 'train':
        train, test = (stream_of(cfg['feeder'], cfg[key])
                       for key in ('train_feeder_args', 'test_feeder_args'))
        _require(train == test, f'train_feeder_args and test_feeder_args select different streams '
                                f'({train} and {test}): set bone and vel alike in both')
    parse_device(cfg['device'])


def resumed_config(cfg, saved, source):
    """The configuration to continue a run with: its own (`saved`), refusing any other setting on
    the command line or in the config file but a raised num_epoch (and num_worker, work_dir)."""
    changed = [key for key in DEFAULTS
               if key not in RESUME_MAY_CHANGE and cfg[key] != saved.get(key, DEFAULTS[key])]
    if changed:
        raise ConfigError(f'--resume continues the configuration saved in {source}; these options '
                          f'differ from it: {", ".join(changed)} (start a new run to change them)')
    if cfg['num_epoch'] < saved['num_epoch']:
        raise ConfigError(f"--resume: num_epoch may be raised, not lowered (the run was set to "
                          f"{saved['num_epoch']} epochs)")
    return {**DEFAULTS, **saved, **{key: cfg[key] for key in RESUME_MAY_CHANGE}}


def parse_device(device):
    """'auto' | 'cpu' | [GPU ids]; raises ConfigError for anything else."""
    if device in ('auto', 'cpu'):
        return device
    ids = device if isinstance(device, list) else [device]
    if not ids or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
        raise ConfigError(f"device must be auto, cpu, or GPU ids such as '0' or '0 1'; "
                          f"got {device!r}")
    return ids


def save_config(cfg, path):
    atomic_write(path, yaml.safe_dump(cfg, sort_keys=False).encode())
