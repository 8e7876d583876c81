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
    """CTR-GCN runs conv1/conv2 on the frame mean: per block 3 subsets × 2 convs × C_in·R·V multiply-adds for
    T − 1 frames fewer, for each of the 2 persons: 300 · C_in · R · (T − 1)."""
    blocks = [(3, 8, 64)] + [(64, 8, 64)] * 4 + [(128, 16, 32)] * 3 + [(256, 32, 16)] * 2     # (C_in, R, T)
    return sum(300 * c * r * (t - 1) for c, r, t in blocks)


@pytest.mark.parametrize('name', ['ctrgcn', 'stgcn', 'tcagcn'])
def test_multiply_adds_match_the_reference_figures(name):
    report = model_report(name, {'num_class': 60}, 64)
    assert report['multiply_adds'] == pytest.approx(reference_multiply_adds(f'{name}_state_dict.txt'), abs=0.5e6)
    assert report['sf_head_multiply_adds'] == 0


def test_reordered_ctrgcn_saves_the_relation_convs_multiply_adds():
    report = model_report('ctrgcn', {'num_class': 60, 'exact': False}, 64)
    expected = reference_multiply_adds('ctrgcn_state_dict.txt') - relation_convs_on_frame_means_save()
    assert report['multiply_adds'] == pytest.approx(expected, abs=0.5e6)


def test_sf_head_share():
    plain = model_report('ctrgcn', {'num_class': 60}, 64)
    with_heads = model_report('ctrgcn', {'num_class': 60, 'sf_head': {'groups': 8}}, 64)
    # One head per block: 3,304 parameters here (the release's unused BN adds 88 more: 3,392).
    assert with_heads['sf_head_parameters'] == with_heads['parameters'] - plain['parameters'] == 3304
    assert with_heads['sf_head_multiply_adds'] == with_heads['multiply_adds'] - plain['multiply_adds']
    assert 20e6 < with_heads['sf_head_multiply_adds'] < 24e6          # about 22 M per two-person sample


def test_command_line_report(capsys):
    root = os.path.dirname(FIXTURES)
    assert main(['--config', os.path.join(root, '..', 'config/demo/joint.yaml')]) == 0
    out = capsys.readouterr().out
    assert 'model ctrgcn, 32 frames' in out and 'SF-Head' in out
    assert main(['--config', 'nope.yaml']) == 2
