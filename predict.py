"""Predict the actions of new skeleton sequences with a trained checkpoint:

    python predict.py --weights work_dir/demo/joint/best.pt --input a.skeleton b.npy --top 3

The checkpoint (last.pt or best.pt of a run) carries its run's configuration, so the sequences get
exactly the preprocessing of that run's test feeder (layout, stream, window, normalisation); no
config is given. Inputs: NTU RGB+D `.skeleton`, NW-UCLA `.json`, custom `.npy` or `.json`
(data/inputs.py). A sequence longer than `--span` frames is scored in overlapping windows whose
class probabilities are averaged. From Python:

    probabilities = Predictor('best.pt').predict(frames)     # frames (T, V, C) or (T, M, V, C)

Reference: docs/predict.md.
"""

import argparse
import functools
import itertools
import json
import os
import sys

import numpy as np
import torch

from data import fit_persons, ntu, pkummd
from data.inputs import read_sequence
from data.storage import XY_SCORE, XYZ
from feeders import FEEDERS
from feeders.feeder import open_split
from feeders.pose2d import Pose2DTransforms
from graph import get_layout
from model import build_model
from torchlight.checkpoint import apply_weights, load_checkpoint
from torchlight.files import atomic_write, check_output_file
from torchlight.metrics import load_groups
from torchlight.registry import ConfigError

ROOT = os.path.dirname(os.path.abspath(__file__))
# Input frames one window covers: 10 s at the 30 fps of NTU RGB+D, whose longest sample has 300
# frames (NW-UCLA's 201, PKU-MMD's clips and the demo's fewer), so a prepared dataset's own
# samples are scored whole, exactly as its test run scores them.
DEFAULT_SPAN = 300
WINDOWS_PER_BATCH = 64
# The leading classes of an ambiguous group are called ambiguous when the second holds at least this
# fraction of the first's probability: 0.8 vs 0.2 (a one-in-five share of the pair) is still a
# contest, while beyond it the model has made its call (a 0.95 vs 0.05 note would flag nearly every
# sample of a group's classes, and the note would say nothing).
AMBIGUOUS_RATIO = 0.25
# What the channels hold (data/storage.py), in messages.
CHANNELS = {XYZ: '3D joints (x, y, z)', XY_SCORE: '2D keypoints (x, y, score)'}
# How each preparation's centring (a prepared file's `centred` attribute) is applied to an input.
CENTRINGS = {ntu.CENTRING: ntu.translate_present, pkummd.CENTRING: pkummd.centre_on_first_present}
# The centring of the datasets whose preparation always centres, for data files prepared before
# it was recorded.
CENTRED_DATASETS = {'ntu60': ntu.CENTRING, 'ntu120': ntu.CENTRING, 'demo': ntu.CENTRING,
                    'pkummd': pkummd.CENTRING}


class Predictor:
    """A trained checkpoint with its run's test-time preprocessing.

    `predict(frames)` gives the class probabilities of one sequence; `top(probabilities, k)` the k
    most likely classes by name; `ambiguity(probabilities)` names the ambiguous group the most
    likely classes share, if any; `read(path)` reads a sequence file and checks it against the
    checkpoint. A sequence longer than `span` frames is cut into windows of `span` frames every
    `stride` frames (default span // 2), the last window ending at the last frame; each window is
    preprocessed and scored as a whole sample, and the windows' softmax probabilities averaged.
    `notes` says what could not be found (class names, ambiguous groups) and what was used instead.
    """

    def __init__(self, weights, *, span=DEFAULT_SPAN, stride=None):
        checkpoint = load_checkpoint(weights)
        self.config, self.meta = run_settings(checkpoint, weights)
        self.weights = weights
        # a layout file's path is from where the run was, like its data paths
        model_args = self.meta['model_args']
        model_args = {**model_args, 'graph': run_path(model_args['graph'])}
        self.model = build_model(self.meta['model'], **model_args)
        apply_weights(self.model, checkpoint, weights)
        self.model.eval()
        self.layout = get_layout(run_path(self.meta['layout']))
        self.transforms = FEEDERS.get(self.config['feeder']).transforms_from_args(
            self.config['test_feeder_args'], layout=self.layout, stream=self.meta['stream']
        )
        # the 2D feeders (pose2d, demo2d) read 2D keypoints, the others 3D joints
        self.channels = XY_SCORE if isinstance(self.transforms, Pose2DTransforms) else XYZ
        self.data_path = run_path(self.config['test_feeder_args'].get('data_path'))
        self.span, self.stride = check_windows(span, stride)
        self.notes = []
        self.class_names = self.read_class_names()
        self.groups = self.read_groups()

    # --------------------------------------------------------------------------------- scoring

    def predict(self, frames, where='the array', image_size=None):
        """Class probabilities (K,) of one sequence (`where` names it in messages; `image_size`
        (height, width) of the video that 2D keypoints come from, see `model_inputs`)."""
        logits = torch.from_numpy(self.window_logits(frames, where, image_size))
        return torch.softmax(logits.double(), dim=1).mean(0).numpy()

    def predict_file(self, path, image_size=None):
        """Class probabilities of the sequence in `path` (any kind data/inputs.py reads)."""
        return self.predict(self.read(path).frames, where=path, image_size=image_size)

    @torch.no_grad()
    def window_logits(self, frames, where='the array', image_size=None):
        """Logits (W, K) of each window of the sequence that holds a skeleton."""
        batch = torch.from_numpy(self.model_inputs(frames, where, image_size))
        return torch.cat([self.model(part) for part in batch.split(WINDOWS_PER_BATCH)]).numpy()

    def model_inputs(self, frames, where='the array', image_size=None):
        """The model's inputs (W, C, T', V, M): each window of the sequence that holds a skeleton,
        preprocessed as the test feeder preprocesses a sample. A 2D checkpoint scales keypoints by
        the longer side of `image_size` (height, width) when given, else by the skeleton's
        extent, as its feeder does for samples with and without a stored image size."""
        info = {'where': where, **self.image_size_info(image_size)}
        # persons beyond the model's dropped (the readers put the main actors first)
        frames = fit_persons(self.checked(frames, where), self.meta['model_args']['num_person'],
                             self.meta['dataset'])
        windows = [frames[start : start + self.span]
                   for start in window_starts(len(frames), self.span, self.stride)]
        rng = np.random.default_rng(0)  # test-time transforms draw nothing; seeded all the same
        inputs = [
            # (T, M, V, C) → (C, T, V, M)
            self.transforms(self.centred(window).transpose(3, 0, 2, 1), rng, info)
            for window in windows
            if window.any()
        ]
        if not inputs:
            raise ConfigError(f'{where}: every joint coordinate is zero')
        return np.stack(inputs)

    def image_size_info(self, image_size):
        """{'image_size': (height, width)} for the transforms; refused where they take none."""
        if image_size is None:
            return {}
        if not isinstance(self.transforms, Pose2DTransforms):
            raise ConfigError(
                f"an image size is for 2D keypoints; {self.weights} was trained with the "
                f"{self.config['feeder']} feeder, which does not scale by the image"
            )
        height, width = image_size
        if min(height, width) < 1:
            raise ConfigError(f'the image size must be positive, got {height} x {width}')
        return {'image_size': (int(height), int(width))}

    def read(self, path):
        """The Sequence in `path` (data/inputs.py), refused when it does not fit the checkpoint;
        its notes say what the reader could not check and which persons the model leaves out."""
        sequence = read_sequence(path)
        self.check_channels(sequence.channels, path)
        frames = self.checked(sequence.frames, path)
        notes = (*sequence.notes, *self.dropped_persons(frames, path),
                 *self.centring_notes(frames, path))
        return sequence._replace(frames=frames, notes=notes)

    def check_channels(self, channels, where):
        """Refuse 2D keypoints for a checkpoint trained on 3D joints, and the reverse, where the
        input says what its channels hold (`channels`: XYZ, XY_SCORE or None)."""
        if channels not in (None, self.channels):
            raise ConfigError(
                f'{where} holds {CHANNELS[channels]}; {self.weights} was trained on '
                f"{CHANNELS[self.channels]} (its feeder: {self.config['feeder']})"
            )

    def dropped_persons(self, frames, where):
        """A note when `frames` (T, M, V, C) hold more persons than the model reads."""
        persons, slots = frames.shape[1], self.meta['model_args']['num_person']
        if persons <= slots:
            return ()
        return (f'{where} holds {persons} persons; {self.weights} reads {slots}: the first '
                f'{slots} are scored, the other {persons - slots} dropped',)

    @functools.cached_property
    def centring(self):
        """How the run's 3D data was centred by its preparation (a key of CENTRINGS; NTU RGB+D,
        PKU-MMD, pyskl's NTU 3D, the demo, the reference .npz layout): recorded in its data file
        when here, else known for the datasets whose preparation always centres; '' when not
        centred (2D data; custom 3D data, stored as given), None when unknown."""
        if self.channels != XYZ:
            return ''
        attrs = (self.run_index or {'attrs': {}})['attrs']
        if attrs.get('centred') in ('', *CENTRINGS):
            return attrs['centred']
        if self.layout.name == 'ntu25':
            return CENTRED_DATASETS.get(self.meta['dataset'])
        return None

    def centred(self, window):
        """A window (T, M, V, C) centred as the run's data centred each sample (a centred one
        stays as it is); one without actor 1, in a longer input where another actor stays, on
        the first present body."""
        if not self.centring:
            return window
        if not window[:, 0].any():
            return pkummd.centre_on_first_present(window)      # translate needs actor 1
        return CENTRINGS[self.centring](window)

    def centring_notes(self, frames, where):
        """A note for an off-centre NTU-layout sequence when how the run's data was centred is
        unknown here."""
        if self.centring is not None or self.layout.name != 'ntu25' or not frames.any():
            return ()
        if np.allclose(pkummd.centre_on_first_present(frames), frames):
            return ()
        return (f"{where} is not centred, and how the run's data was is not known here (its data "
                f'file is not here or predates that record): if it came from NTU RGB+D, PKU-MMD '
                f"or a pyskl 3D file, centre {where} on the spine middle of its first person's "
                f'first frame',)

    def checked(self, frames, where):
        """`frames` as float32 (T, M, V, C) (a (T, V, C) array is one person), refused naming
        both sides when its joints or channels do not fit the checkpoint."""
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim == 3:
            frames = frames[:, None]
        joints, channels = self.layout.num_joints, self.meta['model_args']['in_channels']
        if frames.ndim != 4 or frames.shape[2:] != (joints, channels) or not len(frames):
            raise ConfigError(
                f'{where} has shape {frames.shape} (frames, persons, joints, channels); '
                f'{self.weights} takes {joints} joints ({self.layout.name} layout) of '
                f'{channels} channels: (T >= 1, M, {joints}, {channels})'
            )
        if not np.isfinite(frames).all():
            raise ConfigError(f'{where} holds NaN or Inf')
        return frames

    # ---------------------------------------------------------------------------------- naming

    def top(self, probabilities, k=5):
        """[{'class': id, 'name', 'prob'}] of the k most likely classes, most likely first."""
        order = np.argsort(-probabilities, kind='stable')[:k]
        return [
            {'class': int(c), 'name': self.class_names[c], 'prob': float(probabilities[c])}
            for c in order
        ]

    def ambiguity(self, probabilities):
        """'A 0.52 / B 0.41: an ambiguous pair (group)' when the two most likely classes share an
        ambiguous group and the second holds at least AMBIGUOUS_RATIO of the first's probability
        (with further classes of the group that follow and do too, a group of three or more), else
        None. From the whole probability vector: how many classes are shown does not matter."""
        order = np.argsort(-probabilities, kind='stable')
        least = AMBIGUOUS_RATIO * probabilities[order[0]]
        contenders = list(itertools.takewhile(lambda c: probabilities[c] >= least, order))
        for group, members in (self.groups or {}).items():
            leading = list(itertools.takewhile(lambda c: c in members, contenders))
            if len(leading) >= 2:
                kind = 'pair' if len(leading) == 2 else f'group of {len(leading)}'
                listed = ' / '.join(f'{self.class_names[c]} {probabilities[c]:.2f}'
                                    for c in leading)
                return f'{listed}: an ambiguous {kind} ({group})'
        return None

    def scaling_note(self, image_size):
        """For a 2D checkpoint given no image size: what scaling the keypoints by the skeleton's
        extent instead means for its scores; None where it means nothing (the run scaled so
        too)."""
        if image_size is not None or self.channels != XY_SCORE:
            return None
        trained_with_sizes = self.trained_with_image_sizes()
        if trained_with_sizes is None:
            return ("2D keypoints scaled by the skeleton's extent; if the run's data stored image "
                    'sizes (pyskl files, the 2D demo), give the video\'s --image-size HEIGHT WIDTH')
        if trained_with_sizes:
            return (f"{self.weights} was trained on 2D keypoints scaled by their video's image "
                    "size; without --image-size HEIGHT WIDTH they are scaled by the skeleton's "
                    'extent and the scores are unreliable')
        return None

    def trained_with_image_sizes(self):
        """Whether the run's 2D samples were scaled by their image size: its test data stores
        image sizes; None when that data is not here (and the feeder does not tell)."""
        if self.config['feeder'] == 'demo2d':
            return True  # the 2D demo records every sample's image size (data/synthetic.py)
        if self.run_index is None:
            return None
        sizes = self.run_index.get('image_size')
        # (0, 0): unknown for that sample, which the feeder scales by its extent
        return sizes is not None and bool((np.min(sizes, axis=1) > 0).any())

    def read_class_names(self):
        """The data's class names (data_class_names), then the class numbers of the scores they
        leave unnamed: all of them when the names are unknown, and those past the data's classes
        when the classifier scores more (as FR-Head's 120-way one on NTU RGB+D 60)."""
        names = self.data_class_names()
        outputs = self.meta['model_args']['num_class']
        return names + [f'class {c}' for c in range(len(names), outputs)]

    def data_class_names(self):
        """The class names the checkpoint records, else those of the run's data file if it is
        here, else none (with a note)."""
        num_class = self.meta['num_class']
        if len(self.meta.get('class_names') or ()) == num_class:
            return list(self.meta['class_names'])
        names = (self.run_index or {'attrs': {}})['attrs'].get('class_names') or []
        if len(names) == num_class:
            return list(names)
        self.notes.append(
            f"no class names: the run's data file ({self.data_path}) is not readable here; "
            f'classes are shown by number'
        )
        return []

    @functools.cached_property
    def run_index(self):
        """The index of the run's test split, when its data file is here; else None."""
        return stored_index(self.data_path, self.config.get('benchmark'))

    def read_groups(self):
        """{group: [class ids]} of the run's `ambiguous_groups` file, or None with a note."""
        path = run_path(self.config.get('ambiguous_groups'))
        if path is None:
            return None
        try:
            return load_groups(path, self.class_names)
        except ConfigError as err:
            self.notes.append(f'no ambiguous groups: {err}')
            return None


def run_settings(checkpoint, weights):
    """(config, meta) that a run's checkpoint carries; a plain state dict has neither."""
    config, meta = checkpoint.get('config'), checkpoint.get('meta')
    if not isinstance(config, dict) or not isinstance(meta, dict):
        raise ConfigError(
            f'{weights} holds weights without the run configuration that predict needs (its '
            f'preprocessing, layout, classes): give a last.pt or best.pt written by main.py'
        )
    return config, meta


def run_path(path):
    """A path of a run's config: as it is when it exists from here, else from the repository root
    (the runs' relative paths are from where main.py ran, normally that root)."""
    if path is None or os.path.isabs(path) or os.path.exists(path):
        return path
    from_root = os.path.join(ROOT, path)
    return from_root if os.path.exists(from_root) else path


def stored_index(data_path, benchmark):
    """The index (data/storage.py read_index) of a run's test split; None when its data file is
    not here or not readable."""
    if not data_path or not os.path.exists(data_path):
        return None
    try:
        return open_split(data_path, 'test', benchmark)[1]
    except ConfigError:
        return None


def check_windows(span, stride):
    """(span, stride) in frames, stride defaulting to span // 2."""
    check_frames('span', span)
    stride = max(1, span // 2) if stride is None else stride
    check_frames('stride', stride)
    return span, stride


def check_frames(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f'--{name} must be a whole number of frames >= 1, got {value!r}')


def window_starts(length, span, stride):
    """First frames of the windows over `length` frames: 0 alone when the sequence fits in one
    span, else every `stride` frames and a last window ending at the last frame."""
    if length <= span:
        return [0]
    return [*range(0, length - span, stride), length - span]


# ------------------------------------------------------------------------------------- command


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--weights', required=True, help='a run\'s checkpoint (best.pt, last.pt)')
    parser.add_argument('--input', required=True, nargs='+', metavar='FILE',
                        help='.skeleton, .json or .npy sequence files')
    parser.add_argument('--top', type=int, default=5, metavar='K', help='classes shown per input')
    parser.add_argument('--json', metavar='OUT', help='also write the predictions to this file')
    parser.add_argument('--span', type=int, default=DEFAULT_SPAN,
                        help='input frames per window (default %(default)s)')
    parser.add_argument('--stride', type=int, help='frames between windows (default: span // 2)')
    parser.add_argument('--image-size', type=int, nargs=2, metavar=('HEIGHT', 'WIDTH'),
                        help='2D checkpoints: the size of the video the keypoints come from')
    return parser.parse_args(argv)


def check_options(args):
    """Refuse, before any work, a --top below 1 and a --json output that would destroy something
    (a checkpoint, an input: torchlight/files.py check_output_file)."""
    if args.top < 1:
        raise ConfigError(f'--top must be at least 1, got {args.top}')
    if args.json:
        check_output_file(args.json, '--json', ('.json',), inputs=[args.weights, *args.input])


def describe(path, top, note):
    """The lines printed for one input."""
    width = max(len(t['name']) for t in top)
    lines = [path] + [f"  {t['name']:{width}s}  {t['prob']:.3f}" for t in top]
    return '\n'.join(lines + ([f'  {note}'] if note else []))


def write_json(path, results):
    """The predictions as JSON, written atomically (a failed write leaves any old file whole)."""
    try:
        atomic_write(path, (json.dumps(results, indent=2) + '\n').encode())
    except OSError as err:
        raise ConfigError(f'--json {path}: cannot write it ({err.strerror})') from None


def main(argv=None):
    args = parse_args(argv)
    try:
        check_options(args)
        predictor = Predictor(args.weights, span=args.span, stride=args.stride)
        predictor.image_size_info(args.image_size)  # refused before any input is read
        # every input is read and checked against the checkpoint (and refused) before any note
        # is shown or any input scored: a refusal is then the only line printed
        sequences = [(path, predictor.read(path)) for path in args.input]
        notes = [*predictor.notes, *(note for _, sequence in sequences for note in sequence.notes),
                 predictor.scaling_note(args.image_size)]
        for note in filter(None, notes):
            print(f'note: {note}', file=sys.stderr)
        results = []
        for path, sequence in sequences:
            probabilities = predictor.predict(sequence.frames, where=path,
                                              image_size=args.image_size)
            top = predictor.top(probabilities, args.top)
            note = predictor.ambiguity(probabilities)
            results.append({'input': path, 'top': top, 'ambiguous': note})
            print(describe(path, top, note))
        if args.json:
            write_json(args.json, results)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
