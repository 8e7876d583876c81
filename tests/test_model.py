import os

import pytest
import torch
import torch.nn.functional as F

from model import build_model
from model.sf_head import SFHead
from torchlight.registry import ConfigError

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')


def read_listing(name):
    """{section: {key: shape}} from a reference state-dict listing (sections start with '## ')."""
    current = {}
    sections = {'': current}
    for line in open(os.path.join(FIXTURES, name)):
        if line.startswith('## '):
            current = sections[line[3:].strip()] = {}
        elif line.strip() and not line.startswith('#'):
            key, shape = line.rstrip('\n').split('\t')
            current[key] = tuple(int(s) for s in shape.strip('()').split(',') if s.strip())
    return sections


def test_ctrgcn_defaults_are_the_reference_ntu60_model():
    model = build_model('ctrgcn', num_class=60)
    reference = read_listing('ctrgcn_state_dict.txt')['']
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == reference
    assert sum(p.numel() for p in model.parameters()) == 1_446_672


@pytest.mark.parametrize('sf_head', [None, {'groups': 2}])
def test_shapes_and_gradient_flow(sf_head):
    torch.manual_seed(0)
    model = build_model('ctrgcn', num_class=7, channels=[16, 32], strides=[1, 2], sf_head=sf_head)
    x = torch.randn(3, 3, 12, 25, 2)
    logits = model(x)
    assert logits.shape == (3, 7)
    F.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    # Every parameter takes part in the graph, and the first block (farthest from the loss) learns.
    assert all(p.grad is not None for p in model.parameters())
    assert model.l1.gcn1.convs[0].conv3.weight.grad.abs().sum() > 0
    assert model.l1.tcn1.branches[0][0].weight.grad.abs().sum() > 0
    if sf_head:
        assert model.l1.sf_head.cv.conv.conv.weight.grad.abs().sum() > 0
        assert model.l2.sf_head.cweight.grad.abs().sum() > 0
    else:
        assert model.l1.sf_head is None


@pytest.mark.parametrize('name', ['ctrgcn', 'stgcn', 'tcagcn'])
@pytest.mark.parametrize('mode', ['inline', 'branch'])
def test_every_tensor_is_made_on_the_models_device(name, mode):
    """Training (with the SF-Head losses) and evaluation on the meta device: a tensor built on the
    CPU inside a forward or backward meets the model's and fails, as it would on a GPU."""
    model = build_model(name, channels=[16, 32], strides=[1, 2],
                        sf_head={'groups': 2, 'mode': mode}).to('meta')
    x = torch.empty(2, 3, 16, 25, 2, device='meta')
    logits, losses = model(x, return_aux=True)
    F.cross_entropy(logits, torch.zeros(2, dtype=torch.long, device='meta')).backward()
    assert sorted(losses) == ['sf_consistency', 'sf_redundancy']
    model.eval()
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (2, 60) and logits.device.type == 'meta'


def test_bad_model_arguments_are_named():
    with pytest.raises(ConfigError, match="unknown key 'num_clas'.*did you mean 'num_class'"):
        build_model('ctrgcn', num_clas=60)
    with pytest.raises(ConfigError, match="unknown model 'ctrgnc'.*did you mean 'ctrgcn'"):
        build_model('ctrgnc')
    with pytest.raises(ConfigError, match='block l1.*not divisible by 4 x groups = 32'):
        build_model('ctrgcn', channels=[16, 32], strides=[1, 1], sf_head={'groups': 8})
    with pytest.raises(ConfigError, match="unknown key 'group'"):
        build_model('ctrgcn', sf_head={'group': 8})


# ------------------------------------------------------------------------------------------ SF-Head

def bn_2d(x, bn):
    """BatchNorm2d written out: batch statistics in training mode, running statistics in eval
    mode."""
    if bn.training:
        mean, var = x.mean((0, 2, 3), keepdim=True), x.var((0, 2, 3), unbiased=False, keepdim=True)
    else:
        mean, var = bn.running_mean.view(1, -1, 1, 1), bn.running_var.view(1, -1, 1, 1)
    return ((x - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(1, -1, 1, 1)
            + bn.bias.view(1, -1, 1, 1))


def gate_on_view(y, order, gate):
    """Permute (N, C, T, V) to the gate's view (pooled axis first), copy, pool, convolve, gate, move
    back."""
    moved = y.permute(*order).contiguous()
    pooled = torch.cat([moved.max(1, keepdim=True).values, moved.mean(1, keepdim=True)], 1)
    scale = torch.sigmoid(bn_2d(F.conv2d(pooled, gate.conv.conv.weight, padding=3), gate.conv.bn))
    inverse = [order.index(d) for d in range(4)]
    return (moved * scale).permute(*inverse)


def sf_head_by_hand(head, x, groups):
    """A second implementation of the released SF-Head, group by group, from the paper's
    description."""
    n, c, t, v = x.shape
    per_group, chunk = c // groups, c // groups // 4
    w = torch.softmax(head.w, 0)
    outputs = []
    for g in range(groups):
        xg = x[:, g * per_group:(g + 1) * per_group]
        x1, x2, x3, x4 = (xg[:, i * chunk:(i + 1) * chunk] for i in range(4))
        a_t = (head.cweight.view(1, -1, 1, 1) * x1.mean((2, 3), keepdim=True)
               + head.cbias.view(1, -1, 1, 1))
        f_t = x1 * torch.sigmoid(a_t)
        normed = (x3 - x3.mean((2, 3), keepdim=True)) / torch.sqrt(
            x3.var((2, 3), unbiased=False, keepdim=True) + head.gn.eps)
        normed = normed * head.gn.weight.view(1, -1, 1, 1) + head.gn.bias.view(1, -1, 1, 1)
        f_s = x3 * torch.sigmoid(head.sweight.view(1, -1, 1, 1) * normed
                                 + head.sbias.view(1, -1, 1, 1))
        # The views of the paper: (C, V) pooled over T, (T, C) pooled over V, (T, V) pooled over C.
        f_r = (w[0] * gate_on_view(f_t, [0, 2, 1, 3], head.cv)
               + w[1] * gate_on_view(f_s, [0, 3, 2, 1], head.tc)
               + w[2] * gate_on_view(x2, [0, 1, 2, 3], head.tv) + w[3] * x2)
        outputs.append(torch.cat([f_t, f_s, f_r, x4], 1))
    out = torch.cat(outputs, 1)
    half = c // 2
    shuffled = torch.empty_like(out)
    shuffled[:, 0::2], shuffled[:, 1::2] = out[:, :half], out[:, half:]
    return shuffled


def randomise(head):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.dim() == 1 else 0.0))
        for gate in (head.cv, head.tc, head.tv):
            gate.conv.bn.running_mean.fill_(0.3)
            gate.conv.bn.running_var.fill_(2.0)


def test_sf_head_matches_a_second_implementation_in_eval_mode():
    head = SFHead(64, groups=4).eval()
    randomise(head)
    x = torch.randn(2, 64, 9, 25)
    torch.testing.assert_close(head(x), sf_head_by_hand(head, x, 4), atol=1e-5, rtol=1e-5)


def test_sf_head_matches_a_second_implementation_in_training_mode_with_one_group():
    # With one group the gates' batch statistics are over the same samples in both implementations.
    head = SFHead(32, groups=1).train()
    randomise(head)
    x = torch.randn(3, 32, 7, 25)
    torch.testing.assert_close(head(x), sf_head_by_hand(head, x, 1), atol=1e-5, rtol=1e-5)


def test_spatial_logits_stay_float32_under_cpu_bf16_autocast():
    # The unfolded sweight · GroupNorm(x3) + sbias promotes to the float32 parameters; the folded
    # GroupNorm must not leave the logits in bf16, where they differ by up to 1e-2.
    head = SFHead(64, groups=4).train()
    randomise(head)
    x3 = torch.randn(8, 4, 16, 25).bfloat16()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        logits = head.spatial_logits(x3)
    expected = head.sweight * head.gn(x3.float()) + head.sbias
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('channels', [64, 128, 256])
def test_sf_head_loads_the_released_state_dict(channels):
    listing = read_listing('sfhead_state_dict.txt')[f'channel={channels}: parameters ' +
                                                     {64: '320', 128: '336', 256: '368'}[channels]]
    released = {k: torch.randn(shape) if shape else torch.tensor(3) for k, shape in listing.items()}
    head = SFHead(channels, groups=8)
    head.load_state_dict(released)  # strict: every other key matches; the unused `bn.*` is dropped
    for key, value in head.state_dict().items():
        torch.testing.assert_close(value, released[key])
    unused_bn = sum(torch.Size(s).numel() for k, s in listing.items()
                    if k in ('bn.weight', 'bn.bias'))
    listed = {64: 320, 128: 336, 256: 368}[channels]
    assert sum(p.numel() for p in head.parameters()) + unused_bn == listed


def test_released_style_baseline_head_computes_the_same_function():
    from tools.reference.sf_head import ReleasedSFHead
    head = SFHead(64, groups=4).eval()
    randomise(head)
    baseline = ReleasedSFHead(64, groups=4).eval()
    missing, unexpected = baseline.load_state_dict(head.state_dict(), strict=False)
    # only the release's unused BN
    assert all(k.startswith('bn.') for k in missing) and not unexpected
    x = torch.randn(2, 64, 9, 25)
    torch.testing.assert_close(baseline(x), head(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(baseline(x), sf_head_by_hand(head, x, 4), atol=1e-5, rtol=1e-5)


def test_the_removed_exact_argument_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match=r'model_args.exact was removed: every model now has one '
                                          r'implementation.*delete the key'):
        build_model('ctrgcn', num_class=60, exact=False)


@pytest.mark.parametrize('key, value, message', [
    ('num_class', -3, 'model_args.num_class must be an integer >= 1, got -3'),
    ('drop_out', 1.5, r'model_args.drop_out must be a number in \[0, 1\), got 1.5'),
    ('channels', [64, 0], r'model_args.channels'),
    ('adaptive', 'yes', 'model_args.adaptive must be true or false'),
])
def test_model_arguments_are_checked_against_the_builders_annotations(key, value, message):
    with pytest.raises(ConfigError, match=message):
        build_model('ctrgcn', **{key: value})


def test_a_config_that_sets_exact_stops_before_anything_is_written(tmp_path, capsys):
    from main import main
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    work_dir = tmp_path / 'run'
    code = main(['--config', os.path.join(root, 'config/demo/joint.yaml'),
                 '--work-dir', str(work_dir), '--model_args', 'exact=false'])
    assert code == 2 and not work_dir.exists()
    assert capsys.readouterr().err.strip() == (
        "error: model_args.exact was removed: every model now has one implementation, the fastest "
        "form of the reference's function (equal to it in float64, and to reference checkpoints "
        "within float32 rounding); delete the key")
