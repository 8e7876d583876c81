"""Your own skeleton sequences: one file per sequence, read into the prepared frames' shape.

A sequence file is
  - `.npy`: keypoints of shape (T, V, C) for one person or (M, T, V, C) for M persons;
  - `.json`: an object with `keypoints`, an array of one of those shapes, and optionally `scores`,
    an array of the same shape without C (one confidence per keypoint, for 2D input).
C is 3 (x, y, z, or 2D x, y, score: the dataset's feeder says which) or 2 (2D without scores: every
keypoint that is not (0, 0) gets score 1, every (0, 0) keypoint score 0, that is, "not detected").
`read_sequence_file` returns float32 (T, M, V, 3), the prepared format's order (data/storage.py).
"""

import csv
import json
import os
from typing import NamedTuple, Optional

import numpy as np

from data import DataFileError, fit_persons, keypoints_with_scores
from torchlight.registry import ConfigError

SUFFIXES = ('.npy', '.json')


def is_sequence_file(name):
    """Whether a file name ends with a sequence file's suffix, in any case (`a.NPY` too)."""
    return name.lower().endswith(SUFFIXES)


def sample_name(name):
    """A listed sequence's sample name: the name without a sequence file's suffix (`a.npy` and `a`
    name one sample; `subj0.take1` keeps its dot)."""
    return os.path.splitext(name)[0] if is_sequence_file(name) else name


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


NPY_MAGIC = b'\x93NUMPY'  # the first bytes of every .npy file (NumPy's format)


def read_npy(path):
    """(keypoints, None) of a .npy file; pickled object arrays are refused (they could run code).

    A file without NumPy's header is refused before NumPy reads it: NumPy would take it for a
    pickle, which is never loaded, and advise loading it anyway."""
    with open(path, 'rb') as f:
        if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
            raise DataFileError(f'{path}: not a NumPy array file (it lacks the header that '
                                f'numpy.save writes)')
    try:
        return np.load(path, allow_pickle=False), None
    except (OSError, ValueError, EOFError) as err:
        raise DataFileError(f'{path}: not a readable .npy array ({err})') from None


def read_json(path):
    """(keypoints, scores or None) of a .json file."""
    try:
        with open(path, encoding='utf-8-sig') as f:
            content = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataFileError(f'{path}: not a readable JSON file ({err})') from None
    if not isinstance(content, dict) or content.get('keypoints') is None:
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
    return keypoints_with_scores(keypoints, scores)


# --------------------------------------------------------------------- a folder of sequence files
# DIR holds the sequence files, `classes.txt` (one class name per line, in class-id order) and
# `labels.csv`: one row per sequence, `name,label[,split]` (an optional header row `name,label`),
# the name a file's name with or without its suffix, the label a class name or a 0-based id,
# the split `train` or `test`.

SPLITS = ('train', 'test')


def read_classes(path):
    """Class names, one per non-empty line of classes.txt."""
    try:
        with open(path, encoding='utf-8-sig') as f:
            lines = [line.strip() for line in f]
    except FileNotFoundError:
        raise ConfigError(f'{path} not found: list the class names there, one per line') from None
    names = [line for line in lines if line]
    repeated = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if repeated or not names:
        raise ConfigError(f'{path}: class {repeated!r} is listed twice' if repeated
                          else f'{path} lists no class')
    return names


class LabelRow(NamedTuple):
    name: str
    label: int
    split: Optional[str]  # None: left to the seeded stratified split


def read_labels(path, classes):
    """The rows of labels.csv, each checked; ConfigError naming the line and the problem."""
    try:
        with open(path, newline='', encoding='utf-8-sig') as f:
            lines = list(csv.reader(f))
    except FileNotFoundError:
        raise ConfigError(
            f'{path} not found: give one row name,label[,split] per sequence'
        ) from None
    numbered = [(i, [cell.strip() for cell in row]) for i, row in enumerate(lines, 1) if row]
    if numbered and numbered[0][1][:2] == ['name', 'label']:
        numbered = numbered[1:]
    if not numbered:
        raise ConfigError(f'{path} lists no sequence')
    rows = [label_row(path, line, cells, classes) for line, cells in numbered]
    widths = {len(cells) for _, cells in numbered}
    if len(widths) > 1:
        raise ConfigError(f'{path}: some rows give a split and others do not: give every row '
                          f'a split, or none')
    seen = set()
    for (line, _), row in zip(numbered, rows):
        sample = sample_name(row.name)
        if sample in seen:
            raise ConfigError(f'{path}, line {line}: sequence {row.name!r} is listed twice')
        seen.add(sample)
    return rows


def label_row(path, line, cells, classes):
    where = f'{path}, line {line}'
    if len(cells) not in (2, 3) or not cells[0]:
        raise ConfigError(f'{where}: expected name,label[,split], not {",".join(cells)!r}')
    name, label = cells[0], cells[1]
    if label in classes:
        label_id = classes.index(label)
    elif label.isdecimal() and int(label) < len(classes):
        label_id = int(label)
    else:
        raise ConfigError(f'{where}: label {label!r} is neither a class of classes.txt nor a '
                          f'class id (0 to {len(classes) - 1})')
    split = cells[2] if len(cells) == 3 else None
    if split is not None and split not in SPLITS:
        raise ConfigError(f'{where}: split {split!r} is neither train nor test')
    return LabelRow(name, label_id, split)


def sequence_file(raw, name):
    """The file of sequence `name` in `raw` (its name with or without suffix); DataFileError when
    there is none, or two."""
    if is_sequence_file(name):
        tries = [[name]]
    else:
        # upper-case suffixes only when no lower-case one is found: a case-insensitive file
        # system finds both for one file
        tries = [[name + case(suffix) for suffix in SUFFIXES] for case in (str.lower, str.upper)]
    for names in tries:
        found = [os.path.join(raw, n) for n in names if os.path.isfile(os.path.join(raw, n))]
        if found:
            break
    if len(found) != 1:
        problem = 'no file' if not found else 'two files'
        raise DataFileError(f'{os.path.join(raw, name)}: listed in labels.csv, {problem} of that '
                            f'name ({" or ".join(SUFFIXES)})')
    return found[0]


def stratified_split(labels, test_ratio, seed):
    """{'train': positions, 'test': positions}: of each class's n samples, n · test_ratio rounded
    half up, drawn with `seed`, go to test, at most n − 1 (each class keeps a training sample);
    each split in the order of `labels`."""
    rng = np.random.default_rng(seed)
    test = set()
    for label in sorted(set(labels)):
        members = [i for i, other in enumerate(labels) if other == label]
        count = min(int(len(members) * test_ratio + 0.5), len(members) - 1)
        test.update(int(i) for i in rng.permutation(members)[:count])
    return {'train': [i for i in range(len(labels)) if i not in test], 'test': sorted(test)}


def read_custom_sequence(source):
    """One listed sequence as [(name, label, frames (T, persons, V, 3))], [] (data/recipes.py's
    reader protocol); `source` is (file, name, label, joints of the layout, person slots)."""
    path, name, label, joints, persons = source
    frames = read_sequence_file(path)
    if frames.shape[2] != joints:
        raise DataFileError(f'{path}: {frames.shape[2]} joints per frame; the layout has {joints}')
    if not frames.any():
        raise DataFileError(f'{path}: every keypoint is zero')
    return [(name, label, fit_persons(frames, persons))], []
