"""pyskl's annotation files (`ntu60_3danno.pkl`, `ntu60_hrnet.pkl`, ...): their benchmarks, layout
and records.

A file is a pickle {'split': {split name: [frame_dir, ...]}, 'annotations': [record, ...]}, read
through the restricted unpickler (torchlight/scores.py: plain containers and numpy arrays only).
A record holds `frame_dir` (its name), `label` (0-based), `total_frames`, `keypoint` (M, T, V, C):
C = 3 for 3D joints (float16 in pyskl's NTU files), C = 2 for 2D keypoints, which come with
`keypoint_score` (M, T, V) and `img_shape` (height, width).
"""

import re
from collections import Counter

import numpy as np

from data import DataFileError, fit_persons, keypoints_with_scores, ntu
from graph import get_layout
from torchlight.registry import ConfigError
from torchlight.scores import safe_load_pickle

# Split names that pair into a benchmark: `xsub_train` / `xsub_val` (or `_test`) → `xsub`;
# `train1` / `test1` (UCF101, HMDB51) → `split1`.
NAMED_SPLIT = re.compile(r'(?P<benchmark>.+)_(?P<split>train|val|test)$')
NUMBERED_SPLIT = re.compile(r'(?P<split>train|test)(?P<number>\d+)$')
# (joints, channels) → the layout a file of that shape is in, unless --layout says otherwise.
LAYOUT_OF_SHAPE = {(25, 3): 'ntu25', (17, 2): 'coco17', (33, 2): 'mediapipe33', (20, 3): 'ucla20'}


def read_annotation_file(path):
    """(split lists, records) of a pyskl annotation file; ConfigError naming the problem."""
    content = safe_load_pickle(path)
    if not isinstance(content, dict) or not {'split', 'annotations'} <= set(content):
        raise ConfigError(f"{path} is not a pyskl annotation file (a dict with 'split' and "
                          f"'annotations')")
    splits, records = content['split'], content['annotations']
    if not isinstance(splits, dict) or not isinstance(records, list):
        raise ConfigError(f"{path}: 'split' must be a dict of lists and 'annotations' a list")
    return splits, records


def records_by_name(path, records):
    """({frame_dir: record}, problems): an entry that is not a record with a frame_dir, or a
    second record of a frame_dir, is a problem (the first record is kept)."""
    by_name, problems = {}, []
    for i, record in enumerate(records):
        if not isinstance(record, dict) or 'frame_dir' not in record:
            problems.append(f'{path}: annotation {i} is not a record with a frame_dir')
        elif str(record['frame_dir']) in by_name:
            problems.append(f"{path}: {record['frame_dir']}: a second record of that frame_dir "
                            f"(the first is kept)")
        else:
            by_name[str(record['frame_dir'])] = record
    return by_name, problems


def benchmarks(path, splits):
    """{benchmark: {'train': frame_dirs, 'test': frame_dirs}} of every pair of train and val (or,
    without val, test) splits."""
    found = {}
    for name, members in splits.items():
        named, numbered = NAMED_SPLIT.match(str(name)), NUMBERED_SPLIT.match(str(name))
        if named:
            benchmark, split = named['benchmark'], named['split']
        elif numbered:
            benchmark, split = f"split{numbered['number']}", numbered['split']
        else:
            continue
        found.setdefault(benchmark, {})[split] = list(members)
    paired = {
        benchmark: {'train': parts['train'], 'test': parts.get('val', parts.get('test'))}
        for benchmark, parts in found.items()
        if 'train' in parts and ('val' in parts or 'test' in parts)
    }
    if not paired:
        raise ConfigError(
            f'{path}: no benchmark found: its splits ({", ".join(map(str, splits)) or "none"}) '
            f'hold no pair <b>_train and <b>_val (or _test)'
        )
    return paired


def keypoint_shape(path, records):
    """(V, C) of the first record's keypoint array: the shape every record must have."""
    for record in records:
        keypoint = record.get('keypoint')
        if isinstance(keypoint, np.ndarray) and keypoint.ndim == 4:
            return keypoint.shape[2:]
    raise ConfigError(f'{path}: no record holds a (M, T, V, C) keypoint array')


def infer_layout(path, shape):
    """The layout of keypoints of `shape` (V, C); ConfigError when no layout has that shape."""
    if shape not in LAYOUT_OF_SHAPE:
        known = ', '.join(f'{v} x {c}: {name}' for (v, c), name in LAYOUT_OF_SHAPE.items())
        raise ConfigError(f'{path}: keypoints of {shape[0]} joints x {shape[1]} channels name no '
                          f'layout ({known}); give one with --layout')
    return LAYOUT_OF_SHAPE[shape]


def ntu_labelled(records):
    """Whether the records are labelled as pyskl's NTU files are: every frame_dir an NTU name and,
    for every action, at least one record and at least half of them labelled action id − 1. In
    such a file a record whose label disagrees with its name is a bad record (read_record), not a
    class of its own; a subset of NTU relabelled 0 to k (an action whose records all disagree) is
    numbered instead."""
    if not records or not all(ntu.NAME.match(str(r.get('frame_dir', ''))) for r in records):
        return False
    agree, disagree = Counter(), Counter()  # per action
    for record in records:
        action = ntu_label(record)
        (agree if record.get('label') == action else disagree)[action] += 1
    return all(agree[action] >= max(1, disagree[action]) for action in {*agree, *disagree})


def ntu_label(record):
    """The 0-based class an NTU record's name gives: its action id − 1."""
    return ntu.parse_name(str(record['frame_dir']))['action'] - 1


def class_names(records, ntu_names):
    """`ntu_names` (NTU-120's action names), the first 60 or all 120, for NTU-labelled records (as
    many as their names' largest action id needs); else the labels as numbers, as many as the
    largest label says."""
    if ntu_labelled(records):
        count = max(ntu_label(r) for r in records) + 1
        return list(ntu_names[: 60 if count <= 60 else 120])
    labels = [r['label'] for r in records if isinstance(r.get('label'), (int, np.integer))]
    return [str(i) for i in range(max(labels, default=-1) + 1)]


def read_record(source):
    """One record as [(frame_dir, label, frames (T, M, V, 3), extras)], [] (data/recipes.py's
    reader protocol). `source` is (file, record, layout name, channels, person slots, class
    count, whether the file is NTU-labelled). 2D keypoints get their score as the third channel,
    and (0, 0) where the score is 0; their extras hold the image size (height, width), (0, 0) when
    unknown. NTU 3D joints are centred as the NTU preparation centres them."""
    path, record, layout, channels, persons, num_class, by_ntu_name = source
    where = f"{path}: {record['frame_dir']}"
    keypoint = checked_keypoint(where, record, get_layout(layout).num_joints, channels)
    if channels == 2:
        keypoint = with_scores(where, record, keypoint)
    label = record.get('label')
    is_number = isinstance(label, (int, np.integer))
    if is_number and by_ntu_name and label != ntu_label(record):
        raise DataFileError(f'{where}: label {label} disagrees with the name\'s action id '
                            f'(label {ntu_label(record)}), as the file\'s other labels agree')
    if not is_number or not 0 <= label < num_class:
        ids = f'0 to {num_class - 1}' if num_class else 'the file has no integer label'
        raise DataFileError(f'{where}: label {label!r} is not a class id ({ids})')
    # (M, T, V, C) → (T, M, V, C)
    frames = fit_persons(keypoint.transpose(1, 0, 2, 3), persons)
    if not frames[:, 0].any():
        raise DataFileError(f'{where}: every keypoint of the first person is zero')
    if centring(layout, channels):
        # pyskl's NTU joints are the Kinect's; prepared NTU data is centred (data/ntu.py)
        frames = ntu.translate_present(frames)
    extras = {'image_size': image_size(record)} if channels == 2 else {}
    return [(str(record['frame_dir']), int(label), frames, extras)], []


def centring(layout, channels):
    """How records of this layout and channel count are centred (a prepared file's `centred`):
    NTU's 3D joints as NTU's preparation centres its samples, anything else not ('')."""
    return ntu.CENTRING if layout == 'ntu25' and channels == 3 else ''


def checked_keypoint(where, record, joints, channels):
    """The record's keypoint array as float32 (M, T, V, C), its shape and values checked."""
    keypoint = record.get('keypoint')
    if not isinstance(keypoint, np.ndarray) or keypoint.ndim != 4:
        raise DataFileError(f'{where}: keypoint is not an (M, T, V, C) array')
    m, t, v, c = keypoint.shape
    if (v, c) != (joints, channels):
        raise DataFileError(f'{where}: keypoint has shape {keypoint.shape}; this file\'s layout '
                            f'and first record give {joints} joints x {channels} channels')
    if m == 0 or t == 0:
        raise DataFileError(f'{where}: keypoint has shape {keypoint.shape}: no person or frame')
    if record.get('total_frames', t) != t:
        raise DataFileError(f"{where}: total_frames is {record['total_frames']} but keypoint "
                            f"holds {t} frames")
    keypoint = keypoint.astype(np.float32)
    if not np.isfinite(keypoint).all():
        raise DataFileError(f'{where}: keypoint holds NaN or Inf')
    return keypoint


def with_scores(where, record, keypoint):
    """(M, T, V, 3): 2D keypoints with keypoint_score as the third channel."""
    score = record.get('keypoint_score')
    if not isinstance(score, np.ndarray) or score.shape != keypoint.shape[:3]:
        shape = getattr(score, 'shape', None)
        raise DataFileError(f'{where}: 2D keypoints need keypoint_score of shape '
                            f'{keypoint.shape[:3]}, not {shape}')
    score = score.astype(np.float32)
    if not np.isfinite(score).all() or (score < 0).any():
        raise DataFileError(f'{where}: keypoint_score holds NaN, Inf or negative values')
    return keypoints_with_scores(keypoint, score)


def image_size(record):
    """(height, width) of pyskl's img_shape, also when given as an image array's (height, width,
    channels); (0, 0) when absent or malformed (unknown)."""
    shape = record.get('img_shape')
    try:
        if len(shape) not in (2, 3):
            return (0, 0)
        height, width = (int(side) for side in shape[:2])
    except (TypeError, ValueError):
        return (0, 0)
    return (height, width) if height > 0 and width > 0 else (0, 0)
