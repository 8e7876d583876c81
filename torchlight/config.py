"""Run configuration: YAML files with `base:` inheritance, defaults, command-line overrides and checks.

A config is plain data (yaml.safe_load): components are named through registries, never imported.
"""
import argparse
import copy
import numbers
import os

import yaml

from torchlight.registry import ConfigError, check_keys, closest

# Every key a config may hold, with its default (CTR-GCN's names where CTR-GCN has the key).
DEFAULTS = {
    'work_dir': None,            # default: work_dir/<config path below config/, without .yaml>
    'phase': 'train',            # train | test
    'weights': None,             # checkpoint to test (phase test) or to start training from
    'seed': 1,
    'device': 'auto',            # auto (CUDA if present) | cpu | GPU id | list of GPU ids
    'model': None,               # name in the model registry, e.g. ctrgcn
    'model_args': {},
    'feeder': None,              # name in the feeder registry, e.g. skeleton
    'train_feeder_args': {},
    'test_feeder_args': {},
    'val_ratio': 0.0,            # > 0: hold out this fraction of the training set to choose the best epoch
    'num_worker': 2,             # DataLoader worker processes
    'batch_size': 64,
    'test_batch_size': 64,
    'base_lr': 0.1,
    'lr_scheduler': 'step',      # step | cosine
    'step': [35, 55],            # epochs at which the step schedule multiplies the lr by lr_decay_rate
    'lr_decay_rate': 0.1,
    'warm_up_epoch': 5,          # linear warm-up: lr = base_lr · (epoch + 1) / warm_up_epoch
    'momentum': 0.9,
    'nesterov': True,
    'weight_decay': 4e-4,
    'label_smoothing': 0.0,
    'loss_args': {'sf_redundancy': 0.1, 'sf_consistency': 0.1},   # weights of the models' auxiliary losses
    'num_epoch': 65,
    'eval_interval': 1,          # evaluate every this many epochs (and always after the last)
    'ambiguous_groups': None,    # YAML file of confusable class groups, e.g. config/ambiguous/demo.yaml
    'amp': 'off',                # mixed precision: off | bf16 | fp16 (fp16 on CUDA only, with loss scaling)
}
DICT_KEYS = [k for k, v in DEFAULTS.items() if isinstance(v, dict)]
LIST_KEYS = ['step']


def _read_yaml(path):
    if not os.path.isfile(path):
        raise ConfigError(f'config file not found: {path}')
    with open(path) as f:
        try:
            content = yaml.safe_load(f)
        except yaml.YAMLError as err:
            raise ConfigError(f'{path} is not valid YAML: {err}') from None
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
    """A command-line token read as YAML (numbers, booleans, null, lists); never executes anything."""
    try:
        return yaml.safe_load(text)
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
    """Apply `--key tokens...`: `k=v` pairs (dotted k allowed) for mapping keys, values otherwise."""
    if key in DICT_KEYS:
        args = copy.deepcopy(cfg.get(key) or {})
        for token in tokens:
            if '=' not in token:
                raise ConfigError(f"--{key} takes key=value pairs (e.g. --{key} bone=True), got '{token}'")
            name, value = token.split('=', 1)
            set_dotted(args, name, parse_value(value))
        cfg[key] = args
    else:
        values = [parse_value(t) for t in tokens]
        cfg[key] = values if len(values) > 1 or key in LIST_KEYS else values[0]


def build_parser():
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        description='Train or test a skeleton action recognition model. Every config key can be given as '
                    '--key value; mapping keys take key=value pairs.')
    parser.add_argument('--config', required=True, help='YAML config file')
    parser.add_argument('--resume', action='store_true', help='continue the run in work_dir from last.pt')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing work_dir')
    for key in DEFAULTS:
        flags = [f'--{key}'] + ([f'--{key.replace("_", "-")}'] if '_' in key else [])
        parser.add_argument(*flags, dest=key, nargs='+', metavar='VALUE', default=argparse.SUPPRESS)
    return parser


def parse_args(argv=None):
    """Parse the command line: returns (resolved config, run flags {'resume', 'overwrite', 'config'})."""
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


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def validate(cfg):
    from feeders import FEEDERS
    from model import MODELS
    _require(cfg['model'] is not None, f"no model given: set 'model' to one of {', '.join(MODELS.names())}")
    MODELS.get(cfg['model'])
    _require(cfg['feeder'] is not None, f"no feeder given: set 'feeder' to one of {', '.join(FEEDERS.names())}")
    FEEDERS.get(cfg['feeder'])
    _require(cfg['phase'] in ('train', 'test'), f"phase must be train or test, got '{cfg['phase']}'")
    _require(cfg['phase'] == 'train' or cfg['weights'], 'phase test needs --weights <checkpoint>')
    for key in ('base_lr', 'lr_decay_rate', 'weight_decay', 'momentum', 'label_smoothing', 'val_ratio'):
        _require(_is_number(cfg[key]), f'{key} must be a number, got {cfg[key]!r}')
    _require(cfg['base_lr'] > 0, f"base_lr must be positive, got {cfg['base_lr']}")
    _require(cfg['weight_decay'] >= 0, f"weight_decay must be >= 0, got {cfg['weight_decay']}")
    _require(0 <= cfg['label_smoothing'] < 1, f"label_smoothing must be in [0, 1), got {cfg['label_smoothing']}")
    _require(0 <= cfg['val_ratio'] < 1, f"val_ratio must be in [0, 1), got {cfg['val_ratio']}")
    for key in ('batch_size', 'test_batch_size', 'num_epoch', 'eval_interval'):
        _require(_is_int(cfg[key]) and cfg[key] >= 1, f'{key} must be a positive integer, got {cfg[key]!r}')
    for key in ('warm_up_epoch', 'num_worker', 'seed'):
        _require(_is_int(cfg[key]) and cfg[key] >= 0, f'{key} must be an integer >= 0, got {cfg[key]!r}')
    _require(isinstance(cfg['step'], list) and all(_is_int(s) and s >= 0 for s in cfg['step']),
             f"step must be a list of epochs, got {cfg['step']!r}")
    _require(cfg['amp'] in ('off', 'bf16', 'fp16'), f"amp must be off, bf16 or fp16, got '{cfg['amp']}'")
    _require(cfg['lr_scheduler'] in ('step', 'cosine'),
             f"lr_scheduler must be step or cosine, got '{cfg['lr_scheduler']}'")
    for key in DICT_KEYS:
        _require(isinstance(cfg[key], dict), f'{key} must be a mapping, got {cfg[key]!r}')
    from model.losses import AUX_LOSSES
    check_keys(cfg['loss_args'], AUX_LOSSES, 'loss_args')
    for name, weight in cfg['loss_args'].items():
        _require(_is_number(weight) and weight >= 0, f'loss_args.{name} must be a number >= 0, got {weight!r}')
    parse_device(cfg['device'])


def parse_device(device):
    """'auto' | 'cpu' | [GPU ids]; raises ConfigError for anything else."""
    if device in ('auto', 'cpu'):
        return device
    ids = device if isinstance(device, list) else [device]
    if not ids or not all(_is_int(i) and i >= 0 for i in ids):
        raise ConfigError(f"device must be auto, cpu, or GPU ids such as '0' or '0 1'; got {device!r}")
    return ids


def save_config(cfg, path):
    with open(path, 'w') as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
