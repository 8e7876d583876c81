"""The prepared format: one HDF5 file per split, sequences stored back to back without padding.

Datasets in the file:
  joints   float32 (total_frames, M, V, C)   every sample's frames, one after the other
  offsets  int64   (N + 1,)                  sample i is joints[offsets[i]:offsets[i + 1]]
  labels   int64   (N,)                      0-based class ids
  names    str     (N,)                      sample names (e.g. S001C001P001R001A001)
Attributes: dataset, benchmark, split, layout, num_class, class_names, format_version.
"""
import os

import h5py
import numpy as np

from torchlight.registry import ConfigError

FORMAT_VERSION = 1
REQUIRED = ('joints', 'offsets', 'labels', 'names')


def write_split(path, sequences, labels, names, **attrs):
    """Write sequences (each (T, M, V, C)) atomically: a partial file never takes the final name."""
    lengths = [len(s) for s in sequences]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tmp = f'{path}.tmp{os.getpid()}'
    with h5py.File(tmp, 'w') as f:
        f.create_dataset('joints', data=np.concatenate(sequences).astype(np.float32), chunks=True)
        f.create_dataset('offsets', data=offsets)
        f.create_dataset('labels', data=np.asarray(labels, dtype=np.int64))
        f.create_dataset('names', data=np.asarray(names, dtype=object), dtype=h5py.string_dtype())
        f.attrs['format_version'] = FORMAT_VERSION
        for key, value in attrs.items():
            f.attrs[key] = value
    os.replace(tmp, path)


def read_index(path):
    """Labels, names, offsets and attributes of a prepared split (the joints stay on disk)."""
    if not os.path.isfile(path):
        raise ConfigError(f'data file not found: {path}')
    try:
        with h5py.File(path, 'r') as f:
            missing = [k for k in REQUIRED if k not in f]
            if missing:
                raise ConfigError(f'{path} is not a prepared split: it lacks {", ".join(missing)}')
            return {
                'labels': f['labels'][:],
                'names': [n.decode() if isinstance(n, bytes) else n for n in f['names'][:]],
                'offsets': f['offsets'][:],
                'attrs': {k: _plain(v) for k, v in f.attrs.items()},
            }
    except OSError as err:
        raise ConfigError(f'cannot read {path} as HDF5: {err}') from None


def _plain(value):
    """An HDF5 attribute as plain Python (str, int, float or a list of them)."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode()
    return value.item() if isinstance(value, np.generic) else value


class SequenceReader:
    """Reads one sample's frames on demand; each process (DataLoader worker) opens its own handle."""

    def __init__(self, path, offsets):
        self.path = path
        self.offsets = offsets
        self._file = None
        self._pid = None

    def __getitem__(self, index):
        if self._pid != os.getpid():
            self._file = h5py.File(self.path, 'r')
            self._pid = os.getpid()
        start, end = self.offsets[index], self.offsets[index + 1]
        return self._file['joints'][start:end]      # (T, M, V, C)

    def __getstate__(self):
        return {**self.__dict__, '_file': None, '_pid': None}
