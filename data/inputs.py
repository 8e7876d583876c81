"""One sequence to predict on, read from a file of any kind the framework knows, as frames
(T, M, V, C) float32:

- `.skeleton`: an NTU RGB+D file, denoised, its actors chosen and the whole centred exactly as
  `python -m data.prepare ntu60|ntu120` stores a sample (data/ntu.py prepare_sequence);
- `.json` holding "skeletons": an NW-UCLA file, as stored by `python -m data.prepare ucla`;
- `.json` holding "keypoints", or `.npy`: a custom sequence file (data/custom.py), as stored by
  `python -m data.prepare custom`.

Person slots are left as the file gives them (M >= 1); the caller fits them to its model.
`read_sequence` also says what the channels hold where the file tells (3D joints or 2D keypoints)
and gives notes on what it could not check.
"""

import json
import os
from typing import NamedTuple, Optional

import numpy as np

from data import DataFileError, custom, ntu, read_text, ucla
from data.storage import XY_SCORE, XYZ
from torchlight.registry import ConfigError

KINDS = '.skeleton (NTU RGB+D), .json (NW-UCLA or custom keypoints) or .npy (custom keypoints)'


class Sequence(NamedTuple):
    """A sequence file as read: its frames and what the file tells about them."""

    frames: np.ndarray  # (T, M, V, C) float32
    channels: Optional[str]  # XYZ or XY_SCORE (data/storage.py); None where the file cannot say
    notes: tuple = ()  # what the reader could not check, for the user to know


def read_input(path):
    """(T, M, V, C) float32 frames of the sequence in `path`; ConfigError naming the file and
    the problem."""
    return read_sequence(path).frames


def read_sequence(path):
    """The Sequence in `path`; ConfigError naming the file and the problem."""
    if os.path.isdir(path):
        raise ConfigError(f'input {path} is a folder; give the sequence files in it')
    if not os.path.isfile(path):
        raise ConfigError(f'input not found: {path}')
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == '.skeleton':
            return Sequence(ntu.prepare_sequence(path), XYZ)
        content = read_json_object(path) if suffix == '.json' else None
        if isinstance(content, dict) and 'skeletons' in content:
            return Sequence(ucla.load_sequence(path), XYZ)
        if suffix in custom.SUFFIXES:
            return custom_sequence(path, content)
    except DataFileError as err:
        raise ConfigError(str(err)) from None
    raise ConfigError(f'{path}: not an input file predict reads (it reads {KINDS})')


def read_json_object(path):
    """The content of a JSON file; None when it is not readable JSON (the custom reader then names
    the problem)."""
    try:
        return json.loads(read_text(path))
    except (DataFileError, json.JSONDecodeError):
        return None


def custom_sequence(path, content):
    """A custom sequence file (.npy, or .json whose `content` holds "keypoints") as a Sequence:
    2-channel keypoints are 2D (the reader added their scores); 3 channels may be x, y, z or x, y,
    score, which the file does not say."""
    frames = custom.read_sequence_file(path)
    channels = XY_SCORE if stored_channels(path, content) == 2 else None
    return Sequence(frames, channels, persons_first_notes(path, frames))


def stored_channels(path, content):
    """The channel count of a custom file's keypoints as the file stores them (the reader has
    checked them): from a .npy file's header, or the JSON `content`."""
    if content is None:
        return np.load(path, mmap_mode='r').shape[-1]  # reads the header, not the array
    return np.shape(content['keypoints'])[-1]


def persons_first_notes(path, frames):
    """Custom files put persons first, (M, T, V, C); more persons than frames in that reading is
    the mark of an array saved frames first, (T, M, V, C), which reads without an error."""
    count, persons = frames.shape[:2]
    if persons <= count:
        return ()
    return (f'{path} is read as (M, T, V, C) = {persons} persons of {count} frames; if the array '
            f'is frames first (T, M, V, C), save it as array.transpose(1, 0, 2, 3)',)
