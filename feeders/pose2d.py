"""The 2D feeder: keypoints (x, y, score) from a pose estimator, `in_channels: 3`.

Each sample is normalised (centred on the layout's centre joint, scaled by the image size when the
prepared data knows it, else by the skeleton's extent: feeders/transforms.py `normalise_2d`),
cropped and resampled to the window, and augmented in the image plane only: a 3D rotation would
need the depth a 2D pose lacks. A joint with score 0 was not detected: it stays (0, 0, 0) through
every transform and every stream.

Streams keep the score channel as pyskl does for 2D input (its JointToBone and ToMotion): a bone
or a motion step carries the mean score of its two ends, and the difference of their x, y. Unlike
pyskl, a bone or step with an undetected end is zero, rather than a difference with (0, 0).
"""

from typing import Annotated, Optional

from data.storage import XYZ
from feeders.feeder import Crop, Frames, PreparedSplit, Split, Stream, Transforms
from feeders.transforms import (
    bone_with_scores,
    crop_bounds,
    detected_span,
    in_plane,
    motion_with_scores,
    normalise_2d,
    resample_nearest,
)
from torchlight.registry import ConfigError
from torchlight.validation import Range

ROTATION = 0.3  # largest in-plane angle of `random_rot`, radians (the 3D feeder's per axis)


class Pose2DTransforms(Transforms):
    """2D semantics (Pose2DFeeder's arguments); `info['image_size']` (height, width), when given,
    sets the scale."""

    def __init__(self, *, layout, stream, window_size, p_interval, min_crop, random_rot,
                 random_scale, random_shift):
        super().__init__(layout=layout, stream=stream)
        self.window_size = window_size
        self.p_interval = list(p_interval)
        self.min_crop = min_crop
        self.random_rot = random_rot
        self.random_scale = random_scale
        self.random_shift = random_shift

    def sample_and_augment(self, data, rng, info):
        """Normalise, crop the frames that detect anyone and resample them to the window, then
        rotate, scale and shift in the image plane."""
        first, end = detected_span(data)
        if end == 0:
            raise ConfigError(f"{info['where']} has no joint with a score above 0")
        data = normalise_2d(data[:, first:end], self.layout.centre, info.get('image_size'))
        start, stop = crop_bounds(end - first, self.p_interval, rng, self.min_crop)
        data = resample_nearest(data[:, start:stop], self.window_size)
        if self.random_rot or self.random_scale or self.random_shift:
            data = in_plane(
                data,
                angle=rng.uniform(-ROTATION, ROTATION) if self.random_rot else 0.0,
                scale=rng.uniform(1 - self.random_scale, 1 + self.random_scale),
                offset=rng.uniform(-self.random_shift, self.random_shift, size=2),
            )
        return data

    def bones(self, data):
        return bone_with_scores(data, self.layout.bone_pairs)

    def motion(self, data):
        return motion_with_scores(data)


class Pose2DFeeder(PreparedSplit):
    """Samples of a prepared split of 2D keypoints (x, y, score).

    Transforms: normalisation (centre joint; image size, else extent), crop of the frames from the
    first to the last that detect a joint (`p_interval`, `min_crop` as in the skeleton feeder),
    resampling to `window_size` frames by picking the nearest frame (never blending a detected
    joint with an undetected one), then in-plane augmentation, off by default: rotation about
    the view axis within ±0.3 rad (`random_rot`), one scale factor for both axes within
    1 ± `random_scale`, a shift within ±`random_shift` per axis (in normalised units); finally the
    stream.
    """

    transforms_class = Pose2DTransforms

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
        stream: Stream = 'joint',
        debug: bool = False,
    ):
        super().__init__(
            data_path, split, benchmark=benchmark, debug=debug, stream=stream,
            window_size=window_size, p_interval=p_interval, min_crop=min_crop,
            random_rot=random_rot, random_scale=random_scale, random_shift=random_shift,
        )
        if self.meta.get('channels') == XYZ:
            raise ConfigError(f'{self.path} holds 3D joints (x, y, z); the pose2d feeder reads 2D '
                              f'keypoints (x, y, score): use the skeleton feeder')
        # (N, 2) (height, width) per sample; none in a .npz file or 2D data prepared without them
        self.image_sizes = self.index.get('image_size')

    def sample_info(self, index):
        info = super().sample_info(index)
        if self.image_sizes is not None:
            info['image_size'] = tuple(int(side) for side in self.image_sizes[index])
        return info
