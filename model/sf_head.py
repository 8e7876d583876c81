"""SF-Head (Synchronized and Fine-grained Head), as in the authors' released `sf_head.py`.

The input (N, C, T, V) is split into G channel groups; each group into four equal chunks:
  f_t = x1 · σ(a_t · avgpool_TV(x1) + b_t)          temporal gate
  f_c = x2                                           identity chunk
  f_s = x3 · σ(a_s · GroupNorm(x3) + b_s)            spatial gate
  f_o = x4                                           untouched chunk
AC-FA refines with three attention gates, each gating a view by σ(BN(conv7×7([max, mean]))):
  f_r = w0 · gate_CV(f_t) + w1 · gate_TC(f_s) + w2 · gate_TV(f_c) + w3 · f_c,
  w = softmax(4 weights)
where gate_CV pools over T, gate_TC over V and gate_TV over the channels. The output is
concat(f_t, f_s, f_r, f_o) per group, followed by a channel shuffle with 2 groups.

The released module also builds a BatchNorm `bn` and a ReLU that its forward never uses; they are
left out here and the `bn.*` keys of a released state dict are dropped on load.
"""
import torch
import torch.nn.functional as F
from torch import nn

from model.ops import mean_keepdim
from torchlight.registry import ConfigError


class ConvBN(nn.Module):
    """Conv2d without bias followed by BatchNorm2d (key names `conv`, `bn` as in the release)."""

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return self.bn(self.conv(x))


def band_kernel(weight, p):
    """The (1, C, k, k) kernel of a 2-D convolution on planes (P, Q), p = P, as the kernel of a 1-D
    convolution along Q whose channels are the C·P plane rows: (P_out, C·P_in, k), each output row
    reading the k-wide band of the kernel across the input rows."""
    k = weight.shape[-1]
    # [p_out, p_in] → kernel row across the channels
    rows = torch.arange(p, device=weight.device)
    offset = rows - rows.unsqueeze(1) + k // 2
    # (C, k, P_out, P_in)
    band = weight[0].transpose(1, 2)[..., offset.clamp(0, k - 1)] * ((offset >= 0) & (offset < k))
    return band.permute(2, 0, 3, 1).reshape(p, -1, k)


def plane_conv(planes, weight):
    """F.conv2d(torch.stack(planes, 1), weight, padding=k // 2) for one output channel: C planes
    (B, P, Q), a weight (1, C, k, k) → (B, 1, P, Q).

    Computed as a 1-D convolution along the longer plane axis, the shorter one becoming channels
    (band_kernel): for SF-Head's thin gate planes this is faster than a 2-D convolution with one
    output channel, forward and backward (docs/performance.md); the function is the same, the
    rounding other. When the first axis is the longer, the planes are stacked as (B, P, C, Q),
    the channels-last layout of a convolution along P, which reads them and writes its output
    without transposing either.
    """
    b, p, q = planes[0].shape
    k = weight.shape[-1]
    if p <= q:
        stacked = torch.stack(planes, dim=1).view(b, -1, 1, q)               # (B, C·P, 1, Q)
        out = F.conv2d(stacked, band_kernel(weight, p).unsqueeze(2), padding=(0, k // 2))
        return out.view(b, 1, p, q)
    stacked = torch.stack(planes, dim=2).view(b, p, -1)                       # (B, P, C·Q)
    stacked = stacked.transpose(1, 2).unsqueeze(2)                   # (B, C·Q, 1, P) channels-last
    band = band_kernel(weight.transpose(2, 3), q).unsqueeze(2)                # (Q, C·Q, 1, k)
    out = F.conv2d(stacked, band, padding=(0, k // 2))             # (B, Q, 1, P) channels-last
    return out.view(b, q, p).transpose(1, 2).unsqueeze(1)                     # (B, 1, P, Q)


class PeakAndMean(torch.autograd.Function):
    """(max, mean) of x over one axis, the max's gradient going to its argmax as torch.max's does.

    The backward writes x's gradient in one pass (the mean's share, expanded) and scatters the max's
    into it; autograd's own would scatter the max's into zeros, expand the mean's, and add the two.
    """

    @staticmethod
    def forward(ctx, x, axis):
        peak, index = x.max(axis)
        ctx.save_for_backward(index)
        ctx.axis, ctx.shape = axis, x.shape
        return peak, x.mean(axis)

    @staticmethod
    def backward(ctx, grad_peak, grad_mean):
        axis, (index,) = ctx.axis, ctx.saved_tensors
        grad = (grad_mean / ctx.shape[axis]).unsqueeze(axis).expand(ctx.shape).contiguous()
        return grad.scatter_add_(axis, index.unsqueeze(axis), grad_peak.unsqueeze(axis)), None


def max_by_halving(x, axis):
    """x.amax(axis) as elementwise maxima of the axis' two halves (overlapping by one for odd sizes)
    until one is left: elementwise maxima vectorise along x's contiguous last axis, where torch's
    max reductions over a non-last axis with a short run of elements after it, or over a short
    last axis, do not (docs/performance.md)."""
    size = x.shape[axis]
    while size > 1:
        half = (size + 1) // 2
        x = torch.maximum(x.narrow(axis, 0, half), x.narrow(axis, size - half, half))
        size = half
    return x.squeeze(axis)


def peak_and_mean(x, axis):
    """[max, mean] of x over `axis`, each x's shape without it."""
    if torch.is_grad_enabled() and x.requires_grad:
        # the backward needs torch.max's indices; torch.maximum's would split ties and keep every
        # halving step for autograd
        return list(PeakAndMean.apply(x, axis))
    return [max_by_halving(x, axis), x.mean(axis)]


def concat_and_shuffle(pieces, n, groups):
    """The four pieces (N·G, c, T, V) concatenated per group, then shuffled with 2 groups (channel
    (h, i) of the concatenation → (i, h)).

    For even G in one copy: channel ((h·4 + j)·c + k)·2 + g then holds channel k of piece j in group
    g·G/2 + h, so each piece, viewed as (N, 2, G/2, c, T·V) and permuted to (N, G/2, c, 2, T·V), is
    stacked as the third axis.
    """
    _, c, t, v = pieces[0].shape
    if groups % 2:
        out = torch.cat(pieces, dim=1).view(n, 2, groups * 2 * c, t * v)
        return out.transpose(1, 2).reshape(n, groups * 4 * c, t, v)
    views = [piece.view(n, 2, groups // 2, c, t * v).permute(0, 2, 3, 1, 4) for piece in pieces]
    return torch.stack(views, dim=2).view(n, groups * 4 * c, t, v)       # (N, G/2, 4, c, 2, T·V)


class AttentionGate(nn.Module):
    """σ(BN(conv7×7(max ‖ mean))): pooled over one axis of (B, C, T, V), convolved on the plane of
    the other two, as the release does on a permuted copy of x."""

    def __init__(self, kernel_size=7):
        super().__init__()
        self.conv = ConvBN(2, 1, kernel_size)

    def forward(self, x, axis):
        """The gate, x's shape with `axis` (1: C, 2: T, 3: V) of size 1.

        The axis is pooled in place, giving the release's planes without moving x: (T, V), (C, V),
        and (C, T), the transpose of the release's (T, C), whose kernel is transposed to match.
        """
        weight = self.conv.conv.weight
        if axis == 3:
            weight = weight.transpose(2, 3)
        if torch.onnx.is_in_onnx_export():
            # Traced, the band kernel and the halving max would be fixed to this input's sizes; an
            # ONNX graph with free frame counts takes the plain reductions and 2-D convolution.
            pooled = torch.stack([x.amax(axis), x.mean(axis)], dim=1)    # (B, 2, P, Q)
            gate = F.conv2d(pooled, weight, padding=self.conv.conv.padding)
        else:
            gate = plane_conv(peak_and_mean(x, axis), weight)            # (B, 1, P, Q)
        return torch.sigmoid(self.conv.bn(gate)).squeeze(1).unsqueeze(axis)


class SFHead(nn.Module):
    def __init__(self, channels, groups=8, where=''):
        super().__init__()
        if channels % (4 * groups):
            raise ConfigError(f'SF-Head{where}: {channels} channels are not divisible by '
                              f'4 x groups = {4 * groups}; '
                              f'choose sf_head groups that divide {channels // 4}')
        self.groups = groups
        chunk = channels // (4 * groups)
        self.gn = nn.GroupNorm(chunk, chunk)
        self.cweight = nn.Parameter(torch.zeros(1, chunk, 1, 1))
        self.cbias = nn.Parameter(torch.ones(1, chunk, 1, 1))
        self.sweight = nn.Parameter(torch.zeros(1, chunk, 1, 1))
        self.sbias = nn.Parameter(torch.ones(1, chunk, 1, 1))
        self.w = nn.Parameter(torch.ones(4))
        self.cv = AttentionGate()   # on the (C, V) view: pools over T
        self.tc = AttentionGate()   # on the (T, C) view: pools over V
        self.tv = AttentionGate()   # on the (T, V) view: pools over C
        self._register_load_state_dict_pre_hook(self._drop_unused_release_keys)

    @staticmethod
    def _drop_unused_release_keys(state_dict, prefix, *args):
        for key in [k for k in state_dict if k.startswith(prefix + 'bn.')]:
            del state_dict[key]

    def spatial_logits(self, x3):
        """sweight · GroupNorm(x3) + sbias as one GroupNorm: the two per-channel affine maps
        composed into its weight and bias (two passes over x3 fewer, forward and backward).

        In the parameters' dtype: CPU autocast leaves GroupNorm in bf16, where the unfolded
        expression's float32 affine map would have promoted the logits back to float32."""
        scale = self.sweight.view(-1)
        return F.group_norm(x3.to(scale.dtype), self.gn.num_groups, scale * self.gn.weight,
                            scale * self.gn.bias + self.sbias.view(-1), self.gn.eps)

    def forward(self, x, return_features=False):
        """(N, C, T, V) → same shape; with `return_features` also {'t', 's', 'r', 'c'}: the
        temporal, spatial, refined and identity features, each (N·G, C / 4G, T, V), for the SF-Head
        losses."""
        n, c, t, v = x.shape
        x1, x2, x3, x4 = x.reshape(n * self.groups, c // self.groups, t, v).chunk(4, dim=1)
        f_t = x1 * torch.sigmoid(self.cweight * mean_keepdim(x1, (2, 3)) + self.cbias)
        f_s = x3 * torch.sigmoid(self.spatial_logits(x3))
        f_c = x2
        w = F.softmax(self.w, dim=0)
        # f_r = w0·f_t·gate_CV + w1·f_s·gate_TC + w2·f_c·gate_TV + w3·f_c, the weights on the small
        # gates
        f_r = (f_t * (w[0] * self.cv(f_t, 2))).addcmul_(f_s, w[1] * self.tc(f_s, 3))
        f_r.addcmul_(f_c, w[2] * self.tv(f_c, 1) + w[3])
        out = concat_and_shuffle([f_t, f_s, f_r, x4], n, self.groups)
        if return_features:
            return out, {'t': f_t, 's': f_s, 'r': f_r, 'c': f_c, 'groups': self.groups}
        return out
