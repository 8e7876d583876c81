"""One sequence to predict on, read from a file of any kind the framework knows, as frames
(T, M, V, C) float32:

- `.skeleton`: an NTU RGB+D file, denoised, its actors chosen and the whole centred exactly as
  `python -m data.prepare ntu60|ntu120` stores a sample (data/ntu.py prepare_sequence);
- `.json` holding "skeletons": an NW-UCLA file, as stored by `python -m data.prepare ucla`;
- `.json` holding "keypoints", or `.npy`: a custom sequence file (data/custom.py), as stored by
  `python -m data.prepare custom`.

Person slots are left as the file gives them (M >= 1); the caller fits them to its model.
"""

import json
import os

from data import DataFileError, custom, ntu, read_text, ucla
from torchlight.registry import ConfigError

KINDS = '.skeleton (NTU RGB+D), .json (NW-UCLA or custom keypoints) or .npy (custom keypoints)'


def read_input(path):
    """(T, M, V, C) float32 frames of the sequence in `path`; ConfigError naming the file and
    the problem."""
    if not os.path.isfile(path):
        raise ConfigError(f'input not found: {path}')
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == '.skeleton':
            return ntu.prepare_sequence(path)
        if suffix == '.json' and holds_ucla_skeletons(path):
            return ucla.load_sequence(path)
        if suffix in custom.SUFFIXES:
            return custom.read_sequence_file(path)
    except DataFileError as err:
        raise ConfigError(str(err)) from None
    raise ConfigError(f'{path}: not an input file predict reads (it reads {KINDS})')


def holds_ucla_skeletons(path):
    """Whether a JSON file is an NW-UCLA one (an object with "skeletons"); a file that is not
    readable JSON is left to the custom reader, which names the problem."""
    try:
        content = json.loads(read_text(path))
    except (DataFileError, json.JSONDecodeError):
        return False
    return isinstance(content, dict) and 'skeletons' in content
