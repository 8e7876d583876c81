import os
import re

import pytest

from tools.model_info import main, model_report

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')


def reference_multiply_adds(listing):
    """The 'multiply-adds at T=64: X G' figure in a reference listing's header."""
    header = open(os.path.join(FIXTURES, listing)).read(600)
    return float(re.search(r'multiply-adds at T=64: ([\d.]+) G', header).group(1)) * 1e9


def relation_convs_on_frame_means_save():
    """CTR-GCN and TCA-GCN run conv1/conv2 on the frame mean: per block 3 subsets × 2 convs ×
    C_in·R·V multiply-adds for T − 1 frames fewer, for each of the 2 persons:
    300 · C_in · R · (T − 1)."""
    # (C_in, R, T)
    blocks = [(3, 8, 64)] + [(64, 8, 64)] * 4 + [(128, 16, 32)] * 3 + [(256, 32, 16)] * 2
    return sum(300 * c * r * (t - 1) for c, r, t in blocks)


def stgcn_widening_units_save():
    """ST-GCN's widening graph units aggregate their C_in input channels before the 1×1 conv: the
    K = 3 aggregations over V = W = 25 joints run on C_in instead of C_out channels, the conv's
    cost unchanged; for each of the 2 persons: 2 · 3 · T · 625 · (C_out − C_in)."""
    # (C_in, C_out, T) of l1, l5, l8 (the unit runs before its block's temporal stride)
    widening = [(3, 64, 64), (64, 128, 64), (128, 256, 32)]
    return sum(2 * 3 * t * 625 * (c_out - c_in) for c_in, c_out, t in widening)


@pytest.mark.parametrize('name', ['ctrgcn', 'stgcn', 'tcagcn'])
def test_multiply_adds_are_the_reference_figures_less_what_the_cheaper_orders_save(name):
    # CTR-GCN and TCA-GCN run the relation convs on frame means; ST-GCN's widening units
    # aggregate before the conv.
    report = model_report(name, {'num_class': 60}, 64)
    saved = (stgcn_widening_units_save() if name == 'stgcn'
             else relation_convs_on_frame_means_save())
    expected = reference_multiply_adds(f'{name}_state_dict.txt') - saved
    assert report['multiply_adds'] == pytest.approx(expected, abs=0.5e6)
    assert report['sf_head_multiply_adds'] == 0


def sf_head_gate_multiply_adds():
    """SF-Head's only products are its three 7×7 one-output gates, each run as a 1-D convolution
    along the longer axis L of its plane with the shorter S (× max and mean) as channels: L · S ·
    2S · 7 per plane, for 2 persons × 8 groups. Planes: (c, V), (T, c), (T, V) with c = C / 32, at
    the head's T (before the block's stride)."""
    # (C, T)
    blocks = [(64, 64)] * 4 + [(128, 64)] + [(128, 32)] * 2 + [(256, 32)] + [(256, 16)] * 2
    total = 0
    for channels, frames in blocks:
        c = channels // 32
        for plane in ((c, 25), (frames, c), (frames, 25)):
            length, width = max(plane), min(plane)
            total += 16 * length * width * 2 * width * 7
    return total


@pytest.mark.slow  # two full-size models counted
def test_sf_head_share():
    plain = model_report('ctrgcn', {'num_class': 60}, 64)
    with_heads = model_report('ctrgcn', {'num_class': 60, 'sf_head': {'groups': 8}}, 64)
    # One head per block: 3,304 parameters here (the release's unused BN adds 88 more: 3,392).
    assert (
        with_heads['sf_head_parameters'] == with_heads['parameters'] - plain['parameters'] == 3304
    )
    assert (
        with_heads['sf_head_multiply_adds'] == with_heads['multiply_adds'] - plain['multiply_adds']
    )
    assert with_heads['sf_head_multiply_adds'] == sf_head_gate_multiply_adds()


def test_command_line_report(capsys):
    root = os.path.dirname(FIXTURES)
    assert main(['--config', os.path.join(root, '..', 'config/demo/joint.yaml')]) == 0
    out = capsys.readouterr().out
    assert out.startswith('model ctrgcn, 32 frames, one sample\n')
    demo = {
        'num_class': 10,
        'channels': [32, 32, 64, 64],
        'strides': [1, 1, 2, 1],
        'sf_head': {'groups': 8},
    }
    report = model_report('ctrgcn', demo, 32)
    printed = re.search(r'parameters +([\d,]+) +SF-Head +([\d,]+) \(([\d.]+) %\)', out)
    assert [int(printed[1].replace(',', '')), int(printed[2].replace(',', ''))] == [
        report['parameters'],
        report['sf_head_parameters'],
    ]
    assert float(printed[3]) == round(100 * report['sf_head_parameters'] / report['parameters'], 2)
    assert main(['--config', 'nope.yaml']) == 2
    capsys.readouterr()
    # 0 was taken as 'not given' (the window size); a negative count ended in a traceback
    for frames in ('0', '-5'):
        assert main(['--config', os.path.join(root, '..', 'config/demo/joint.yaml'),
                     '--frames', frames]) == 2
        assert capsys.readouterr().err == f'error: --frames must be at least 1, got {frames}\n'
    # a typo of the tool's own option is named as such, not as a training option
    assert main(['--config', os.path.join(root, '..', 'config/demo/joint.yaml'),
                 '--framse', '16']) == 2
    error = capsys.readouterr().err
    assert error == "error: unknown option '--framse' (did you mean '--frames'?)\n"
