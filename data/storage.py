"""The prepared format: HDF5, sequences stored without padding.

Datasets in a file:
  joints   float32 (total_frames, M, V, C)   every sample's frames
  start    int64   (N,)                      sample i is joints[start[i]:start[i] + length[i]]
  length   int64   (N,)
  labels   int64   (N,)                      0-based class ids
  names    str     (N,)                      sample names (e.g. S001C001P001R001A001)
  image_size int64 (N, 2)  optional          (height, width) of the images that 2D keypoints
                                             were detected in; (0, 0) where unknown
Attributes: dataset, layout, num_class, class_names, format_version, and where known `channels`:
XYZ (3D joints) or XY_SCORE (2D keypoints and their scores). The layout is a name in the layout
registry (graph/layouts.py) or the path of a layout file (graph/layout_file.py).

A dataset file (`data/prepare.py`: data/ntu60/ntu60.h5) holds every sample once and, per benchmark
and split, the split's samples in the split's order: `splits/<benchmark>/<split>`, int64 indices
into the per-sample arrays. A split file (`<folder>/<split>.h5`, the demo data and earlier
versions) holds one split, its samples in the split's order, with attributes benchmark and split.
Either way a sample's frames may lie in `joints` in another order (a writer that streams samples
in file order can still give them the reference's order).
"""

import os

import h5py
import numpy as np

from graph import get_layout
from torchlight.registry import ConfigError

FORMAT_VERSION = 1
REQUIRED = ('joints', 'start', 'length', 'labels', 'names')
XYZ, XY_SCORE = 'x, y, z', 'x, y, score'
# Per-sample arrays a file may hold besides the required ones.
OPTIONAL = ('image_size',)


class SplitWriter:
    """Streams samples into a split file: `add` frames as they come, `close` with the final sample
    order.

    Writes to a temporary file renamed on `close`: a failed run never leaves a partial file under
    the final name (and `abort` removes the temporary one).
    """

    def __init__(self, path, sample_shape):
        self.path = path
        self.tmp = f'{path}.tmp{os.getpid()}'
        self.file = h5py.File(self.tmp, 'w')
        # about 64 KiB
        chunk = (max(1, 65536 // (4 * int(np.prod(sample_shape)))), *sample_shape)
        self.joints = self.file.create_dataset(
            'joints',
            shape=(0, *sample_shape),
            maxshape=(None, *sample_shape),
            dtype=np.float32,
            chunks=chunk,
        )
        self.spans = []

    def add(self, frames):
        """Append one sample's frames (T, M, V, C); returns its index in arrival order."""
        start = len(self.joints)
        self.joints.resize(start + len(frames), axis=0)
        self.joints[start:] = frames
        self.spans.append((start, len(frames)))
        return len(self.spans) - 1

    def close(self, order, labels, names, splits=None, per_sample=None, **attrs):
        """`order[i]`: arrival index of the i-th stored sample; labels, names and the `per_sample`
        arrays ({name in OPTIONAL: array (N, ...)}) are in that order. `splits` {benchmark:
        {split: [stored sample indices, in the split's order]}} makes a dataset file."""
        spans = np.asarray(self.spans, dtype=np.int64).reshape(-1, 2)[
            np.asarray(order, dtype=np.int64)
        ]
        self.file.create_dataset('start', data=spans[:, 0])
        self.file.create_dataset('length', data=spans[:, 1])
        self.file.create_dataset('labels', data=np.asarray(labels, dtype=np.int64))
        self.file.create_dataset(
            'names', data=np.asarray(names, dtype=object), dtype=h5py.string_dtype()
        )
        for key, values in (per_sample or {}).items():
            self.file.create_dataset(key, data=np.asarray(values))
        for benchmark, members in (splits or {}).items():
            for split, indices in members.items():
                self.file.create_dataset(f'splits/{benchmark}/{split}',
                                         data=np.asarray(indices, dtype=np.int64))
        self.file.attrs['format_version'] = FORMAT_VERSION
        for key, value in attrs.items():
            self.file.attrs[key] = value
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self):
        self.file.close()
        os.remove(self.tmp)


def write_split(path, sequences, labels, names, per_sample=None, **attrs):
    """Write sequences (each (T, M, V, C)), in this order, atomically."""
    writer = SplitWriter(path, sequences[0].shape[1:])
    for frames in sequences:
        writer.add(np.asarray(frames, dtype=np.float32))
    writer.close(range(len(sequences)), labels, names, per_sample=per_sample, **attrs)


def read_index(path, benchmark=None, split=None):
    """Labels, names, offsets and attributes of a prepared split (the joints stay on disk): the
    whole file of a split file, or split `split` of `benchmark` of a dataset file (every stored
    sample without a split)."""
    if not os.path.isfile(path):
        raise ConfigError(f'data file not found: {path}')
    try:
        with h5py.File(path, 'r') as f:
            missing = [k for k in REQUIRED if k not in f]
            if missing:
                raise ConfigError(f'{path} is not a prepared split: it lacks {", ".join(missing)}')
            index = {
                'labels': f['labels'][:],
                'names': [n.decode() if isinstance(n, bytes) else n for n in f['names'][:]],
                'start': f['start'][:],
                'length': f['length'][:],
                'attrs': {k: _plain(v) for k, v in f.attrs.items()},
                **{key: f[key][:] for key in OPTIONAL if key in f},
            }
            shape = f['joints'].shape
            selects = 'splits' in f and split is not None
            members = split_members(f, path, benchmark, split) if selects else None
    except OSError as err:
        raise ConfigError(f'cannot read {path} as HDF5: {err}') from None
    check_counts(path, index)
    check_layout(path, index, shape)
    if members is not None:
        index = select(index, members, path)
        index['attrs'].update(benchmark=benchmark, split=split)
    elif benchmark not in (None, index['attrs'].get('benchmark', benchmark)):
        raise ConfigError(f"{path} holds benchmark {index['attrs']['benchmark']}, not {benchmark}")
    return index


def split_members(f, path, benchmark, split):
    """The sample indices of `benchmark`/`split` in an open dataset file."""
    benchmarks = sorted(f['splits'])
    if benchmark not in benchmarks:
        given = f'benchmark {benchmark!r}' if benchmark else 'no benchmark'
        raise ConfigError(f'{path} holds the benchmarks {", ".join(benchmarks)}; {given} was '
                          f'named (set the config\'s top-level key benchmark to one of them)')
    if split not in f['splits'][benchmark]:
        raise ConfigError(f'{path}: benchmark {benchmark} has no split {split!r}')
    return f['splits'][benchmark][split][:]


def select(index, members, path):
    """The index restricted to `members` (in their order)."""
    if len(members) and (members.min() < 0 or members.max() >= len(index['labels'])):
        raise ConfigError(f'{path}: a split lists a sample index outside the '
                          f'{len(index["labels"])} stored samples')
    per_sample = ('labels', 'start', 'length', *(key for key in OPTIONAL if key in index))
    return {**{key: index[key][members] for key in per_sample},
            'names': [index['names'][i] for i in members], 'attrs': dict(index['attrs'])}


def check_counts(path, index):
    """Every per-sample array holds one entry per label."""
    count = len(index['labels'])
    others = [
        f'{key} {len(index[key])}'
        for key in ('names', 'start', 'length', *OPTIONAL)
        if key in index and len(index[key]) != count
    ]
    if others:
        raise ConfigError(f'{path}: labels holds {count} samples but {", ".join(others)}')


def check_layout(path, index, shape):
    """The stored frames (T, M, V, C) against the recorded layout, each sample's span against them,
    and the labels against num_class."""
    attrs = index['attrs']
    missing = [key for key in ('layout', 'num_class') if key not in attrs]
    if missing:
        raise ConfigError(f'{path} is not a prepared split: it lacks the attribute {missing[0]}')
    joints = get_layout(attrs['layout']).num_joints
    if len(shape) != 4 or shape[1] < 1 or shape[2] != joints or shape[3] != 3:
        raise ConfigError(
            f'{path}: joints has shape {shape}; the {attrs["layout"]} layout needs '
            f'(frames, persons, {joints} joints, 3 channels)'
        )
    check_spans(path, index, shape[0])
    check_labels(path, index, attrs['num_class'])


def check_spans(path, index, frames):
    ends = index['start'] + index['length']
    outside = np.flatnonzero((index['length'] < 1) | (index['start'] < 0) | (ends > frames))
    if len(outside):
        i = outside[0]
        raise ConfigError(
            f'{path}: sample {index["names"][i]} spans frames {index["start"][i]} to '
            f'{ends[i]}, outside the {frames} stored frames'
        )


def check_labels(path, index, num_class):
    labels = index['labels']
    wrong = np.flatnonzero((labels < 0) | (labels >= num_class))
    if len(wrong):
        i = wrong[0]
        raise ConfigError(
            f'{path}: sample {index["names"][i]} has label {labels[i]}, outside the '
            f'{num_class} classes (0 to {num_class - 1})'
        )


def _plain(value):
    """An HDF5 attribute as plain Python (str, int, float or a list of them)."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode()
    return value.item() if isinstance(value, np.generic) else value


class PerProcessSource:
    """Opens its data (`open`) on first use in each process, so that DataLoader workers never share
    a file handle; pickling (to send it to a worker) drops the handle."""

    _handle = None
    _pid = None

    def source(self):
        if self._pid != os.getpid():
            self._handle = self.open()
            self._pid = os.getpid()
        return self._handle

    def __getstate__(self):
        return {**self.__dict__, '_handle': None, '_pid': None}


class SequenceReader(PerProcessSource):
    """Reads one sample's frames (T, M, V, C) on demand from a prepared split."""

    def __init__(self, path, start, length):
        self.path = path
        self.start = start
        self.length = length

    def open(self):
        return h5py.File(self.path, 'r')['joints']

    def __getitem__(self, index):
        start = self.start[index]
        return self.source()[start : start + self.length[index]]
