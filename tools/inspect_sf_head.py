"""What SF-Head attends to in one sequence: python -m tools.inspect_sf_head --weights W --input FILE

For every block with an SF-Head it draws, in one figure, the AC-FA gates averaged over the head's
channels (tools/sf_head_gates.py): the weight of each frame (the (T, C) gate), of each joint (the
(C, V) gate, joints named by the checkpoint's layout), the (T, V) gate as a map, and the four mixing
weights. Several inputs (e.g. a salute and a wave) share the frame and joint panels, one colour
each. The inputs are those predict.py reads, preprocessed as the checkpoint's test feeder does; the
gates, and the prediction in each label, are those of the first window of a sequence longer than
predict.py's window. It also prints, per block
and input, the three frames and joints with the largest weights.

    python -m tools.inspect_sf_head --weights work_dir/demo/joint/best.pt --input a.npy b.npy

2D checkpoints take the video's --image-size HEIGHT WIDTH, as predict.py does.
"""

import argparse
import os
import sys

import numpy as np
import torch

from predict import Predictor
from tools.sf_head_gates import MIXED_TERMS, gate_profiles, heads_of
from torchlight import plots
from torchlight.files import check_output_file
from torchlight.registry import ConfigError

PANEL_WIDTH, PANEL_HEIGHT = 3.6, 2.4
FIGURE_SUFFIXES = ('.png', '.pdf', '.svg')


def top_positions(values, names, k=3):
    """The k names with the largest values, largest first, with their values."""
    order = np.argsort(values)[::-1][:k]
    return ', '.join(f'{names[i]} {values[i]:.2f}' for i in order)


def gate_figure(profiles, labels, joint_names, window, title=''):
    """Rows: blocks; columns: frames, joints, one (T, V) map per input, mixing weights.
    `profiles[block][key]` holds one row per input (person already chosen)."""
    columns = 3 + len(labels)
    figure = plots.new_figure(PANEL_WIDTH * columns, PANEL_HEIGHT * len(profiles))
    figure.suptitle(title)
    grid = figure.subplots(len(profiles), columns, squeeze=False)
    for row, (block, profile) in zip(grid, profiles.items()):
        frames_axes, joints_axes, *map_axes, weights_axes = row
        steps = profile['frames'].shape[1]
        # a block's frame t covers input frames [t·stride, (t + 1)·stride)
        positions = (np.arange(steps) + 0.5) * window / steps
        width = 0.8 / len(labels)
        for i, label in enumerate(labels):
            frames_axes.plot(positions, profile['frames'][i], label=label)
            joints_axes.bar(np.arange(len(joint_names)) + i * width, profile['joints'][i],
                            width=width, label=label)
        frames_axes.set_title(f'{block}: frames (T, C gate)', fontsize=9)
        frames_axes.set_xlim(0, window)
        frames_axes.set_ylabel('gate, mean over channels', fontsize=7)
        joints_axes.set_title(f'{block}: joints (C, V gate)', fontsize=9)
        joints_axes.set_xticks(np.arange(len(joint_names)) + 0.4 - width / 2, joint_names,
                               rotation=90, fontsize=6)
        # one colour scale per block, so that the inputs' maps compare
        low, high = profile['map'].min(), profile['map'].max()
        for axes, label, gate_map in zip(map_axes, labels, profile['map']):
            image = axes.imshow(gate_map.T, aspect='auto', cmap='viridis', vmin=low, vmax=high,
                                extent=(0, window, len(joint_names) - 0.5, -0.5))
            axes.set_title(f'{block}: T × V gate, {label}', fontsize=8)
            axes.set_yticks(range(len(joint_names)), joint_names, fontsize=4)
        figure.colorbar(image, ax=map_axes, fraction=0.05, pad=0.01)
        weights_axes.bar(range(len(MIXED_TERMS)), profile['weights'])
        weights_axes.set_xticks(range(len(MIXED_TERMS)), MIXED_TERMS, rotation=30, fontsize=6)
        weights_axes.set_ylim(0, 1)
        weights_axes.set_title(f'{block}: AC-FA mixing weights\n(learnt: the same for every input)',
                               fontsize=8)
    frames_axes, _, *map_axes, _ = grid[-1]
    for axes in (frames_axes, *map_axes):
        axes.set_xlabel(f'frame of the {window}-frame model input', fontsize=8)
    grid[0][0].legend(fontsize=7)
    return figure


def inspect(predictor, paths, person=0, image_size=None):
    """(profiles {block: {key: one row per input}}, labels, window): the gates of each input's
    first window, for person slot `person`; `window` the frames of the model input."""
    persons = predictor.meta['model_args']['num_person']
    if not 0 <= person < persons:
        raise ConfigError(f'--person {person}: the model reads persons 0 to {persons - 1}')
    labels, rows = [], []
    for path in paths:
        sequence = predictor.read(path)                # checked against the checkpoint
        for note in sequence.notes:
            print(f'note: {note}', file=sys.stderr)
        frames = sequence.frames
        first = torch.from_numpy(
            predictor.model_inputs(frames, where=path, image_size=image_size)[:1]
        )                                                                   # (1, C, T, V, M)
        if not first[..., person].any():
            raise ConfigError(f'{path}: person slot {person} is empty (the sequence holds fewer '
                              f'persons); choose another --person')
        # the prediction of the window whose gates are drawn
        with torch.no_grad():
            probabilities = torch.softmax(predictor.model(first).double(), dim=1)[0].numpy()
        top = predictor.top(probabilities, k=1)[0]
        labels.append(f"{os.path.basename(path)} ({top['name']} {top['prob']:.2f})")
        rows.append(gate_profiles(predictor.model, first))
    profiles = {
        block: {key: np.stack([row[block][key][0, person] for row in rows])
                for key in ('frames', 'joints', 'map')}
        for block in rows[0]
    }
    for block in profiles:
        profiles[block]['weights'] = rows[0][block]['weights']
    return profiles, labels, first.shape[2]


def print_summary(profiles, labels, joint_names, window):
    for block, profile in profiles.items():
        weights = ', '.join(f'{term} {w:.2f}' for term, w in zip(MIXED_TERMS, profile['weights']))
        print(f'{block}: mixing weights {weights}')
        steps = profile['frames'].shape[1]
        frame_names = [f'frame {int(t * window / steps)}' for t in range(steps)]
        for label, frames, joints in zip(labels, profile['frames'], profile['joints']):
            print(f'  {label}: {top_positions(frames, frame_names)}; '
                  f'{top_positions(joints, joint_names)}')


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--weights', required=True, help='a checkpoint of a run (best.pt, last.pt)')
    parser.add_argument('--input', nargs='+', required=True, help='sequence files (as predict.py)')
    parser.add_argument('--person', type=int, default=0, help='the person slot to show')
    parser.add_argument('--image-size', type=int, nargs=2, metavar=('HEIGHT', 'WIDTH'),
                        help='2D checkpoints: the size of the video the keypoints come from')
    parser.add_argument('--out', help='the figure (.png, .pdf, .svg); default: '
                        'sf_head_<input>.png beside the checkpoint')
    args = parser.parse_args(argv)
    stem = os.path.splitext(os.path.basename(args.input[0]))[0]
    out = args.out or os.path.join(os.path.dirname(args.weights) or '.', f'sf_head_{stem}.png')
    try:
        if not plots.available():
            raise ConfigError('the figure needs matplotlib: '
                              'pip install -r requirements-optional.txt')
        check_output_file(out, '--out', FIGURE_SUFFIXES, inputs=[args.weights, *args.input])
        predictor = Predictor(args.weights)
        if not heads_of(predictor.model):
            raise ConfigError(f'{args.weights} is a model without an inline SF-Head: '
                              f'nothing to show')
        predictor.image_size_info(args.image_size)  # refused where the transforms take none
        profiles, labels, window = inspect(predictor, args.input, args.person, args.image_size)
        print_summary(profiles, labels, predictor.layout.joints, window)
        title = f'SF-Head gates of {args.weights}, person slot {args.person}'
        figure = gate_figure(profiles, labels, predictor.layout.joints, window, title)
        plots.save(figure, out)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f'figure written to {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
