"""Dataset preparation (`python -m data.prepare`) and the bundled synthetic demo dataset."""

import numpy as np


class DataFileError(ValueError):
    """A raw data file that cannot be prepared; the message names the file (and line where
    known)."""


def read_text(path):
    """A raw file's text; DataFileError naming the file when it is not text (binary bytes)."""
    try:
        with open(path, 'r', newline=None) as f:  # universal newlines: LF and CRLF alike
            return f.read()
    except UnicodeDecodeError as err:
        byte = err.object[err.start]
        raise DataFileError(
            f'{path}: not a text file (byte 0x{byte:02x} at offset {err.start})'
        ) from None


def keypoints_with_scores(keypoints, scores):
    """(..., 3): 2D keypoints (..., 2) with their detection scores (...) as the third channel; a
    keypoint of score 0 (not detected) becomes (0, 0), so that zeros mark absence."""
    keypoints = np.where(scores[..., None] > 0, keypoints, 0)
    return np.concatenate([keypoints, scores[..., None]], axis=-1)


# The NTU-120 preparation of the references repeats a lone actor in the second person slot; NTU-60's
# and the others leave the slot empty.
REPEATS_LONE_ACTOR = ('ntu120',)


def fit_persons(frames, persons, dataset=None):
    """(T, persons, V, C) float32: the first `persons` persons of `frames` (T, M, V, C), zeros for
    the missing ones (the prepared format has a fixed number of person slots), or a lone actor
    repeated in every slot for a `dataset` in REPEATS_LONE_ACTOR."""
    if frames.shape[1] == 1 and dataset in REPEATS_LONE_ACTOR:
        return np.repeat(frames, persons, axis=1).astype(np.float32, copy=False)
    fitted = np.zeros((frames.shape[0], persons, *frames.shape[2:]), dtype=np.float32)
    kept = frames[:, :persons]
    fitted[:, : kept.shape[1]] = kept
    return fitted
