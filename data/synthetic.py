"""The bundled demo dataset: synthetic NTU-layout skeleton sequences, generated deterministically.

This is NOT real motion capture. Ten classes of simple, hand-designed motions of a stick figure in
the NTU RGB+D 25-joint layout, with per-subject body proportions, per-repetition speed and
amplitude, three camera yaws and sensor noise. Two pairs are ambiguous by design, as in the SF-Head
paper's examples: `wave` and `salute` share the same arm raise and differ only in its last part;
`jump up` and `hop` both move the body up and down. It exists so that the framework trains, tests
and reports end to end in minutes on a CPU.

Written in the prepared format (`data.storage`), cross-subject split, in one of two forms:
  - `ntu25` (data/demo/xsub): 3D joints, centred like prepared NTU data (origin: spine-mid joint of
    the first frame), second person slot empty;
  - `coco17` (data/demo/coco2d): the same motions as a pose estimator would see them in video, the
    COCO-17 keypoints (a face built on the head joint) projected by a pinhole camera, in pixels,
    with detection noise, scores and missed keypoints (score 0, at (0, 0)), one person, and each
    sample's image size.
"""

import os

import numpy as np

from data.ntu import CENTRING
from data.storage import XY_SCORE, XYZ, write_split
from graph.layouts import COCO17, NTU25
from torchlight.errors import ConfigError

CLASS_NAMES = (
    'wave',
    'salute',
    'jump up',
    'hop',
    'clap',
    'kick',
    'sit down',
    'stand up',
    'punch',
    'bow',
)
SUBJECTS = tuple(range(1, 11))
TRAIN_SUBJECTS = (1, 2, 4, 5)
CAMERA_YAWS = (-45.0, 0.0, 45.0)  # degrees, one camera each
REPETITIONS = 2
SEED = 2025
GENERATOR_VERSION = 1
# Relative to the working directory, as the configs name them.
DEFAULT_ROOTS = {
    'ntu25': os.path.join('data', 'demo', 'xsub'),
    'coco17': os.path.join('data', 'demo', 'coco2d'),
}
# The 2D cameras, one per yaw: (height, width) of their images; focal length 0.7 · width.
IMAGE_SIZES = ((720, 1280), (1080, 1920), (480, 640))
MISSED = 0.03  # share of keypoints a detector misses

J = {name: i for i, name in enumerate(NTU25.joints)}
LEFT, RIGHT = 1.0, -1.0  # sign of x on the subject's side: x points to the subject's left
UP = np.array([0.0, 1.0, 0.0])
DOWN = -UP


def smoothstep(p, start, end):
    s = np.clip((p - start) / (end - start), 0.0, 1.0)
    return s * s * (3 - 2 * s)


def bump(p, start, end):
    """0 outside [start, end], rising to 1 in the middle (half sine)."""
    inside = (p >= start) & (p <= end)
    return np.where(inside, np.sin(np.pi * (p - start) / (end - start)), 0.0)


def direction(elevation, azimuth, side):
    """Unit vectors (F, 3): elevation 0 points down, π up; azimuth 0 points outwards to `side`,
    π/2 forwards."""
    elevation, azimuth = np.broadcast_arrays(elevation, azimuth)
    return np.stack(
        [
            side * np.sin(elevation) * np.cos(azimuth),
            -np.cos(elevation),
            np.sin(elevation) * np.sin(azimuth),
        ],
        axis=-1,
    )


def normalise(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def blend(a, b, weight):
    """Directions turning from a to b as weight goes 0 → 1."""
    return normalise(a * (1 - weight)[:, None] + b * weight[:, None])


class Body:
    """Bone lengths of one subject; `pose` turns per-frame limb directions into 25 joint
    positions."""

    def __init__(self, rng):
        height = rng.uniform(0.85, 1.15)
        jitter = lambda: height * rng.uniform(0.95, 1.05)  # noqa: E731
        self.spine = (0.28 * jitter(), 0.22 * jitter())  # base → mid → shoulder
        self.neck, self.head = 0.06 * jitter(), 0.13 * jitter()
        self.shoulder_width = 0.18 * jitter()
        self.hip_width = 0.09 * jitter()
        self.upper_arm, self.forearm, self.hand = 0.28 * jitter(), 0.25 * jitter(), 0.08 * jitter()
        self.thigh, self.shin, self.foot = 0.42 * jitter(), 0.40 * jitter(), 0.12 * jitter()
        self.stand_height = self.thigh + self.shin + 0.05

    def pose(self, frames, root, lean, arms, legs):
        """Joint positions (F, 25, 3). arms/legs: {side: (upper direction, lower direction)}, each
        (F, 3)."""
        x = np.zeros((frames, 25, 3))
        x[:, J['spine_base']] = root
        x[:, J['spine_mid']] = root + self.spine[0] * UP
        x[:, J['spine_shoulder']] = x[:, J['spine_mid']] + self.spine[1] * UP
        x[:, J['neck']] = x[:, J['spine_shoulder']] + self.neck * UP
        x[:, J['head']] = x[:, J['neck']] + self.head * UP
        for side, prefix in ((LEFT, 'left'), (RIGHT, 'right')):
            upper, lower = arms[side]
            shoulder = x[:, J['spine_shoulder']] + [side * self.shoulder_width, -0.02, 0]
            elbow = shoulder + self.upper_arm * upper
            wrist = elbow + self.forearm * lower
            hand = wrist + self.hand * lower
            for name, value in (
                ('shoulder', shoulder),
                ('elbow', elbow),
                ('wrist', wrist),
                ('hand', hand),
            ):
                x[:, J[f'{prefix}_{name}']] = value
            x[:, J[f'{prefix}_hand_tip']] = hand + 0.06 * lower
            x[:, J[f'{prefix}_thumb']] = hand + 0.04 * normalise(lower + [-side * 0.8, 0, 0.5])
        # Lean the upper body forwards about the spine base.
        upper_body = [
            J[n] for n in NTU25.joints if not n.endswith(('hip', 'knee', 'ankle', 'foot', 'base'))
        ]
        rel = x[:, upper_body] - root[:, None]
        c, s = np.cos(lean)[:, None], np.sin(lean)[:, None]
        x[:, upper_body] = root[:, None] + np.stack(
            [rel[..., 0], c * rel[..., 1] - s * rel[..., 2], s * rel[..., 1] + c * rel[..., 2]],
            axis=-1,
        )
        for side, prefix in ((LEFT, 'left'), (RIGHT, 'right')):
            thigh, shin = legs[side]
            hip = root + [side * self.hip_width, -0.03, 0]
            knee = hip + self.thigh * thigh
            ankle = knee + self.shin * shin
            x[:, J[f'{prefix}_hip']], x[:, J[f'{prefix}_knee']], x[:, J[f'{prefix}_ankle']] = (
                hip,
                knee,
                ankle,
            )
            x[:, J[f'{prefix}_foot']] = ankle + [0, -0.03, self.foot]
        return x


def rest(frames):
    """Standing pose: arms hanging slightly outwards, forearms a little forwards, legs straight."""
    zero = np.zeros(frames)

    def arm(side):
        return direction(zero + 0.15, zero, side), direction(zero + 0.25, zero + np.pi / 2, side)

    def leg(side):
        return direction(zero, zero, side), direction(zero, zero, side)

    return {
        'lean': zero.copy(),
        'lift': zero.copy(),
        'back': zero.copy(),
        'arms': {LEFT: arm(LEFT), RIGHT: arm(RIGHT)},
        'legs': {LEFT: leg(LEFT), RIGHT: leg(RIGHT)},
    }


def raise_arm(p, pose, amp):
    """The shared first part of wave and salute: the right arm rises sideways, forearm upright."""
    r = smoothstep(p, 0.05, 0.6)
    upper = direction(0.15 + r * 1.4 * amp, 0.25, RIGHT)
    lower = blend(pose['arms'][RIGHT][1], np.tile(UP, (len(p), 1)), r)
    return upper, lower


def forehead_direction(body, upper):
    """Direction from the right elbow to the forehead, for an upper-arm direction `upper`."""
    shoulder = np.array([RIGHT * body.shoulder_width, body.spine[0] + body.spine[1] - 0.02, 0])
    forehead = np.array(
        [RIGHT * 0.04, body.spine[0] + body.spine[1] + body.neck + body.head * 0.8, 0.08]
    )
    return normalise(forehead - (shoulder + body.upper_arm * upper))


def wave(p, pose, body, amp):
    """Arm raise, then the hand stops beside the head and sways a little."""
    upper, lower = raise_arm(p, pose, amp)
    beside_head = blend(lower, forehead_direction(body, upper), np.full(len(p), 0.5))
    lower = blend(lower, beside_head, smoothstep(p, 0.6, 0.8))
    sway = 0.2 * amp * np.sin(2 * np.pi * 3 * (p - 0.6)) * smoothstep(p, 0.6, 0.7)
    lower = normalise(lower + np.stack([np.sin(sway), np.zeros_like(p), np.zeros_like(p)], -1))
    pose['arms'][RIGHT] = (upper, lower)


def salute(p, pose, body, amp):
    """Arm raise, then the hand goes to the forehead and holds still."""
    upper, lower = raise_arm(p, pose, amp)
    lower = blend(lower, forehead_direction(body, upper), smoothstep(p, 0.6, 0.8))
    pose['arms'][RIGHT] = (upper, lower)


def jump_up(p, pose, body, amp):
    crouch = bump(p, 0.1, 0.45) + bump(p, 0.6, 0.9)
    air = bump(p, 0.4, 0.65)
    pose['lift'] = 0.25 * amp * air - 0.12 * crouch
    for side in (LEFT, RIGHT):
        pose['legs'][side] = (
            direction(0.8 * crouch, np.pi / 2, side),
            direction(0.6 * crouch, -np.pi / 2, side),
        )
        pose['arms'][side] = (
            direction(0.15 + 1.2 * air * amp, 0.3, side),
            direction(0.25 + 1.2 * air, 1.2, side),
        )


def hop(p, pose, body, amp):
    lift = smoothstep(p, 0.05, 0.2) * (1 - smoothstep(p, 0.85, 0.95))
    hops = np.maximum(0, np.sin(2 * np.pi * 2 * (p - 0.25))) * (p > 0.25) * (p < 0.75)
    pose['lift'] = 0.18 * amp * hops
    pose['legs'][LEFT] = (
        direction(0.2 * lift, np.pi / 2, LEFT),
        direction(0.4 * lift, -np.pi / 2, LEFT),
    )
    for side in (LEFT, RIGHT):
        pose['arms'][side] = (
            direction(0.15 + 0.6 * hops * amp, 0.3, side),
            direction(0.25 + 0.6 * hops, 1.2, side),
        )


def clap(p, pose, body, amp):
    reach = smoothstep(p, 0.0, 0.2) * (1 - smoothstep(p, 0.85, 1.0))
    opening = 0.5 + 0.5 * np.cos(2 * np.pi * 4 * p)
    for side in (LEFT, RIGHT):
        upper = blend(pose['arms'][side][0], direction(p * 0 + 0.9, 1.3, side), reach)
        target = np.stack([side * (0.03 + 0.25 * amp * opening), p * 0 + 0.3, p * 0 + 0.45], -1)
        shoulder = np.array([side * body.shoulder_width, 0.5, 0])
        lower = blend(
            pose['arms'][side][1], normalise(target - (shoulder + body.upper_arm * upper)), reach
        )
        pose['arms'][side] = (upper, lower)


def kick(p, pose, body, amp):
    k = bump(p, 0.3, 0.7)
    pose['legs'][RIGHT] = (
        direction(1.3 * amp * k, np.pi / 2, RIGHT),
        direction(1.0 * amp * k**2, np.pi / 2, RIGHT),
    )


def sit_down(p, pose, body, amp):
    s = smoothstep(p, 0.2, 0.8)
    pose['lift'] = -0.4 * s
    pose['back'] = -0.25 * s
    pose['lean'] = 0.4 * amp * np.sin(np.pi * s)
    for side in (LEFT, RIGHT):
        pose['legs'][side] = (
            direction(np.pi / 2 * s, np.pi / 2, side),
            direction(0.3 * s, -np.pi / 2, side),
        )


def stand_up(p, pose, body, amp):
    sit_down(1 - p, pose, body, amp)


def punch(p, pose, body, amp):
    hit = bump(p, 0.2, 0.45) + bump(p, 0.55, 0.8)
    guard = smoothstep(p, 0.0, 0.15) * (1 - smoothstep(p, 0.85, 1.0))
    retracted = (direction(p * 0 + 0.5, 1.6, RIGHT), direction(p * 0 + 2.0, 1.5, RIGHT))
    extended = (direction(p * 0 + 1.5 * amp, 1.5, RIGHT), direction(p * 0 + 1.5 * amp, 1.5, RIGHT))
    ready = [blend(r, g, guard) for r, g in zip(pose['arms'][RIGHT], retracted)]
    pose['arms'][RIGHT] = tuple(blend(r, e, hit) for r, e in zip(ready, extended))
    pose['arms'][LEFT] = tuple(
        blend(r, g, guard)
        for r, g in zip(
            pose['arms'][LEFT],
            (direction(p * 0 + 0.5, 1.6, LEFT), direction(p * 0 + 2.2, 1.5, LEFT)),
        )
    )


def bow(p, pose, body, amp):
    pose['lean'] = 0.8 * amp * bump(p, 0.2, 0.8)


ACTIONS = (wave, salute, jump_up, hop, clap, kick, sit_down, stand_up, punch, bow)


def yaw_matrix(degrees):
    a = np.deg2rad(degrees)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def make_motion(action, body, yaw, rng):
    """Joint positions (T, 25, 3) of one repetition, noise-free, in camera coordinates."""
    frames = int(rng.integers(40, 91))
    onset = rng.uniform(-0.05, 0.05)
    # speed and onset
    p = np.clip(np.linspace(0, 1, frames) ** rng.uniform(0.8, 1.25) + onset, 0, 1)
    pose = rest(frames)
    action(p, pose, body, rng.uniform(0.85, 1.15))
    for limbs in (pose['arms'], pose['legs']):  # personal style
        for side, directions in limbs.items():
            limbs[side] = tuple(normalise(d + rng.normal(0, 0.15, 3)) for d in directions)
    root = np.stack([np.zeros(frames), body.stand_height + pose['lift'], pose['back']], -1)
    joints = body.pose(frames, root, pose['lean'], pose['arms'], pose['legs'])
    return joints @ yaw_matrix(yaw + rng.uniform(-10, 10)).T


def kinect_sample(joints):
    """(T, M=2, V=25, C=3): the joints centred on the first frame's spine-mid joint, in the first
    person slot."""
    sample = np.zeros((len(joints), 2, 25, 3), dtype=np.float32)
    sample[:, 0] = joints - joints[0, J['spine_mid']]
    return sample


def coco_points(joints):
    """(T, 17, 3): the COCO-17 keypoints of NTU-25 joints (T, 25, 3); nose, eyes and ears are
    placed on the head joint, facing where the shoulders face."""
    left = normalise(joints[:, J['left_shoulder']] - joints[:, J['right_shoulder']])
    up = normalise(joints[:, J['head']] - joints[:, J['neck']])
    forward = normalise(np.cross(left, up))
    head = joints[:, J['head']]
    eye = head + 0.03 * up + 0.06 * forward
    face = {
        'nose': head + 0.08 * forward,
        'left_eye': eye + 0.03 * left,
        'right_eye': eye - 0.03 * left,
        'left_ear': head + 0.075 * left,
        'right_ear': head - 0.075 * left,
    }
    body = {
        f'{side}_{part}': joints[:, J[f'{side}_{ntu}']]
        for side in ('left', 'right')
        for part, ntu in (('shoulder', 'shoulder'), ('elbow', 'elbow'), ('wrist', 'wrist'),
                          ('hip', 'hip'), ('knee', 'knee'), ('ankle', 'ankle'))
    }
    points = {**face, **body}
    return np.stack([points[name] for name in COCO17.joints], axis=1)


def camera_sample(joints, camera, rng):
    """((T, M=1, V=17, C=3) keypoints (x, y in pixels, score), (height, width)): the COCO-17
    points seen by camera `camera` (1-based) from 3 to 4.5 m, the subject off the image centre by
    up to 0.6 m, with 4 cm of noise, scores around 0.85 and MISSED of the keypoints missed."""
    height, width = IMAGE_SIZES[camera - 1]
    focal = 0.7 * width
    points = coco_points(joints) + rng.normal(0, 0.04, (len(joints), 17, 3))
    # camera frame: x right, y up, z away from the camera, which is 1 m above the floor
    x = points[..., 0] + rng.uniform(-0.6, 0.6)
    y = points[..., 1] - 1.0
    z = rng.uniform(3.0, 4.5) - points[..., 2]
    score = np.clip(rng.normal(0.85, 0.1, x.shape), 0.05, 1.0)
    score[rng.random(x.shape) < MISSED] = 0
    keypoints = np.stack([width / 2 + focal * x / z, height / 2 - focal * y / z, score], axis=-1)
    keypoints[score == 0] = 0
    return keypoints[:, None].astype(np.float32), (height, width)


def generate(root, layout='ntu25'):
    """Write `<root>/train.h5` and `<root>/test.h5` (cross-subject split) in `layout`: ntu25 (3D)
    or coco17 (2D). Both draw the same motions: the two datasets show the same repetitions."""
    rng = np.random.default_rng(SEED)
    # The camera's own draws, so that the motions' draws stay those of the 3D dataset.
    camera_rng = np.random.default_rng([SEED, 2])
    splits = {'train': ([], [], [], []), 'test': ([], [], [], [])}
    for subject in SUBJECTS:
        body = Body(rng)
        sequences, labels, names, image_sizes = splits[
            'train' if subject in TRAIN_SUBJECTS else 'test'
        ]
        for label, action in enumerate(ACTIONS):
            for camera, yaw in enumerate(CAMERA_YAWS, start=1):
                for repetition in range(1, REPETITIONS + 1):
                    joints = make_motion(action, body, yaw, rng)
                    sensor_noise = rng.normal(0, 0.06, joints.shape)
                    if layout == 'ntu25':
                        sequences.append(kinect_sample(joints + sensor_noise))
                    else:
                        sample, image_size = camera_sample(joints, camera, camera_rng)
                        sequences.append(sample)
                        image_sizes.append(image_size)
                    labels.append(label)
                    names.append(
                        f'S001C{camera:03d}P{subject:03d}R{repetition:03d}A{label + 1:03d}'
                    )
    os.makedirs(root, exist_ok=True)
    for split, (sequences, labels, names, image_sizes) in splits.items():
        per_sample = {'image_size': np.array(image_sizes, dtype=np.int64)} if image_sizes else None
        write_split(
            os.path.join(root, f'{split}.h5'),
            sequences,
            labels,
            names,
            per_sample=per_sample,
            dataset='demo' if layout == 'ntu25' else 'demo2d',  # tables keep the two apart
            benchmark='xsub',
            split=split,
            layout=layout,
            channels=XYZ if layout == 'ntu25' else XY_SCORE,
            centred=CENTRING if layout == 'ntu25' else '',  # kinect_sample
            num_class=len(CLASS_NAMES),
            class_names=list(CLASS_NAMES),
            generator_version=GENERATOR_VERSION,
        )


def ensure_demo_dataset(root, asked=False, layout='ntu25'):
    """Generate the demo dataset in `layout` under `root` unless it is there already: at the
    layout's default location, or elsewhere when `asked` (a mistyped path must not silently fill
    a new folder)."""
    if all(os.path.isfile(os.path.join(root, f'{split}.h5')) for split in ('train', 'test')):
        return
    default = DEFAULT_ROOTS[layout]
    if not asked and os.path.abspath(root) != os.path.abspath(default):
        raise ConfigError(
            f'data file not found: {os.path.join(root, "train.h5")} (the demo data '
            f'is generated only at {default}, or elsewhere with generate: true)'
        )
    generate(root, layout)
