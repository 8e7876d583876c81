"""Score files and label files: read safely, find them in run directories, align them by sample
name.

A score file is CTR-GCN's format, which the trainer also writes: a pickled dict sample name →
score vector (num_class,), in test order. Pickles are read with `safe_load_pickle`, which rebuilds
only plain containers, numbers, strings and numpy arrays: a pickle that asks for anything else is
refused before it can run it.
"""

import io
import json
import os
import pickle

import numpy as np

from torchlight.registry import ConfigError
from torchlight.yamlfile import read_yaml

# (module, name) of the globals a pickle of plain containers and numpy arrays may need.
ALLOWED_GLOBALS = {
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'),
    ('collections', 'OrderedDict'),
    # Pickle protocol 2, which mmcv.dump (pyskl's annotation files) writes, has no bytes type: it
    # pickles an array's raw bytes as a str re-encoded by this function, which only encodes text.
    ('_codecs', 'encode'),
}


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f'refused: the pickle asks for {module}.{name}, which is neither a plain '
            f'container nor a numpy array'
        )


def safe_load_pickle(path):
    try:
        with open(path, 'rb') as f:
            return RestrictedUnpickler(io.BytesIO(f.read())).load()
    except FileNotFoundError:
        raise ConfigError(f'file not found: {path}') from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ConfigError(f'{path}: {err}') from None


def load_scores(path):
    """(names, scores (N, K) float64) of a score file."""
    content = safe_load_pickle(path)
    if not isinstance(content, dict) or not content:
        raise ConfigError(f'{path} is not a score file (a dict sample name → score vector)')
    names = [str(name) for name in content]
    try:
        scores = np.stack([np.asarray(v, dtype=np.float64).reshape(-1) for v in content.values()])
    except ValueError:
        raise ConfigError(f'{path}: score vectors of different lengths') from None
    bad = np.flatnonzero(~np.isfinite(scores).all(axis=1))
    if len(bad):
        raise ConfigError(
            f'{path}: {len(bad)} score vectors hold NaN or Inf (e.g. '
            f'{names[bad[0]]}); no accuracy is computed from them'
        )
    return names, scores


# --------------------------------------------------------------------------------------------- runs


def read_run(run_dir):
    """A finished run's resolved config and results.json."""
    paths = {name: os.path.join(run_dir, name) for name in ('config.yaml', 'results.json')}
    for path in paths.values():
        if not os.path.isfile(path):
            raise ConfigError(
                f'{run_dir} is not a finished run: {os.path.basename(path)} is missing'
            )
    config = read_yaml(paths['config.yaml'])
    try:
        with open(paths['results.json']) as f:
            results = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{paths['results.json']} is not valid JSON: {err}") from None
    for path, content in zip(paths.values(), (config, results)):
        if not isinstance(content, dict):
            raise ConfigError(f'{path} does not hold a mapping')
    return config, results


def run_meta(run_dir):
    """What a run trained on (dataset, benchmark, model, stream), as results.json records it."""
    meta = read_run(run_dir)[1].get('meta')
    if meta is None:
        raise ConfigError(
            f'{run_dir}/results.json has no meta (written by an older version): test the run again '
            f'with --phase test to record it'
        )
    return meta


def run_score_file(run_dir, epoch, split='test'):
    """The score file of a run's `best` or `last` evaluated epoch (or of a test-only run)."""
    config, results = read_run(run_dir)
    if 'scores' in results:  # a --phase test run
        name = results['scores']
    elif epoch not in ('best', 'last'):
        raise ConfigError(
            f'{run_dir} is a training run: say which epoch to use, best or last (--epoch)'
        )
    elif results.get(epoch) is None:
        raise ConfigError(f'{run_dir}: results.json has no {epoch} epoch')
    else:
        name = results[epoch]['scores']
    if split != 'test':
        name = name.replace('_test_score', f'_{split}_score')
    path = os.path.join(run_dir, name)
    if not os.path.isfile(path):
        if split != 'test' and not config.get('val_ratio'):
            raise ConfigError(f'{run_dir}: no {split} scores: the run held out no validation split '
                              f'(val_ratio 0); train it with val_ratio > 0')
        raise ConfigError(f'{run_dir}: {name} is missing (results.json names it)')
    return path


def scores_of(source, epoch=None, split='test'):
    """(names, scores, path) from a score file or a run directory."""
    path = run_score_file(source, epoch, split) if os.path.isdir(source) else source
    return (*load_scores(path), path)


# ------------------------------------------------------------------------------------------- labels


def load_label_file(path):
    """(names or None, 0-based labels) from a label file:
    .npy / .txt  class ids, 0-based (1-based ids are refused: say which with a 0-based file);
    .npz         a reference prepared file: its one-hot y_test;
    .pkl         the reference NW-UCLA val_label.pkl (a list of dicts with 'label' 1..10), or a
                 (names, labels) pair as older feeders store it.
    """
    if not os.path.isfile(path):
        raise ConfigError(f'label file not found: {path}')
    if path.endswith('.npz'):
        with np.load(path) as f:
            if 'y_test' not in f.files:
                raise ConfigError(f'{path} has no y_test array')
            one_hot = f['y_test']
            names = [str(n) for n in f['names_test']] if 'names_test' in f.files else None
        return names, np.argmax(one_hot, axis=1)
    if path.endswith('.pkl'):
        content = safe_load_pickle(path)
        if (
            isinstance(content, list)
            and content
            and all(isinstance(e, dict) and 'label' in e for e in content)
        ):
            names = (
                [str(e['file_name']) for e in content]
                if all('file_name' in e for e in content)
                else None
            )
            return names, np.asarray([int(e['label']) - 1 for e in content])
        if (
            isinstance(content, (tuple, list))
            and len(content) == 2
            and len(content[0]) == len(content[1])
        ):
            return [str(n) for n in content[0]], np.asarray(content[1], dtype=np.int64).reshape(-1)
        raise ConfigError(
            f'{path}: expected a list of dicts with "label" or a (names, labels) pair'
        )
    labels = np.load(path) if path.endswith('.npy') else np.loadtxt(path, dtype=np.int64, ndmin=1)
    return None, np.asarray(labels, dtype=np.int64).reshape(-1)


def positional(names):
    """Names that only give a position: 0, 1, ... (integer keys, as in some published score files)
    or test_0, test_1, ... (as the reference feeder names samples). Such files align by order."""
    if not names:
        return False
    if all(name == str(i) for i, name in enumerate(names)):
        return True
    prefix = names[0].rsplit('_', 1)[0]
    return all(name == f'{prefix}_{i}' for i, name in enumerate(names))


def align(names, scores, reference_names, source):
    """Reorder `scores` to `reference_names`: identical order passes; names that give only positions
    (on either side) align by order; the same samples in another order are aligned by name;
    different sample sets, or counts, are refused (with both counts)."""
    if len(names) != len(reference_names):
        raise ConfigError(f'{source} holds {len(names)} samples, expected {len(reference_names)}')
    if list(names) == list(reference_names) or positional(names) or positional(reference_names):
        return scores
    position = {name: i for i, name in enumerate(names)}
    missing = [n for n in reference_names if n not in position]
    if missing:
        raise ConfigError(
            f'{source} lacks {len(missing)} of the expected samples, e.g. {missing[0]} '
            f'(its samples are named like {names[0]})'
        )
    return scores[[position[n] for n in reference_names]]
