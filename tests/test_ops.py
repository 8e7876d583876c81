"""The models' building operations against the plain torch operations they replace (float64)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from model.blocks import Dropout, conv_bn, pointwise
from model.ops import mean_keepdim
from model.sf_head import max_by_halving, peak_and_mean, plane_conv


@pytest.mark.parametrize('plane', [(64, 25), (25, 64), (2, 25), (64, 2), (3, 3), (1, 9), (7, 1)])
@pytest.mark.parametrize('kernel', [3, 7])
def test_plane_conv_equals_conv2d_forward_and_backward(plane, kernel):
    generator = torch.Generator().manual_seed(0)
    planes = [torch.randn(3, *plane, dtype=torch.float64, generator=generator).requires_grad_()
              for _ in range(2)]
    weight = torch.randn(1, 2, kernel, kernel, dtype=torch.float64, generator=generator,
                         requires_grad=True)
    grad_out = torch.randn(3, 1, *plane, dtype=torch.float64, generator=generator)
    results = []
    for conv in (plane_conv, lambda p, w: F.conv2d(torch.stack(p, 1), w, padding=kernel // 2)):
        out = conv(planes, weight)
        results.append([out, *torch.autograd.grad(out, [*planes, weight], grad_out)])
    for ours, expected in zip(*results):
        torch.testing.assert_close(ours, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize('dims', [(3,), (2,), (2, 3)])
def test_mean_keepdim_has_the_mean_gradient_where_the_input_has_other_uses(dims):
    """The mean's broadcast gradient is added into the gradient of the input's other use (here a
    product), as autograd adds the materialised one."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, generator=generator).requires_grad_()
    other = torch.randn(x.shape, dtype=torch.float64, generator=generator)
    grad_mean = torch.randn(x.mean(dims, keepdim=True).shape, dtype=torch.float64,
                            generator=generator)
    results = []
    for mean in (mean_keepdim, lambda x, dims: x.mean(dims, keepdim=True)):
        pooled = mean(x, dims)
        loss = (pooled * grad_mean).sum() + (x * other).sum()
        results.append([pooled, *torch.autograd.grad(loss, x)])
    for ours, expected in zip(*results):
        torch.testing.assert_close(ours, expected, rtol=0, atol=1e-15)
    count = x.numel() // grad_mean.numel()
    torch.testing.assert_close(results[0][1], other + grad_mean / count, rtol=0, atol=1e-15)


@pytest.mark.parametrize('axis', [1, 2, 3])
def test_peak_and_mean_gradient_is_torch_max_and_mean(axis):
    """Ties included: values in {0, 1, 2} tie often, and the max's gradient must go to the index
    torch.max picks, as the release's torch.max gives it."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 3, (4, 3, 5, 6), generator=generator).double().requires_grad_()
    grads = [torch.randn(x.select(axis, 0).shape, dtype=torch.float64, generator=generator)
             for _ in range(2)]
    results = []
    for pool in (peak_and_mean, lambda x, axis: [x.max(axis).values, x.mean(axis)]):
        peak, mean = pool(x, axis)
        results.append([peak, mean, *torch.autograd.grad([peak, mean], x, grads)])
    for ours, expected in zip(*results):
        torch.testing.assert_close(ours, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize('axis', [1, 2, 3])
@pytest.mark.parametrize('size', [1, 2, 3, 7, 8, 25])
def test_max_by_halving_is_amax(axis, size):
    shape = [2, 3, 4, 5]
    shape[axis] = size
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(size))
    x[0, 0] = 1.0                                                   # ties and a constant plane
    x[1, 1:, 0] = float('inf')
    x[1, 0, 0, 0] = float('nan')                                    # propagated as amax does
    x = x.transpose(0, 1).contiguous().transpose(0, 1)              # not contiguous
    torch.testing.assert_close(max_by_halving(x, axis), x.amax(axis), rtol=0, atol=0,
                               equal_nan=True)


@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('bias', [True, False])
def test_pointwise_equals_a_1x1_conv(stride, bias):
    conv = nn.Conv2d(6, 10, 1, stride=(stride, 1), bias=bias).double()
    x = torch.randn(3, 6, 9, 5, dtype=torch.float64)
    torch.testing.assert_close(pointwise(x, conv.weight, conv.bias, stride), conv(x), rtol=0,
                               atol=1e-12)


@pytest.mark.parametrize('kernel', [1, 5])
def test_conv_bn_folds_the_batch_norm_in_evaluation(kernel):
    conv = nn.Conv2d(6, 10, (kernel, 1), padding=(kernel // 2, 0)).double()
    bn = nn.BatchNorm2d(10).double()
    # statistics and affine parameters far from the identity
    with torch.no_grad():
        bn.running_mean.uniform_(-2, 2), bn.running_var.uniform_(0.5, 3)
        bn.weight.uniform_(-2, 2), bn.bias.uniform_(-1, 1)
    x = torch.randn(3, 6, 9, 5, dtype=torch.float64)
    for training in (True, False):
        conv.train(training), bn.train(training)
        expected = bn(conv(x))
        torch.testing.assert_close(conv_bn(x, conv, bn), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32, torch.bfloat16])
def test_dropout_keeps_a_fraction_one_minus_p_scaled_by_its_inverse(dtype):
    p = 0.3
    dropout = Dropout(p)
    x = torch.full((200, 1000), 3.0, dtype=dtype, requires_grad=True)
    torch.manual_seed(0)
    y = dropout(x)
    assert y.dtype == dtype
    kept = y != 0
    # 200,000 independent draws: the kept fraction within 5 standard deviations of 1 - p, also in
    # the even and the odd positions (the low and high halves of the 64-bit draws)
    for part in (kept.flatten(), kept.flatten()[0::2], kept.flatten()[1::2]):
        assert abs(part.double().mean().item() - (1 - p)) < 5 * (p * (1 - p) / part.numel()) ** 0.5
    scale = torch.tensor(1 / (1 - p), dtype=torch.float64).to(dtype)
    assert torch.equal(y[kept], (3 * scale).expand(int(kept.sum())))
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad, torch.where(kept, scale, torch.zeros((), dtype=dtype)))
    # masks differ from draw to draw; an odd element count keeps the shape
    assert not torch.equal(dropout(x) != 0, kept)
    odd = dropout(x[:3, :5].detach())
    assert odd.shape == (3, 5) and set(odd.flatten().tolist()) <= {0.0, (3 * scale).item()}
    # evaluation is the identity
    dropout.eval()
    assert dropout(x) is x
