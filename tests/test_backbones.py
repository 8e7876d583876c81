"""Backbones against the reference models: parameter counts, key names, outputs with reference
weights."""
import numpy as np
import pytest
import torch

from graph import distance_partition, get_layout, hop_distance
from model import build_model
from tests.test_model import read_listing
from tools.reference import calibrate_batch_norms, randomise
from tools.reference.stgcn import OriginalSTGCN
from torchlight.checkpoint import load_weights
from torchlight.registry import ConfigError


def test_blocks_learn_their_own_adjacency():
    # Each block's adjacency is its own tensor (sharing one would make every block learn the same
    # one and make loading keep only the last block's).
    for name, key in (('ctrgcn', 'PA'), ('tcagcn', 'PA'), ('stgcn', 'A')):
        model = build_model(name, num_class=60)
        with torch.no_grad():
            getattr(model.l1.gcn1, key).add_(1.0)
        assert not torch.equal(getattr(model.l1.gcn1, key), getattr(model.l2.gcn1, key))


def test_stgcn_partition_follows_the_reference_rules():
    layout = get_layout('ntu25')
    distance = hop_distance(layout)
    A = distance_partition(layout)
    centre = 20                                    # spine shoulder, ST-GCN's centre for NTU
    assert layout.root == centre
    # Rules of the reference, joint pair by joint pair: within one hop, column-normalised weights;
    # the receiving joint j goes to subset 1 when its (truncated) distance to the centre is >= that
    # of i, else 2.
    degree = (distance <= 1).sum(axis=0)
    for j in range(25):
        for i in range(25):
            if distance[j, i] > 1:
                assert A[:, j, i].sum() == 0
                continue
            subset = 0 if i == j else (1 if distance[j, centre] >= distance[i, centre] else 2)
            assert A[subset, j, i] == pytest.approx(1 / degree[i])
            assert A[:, j, i].sum() == pytest.approx(1 / degree[i])
    # Hand-checked: the left shoulder (5) has neighbours spine shoulder (21) and left elbow (6):
    # degree 3.
    # towards the centre from the shoulder's view: centrifugal set
    assert A[2, 20, 4] == pytest.approx(1 / 3)
    # the elbow, both > 1 hop from the centre: 'root' → subset 1
    assert A[1, 5, 4] == pytest.approx(1 / 3)


def test_stgcn_has_the_reference_parameters():
    model = build_model('stgcn', num_class=60)
    assert sum(p.numel() for p in model.parameters()) == 3_098_832
    reference = OriginalSTGCN(torch.from_numpy(distance_partition(get_layout('ntu25'))))
    listing = read_listing('stgcn_state_dict.txt')['']
    assert {k: tuple(v.shape) for k, v in reference.state_dict().items()} == listing


def test_stgcn_with_sf_head_runs_and_learns():
    model = build_model('stgcn', num_class=5, channels=[32, 64], strides=[1, 2],
                        sf_head={'groups': 2})
    logits = model(torch.randn(2, 3, 16, 25, 2))
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 4])).backward()
    assert logits.shape == (2, 5)
    assert model.l1.sf_head.tv.conv.conv.weight.grad.abs().sum() > 0


def test_checkpoint_of_another_layout_or_class_count_is_refused(tmp_path):
    path = tmp_path / 'ucla.pt'
    torch.save(build_model('stgcn', num_class=10, num_point=20, graph='ucla20').state_dict(), path)
    with pytest.raises(ConfigError,
                       match=r'does not fit this model: .*shape mismatches \(e\.g\. data_bn'):
        load_weights(build_model('stgcn', num_class=60), str(path))
    torch.save(build_model('ctrgcn', num_class=60).state_dict(), path)
    with pytest.raises(ConfigError, match='missing keys .*unexpected keys'):
        load_weights(build_model('stgcn', num_class=60), str(path))


# ------------------------------------------------------------------------------------------ TCA-GCN

def test_tcagcn_matches_the_reference_listing_but_for_the_unused_conv3():
    model = build_model('tcagcn', num_class=60)
    listing = read_listing('tcagcn_state_dict.txt')['']
    conv3 = {k: s for k, s in listing.items() if '.conv3.' in k}
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: s for k, s in listing.items() if k not in conv3}
    unused = sum(int(np.prod(s)) for s in conv3.values())
    assert unused == 656_064
    assert sum(p.numel() for p in model.parameters()) + unused == 5_624_728


@pytest.mark.slow  # a full-size TCA-GCN, saved and loaded
def test_tcagcn_loads_a_reference_state_dict_with_conv3(tmp_path):
    listing = read_listing('tcagcn_state_dict.txt')['']
    model = randomise(build_model('tcagcn', num_class=60))
    state = dict(model.state_dict())
    state.update({k: torch.randn(s) for k, s in listing.items() if '.conv3.' in k})
    path = tmp_path / 'tcagcn.pt'
    torch.save({'state_dict': state}, path)
    fresh = build_model('tcagcn', num_class=60)
    load_weights(fresh, str(path))
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value)


def reference_tca_values(tcagc, x):
    """TCA-GCN's features as the reference computes them: a weight tensor per sample and frame,
    W'[n, u, c, t] = a[n, u, t] · W[u, c], applied with einsum."""
    rf = tcagc.conv_rf
    g = rf.g(torch.nn.functional.adaptive_avg_pool2d(x, 1))
    # (N, U, T, 1)
    a = rf.b(rf.relu(rf.bn(rf.a(torch.nn.functional.adaptive_avg_pool2d(x, (None, 1)) + g)))) + 1
    weight = (a.unsqueeze(2) * tcagc.conv.weight).squeeze(-1)          # (N, U, C, T)
    return torch.einsum('nctv,nuct->nutv', x, weight)


def test_tcagcn_temporal_aggregation_and_fusion_match_the_reference_formulas():
    model = randomise(build_model('tcagcn', num_class=5, channels=[16, 32], strides=[1, 2])).eval()
    x = torch.randn(3, 16, 10, 25)
    tcagc = model.l2.gcn1.convs[1]
    with torch.no_grad():
        torch.testing.assert_close(tcagc.values(x), reference_tca_values(tcagc, x), atol=1e-5,
                                   rtol=1e-5)
        # AFF(x, residual) = 2·x·w + 2·residual·(1 − w),
        # w = σ(local(x + residual) + global(x + residual)), called with residual 0 by the
        # reference.
        af = model.l2.tcn1.af
        y = torch.randn(3, 32, 5, 25)
        w = torch.sigmoid(af.local_att(y) + af.global_att(y))
        torch.testing.assert_close(af(y), 2 * y * w + 2 * 0 * (1 - w))


def test_tcagcn_with_sf_head_trains():
    model = build_model('tcagcn', num_class=5, channels=[32, 64], strides=[1, 2],
                        sf_head={'groups': 2})
    logits, aux = model(torch.randn(2, 3, 16, 25, 2), return_aux=True)
    (torch.nn.functional.cross_entropy(logits, torch.tensor([1, 2])) + sum(aux.values())).backward()
    assert model.l1.gcn1.convs[0].conv.weight.grad.abs().sum() > 0
    assert model.l2.sf_head.w.grad.abs().sum() > 0


@pytest.mark.parametrize('name', ['ctrgcn', 'stgcn', 'tcagcn'])
@pytest.mark.parametrize('sf_head', [None, {'groups': 2},
                                     {'groups': 2, 'mode': 'branch', 'blocks': [2]}])
def test_every_backbone_with_sf_head_off_inline_and_branch(name, sf_head):
    torch.manual_seed(0)
    model = build_model(name, num_class=4, channels=[16, 32], strides=[1, 2], sf_head=sf_head)
    x = torch.randn(2, 3, 12, 25, 2)
    logits, aux = model(x, return_aux=True)
    assert logits.shape == (2, 4) and model(x).shape == (2, 4)
    assert set(aux) == (set() if sf_head is None else {'sf_redundancy', 'sf_consistency'})
    (torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3])) + sum(aux.values())).backward()
    assert model.l1.gcn1.bn.weight.grad.abs().sum() > 0       # the first graph unit learns
    heads = [b.sf_head for b in model.blocks if b.sf_head is not None]
    assert len(heads) == {None: 0, 'inline': 2,
                          'branch': 1}[sf_head and sf_head.get('mode', 'inline')]
    assert all(h.cv.conv.conv.weight.grad.abs().sum() > 0 for h in heads)


# (dtype, bound on the output's difference relative to its largest magnitude): bf16 keeps 8 bits of
# mantissa, fp16 11 (measured: up to 2.3e-2 and 2.3e-3). Without a GPU, fp16 autocast on the CPU
# is the nearest check of the dtypes a CUDA fp16 run meets in the model code (autocast's lists of
# ops it casts differ by device).
AUTOCAST_TYPES = [(torch.bfloat16, 0.05), (torch.float16, 0.01)]


@pytest.mark.parametrize('name', ['ctrgcn', 'stgcn', 'tcagcn'])
@pytest.mark.parametrize('mode', ['train', 'eval'])
@pytest.mark.parametrize(('dtype', 'bound'), AUTOCAST_TYPES)
def test_backbones_run_under_autocast(name, mode, dtype, bound):
    # The graph units accumulate products and fold BatchNorms in evaluation; autocast must reach all
    # of it.
    torch.manual_seed(0)
    model = build_model(name, num_class=10, channels=[16, 32], strides=[1, 2],
                        sf_head={'groups': 2})
    model = randomise(model)
    calibrate_batch_norms(model, (4, 3, 16, 25, 2)).train(mode == 'train')
    x = torch.randn(4, 3, 16, 25, 2)
    torch.manual_seed(1)
    expected = model(x)
    with torch.autocast('cpu', dtype=dtype):
        torch.manual_seed(1)
        output = model(x)
    assert output.dtype == dtype
    assert (output.float() - expected).abs().max() <= bound * expected.abs().max()
