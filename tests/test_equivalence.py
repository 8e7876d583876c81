"""Every backbone, with and without SF-Head, computes the function of the reference-style
implementations in tools/reference/ (written the way the reference code is, independently of
model/).

In float64, where rounding cannot hide a difference, outputs in training and in evaluation mode and
every parameter's gradient agree to 1e-9 of their largest magnitude. In float32, a reference
checkpoint (the reference's key layout, random weights, BatchNorm statistics measured on random
input) loaded through `load_weights` gives outputs within 1e-5 of the largest logit.
"""
import copy
import functools

import pytest
import torch
from torch import nn

from graph import distance_partition, get_layout
from model import build_model
from model.blocks import Dropout
from tools.reference import calibrate_batch_norms, randomise
from tools.reference.ctrgcn import ReferenceCTRGCN
from tools.reference.stgcn import OriginalSTGCN
from torchlight.checkpoint import load_weights

HEADS = {'none': None, 'inline': {'groups': 8}, 'branch': {'groups': 8, 'mode': 'branch'}}


def cases(heads):
    """(backbone, head) parameters. Full-size models take seconds each: the fast tests run CTR-GCN
    with SF-Head inline (backbone and head together), the slow ones the rest (CI runs both)."""
    return [pytest.param(name, head, marks=() if (name, head) == ('ctrgcn', 'inline')
                         else pytest.mark.slow)
            for name in ('ctrgcn', 'stgcn', 'tcagcn') for head in heads]


def reference_model(name, head):
    """A fresh copy of the reference-style model with random weights of a trained model's scale;
    the released SF-Head inline in every block for `inline` (a branch head does not change the
    backbone's function)."""
    sf_groups = 8 if head == 'inline' else None
    return copy.deepcopy(calibrated_reference(name, sf_groups))


@functools.cache
def calibrated_reference(name, sf_groups, seed=2):
    """Built once per backbone and head: calibrating the BatchNorms runs the slow reference three
    times. The seed gives logits of a realistic scale (up to 10) in all three backbones."""
    torch.manual_seed(seed)
    if name == 'stgcn':
        A = torch.from_numpy(distance_partition(get_layout('ntu25')))
        reference = OriginalSTGCN(A, num_class=60, sf_groups=sf_groups)
    else:
        reference = ReferenceCTRGCN(num_class=60, tca=name == 'tcagcn', sf_groups=sf_groups)
    randomise(reference, seed)
    # TCA-GCN: calibration factors near 1, as in a trained model (random route functions compound
    # to inf over 10 blocks)
    with torch.no_grad():
        for key, value in reference.state_dict().items():
            if key.endswith('conv_rf.b.weight'):
                value.mul_(0.01)
    return calibrate_batch_norms(with_our_dropout(reference), (4, 3, 16, 25, 2))


def with_our_dropout(reference):
    """The reference's nn.Dropout modules replaced by ours (the same function, the mask drawn from
    uniform integers instead of bernoulli_), so that under one seed both models draw the same masks
    in the same order and their training outputs can be compared."""
    for parent in list(reference.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.Dropout):
                setattr(parent, name, Dropout(child.p))
    return reference


def ours_from(reference, name, head, tmp_path):
    """Our model, built by name, with the reference's weights loaded as a user loads a reference
    checkpoint (branch heads, which the reference has not, keep their own initial weights)."""
    ours = build_model(name, num_class=60, sf_head=HEADS[head])
    if head == 'branch':
        ours.load_state_dict({**ours.state_dict(),
                              **ours.adapt_state(reference.state_dict())})
        return ours
    path = tmp_path / f'{name}_{head}.pt'
    torch.save({'state_dict': {'module.' + k: v for k, v in reference.state_dict().items()}}, path)
    load_weights(ours, str(path))
    return ours


def reference_gradients(reference, ours):
    """The reference's parameter gradients, renamed to our parameter names (unused reference keys
    dropped)."""
    grads = {k: p.grad for k, p in reference.named_parameters() if p.grad is not None}
    return ours.adapt_state(grads)


def assert_close_relative(actual, expected, tolerance, what, floor=0.0):
    scale = max(expected.abs().max().item(), floor)
    difference = (actual - expected).abs().max().item()
    assert difference <= tolerance * scale, (f'{what}: difference {difference:.3e}, '
                                             f'largest {scale:.3e}')


@pytest.mark.parametrize(('name', 'head'), cases(HEADS))
def test_float64_outputs_and_gradients_equal_the_reference(name, head, tmp_path):
    reference = reference_model(name, head)
    ours = ours_from(reference, name, head, tmp_path)
    reference.double(), ours.double()
    x = torch.randn(2, 3, 16, 25, 2, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(1))
    reference.eval(), ours.eval()
    with torch.no_grad():
        assert_close_relative(ours(x), reference(x), 1e-9, 'evaluation output')
    reference.train(), ours.train()
    outputs = []
    for model in (reference, ours):
        torch.manual_seed(5)  # ST-GCN's dropout: the same masks, drawn in the same order
        outputs.append(model(x))
    assert_close_relative(outputs[1], outputs[0], 1e-9, 'training output')
    for output in outputs:
        torch.nn.functional.cross_entropy(output, torch.tensor([3, 41])).backward()
    expected = reference_gradients(reference, ours)
    # A gradient that vanishes in exact arithmetic (a bias followed by a BatchNorm in training) is
    # rounding noise in both: it is measured against a thousandth of the largest gradient.
    floor = 1e-3 * max(g.abs().max().item() for g in expected.values())
    for key, parameter in ours.named_parameters():
        if head == 'branch' and '.sf_head.' in key:
            assert parameter.grad is None     # a branch head feeds only the SF-Head losses
            continue
        assert_close_relative(parameter.grad, expected[key], 1e-9, f'gradient of {key}', floor)


@pytest.mark.parametrize(('name', 'head'), cases(['none', 'inline']))
def test_reference_checkpoints_give_the_reference_outputs_in_float32(name, head, tmp_path):
    reference = reference_model(name, head).eval()
    ours = ours_from(reference, name, head, tmp_path).eval()
    x = torch.randn(2, 3, 24, 25, 2, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = reference(x)
        assert 0.1 < expected.abs().max().item() < 100            # logits of a realistic scale
        assert_close_relative(ours(x), expected, 1e-5, 'float32 output')
