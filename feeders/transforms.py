"""Per-sample transforms on (C, T, V, M) arrays, with the reference feeders' semantics."""

import numpy as np
import torch
import torch.nn.functional as F


def valid_frame_count(data):
    """Frames with any non-zero value (the reference assumes they form a prefix)."""
    return int(np.count_nonzero(data.any(axis=(0, 2, 3))))


def crop_bounds(valid, p_interval, rng=None, min_length=64):
    """(start, end) of the crop of the first `valid` frames.

    One p (test): the centre crop [b, valid − b) with b = int((1 − p)·valid / 2).
    Two values [p0, p1] (train): p ~ U(p0, p1), L = min(max(floor(valid·p), min_length), valid),
    random start.
    """
    if len(p_interval) == 1:
        bias = int((1 - p_interval[0]) * valid / 2)
        return bias, valid - bias
    p = rng.uniform(p_interval[0], p_interval[1])
    length = min(max(int(np.floor(valid * p)), min_length), valid)
    start = rng.integers(0, valid - length + 1)
    return start, start + length


def crop_resize(data, valid, p_interval, window, rng=None, min_length=64):
    """Crop the valid frames (crop_bounds), then resize linearly along time to `window` frames."""
    c, _, v, m = data.shape
    start, end = crop_bounds(valid, p_interval, rng, min_length)
    data = data[:, start:end]
    length = data.shape[1]
    frames = torch.from_numpy(np.ascontiguousarray(data.transpose(0, 2, 3, 1))).reshape(
        1, c * v * m, length
    )
    # (1, C·V·M, window)
    frames = F.interpolate(frames, size=window, mode='linear', align_corners=False)
    return frames.reshape(c, v, m, window).permute(0, 3, 1, 2).numpy()


def rotation_matrix(ax, ay, az):
    """R = Rz·Ry·Rx with the reference feeder's sign conventions."""
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, sx], [0, -sx, cx]])
    ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rz = np.array([[cz, sz, 0], [-sz, cz, 0], [0, 0, 1]])
    return (rz @ ry @ rx).astype(np.float32)


def random_rotation(data, rng, theta=0.3):
    """Rotate every frame by one angle triple drawn from U(−theta, theta)."""
    rot = rotation_matrix(*rng.uniform(-theta, theta, 3))
    return (rot @ data.reshape(3, -1)).reshape(data.shape)


def present(data):
    """(1, T, 1, M) mask: True where a person has any non-zero coordinate in a frame (zeros mark
    absence)."""
    return np.any(data != 0, axis=(0, 2), keepdims=True)


def random_scale(data, rng, max_change):
    """Scale each axis by its own factor drawn from U(1 − max_change, 1 + max_change)."""
    factors = rng.uniform(1 - max_change, 1 + max_change, size=(data.shape[0], 1, 1, 1))
    return data * factors.astype(data.dtype)


def random_shift(data, rng, max_offset):
    """Translate every present person by one offset per axis drawn from U(−max_offset,
    max_offset); absent persons stay zero."""
    offset = rng.uniform(-max_offset, max_offset, size=(data.shape[0], 1, 1, 1)).astype(data.dtype)
    return np.where(present(data), data + offset, data)


def segment_ramps(values, nodes):
    """Per frame, the value ramping linearly from values[i] at nodes[i] to values[i + 1] at nodes[i
    + 1] − 1."""
    return np.concatenate(
        [
            np.linspace(values[i], values[i + 1], nodes[i + 1] - nodes[i])
            for i in range(len(nodes) - 1)
        ]
    )


def random_move(
    data,
    rng,
    angles=(-10, -5, 0, 5, 10),
    scales=(0.9, 1.0, 1.1),
    offsets=(-0.2, -0.1, 0, 0.1, 0.2),
    segment=1.0,
):
    """ST-GCN's random move: in the x-y plane, a rotation (degrees), scale and translation that
    change linearly over time between values drawn at segment boundaries (every `segment`·T
    frames). Unlike ST-GCN, absent persons stay zero."""
    frames = data.shape[1]
    nodes = np.append(np.arange(0, frames, max(1, int(frames * segment))), frames)
    angle, scale, dx, dy = (
        segment_ramps(rng.choice(c, len(nodes)), nodes) for c in (angles, scales, offsets, offsets)
    )
    angle = np.radians(angle)
    rot = (
        np.stack(
            [np.stack([np.cos(angle), -np.sin(angle)]), np.stack([np.sin(angle), np.cos(angle)])]
        )
        * scale
    )  # (2, 2, T)
    moved = data.copy()
    moved[:2] = np.einsum('ijt,jtvm->itvm', rot, data[:2]) + np.stack([dx, dy])[:, :, None, None]
    return np.where(present(data), moved, data).astype(data.dtype)


def joint_to_bone(data, bone_pairs):
    """bone[v] = joint[v] − joint[origin(v)] for each (v, origin) pair."""
    bone = np.zeros_like(data)
    for v, origin in bone_pairs:
        bone[:, :, v] = data[:, :, v] - data[:, :, origin]
    return bone


def to_motion(data):
    """motion[t] = x[t + 1] − x[t]; the last frame is zero."""
    motion = np.zeros_like(data)
    motion[:, :-1] = data[:, 1:] - data[:, :-1]
    return motion


def ucla_view_transform(data, angle_x, angle_y, scale):
    """The NW-UCLA feeder's view change: each point p → (Ry(y)·Rx(x)·s)ᵀ p, angles in
    degrees."""
    ax, ay = np.radians(angle_x), np.radians(angle_y)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), np.sin(ax)], [0, -np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, -np.sin(ay)], [0, 1, 0], [np.sin(ay), 0, np.cos(ay)]])
    return np.einsum('ji,jtvm->itvm', ry @ rx * scale, data)


def min_max_normalise(data):
    """Each axis (C) mapped linearly onto [−1, 1] over all frames, joints and persons."""
    low = data.min(axis=(1, 2, 3), keepdims=True)
    high = data.max(axis=(1, 2, 3), keepdims=True)
    return (data - low) / (high - low) * 2 - 1


# ------------------------------------------------------------------------ 2D keypoints with scores
# Channels (x, y, score); a joint with score 0 was not detected and stays (0, 0, 0) throughout.


def detected(data):
    """(1, T, V, M) mask: the joints with a score above 0."""
    return data[2:3] > 0


def keep_detected(data):
    """`data` with every undetected joint set to (0, 0, 0)."""
    return np.where(detected(data), data, 0).astype(data.dtype, copy=False)


def detected_span(data):
    """(first, last + 1): the frames from the first to the last that detect any joint."""
    frames = np.flatnonzero(detected(data).any(axis=(0, 2, 3)))
    return (int(frames[0]), int(frames[-1]) + 1) if len(frames) else (0, 0)


def resample_nearest(data, window):
    """`window` frames, each the frame nearest its place on a uniform grid over the sequence:
    frames are picked, never blended, so an undetected joint stays exactly zero."""
    length = data.shape[1]
    picks = np.floor((np.arange(window) + 0.5) * length / window).astype(int)
    return data[:, picks]


def origin_2d(data, centre):
    """(2,): the centre joint of the first person in the first frame that detects it; if no frame
    does, the mean of the joints of the first frame that detects any."""
    seen = detected(data)[0]  # (T, V, M)
    if seen[:, centre, 0].any():
        return data[:2, np.argmax(seen[:, centre, 0]), centre, 0]
    frame = np.argmax(seen.any(axis=(1, 2)))
    return data[:2, frame][:, seen[frame]].mean(axis=1)


def normalise_2d(data, centre, image_size=None):
    """x, y relative to origin_2d, divided by the image's longer side when `image_size` (height,
    width) is known, else by the longer side of the box around every detected joint of the
    sample: either way the joints lie within [−1, 1]. Scores are kept."""
    points = data[:2][:, detected(data)[0]]  # (2, detected joints)
    if image_size is not None and min(image_size) > 0:
        scale = float(max(image_size))
    else:
        scale = float((points.max(axis=1) - points.min(axis=1)).max()) or 1.0
    normalised = data.copy()
    normalised[:2] = (data[:2] - origin_2d(data, centre)[:, None, None, None]) / scale
    return keep_detected(normalised)


def in_plane(data, angle, scale, offset):
    """Rotate x, y by `angle` (radians) about the origin, i.e. about the camera's view axis, scale
    them by `scale` and add `offset` (2,); undetected joints stay zero."""
    cos, sin = np.cos(angle), np.sin(angle)
    matrix = scale * np.array([[cos, -sin], [sin, cos]])
    moved = data.copy()
    moved[:2] = np.einsum('ij,jtvm->itvm', matrix, data[:2]) + np.reshape(offset, (2, 1, 1, 1))
    return keep_detected(moved)


def difference_with_scores(a, b):
    """(x, y) of a − b and the mean of their scores, as pyskl's 2D bone and motion streams give;
    zero where either is undetected (pyskl would give a half score and a difference with (0, 0))."""
    both = detected(a) & detected(b)
    difference = np.concatenate([a[:2] - b[:2], (a[2:3] + b[2:3]) / 2])
    return np.where(both, difference, 0).astype(a.dtype, copy=False)


def bone_with_scores(data, bone_pairs):
    """2D bones: for each (v, origin) pair, difference_with_scores(joint v, joint origin); a joint
    that is its own origin gets (0, 0, its score)."""
    joints, origins = np.array(bone_pairs).T
    bone = np.zeros_like(data)
    bone[:, :, joints] = difference_with_scores(data[:, :, joints], data[:, :, origins])
    return bone


def motion_with_scores(data):
    """2D motion: frame t is difference_with_scores(frame t + 1, frame t); the last frame is
    zero."""
    motion = np.zeros_like(data)
    motion[:, :-1] = difference_with_scores(data[:, 1:], data[:, :-1])
    return motion
