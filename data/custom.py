"""Your own skeleton sequences: one file per sequence, read into the prepared frames' shape.

A sequence file is
  - `.npy`: keypoints of shape (T, V, C) for one person or (M, T, V, C) for M persons;
  - `.json`: an object with `keypoints`, an array of one of those shapes, and optionally `scores`,
    an array of the same shape without C (one confidence per keypoint, for 2D input).
C is 3 (x, y, z, or 2D x, y, score: the dataset's feeder says which) or 2 (2D without scores: every
keypoint that is not (0, 0) gets score 1, every (0, 0) keypoint score 0, that is, "not detected").
`read_sequence_file` returns float32 (T, M, V, 3), the prepared format's order (data/storage.py).
"""

import json
import os

import numpy as np

from data import DataFileError

SUFFIXES = ('.npy', '.json')


def read_sequence_file(path):
    """The sequence in `path` as float32 (T, M, V, C=3); DataFileError naming the file and the
    problem."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise DataFileError(f'{path}: not a sequence file (expected {" or ".join(SUFFIXES)})')
    keypoints, scores = read_npy(path) if suffix == '.npy' else read_json(path)
    keypoints = with_person_axis(path, keypoints, 'keypoints', dims=3)
    if scores is not None:
        scores = with_person_axis(path, scores, 'scores', dims=2)
    check_values(path, keypoints, scores)
    keypoints = with_scores(path, keypoints, scores)
    # (M, T, V, C) → (T, M, V, C)
    return np.ascontiguousarray(keypoints.transpose(1, 0, 2, 3), dtype=np.float32)


def read_npy(path):
    """(keypoints, None) of a .npy file; pickled object arrays are refused (they could run code)."""
    try:
        return np.load(path, allow_pickle=False), None
    except (OSError, ValueError, EOFError) as err:
        raise DataFileError(f'{path}: not a readable .npy array ({err})') from None


def read_json(path):
    """(keypoints, scores or None) of a .json file."""
    try:
        with open(path) as f:
            content = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataFileError(f'{path}: not a readable JSON file ({err})') from None
    if not isinstance(content, dict) or 'keypoints' not in content:
        raise DataFileError(f'{path}: a JSON sequence file is an object with a "keypoints" array')
    arrays = [numeric_array(path, content[key], key) if content.get(key) is not None else None
              for key in ('keypoints', 'scores')]
    return tuple(arrays)


def numeric_array(path, value, key):
    """A JSON list as a float array; a ragged or non-numeric list is named."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataFileError(
            f'{path}: "{key}" is not a rectangular array of numbers (ragged or non-numeric)'
        ) from None


def with_person_axis(path, array, key, dims):
    """`array` with a leading person axis: (T, ...) of `dims` axes becomes (1, T, ...)."""
    if array.dtype.kind not in 'fiub':
        raise DataFileError(f'{path}: {key} holds {array.dtype} values, not numbers')
    if array.ndim == dims:
        array = array[None]
    if array.ndim != dims + 1:
        shapes = '(T, V, C) or (M, T, V, C)' if dims == 3 else '(T, V) or (M, T, V)'
        raise DataFileError(f'{path}: {key} has shape {array.shape}; expected {shapes}')
    if 0 in array.shape[:3]:
        raise DataFileError(f'{path}: {key} has shape {array.shape}: no frame, joint or person')
    return array.astype(np.float64, copy=False)


def check_values(path, keypoints, scores):
    """Channels 2 or 3, scores matching the keypoints, every value finite."""
    channels = keypoints.shape[-1]
    if channels not in (2, 3):
        raise DataFileError(
            f'{path}: keypoints have {channels} channels; expected 3 (x, y, z or x, y, score) '
            f'or 2 (x, y)'
        )
    if scores is not None and channels != 2:
        raise DataFileError(
            f'{path}: "scores" given with {channels}-channel keypoints; scores go with '
            f'2-channel (x, y) keypoints'
        )
    if scores is not None and scores.shape != keypoints.shape[:3]:
        raise DataFileError(
            f'{path}: scores have shape {scores.shape}, keypoints {keypoints.shape}: '
            f'expected scores of shape {keypoints.shape[:3]}'
        )
    for key, array in (('keypoints', keypoints), ('scores', scores)):
        if array is not None and not np.isfinite(array).all():
            raise DataFileError(f'{path}: {key} hold NaN or Inf')


def with_scores(path, keypoints, scores):
    """(M, T, V, 3): 2-channel keypoints get their scores as the third channel (1 for every
    keypoint that is not (0, 0) when the file gives none); keypoints with score 0 become (0, 0)."""
    if keypoints.shape[-1] == 3:
        return keypoints
    if scores is None:
        scores = np.any(keypoints != 0, axis=-1).astype(np.float64)
    if (scores < 0).any():
        raise DataFileError(f'{path}: scores hold negative values')
    keypoints = np.where(scores[..., None] > 0, keypoints, 0.0)
    return np.concatenate([keypoints, scores[..., None]], axis=-1)
