"""SF-Head losses on hand-built features, and SF-Head placement (inline / branch, chosen blocks)."""

import pytest
import torch

from model import build_model
from model.losses import consistency_loss, redundancy_loss, sf_head_losses
from torchlight.registry import ConfigError


def features(*rows):
    """One sample's features with one channel group per row: (G, 1, 1, D), rows of numbers."""
    return torch.tensor(rows, dtype=torch.float32)[:, None, None, :]


BASE = features([1.0, 2.0, 3.0, 6.0], [0.0, 1.0, 0.0, -1.0])
# Centred per group: [-2, -1, 0, 3] and [0, 1, 0, -1]. Groups orthogonal to those after centring:
ORTHOGONAL = features([1.0, -2.0, 0.0, 0.0], [1.0, 0.0, -2.0, 0.0])


def redundancy(a, b, groups=2):
    return redundancy_loss(a, b, groups).item()


def consistency(r, sources, groups=2):
    return consistency_loss(r, sources, groups).item()


def test_redundancy_of_identical_scaled_and_orthogonal_features():
    assert redundancy(BASE, BASE) == pytest.approx(1.0)
    assert redundancy(BASE, 3 * BASE) == pytest.approx(1.0)
    assert redundancy(BASE, -0.5 * BASE) == pytest.approx(1.0)  # squared: the sign does not help
    assert redundancy(BASE, BASE + 7) == pytest.approx(1.0)  # centred: offsets do not help
    # Group 1: centred [-2,-1,0,3] · centred [1.25,-1.75,0.25,0.25] = -2.5+1.75+0+0.75 = 0 →
    # cos² =
    # 0. Group 2: centred [0,1,0,-1] · centred [1.25,0.25,-1.75,0.25] = 0.25 − 0.25 = 0 → cos²
    # = 0.
    assert redundancy(BASE, ORTHOGONAL) == pytest.approx(0.0, abs=1e-7)
    # Half-way: a with a + b where b ⟂ a and |b| = |a| gives cos = 1/√2, cos² = 1/2.
    a = torch.tensor([-2.0, -1.0, 0.0, 3.0])
    b = torch.tensor([1.25, -1.75, 0.25, 0.25])
    b = b / b.norm() * a.norm()
    assert redundancy(features(a.tolist()), features((a + b).tolist()), groups=1) == pytest.approx(
        0.5
    )


def test_a_group_is_one_vector_over_the_batch():
    # Two samples, two groups each: (N·G, 1, 1, 2) in sample-major order. Group 1 gathers rows 0
    # and 2.
    f_t = features([1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0])
    f_s = features([0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0])
    # Group 1: f_t [1,0,0,1] vs f_s [0,1,1,0]: centred [.5,-.5,-.5,.5] · [-.5,.5,.5,-.5] → cos =
    # -1, cos² = 1. Group 2: f_t [1,0,1,0] vs f_s [1,0,1,0]: identical → cos² = 1. Mean 1.
    assert redundancy(f_t, f_s) == pytest.approx(1.0)
    g_s = features([1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0])
    # Group 1: [1,0,0,1] vs [1,0,1,0]: centred [.5,-.5,-.5,.5] · [.5,-.5,.5,-.5] = 0 → 0; group
    # 2: [1,0,1,0] vs [0,1,0,1]: cos = -1 → 1. Mean 1/2.
    assert redundancy(f_t, g_s) == pytest.approx(0.5)


def test_consistency_of_identical_scaled_opposite_and_orthogonal_features():
    assert consistency(BASE, [BASE, 2 * BASE, BASE]) == pytest.approx(0.0, abs=1e-7)
    assert consistency(BASE, [-BASE]) == pytest.approx(2.0)
    x = features([1.0, 0.0], [0.0, 2.0])
    y = features([0.0, 3.0], [1.0, 0.0])
    assert consistency(x, [y]) == pytest.approx(1.0)
    # Mean over sources: 0 (identical), 1 (orthogonal), 2 (opposite) → 1.
    assert consistency(x, [x, y, -x]) == pytest.approx(1.0)


def test_losses_average_over_heads():
    heads = [
        {'t': BASE, 's': BASE, 'r': BASE, 'c': BASE, 'groups': 2},
        {'t': BASE, 's': ORTHOGONAL, 'r': BASE, 'c': -BASE, 'groups': 2},
    ]
    losses = sf_head_losses(heads)
    assert losses['redundancy'].item() == pytest.approx((1.0 + 0.0) / 2)
    # Head 2: 1 − cos(r, t) = 0, 1 − cos(r, s) = 1 − cos(BASE, ORTHOGONAL), 1 − cos(r, c) =
    # 2.
    cos_rs = (
        torch.nn.functional.cosine_similarity(BASE.flatten(1), ORTHOGONAL.flatten(1)).mean().item()
    )
    assert losses['consistency'].item() == pytest.approx((0.0 + (0.0 + (1 - cos_rs) + 2.0) / 3) / 2)


def small(sf_head, seed=0):
    torch.manual_seed(seed)
    return build_model(
        'ctrgcn', num_class=5, channels=[16, 32, 32], strides=[1, 2, 1], sf_head=sf_head
    )


def test_branch_mode_leaves_the_backbone_untouched_and_still_trains_it():
    plain = small(None).eval()
    branch = small({'groups': 2, 'mode': 'branch'})
    branch.load_state_dict(plain.state_dict(), strict=False)  # same backbone weights; heads extra
    branch.eval()
    x = torch.randn(2, 3, 12, 25, 2)
    with torch.no_grad():
        torch.testing.assert_close(branch(x), plain(x), rtol=0, atol=0)
        logits, aux = branch(x, return_aux=True)
    torch.testing.assert_close(logits, plain(x), rtol=0, atol=0)
    assert set(aux) == {'sf_redundancy', 'sf_consistency'}
    # The losses alone send gradients into the backbone (the GCN units the heads read).
    branch.train()
    _, aux = branch(x, return_aux=True)
    (aux['sf_redundancy'] + aux['sf_consistency']).backward()
    assert branch.l1.gcn1.convs[0].conv3.weight.grad.abs().sum() > 0
    # What comes after the last head's input (its block's TCN, the classifier) gets nothing from the
    # losses.
    assert branch.l3.tcn1.branches[0][0].weight.grad is None and branch.fc.weight.grad is None
    assert branch.l3.sf_head.cweight.grad.abs().sum() > 0


def test_inline_mode_changes_the_path_and_blocks_select_heads():
    model = small({'groups': 2, 'blocks': [1, 3]})
    assert (
        model.l1.sf_head is not None and model.l2.sf_head is None and model.l3.sf_head is not None
    )
    plain = small(None)
    model.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 3, 12, 25, 2)
    model.eval()
    plain.eval()
    assert not torch.allclose(model(x), plain(x))
    assert set(model(x, return_aux=True)[1]) == {'sf_redundancy', 'sf_consistency'}
    assert small(None)(x, return_aux=True)[1] == {}


@pytest.mark.parametrize(
    'sf_head, message',
    [
        ({'mode': 'side'}, 'mode must be inline or branch'),
        ({'blocks': [0, 2]}, r'blocks must be .all. or a list of block numbers 1\.\.3'),
        ({'blocks': 'some'}, 'blocks must be'),
    ],
)
def test_bad_placement_is_named(sf_head, message):
    with pytest.raises(ConfigError, match=message):
        small({'groups': 2, **sf_head})


def test_the_model_weights_its_own_losses():
    """aux = loss_weights × the unweighted head losses, computed here from the heads' features."""
    x = torch.randn(2, 3, 12, 25, 2)
    weights = {'redundancy': 0.25, 'consistency': 3.0}
    model = small({'groups': 2, 'loss_weights': weights}).eval()
    features = []
    with torch.no_grad():
        model.forward_features(x, features)
        unweighted = sf_head_losses(features)
        _, aux = model(x, return_aux=True)
    assert aux['sf_redundancy'].item() == pytest.approx(0.25 * unweighted['redundancy'].item())
    assert aux['sf_consistency'].item() == pytest.approx(3.0 * unweighted['consistency'].item())
    with torch.no_grad():
        _, default = small({'groups': 2}).eval()(x, return_aux=True)
    # The default weights are 0.1 each, on the same (seeded) weights.
    assert default['sf_redundancy'].item() == pytest.approx(0.1 * unweighted['redundancy'].item())


@pytest.mark.parametrize(
    'weights, message',
    [
        ({'redundency': 1}, "unknown key 'redundency' in model_args.sf_head.loss_weights"),
        ({'consistency': -1}, 'consistency must be a number >= 0, got -1'),
        ([0.1], 'loss_weights must be a mapping'),
    ],
)
def test_bad_loss_weights_are_named(weights, message):
    with pytest.raises(ConfigError, match=message):
        small({'groups': 2, 'loss_weights': weights})


def test_training_only_arguments_are_left_out_at_test_time():
    from model import inference_args

    inline = inference_args(
        'ctrgcn', {'drop_out': 0.3, 'sf_head': {'groups': 2, 'loss_weights': {'redundancy': 1.0}}}
    )
    assert 'drop_out' not in inline and inline['sf_head'] == {'groups': 2}
    assert inference_args('ctrgcn', {'sf_head': {'mode': 'branch'}})['sf_head'] is None
    assert inference_args('stgcn', {})['temporal_kernel'] == 9  # defaults filled in


def test_the_model_drops_branch_heads_of_a_checkpoint_on_load():
    branch = small({'groups': 2, 'mode': 'branch'}).state_dict()
    plain = small(None)
    assert any('.sf_head.' in k for k in branch)
    kept = plain.adapt_state(branch, {'sf_head': {'mode': 'branch'}})
    assert set(kept) == set(plain.state_dict())
    # Inline heads change the function: their weights are never dropped silently.
    inline = small({'groups': 2}).state_dict()
    assert set(plain.adapt_state(inline, {'sf_head': {'groups': 2}})) == set(inline)
