"""NTU RGB+D `.skeleton` files → prepared sequences, as the reference preparation does it.

The reference is the SGN-derived pipeline shipped with CTR-GCN (`get_raw_skes_data.py`,
`get_raw_denoised_data.py`, `seq_transformation.py`); every rule below is one of its rules, quirks
included:
- frames without any body are dropped; each body's frames are stacked in the order met, and its
  interval is [first frame, first frame + number of its frames) even when it vanished in between;
- one body: its frames, as they are;
- several bodies: bodies lasting <= 11 frames are dropped; if more than one remains, a frame of a
  body is noisy when its x-spread exceeds 0.8 times its y-spread, and a body with >= 69.754 % noisy
  frames is dropped (else its motion becomes the smaller of its motion and that of its valid
  frames); the remaining bodies, sorted by motion (largest first), fill two actors: each goes to
  actor 1 if its interval does not overlap actor 1's (intervals touching at one frame do not
  overlap), else to actor 2 under the same rule, else it is dropped; frames whose 150 values sum to
  0 are removed;
- motion = Σ over x, y, z of the variance of all the body's joint positions;
- the origin is joint 2 (spine middle) of the first frame where actor 1 is non-zero; it is
  subtracted everywhere, then an actor's frames that summed to 0 are zeroed again.
All arithmetic is float32, as in the reference.
"""

import os
import re
from dataclasses import dataclass, field

import numpy as np

from data import DataFileError, read_text

NOISE_LENGTH = 11
NOISE_SPREAD_X_OVER_Y = 0.8
NOISE_SPREAD_RATIO = 0.69754
# x y z, depth x y, colour x y, orientation w x y z, tracking state
JOINT_LINE_NUMBERS = 12
NAME = re.compile(r'S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$')


class SkeletonFileError(DataFileError):
    """A malformed `.skeleton` file; the message names the file and line."""


@dataclass(eq=False)
class Body:
    joints: list = field(default_factory=list)  # per frame (25, 3) float32
    first: int = 0  # index of its first (kept) frame
    motion: float = 0.0

    @property
    def length(self):
        return len(self.joints)

    @property
    def last(self):
        return self.first + self.length - 1

    def stacked(self):
        return np.stack(self.joints)  # (F, 25, 3)


def parse_name(name):
    """{'setup', 'camera', 'performer', 'replication', 'action'} (1-based) of a sample name."""
    match = NAME.match(name)
    if not match:
        raise SkeletonFileError(f'{name}: not an NTU sample name (SsssCcccPpppRrrrAaaa)')
    return dict(
        zip(('setup', 'camera', 'performer', 'replication', 'action'), map(int, match.groups()))
    )


def read_bodies(path):
    """Bodies of a `.skeleton` file (in order of appearance) and the number of frames with a
    body."""
    lines = read_text(path).split('\n')
    cursor = 0

    def next_line():
        nonlocal cursor
        if cursor >= len(lines) or not lines[cursor].strip():
            raise SkeletonFileError(f'{path}:{cursor + 1}: file ends early')
        cursor += 1
        return lines[cursor - 1].split()

    def number(tokens, kind):
        try:
            return int(tokens[0])
        except (ValueError, IndexError):
            raise SkeletonFileError(
                f'{path}:{cursor}: expected {kind}, got {" ".join(tokens)!r}'
            ) from None

    bodies = {}
    kept = -1
    declared = number(next_line(), 'the frame count')
    for _ in range(declared):
        count = number(next_line(), 'a body count')
        if count == 0:
            continue
        kept += 1
        for _ in range(count):
            body_id = next_line()[0]
            if number(next_line(), 'a joint count') != 25:
                raise SkeletonFileError(f'{path}:{cursor}: a body must have 25 joints')
            joints = np.empty((25, 3), dtype=np.float32)
            for j in range(25):
                values = next_line()
                if len(values) != JOINT_LINE_NUMBERS:
                    raise SkeletonFileError(
                        f'{path}:{cursor}: a joint line has {len(values)} '
                        f'numbers, expected {JOINT_LINE_NUMBERS}'
                    )
                try:
                    joints[j] = np.array(values[:3], dtype=np.float32)
                except ValueError:
                    raise SkeletonFileError(
                        f'{path}:{cursor}: bad joint line {" ".join(values)!r}'
                    ) from None
                if not np.all(np.isfinite(joints[j])):
                    raise SkeletonFileError(f'{path}:{cursor}: NaN or Inf in a joint position')
            body = bodies.setdefault(body_id, Body(first=kept))
            body.joints.append(joints)
    if any(line.strip() for line in lines[cursor:]):
        raise SkeletonFileError(
            f'{path}:{cursor + 1}: more lines after the {declared} frames that the file declares'
        )
    if kept < 0:
        raise SkeletonFileError(f'{path}: no frame has a body')
    return list(bodies.values()), kept + 1


def motion(joints):
    """Σ over x, y, z of the variance of all joint positions (float32)."""
    return np.sum(np.var(joints.reshape(-1, 3), axis=0))


def spread_valid_frames(joints):
    """Frames (of a (F, 25, 3) body) whose x-spread is at most 0.8 × their y-spread.

    The spreads are float32; 0.8 × the y-spread is taken in float64, as NumPy 1.x computed the
    reference's scalar product, so that borderline frames fall on the same side.
    """
    spread = joints.max(axis=1) - joints.min(axis=1)  # (F, 3)
    return np.flatnonzero(spread[:, 0] <= NOISE_SPREAD_X_OVER_Y * spread[:, 1].astype(np.float64))


def denoise(bodies):
    """The bodies kept from a multi-body file, largest motion first."""
    for body in bodies:
        body.motion = motion(body.stacked())
    bodies = [b for b in bodies if b.length > NOISE_LENGTH]
    if len(bodies) <= 1:
        return bodies
    kept = list(bodies)
    for body in bodies:
        if len(kept) == 1:
            break
        joints = body.stacked()
        valid = spread_valid_frames(joints)
        noisy = body.length - len(valid)
        if noisy == 0:
            continue
        if noisy / float(body.length) >= NOISE_SPREAD_RATIO:
            kept.remove(body)
        else:
            body.motion = min(body.motion, motion(joints[valid]))
    # stable: ties keep file order
    return sorted(kept, key=lambda b: b.motion, reverse=True)


def place(frames, body, slot):
    frames[body.first : body.last + 1, slot] = body.stacked()


def two_actors(bodies, num_frames):
    """(F, 2, 25, 3): actor 1 and actor 2 slots filled from bodies sorted by motion."""
    frames = np.zeros((num_frames, 2, 25, 3), dtype=np.float32)
    first = bodies[0]
    place(frames, first, 0)
    # actor 2 starts from a virtual [0, 0]
    spans = [[first.first, first.last], [0, 0]]
    for body in bodies[1:]:
        for slot, span in enumerate(spans):
            if min(span[1], body.last) - max(span[0], body.first) <= 0:
                place(frames, body, slot)
                span[0], span[1] = min(span[0], body.first), max(span[1], body.last)
                break
    return frames


def centred(frames, path):
    """`translate`, refusing a file with no non-zero coordinate (it has no origin)."""
    if not np.any(frames):
        raise SkeletonFileError(f'{path}: every joint coordinate is zero')
    return translate(frames)


def translate(frames):
    """Subtract joint 2 of actor 1's first non-zero frame; with two actors, an actor's frames that
    summed to 0 stay 0."""
    missing = frames.reshape(len(frames), frames.shape[1], -1).sum(axis=2) == 0  # (F, M)
    first = np.flatnonzero(np.any(frames[:, 0] != 0, axis=(1, 2)))[0]
    frames = frames - frames[first, 0, 1]
    if frames.shape[1] == 2:
        frames[missing] = 0
    return frames


# How NTU's preparation centres a sample, as prepared files record it (their `centred` attribute).
CENTRING = 'first actor'


def translate_present(frames):
    """`translate` for frames of any number of person slots (T, M, V, C), each absent person's
    frames left zero (zeros mark absence); as NTU's preparation centres a sequence. Centring a
    centred sequence changes nothing. Actor 1 must be present in some frame."""
    present = (frames != 0).any(axis=(2, 3), keepdims=True)               # (T, M, 1, 1)
    return np.where(present, translate(frames), 0).astype(np.float32)


def prepare_sequence(path):
    """(T, M, 25, 3) float32 for one file: M = 1 when a single body was kept, else 2 (actor 1, actor
    2)."""
    bodies, num_frames = read_bodies(path)
    if len(bodies) == 1:
        frames = np.zeros((num_frames, 1, 25, 3), dtype=np.float32)
        place(frames, bodies[0], 0)
        return centred(frames, path)
    bodies = denoise(bodies)
    if not bodies:
        raise SkeletonFileError(f'{path}: every body is shorter than {NOISE_LENGTH + 1} frames')
    if len(bodies) == 1:
        frames = np.zeros((num_frames, 1, 25, 3), dtype=np.float32)
        place(frames, bodies[0], 0)
    else:
        frames = two_actors(bodies, num_frames)
    frames = frames[frames.reshape(num_frames, -1).sum(axis=1) != 0]  # drop frames summing to 0
    return centred(frames, path)


def sample_name(path):
    return os.path.basename(path)[: -len('.skeleton')]
