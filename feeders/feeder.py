"""The skeleton feeders: a prepared split read lazily (the data source), and each feeder's
transforms (crop, resize, augmentation, normalisation, then the stream), which are built from the
feeder's arguments alone and so run on any (C, T, V, M) array, with or without a data file."""

import inspect
import os
from typing import Annotated, Literal, Optional

import numpy as np
from torch.utils.data import Dataset

from data.npz import read_npz_split
from data.storage import SequenceReader, read_index
from feeders.transforms import (
    crop_resize,
    joint_to_bone,
    min_max_normalise,
    random_move,
    random_rotation,
    random_scale,
    random_shift,
    to_motion,
    ucla_view_transform,
    valid_frame_count,
)
from graph import get_layout
from torchlight.registry import ConfigError
from torchlight.validation import Ascending, Length, Range

# The argument types the registry checks config values against (torchlight.validation).
Split = Literal['train', 'test']
Stream = Literal['joint', 'bone', 'joint_motion', 'bone_motion']
Frames = Annotated[int, Range(ge=1)]
Share = Annotated[float, Range(gt=0, le=1)]
Crop = Annotated[list[Share], Length(1, 2), Ascending()]  # one: centre crop; two: random crop


def open_split(data_path, split, benchmark=None):
    """(path, index, frame reader) of a split: split `split` of `benchmark` in a dataset file
    (`data_path: data/ntu60/ntu60.h5`, as data/prepare.py writes), `<data_path>/<split>.h5` for a
    folder of split files (the demo data), or split `split` of a reference-layout .npz file
    (`data_path: data/ntu/NTU60_CS.npz`)."""
    if data_path.endswith('.npz'):
        return (data_path, *read_npz_split(data_path, split))
    path = data_path if data_path.endswith('.h5') else os.path.join(data_path, f'{split}.h5')
    if not os.path.isfile(path):
        raise ConfigError(f'data file not found: {path}; {prepare_command(path)}')
    index = read_index(path, benchmark, split)
    return path, index, SequenceReader(path, index['start'], index['length'])


def recorded_layout(path, layout):
    """The layout that the prepared data `path` records (a name, or a layout file's path)."""
    try:
        return get_layout(layout)
    except ConfigError as err:
        raise ConfigError(f'{path} was prepared with the layout {layout}: {err}') from None


# What `python -m data.prepare DATASET --raw ...` reads, per dataset it prepares.
RAW_INPUT = {
    'ntu60': 'the folder of .skeleton files',
    'ntu120': 'the folder of .skeleton files',
    'ucla': 'the all_sqe folder',
    'pkummd': 'the folder of skeleton, label and split files',
}


def prepare_command(path):
    """The command that writes the prepared data `path` (data/<dataset>/<dataset>.h5; a pyskl
    file's data is named after the file, a custom dataset's after its folder)."""
    parts = os.path.normpath(path).split(os.sep)
    known = [i for i, part in enumerate(parts) if part in RAW_INPUT]
    if not known:
        name = os.path.splitext(os.path.basename(path))[0]
        return (
            f'write it with python -m data.prepare pyskl --raw {name}.pkl, or custom --raw '
            f'<a folder named {name}> --layout LAYOUT, with --out {os.path.dirname(path) or "."}'
        )
    dataset = parts[known[-1]]
    out = os.path.join(*parts[: known[-1] + 1])
    return (
        f'write it with: python -m data.prepare {dataset} --raw <{RAW_INPUT[dataset]}> --out {out}'
    )


# ----------------------------------------------------------------------------------- transforms


class Transforms:
    """What a feeder does to one sample's frames, knowing nothing of where they come from.

    `__call__(data (C, T, V, M), rng, info)` gives the model's input (float32): first
    `sample_and_augment(data, rng, info)`, which subclasses define (crop, resize, augmentation,
    normalisation; `rng` a numpy Generator, the only source of randomness), then the stream
    (bone, motion) on the skeleton `layout`. `info` says where the sample comes from:
    {'where': 'data/x.h5: sample NAME'} from a prepared split (PreparedSplit.sample_info, which a
    feeder may extend with per-sample facts its transforms need), {'where': FILE} from predict.py.
    """

    def __init__(self, *, layout, stream):
        self.layout, self.stream = layout, stream

    def sample_and_augment(self, data, rng, info):
        raise NotImplementedError

    def bones(self, data):
        """The bone stream of joints `data` (C, T, V, M)."""
        return joint_to_bone(data, self.layout.bone_pairs)

    def motion(self, data):
        """The motion stream of `data` (C, T, V, M)."""
        return to_motion(data)

    def __call__(self, data, rng, info):
        data = self.sample_and_augment(data, rng, info)
        if self.stream.startswith('bone'):
            data = self.bones(data)
        if self.stream.endswith('motion'):
            data = self.motion(data)
        return data.astype(np.float32, copy=False)


class SkeletonTransforms(Transforms):
    """NTU semantics (SkeletonFeeder's arguments)."""

    def __init__(self, *, layout, stream, window_size, p_interval, min_crop, random_rot,
                 random_scale, random_shift, random_move):
        super().__init__(layout=layout, stream=stream)
        self.window_size = window_size
        self.p_interval = list(p_interval)
        self.min_crop = min_crop
        self.random_rot = random_rot
        self.random_scale = random_scale
        self.random_shift = random_shift
        self.random_move = random_move

    def sample_and_augment(self, data, rng, info):
        """Crop the valid frames and resize to the window, then rotate (and ours, if on)."""
        valid = valid_frame_count(data)
        if valid == 0:
            raise ConfigError(f"{info['where']} has no non-zero frame")
        data = crop_resize(
            data, valid, self.p_interval, self.window_size, rng=rng, min_length=self.min_crop
        )
        if self.random_rot:
            data = random_rotation(data, rng)
        if self.random_scale:
            data = random_scale(data, rng, self.random_scale)
        if self.random_shift:
            data = random_shift(data, rng, self.random_shift)
        if self.random_move:
            data = random_move(data, rng)
        return data


class UclaTransforms(Transforms):
    """NW-UCLA semantics (UclaFeeder's arguments)."""

    def __init__(self, *, layout, stream, window_size, random_rot, random_choose):
        super().__init__(layout=layout, stream=stream)
        self.window_size = window_size
        self.random_rot = random_rot
        self.random_choose = random_choose

    def sample_and_augment(self, data, rng, info):
        # centre: joint 1 of frame 0
        data = data - data[:, :1, 1:2]
        if self.random_rot:
            angle_x, angle_y = rng.integers(-60, 61, size=2)
            data = ucla_view_transform(data, angle_x, angle_y, rng.uniform(0.5, 1.5))
        data = min_max_normalise(data)
        length = data.shape[1]
        if self.random_choose:
            frames = np.sort(
                rng.choice(np.tile(np.arange(length), 100), self.window_size, replace=False)
            )
        else:
            frames = np.linspace(0, length - 1, self.window_size).astype(int)
        return data[:, frames]


# -------------------------------------------------------------------------------------- feeders


class PreparedSplit(Dataset):
    """One split of a prepared dataset: its index (labels, names, attributes) in memory, the frames
    read on demand and passed through `self.transforms` (an instance of the feeder's
    `transforms_class`, built from the arguments that class takes).

    A feeder is a subclass naming its `transforms_class` and declaring, in its `__init__`
    signature, the config arguments of both its data source and its transforms (the registry
    checks config values against those annotations); `transforms_from_args` builds the same
    transforms from the same arguments without opening the data (predict.py).

    Augmentation randomness is a function of (seed, epoch, sample index): the same on every run,
    whatever the number of DataLoader workers, and different at each epoch (`set_epoch`).
    `repeat` passes over the samples make one epoch.
    """

    transforms_class = Transforms

    def __init__(self, data_path, split, *, benchmark, debug, repeat=1, **transform_args):
        self.path, self.index, self.reader = open_split(data_path, split, benchmark)
        self.labels = self.index['labels']
        self.names = self.index['names']
        self.meta = self.index['attrs']
        self.layout = recorded_layout(self.path, self.meta['layout'])
        if debug:
            self.labels, self.names = self.labels[:100], self.names[:100]
        self.transforms = self.transforms_class(layout=self.layout, **transform_args)
        self.repeat = repeat
        self.seed = 0
        self.epoch = 0

    @classmethod
    def transforms_from_args(cls, feeder_args, *, layout, stream):
        """The transforms a feeder built with `feeder_args` (a config's `test_feeder_args`; the
        data source's arguments are ignored, the others default as in the feeder) applies, on
        skeleton `layout` (a Layout)."""
        bound = inspect.signature(cls).bind_partial(**feeder_args)
        bound.apply_defaults()
        takes = inspect.signature(cls.transforms_class).parameters
        args = {k: v for k, v in bound.arguments.items() if k in takes and k != 'stream'}
        return cls.transforms_class(layout=layout, stream=stream, **args)

    @property
    def class_names(self):
        return self.meta.get('class_names') or [str(i) for i in range(self.meta['num_class'])]

    @property
    def stream(self):
        return self.transforms.stream

    def set_epoch(self, epoch, seed=None):
        self.epoch = epoch
        if seed is not None:
            self.seed = seed

    def __len__(self):
        return len(self.labels) * self.repeat

    def frames(self, index):
        """Sample `index`'s frames as (C, T, V, M)."""
        # (T, M, V, C) → (C, T, V, M)
        return self.reader[index].transpose(3, 0, 2, 1)

    def sample_info(self, index):
        """What the transforms learn about sample `index` besides its frames."""
        return {'where': f'{self.path}: sample {self.names[index]}'}

    def __getitem__(self, index):
        """(data (C, T, V, M) float32, label, index)."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        sample = index % len(self.labels)
        data = self.transforms(self.frames(sample), rng, self.sample_info(sample))
        return data, int(self.labels[sample]), index


class SkeletonFeeder(PreparedSplit):
    """Samples of a prepared split (open_split) with NTU semantics.

    Transforms, in the reference order: crop + resize to `window_size` frames (`p_interval`: one
    value for a centre crop, two for a random crop), random rotation (`random_rot`), then ours, off
    by default: per-axis scale (`random_scale`: largest relative change), translation
    (`random_shift`: largest offset per axis) and ST-GCN's time-varying move (`random_move`);
    finally the stream (bone, motion).
    """

    transforms_class = SkeletonTransforms

    def __init__(
        self,
        data_path: str,
        split: Split = 'train',
        benchmark: Optional[str] = None,
        window_size: Frames = 64,
        p_interval: Crop = (0.95,),
        min_crop: Frames = 64,
        random_rot: bool = False,
        random_scale: Annotated[float, Range(ge=0, lt=1)] = 0.0,
        random_shift: Annotated[float, Range(ge=0)] = 0.0,
        random_move: bool = False,
        stream: Stream = 'joint',
        debug: bool = False,
    ):
        super().__init__(
            data_path, split, benchmark=benchmark, debug=debug, stream=stream,
            window_size=window_size, p_interval=p_interval, min_crop=min_crop,
            random_rot=random_rot, random_scale=random_scale, random_shift=random_shift,
            random_move=random_move,
        )


class UclaFeeder(PreparedSplit):
    """NW-UCLA semantics (the reference's feeder_ucla): centre on joint 1 of the first frame; with
    `random_rot`, rotate about x and y by whole degrees in [−60, 60] and scale by U(0.5, 1.5);
    min-max normalise each axis to [−1, 1]; take `window_size` frames, a sorted random draw with
    `random_choose`, else evenly spaced. `repeat` passes over the split make one epoch (the
    reference trains with 5)."""

    transforms_class = UclaTransforms

    def __init__(
        self,
        data_path: str,
        split: Split = 'train',
        benchmark: Optional[str] = None,
        window_size: Frames = 52,
        random_rot: bool = False,
        random_choose: bool = False,
        repeat: Frames = 1,
        stream: Stream = 'joint',
        debug: bool = False,
    ):
        super().__init__(
            data_path, split, benchmark=benchmark, debug=debug, repeat=repeat, stream=stream,
            window_size=window_size, random_rot=random_rot, random_choose=random_choose,
        )
