"""Data pipeline benchmark: our lazily read splits against a reference-style feeder that holds a
padded split in RAM.

    python -m tools.benchmark_data                         # splits of 2,000 and 20,000 synthetic
    samples
    python -m tools.benchmark_data --sizes 500 --repeats 3  # quicker

For each size it writes a synthetic NTU-shaped split (2 persons, 25 joints, 32-300 frames) twice:
our HDF5 format and the reference's padded .npz (300 frames). It prints
  * memory: resident-set growth of a fresh process that builds the feeder and draws --draws random
    training samples, for our feeder (HDF5, and the .npz memory-mapped) and for the baseline
    (np.load of the whole split, as CTR-GCN's feeder does); "anon" is the part not backed by a file;
  * throughput (one thread, samples/s, median of --repeats timed rounds after a warm-up, ours and
    baseline interleaved; the ratio paired round by round, with its quartiles): the training
    transforms alone (valid-frame crop + resize to 64 frames, random rotation) on samples already in
    memory, and the whole __getitem__ including the read;
  * our DataLoader throughput with 0 and --workers workers (batches of 64).
Figures, not pass/fail: the machine is shared and noisy.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from data.npz import write_reference_npz
from data.storage import SplitWriter
from feeders import build_feeder
from feeders.transforms import crop_resize, random_rotation, valid_frame_count
from tools.timing import format_ratio, interleaved_rounds, loader_rate, medians

PADDED_FRAMES = 300
WINDOW = 64


def training_feeder(data_path):
    """Our feeder with the reference's training transforms (crop [0.5, 1], resize, rotation)."""
    return build_feeder(
        'skeleton', data_path=data_path, split='train', window_size=WINDOW, p_interval=[0.5, 1],
        random_rot=True,
    )


# ----------------------------------------------------------------------------------------- the data


def write_synthetic_split(folder, size, seed=0):
    """`size` random-walk sequences of 32-300 frames in our format (train.h5) and the padded
    reference layout (train.npz); a third of the samples have one person."""
    rng = np.random.default_rng(seed)
    h5_path = os.path.join(folder, 'train.h5')
    writer = SplitWriter(h5_path, (2, 25, 3))
    for i in range(size):
        frames = int(rng.integers(32, PADDED_FRAMES + 1))
        steps = rng.standard_normal((frames, 2, 25, 3), dtype=np.float32) * 0.01
        sequence = np.cumsum(steps, axis=0) + 0.5
        if i % 3 == 0:
            sequence[:, 1] = 0
        writer.add(sequence)
    writer.close(
        range(size),
        rng.integers(0, 60, size),
        [f'sample{i}' for i in range(size)],
        dataset='synthetic',
        layout='ntu25',
        num_class=60,
        class_names=[str(c) for c in range(60)],
    )
    write_reference_npz(
        os.path.join(folder, 'train.npz'),
        {'train': (h5_path, None)},
        [str(c) for c in range(60)],
        PADDED_FRAMES,
    )
    return folder


# ------------------------------------------------------------------------------ the baseline feeder


def reference_rotation_matrices(angles, frames):
    """One R = Rz·Ry·Rx per frame, built with tensor ops frame by frame as the reference does."""
    angles = torch.stack([angles] * frames)  # (T, 3)
    zeros, ones = torch.zeros(frames, 1), torch.ones(frames, 1)
    cos, sin = angles.cos(), angles.sin()
    rx = torch.cat(
        [ones, zeros, zeros, zeros, cos[:, 0:1], sin[:, 0:1], zeros, -sin[:, 0:1], cos[:, 0:1]], 1
    )
    ry = torch.cat(
        [cos[:, 1:2], zeros, -sin[:, 1:2], zeros, ones, zeros, sin[:, 1:2], zeros, cos[:, 1:2]], 1
    )
    rz = torch.cat(
        [cos[:, 2:3], sin[:, 2:3], zeros, -sin[:, 2:3], cos[:, 2:3], zeros, zeros, zeros, ones], 1
    )
    return rz.view(-1, 3, 3) @ ry.view(-1, 3, 3) @ rx.view(-1, 3, 3)


def reference_crop_resize(data, valid, p_interval, window):
    """The reference's valid_crop_resize: random crop, then a 2-D bilinear resize of the (C·V·M,
    L) view."""
    c, _, v, m = data.shape
    # rand(1) there: fails on NumPy 2.4
    p = np.random.rand() * (p_interval[1] - p_interval[0]) + p_interval[0]
    length = np.minimum(np.maximum(int(np.floor(valid * p)), 64), valid)
    start = np.random.randint(0, valid - length + 1)
    data = torch.tensor(data[:, start : start + length], dtype=torch.float)
    data = data.permute(0, 2, 3, 1).contiguous().view(c * v * m, length)[None, None]
    data = F.interpolate(
        data, size=(c * v * m, window), mode='bilinear', align_corners=False
    ).squeeze()
    return data.contiguous().view(c, v, m, window).permute(0, 3, 1, 2).contiguous().numpy()


def reference_rotation(data, theta=0.3):
    tensor = torch.from_numpy(data)
    c, t, v, m = tensor.shape
    tensor = tensor.permute(1, 0, 2, 3).contiguous().view(t, c, v * m)
    rot = reference_rotation_matrices(torch.zeros(3).uniform_(-theta, theta), t)
    return torch.matmul(rot, tensor).view(t, c, v, m).permute(1, 0, 2, 3).contiguous()


class BaselineFeeder:
    """A whole padded split loaded into RAM and reshaped to (N, C, T, V, M), as CTR-GCN's NTU feeder
    does."""

    def __init__(self, npz_path):
        with np.load(npz_path) as archive:
            x = archive['x_train']
            self.labels = np.where(archive['y_train'] > 0)[1]
        n, t, _ = x.shape
        self.data = x.reshape((n, t, 2, 25, 3)).transpose(0, 4, 1, 3, 2)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        data = np.array(self.data[index])
        valid = np.sum(data.sum(0).sum(-1).sum(-1) != 0)
        data = reference_crop_resize(data, valid, [0.5, 1], WINDOW)
        return reference_rotation(data), self.labels[index], index


# ------------------------------------------------------------------------------------------- memory


def memory_kib():
    with open('/proc/self/status') as f:
        fields = dict(line.split(':', 1) for line in f)
    return {k: int(fields[k].split()[0]) for k in ('VmRSS', 'VmHWM', 'RssAnon')}


def measure_memory(kind, folder, draws):
    """Run in a fresh process: build one feeder, draw random training samples, report the growth in
    MiB."""
    before = memory_kib()
    if kind == 'baseline':
        feeder = BaselineFeeder(os.path.join(folder, 'train.npz'))
    else:
        path = folder if kind == 'ours-h5' else os.path.join(folder, 'train.npz')
        feeder = training_feeder(path)
    for index in np.random.default_rng(0).integers(0, len(feeder), draws):
        feeder[int(index)]
    after = memory_kib()
    print(
        json.dumps(
            {
                'peak': (after['VmHWM'] - before['VmRSS']) / 1024,
                'anon': (after['RssAnon'] - before['RssAnon']) / 1024,
            }
        )
    )


def memory_in_fresh_process(kind, folder, draws):
    out = subprocess.run(
        [
            sys.executable,
            '-m',
            'tools.benchmark_data',
            '--measure-memory',
            kind,
            folder,
            '--draws',
            str(draws),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------- throughput


def throughput(folder, count, repeats):
    ours = training_feeder(folder)
    baseline = BaselineFeeder(os.path.join(folder, 'train.npz'))
    n = len(ours)
    # (C, T, V, M), unpadded
    in_memory = [ours.frames(i) for i in range(min(n, 256))]
    padded = [np.array(baseline.data[i]) for i in range(min(n, 256))]  # (C, 300, V, M)
    rng = np.random.default_rng(0)

    def our_transforms(i):
        data = in_memory[i % len(in_memory)]
        random_rotation(crop_resize(data, valid_frame_count(data), [0.5, 1], WINDOW, rng), rng)

    def baseline_transforms(i):
        data = padded[i % len(padded)]
        valid = np.sum(data.sum(0).sum(-1).sum(-1) != 0)
        reference_rotation(reference_crop_resize(data, valid, [0.5, 1], WINDOW))

    warm_up = max(1, count // 10)
    transforms = interleaved_rounds(
        {'ours': our_transforms, 'baseline': baseline_transforms},
        count,
        repeats,
        warm_up_calls=warm_up,
    )
    getitem = interleaved_rounds(
        {'ours': lambda i: ours[(i * 7919) % n], 'baseline': lambda i: baseline[(i * 7919) % n]},
        count,
        repeats,
        warm_up_calls=warm_up,
    )
    return transforms, getitem


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--sizes', type=int, nargs='+', default=[2000, 20000])
    parser.add_argument(
        '--draws', type=int, default=2000, help='random samples drawn in the memory runs'
    )
    parser.add_argument('--count', type=int, default=1000, help='samples per timed round')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument(
        '--measure-memory', nargs=2, metavar=('KIND', 'FOLDER'), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.measure_memory:
        return measure_memory(*args.measure_memory, args.draws)
    print(
        f'torch {torch.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs; '
        'one thread for throughput'
    )
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            write_synthetic_split(folder, size)
            disk = {
                name: os.path.getsize(os.path.join(folder, name)) / 2**20
                for name in ('train.h5', 'train.npz')
            }
            print(
                f'\n{size} samples (written in {time.perf_counter() - start:.0f} s): '
                f'train.h5 {disk["train.h5"]:.0f} MiB, '
                f'padded train.npz {disk["train.npz"]:.0f} MiB'
            )
            for kind in ('ours-h5', 'ours-npz-mmap', 'baseline'):
                grown = memory_in_fresh_process(kind, folder, args.draws)
                print(
                    f'  memory after {args.draws} draws, {kind:14s}: '
                    f'+{grown["peak"]:7.1f} MiB peak resident, '
                    f'+{grown["anon"]:7.1f} MiB anon'
                )
            transforms, getitem = throughput(folder, args.count, args.repeats)
            for label, rounds in (('transforms only', transforms), ('read + transforms', getitem)):
                rates = medians(rounds)
                print(
                    f'  {label:18s} ours {rates["ours"]:7.0f} samples/s, '
                    f'baseline {rates["baseline"]:7.0f} (medians), '
                    f'ratio {format_ratio("speed-up", rounds["ours"], rounds["baseline"])}'
                )
            feeder = training_feeder(folder)
            loaders = {w: loader_rate(feeder, w) for w in (0, args.workers)}
            print(
                '  our DataLoader (batch 64): '
                + ', '.join(f'{w} workers {r:.0f} samples/s' for w, r in loaders.items())
            )


if __name__ == '__main__':
    main()
