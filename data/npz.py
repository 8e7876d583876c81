"""The reference codebases' prepared layout, e.g. `NTU60_CS.npz`: read lazily, and written by
streaming.

One .npz per benchmark holding `x_train` (N, T_max, 150) float32 (frames zero-padded to the
longest sequence; 150 = 2 persons × 25 joints × xyz), one-hot `y_train` (N, num_class), `x_test`,
`y_test`. Files we
  write also
hold `names_train`, `names_test` and `class_names` (loaders that do not know them ignore them).

Reading memory-maps the arrays inside the (uncompressed) zip archive, so a split is never loaded
into RAM; each process (DataLoader worker) maps its own view.
"""

import os
import struct
import zipfile

import h5py
import numpy as np

from data import ntu, pkummd
from data.storage import PerProcessSource, read_index
from torchlight.registry import ConfigError

LOCAL_HEADER = 30  # bytes of a zip local file header before the file name and extra field
PERSONS, JOINTS, AXES = 2, 25, 3


def member_layout(path, name):
    """(offset, shape, dtype) of the .npy member `name` stored uncompressed in the zip archive
    `path`."""
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo(f'{name}.npy')
        except KeyError:
            raise ConfigError(
                f'{path} has no {name} array (it holds {", ".join(archive.namelist())})'
            ) from None
        if info.compress_type != zipfile.ZIP_STORED:
            raise ConfigError(
                f'{path} is compressed (np.savez_compressed); it cannot be read lazily: '
                f'rewrite it with np.savez'
            )
    with open(path, 'rb') as f:
        f.seek(info.header_offset)
        name_length, extra_length = struct.unpack('<HH', f.read(LOCAL_HEADER)[26:30])
        f.seek(info.header_offset + LOCAL_HEADER + name_length + extra_length)
        version = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran_order, dtype = read_header(f)
        if fortran_order:
            raise ConfigError(f'{path}: {name} is stored in Fortran order')
        return f.tell(), shape, dtype


def load_member(path, name):
    offset, shape, dtype = member_layout(path, name)
    return np.memmap(path, dtype=dtype, mode='r', offset=offset, shape=shape)


class NpzSequences(PerProcessSource):
    """Sample i of a padded (N, T_max, 150) array as (T_max, 2, 25, 3), memory-mapped."""

    def __init__(self, path, key):
        self.path = path
        self.key = key

    def open(self):
        return load_member(self.path, self.key)

    def __getitem__(self, index):
        return np.asarray(self.source()[index]).reshape(-1, PERSONS, JOINTS, AXES)


def read_npz_split(path, split):
    """Labels, names, attributes and a frame reader of one split of a reference-layout .npz."""
    if not os.path.isfile(path):
        raise ConfigError(f'data file not found: {path}')
    if not zipfile.is_zipfile(path):
        raise ConfigError(f'{path} is not an .npz archive')
    _, shape, _ = member_layout(path, f'x_{split}')
    if len(shape) != 3 or shape[2] != PERSONS * JOINTS * AXES:
        raise ConfigError(
            f'{path}: x_{split} has shape {shape}, expected (N, T, 150) = 2 persons x 25 joints x 3'
        )
    one_hot = load_member(path, f'y_{split}')
    if one_hot.shape[0] != shape[0]:
        raise ConfigError(
            f'{path}: x_{split} holds {shape[0]} samples but y_{split} {one_hot.shape[0]}'
        )
    labels = np.argmax(one_hot, axis=1).astype(np.int64)
    with np.load(path) as archive:
        names = (
            [str(n) for n in archive[f'names_{split}']]
            if f'names_{split}' in archive.files
            else [f'{split}_{i}' for i in range(shape[0])]
        )  # the reference feeder's names
        class_names = (
            [str(n) for n in archive['class_names']] if 'class_names' in archive.files else None
        )
    dataset = os.path.splitext(os.path.basename(path))[0]
    attrs = {
        'dataset': dataset,
        'split': split,
        'layout': 'ntu25',
        'num_class': int(one_hot.shape[1]),
        # the reference layout holds prepared NTU RGB+D or PKU-MMD samples, centred as prepared
        'centred': pkummd.CENTRING if dataset.upper().startswith('PKUMMD') else ntu.CENTRING,
    }
    if class_names:
        attrs['class_names'] = class_names
    return {'labels': labels, 'names': names, 'attrs': attrs}, NpzSequences(path, f'x_{split}')


# ------------------------------------------------------------------------------------------ writing


def write_member(archive, name, shape, dtype, rows):
    """Stream an .npy member from an iterable of rows (each of shape `shape[1:]`)."""
    header = {
        'descr': np.lib.format.dtype_to_descr(np.dtype(dtype)),
        'fortran_order': False,
        'shape': shape,
    }
    with archive.open(f'{name}.npy', 'w', force_zip64=True) as f:
        np.lib.format.write_array_header_2_0(f, header)
        for row in rows:
            f.write(np.ascontiguousarray(row, dtype=dtype).tobytes())


def padded_rows(reader, starts, lengths, frames):
    """Each sample's (T, M, V, C) frames as a (frames, M·V·C) row, zero-padded."""
    for start, length in zip(starts, lengths):
        row = np.zeros((frames, PERSONS * JOINTS * AXES), dtype=np.float32)
        row[:length] = reader[start : start + length].reshape(length, -1)
        yield row


def one_hot_rows(labels, num_class):
    for label in labels:
        row = np.zeros(num_class)
        row[label] = 1
        yield row


def write_reference_npz(path, splits, class_names, frames):
    """`splits`: {'train': (prepared .h5 path, benchmark or None for a split file), 'test': ...}
    → the reference layout at `path`, padded to `frames`, written to a temporary name and renamed
    when complete."""
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        with zipfile.ZipFile(tmp, 'w', compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for split, (h5_path, benchmark) in splits.items():
                index = read_index(h5_path, benchmark, split if benchmark else None)
                n = len(index['labels'])
                with h5py.File(h5_path, 'r') as f:
                    if f['joints'].shape[1:] != (PERSONS, JOINTS, AXES):
                        raise ConfigError(
                            f'{h5_path}: samples of shape {f["joints"].shape[1:]} do not fit the '
                            f'reference layout (2 persons x 25 joints x 3)'
                        )
                    write_member(
                        archive,
                        f'x_{split}',
                        (n, frames, PERSONS * JOINTS * AXES),
                        np.float32,
                        padded_rows(f['joints'], index['start'], index['length'], frames),
                    )
                write_member(
                    archive,
                    f'y_{split}',
                    (n, len(class_names)),
                    np.float64,
                    one_hot_rows(index['labels'], len(class_names)),
                )
                names = np.asarray(index['names'], dtype=str)
                write_member(archive, f'names_{split}', names.shape, names.dtype, names)
            class_array = np.asarray(class_names, dtype=str)
            write_member(archive, 'class_names', class_array.shape, class_array.dtype, class_array)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
