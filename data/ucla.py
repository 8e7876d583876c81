"""NW-UCLA "all_sqe" JSON files → prepared sequences (T, 1, 20, 3), untouched: the feeder centres
and scales."""

import json
import os

import numpy as np

from data import DataFileError, read_text

META = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ucla_meta')
CLASS_NAMES = (
    'pick up with one hand',
    'pick up with two hands',
    'drop trash',
    'walk around',
    'sit down',
    'stand up',
    'donning',
    'doffing',
    'throw',
    'carry',
)


def reference_lists():
    """{'train': [...], 'test': [...]} of {'file_name', 'length', 'label'} in the reference feeder's
    order."""
    lists = {}
    for split in ('train', 'test'):
        with open(os.path.join(META, f'{split}_list.json')) as f:
            lists[split] = json.load(f)
    return lists


def load_sequence(path):
    """The file's skeletons as (T, 1, 20, 3) float32."""
    try:
        content = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise DataFileError(f'{path}:{err.lineno}: not valid JSON ({err.msg})') from None
    try:
        skeletons = np.asarray(content['skeletons'], dtype=np.float32)
    except (KeyError, TypeError, ValueError):
        raise DataFileError(f'{path}: no T x 20 x 3 "skeletons" array') from None
    if skeletons.ndim != 3 or skeletons.shape[1:] != (20, 3) or len(skeletons) == 0:
        raise DataFileError(
            f'{path}: "skeletons" has shape {skeletons.shape}, expected (T >= 1, 20, 3)'
        )
    if not np.all(np.isfinite(skeletons)):
        raise DataFileError(f'{path}: NaN or Inf in "skeletons"')
    return skeletons[:, None]
