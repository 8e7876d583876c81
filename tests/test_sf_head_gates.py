"""The gate profiles that tools/inspect_sf_head.py draws, against the released SF-Head's gates
computed independently (tools/reference/sf_head.py: permuted copies, a 2-D convolution)."""

import numpy as np
import pytest
import torch

from data.inputs import read_input
from feeders import build_feeder
from model import build_model
from predict import Predictor
from tests.test_predict import SMALL, write_checkpoint
from tools.inspect_sf_head import gate_figure, inspect
from tools.inspect_sf_head import main as inspect_main
from tools.reference import calibrate_batch_norms
from tools.sf_head_gates import gate_profiles, heads_of


def released_gates(head, x):
    """The release's three AC-FA gates on head input x (N·M, C, T, V), each (B, P, Q) on the
    plane it convolves: (C, V), (T, C), (T, V); B = N·M·G."""
    x = x.reshape(x.shape[0] * head.groups, -1, *x.shape[2:])
    x1, x2, x3, _ = x.chunk(4, dim=1)
    f_t = x1 * torch.sigmoid(head.cweight * x1.mean((2, 3), keepdim=True) + head.cbias)
    f_s = x3 * torch.sigmoid(head.sweight * head.gn(x3) + head.sbias)

    def gate(module, view):                                   # view: the pooled axis first
        pooled = torch.stack([view.max(1)[0], view.mean(1)], dim=1)
        return torch.sigmoid(module.conv(pooled))[:, 0]

    return {
        'cv': gate(head.cv, f_t.permute(0, 2, 1, 3)),          # (B, C, V)
        'tc': gate(head.tc, f_s.permute(0, 3, 2, 1)),          # (B, T, C)
        'tv': gate(head.tv, x2),                                # (B, T, V)
    }


@pytest.fixture
def model_and_input():
    torch.manual_seed(0)
    model = build_model('ctrgcn', num_class=5, channels=[16, 32, 32], strides=[1, 2, 1],
                        sf_head={'groups': 2, 'blocks': [1, 3]})
    calibrate_batch_norms(model, (4, 3, 16, 25, 2))
    with torch.no_grad():
        for _, head in heads_of(model):
            head.w.copy_(torch.randn(4))
            for p in (head.cweight, head.sweight):
                p.copy_(torch.randn_like(p))
    return model.eval(), torch.randn(3, 3, 16, 25, 2)


def test_profiles_average_the_released_gates(model_and_input):
    model, x = model_and_input
    inputs = {}
    hooks = [head.register_forward_pre_hook(
        lambda module, args, name=name: inputs.update({name: args[0]}))
        for name, head in heads_of(model)]
    profiles = gate_profiles(model, x)
    for hook in hooks:
        hook.remove()
    assert list(profiles) == ['l1', 'l3']
    n, m = x.shape[0], x.shape[-1]
    for name, head in heads_of(model):
        gates = {k: g.view(n, m, head.groups, *g.shape[1:]) for k, g in
                 released_gates(head, inputs[name]).items()}
        frames = 16 if name == 'l1' else 8
        expected = {
            'joints': gates['cv'].mean((2, 3)),                # (N, M, V)
            'frames': gates['tc'].mean((2, 4)),                # (N, M, T)
            'map': gates['tv'].mean(2),                        # (N, M, T, V)
        }
        assert profiles[name]['frames'].shape == (n, m, frames)
        for key, value in expected.items():
            torch.testing.assert_close(torch.from_numpy(profiles[name][key]), value,
                                       rtol=0, atol=1e-5)
        weights = torch.exp(head.w) / torch.exp(head.w).sum()
        torch.testing.assert_close(torch.from_numpy(profiles[name]['weights']), weights.detach())


# ------------------------------------------------------------------ tools/inspect_sf_head.py


def demo_sample_file(demo_root, tmp_path, class_name):
    """The first test sample of class `class_name` of the demo data, saved as (M, T, V, C) .npy."""
    feeder = build_feeder('skeleton', data_path=demo_root, split='test')
    index = list(feeder.labels).index(feeder.class_names.index(class_name))
    path = tmp_path / f'{class_name}.npy'
    np.save(path, feeder.reader[index].transpose(1, 0, 2, 3))          # (T, M, V, C) → (M, T, V, C)
    return str(path)


@pytest.mark.slow
def test_inspect_draws_every_head_for_each_input(tmp_path, demo_root, capsys):
    weights = write_checkpoint(tmp_path / 'best.pt', demo_root, model_args=SMALL)
    inputs = [demo_sample_file(demo_root, tmp_path, name) for name in ('wave', 'salute')]
    out = tmp_path / 'gates.png'
    assert inspect_main(['--weights', weights, '--input', *inputs, '--out', str(out)]) == 0
    assert out.stat().st_size > 0
    printed = capsys.readouterr().out
    # both heads (blocks l1, l2), each with both inputs and their three strongest joints
    assert printed.count('mixing weights') == 2
    assert printed.count('wave.npy (') == 2 and printed.count('salute.npy (') == 2

    predictor = Predictor(weights)
    profiles, labels, window = inspect(predictor, inputs)
    assert window == 64                                   # the test feeder's default window
    figure = gate_figure(profiles, labels, predictor.layout.joints, window)
    # per block: frames, joints, one map per input, mixing weights; and the maps' colour bar
    assert len(figure.axes) == 2 * (3 + 2 + 1)
    titles = [axes.get_title() for axes in figure.axes]
    assert titles[:5] == ['l1: frames (T, C gate)', 'l1: joints (C, V gate)',
                          f'l1: T × V gate, {labels[0]}', f'l1: T × V gate, {labels[1]}',
                          'l1: AC-FA mixing weights\n(learnt: the same for every input)']
    joints_axes = figure.axes[1]
    assert [t.get_text() for t in joints_axes.get_xticklabels()] == list(predictor.layout.joints)
    # each input's profile is that of its own first window
    wave = torch.from_numpy(predictor.model_inputs(read_input(inputs[0]))[:1])
    np.testing.assert_allclose(profiles['l2']['joints'][0],
                               gate_profiles(predictor.model, wave)['l2']['joints'][0, 0])


def test_inspect_refuses_a_model_without_heads_and_a_missing_person(tmp_path, demo_root, capsys):
    plain = write_checkpoint(tmp_path / 'plain.pt', demo_root,
                             model_args={**SMALL, 'sf_head': None})
    wave = demo_sample_file(demo_root, tmp_path, 'wave')
    assert inspect_main(['--weights', plain, '--input', wave]) == 2
    assert 'without an inline SF-Head' in capsys.readouterr().err
    weights = write_checkpoint(tmp_path / 'best.pt', demo_root, model_args=SMALL)
    assert inspect_main(['--weights', weights, '--input', wave, '--person', '2']) == 2
    assert '--person 2: the model reads persons 0 to 1' in capsys.readouterr().err
    alone = tmp_path / 'alone.npy'
    np.save(alone, np.load(wave)[0])                           # (T, V, C): one person
    assert inspect_main(['--weights', weights, '--input', str(alone), '--person', '1']) == 2
    assert f'{alone}: person slot 1 is empty' in capsys.readouterr().err
    flat = tmp_path / 'flat.npy'
    np.save(flat, np.load(wave)[0, :, :, :2])                  # (T, V, 2): 2D keypoints
    assert inspect_main(['--weights', weights, '--input', str(flat)]) == 2
    assert 'holds 2D keypoints (x, y, score)' in capsys.readouterr().err
    assert inspect_main(['--weights', weights, '--input', wave, '--out', weights]) == 2
    assert 'the output must be a .png or .pdf or .svg file' in capsys.readouterr().err
    assert inspect_main(['--weights', weights, '--input', wave, '--image-size', '720', '1280']) == 2
    assert 'image' in capsys.readouterr().err
    assert not list(tmp_path.glob('*.png'))
