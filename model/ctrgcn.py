"""CTR-GCN (Chen et al., ICCV 2021): channel-wise topology refinement graph convolution.

One subset's refined topology and aggregation, as the reference defines them:
    topology = conv4(tanh(mean_T conv1(x)[u] − mean_T conv2(x)[v])) · alpha + A    (N, C_out, V, V)
    out[n, c, t, u] = Σ_v topology[n, c, u, v] · conv3(x)[n, c, t, v]
computed here in a cheaper order with the same result: conv1 and conv2 on the frame mean (a 1×1 conv
commutes with it), conv4, alpha and A as one matrix product, each subset's aggregation a batched
matrix product accumulated into one output.
"""
from typing import Optional

import torch
from torch import nn

from model.blocks import (
    REFERENCE_CHANNELS,
    REFERENCE_STRIDES,
    Count,
    Counts,
    DropRate,
    SkeletonGCN,
    batch_norm_affine,
    conv_bn,
    fold_batch_norm,
    inference_args,
    init_bn,
    init_conv,
    pointwise,
)
from model.ops import mean_keepdim
from model.registry import register_model


class TopologyRefinement(nn.Module):
    """A subset's channel-wise topology from pairwise joint differences; subclasses supply the
    features it aggregates (`values`)."""

    def __init__(self, in_channels, out_channels, rel_reduction=8):
        super().__init__()
        rel_channels = 8 if in_channels in (3, 9) else in_channels // rel_reduction
        self.conv1 = nn.Conv2d(in_channels, rel_channels, 1)
        self.conv2 = nn.Conv2d(in_channels, rel_channels, 1)
        self.conv4 = nn.Conv2d(rel_channels, out_channels, 1)

    def topology_transposed(self, x_mean, A, alpha):
        """The refined topology transposed, (N, C_out, V, U), from the frame mean x_mean
        (N, C_in, 1, V): the right factor of out = values @ topology^T, built in that layout so that
        neither it nor its gradient is ever copied into it."""
        query = pointwise(x_mean, self.conv1.weight, self.conv1.bias)[:, :, 0]     # (N, R, V)
        key = pointwise(x_mean, self.conv2.weight, self.conv2.bias)[:, :, 0]
        # (N, R, V, U): q[u] − k[v]
        relation = torch.tanh(query.unsqueeze(-2) - key.unsqueeze(-1))
        n, r, v, _ = relation.shape
        # alpha · (W4 r + b4) + A = (alpha · W4) r + (alpha · b4 + A): one matrix product, the bias
        # added in place: baddbmm with a bias broadcast over the batch measured slower
        # (docs/performance.md)
        weight = (alpha * self.conv4.weight.view(-1, r)).expand(n, -1, -1)   # (N, C, R)
        bias = (alpha * self.conv4.bias).view(-1, 1) + A.t().reshape(1, v * v)  # (C, V·U)
        return torch.bmm(weight, relation.reshape(n, r, v * v)).add_(bias).view(n, -1, v, v)


class CTRGC(TopologyRefinement):
    """CTR-GCN's subset: the topology aggregates conv3(x)."""

    def __init__(self, in_channels, out_channels, rel_reduction=8):
        super().__init__(in_channels, out_channels, rel_reduction)
        self.conv3 = nn.Conv2d(in_channels, out_channels, 1)

    def values(self, x, scale=None):
        """conv3(x) (N, C_out, T, V), each output channel times `scale` (C_out,) when given."""
        weight, bias = self.conv3.weight, self.conv3.bias
        if scale is not None:
            weight, bias = weight * scale.view(-1, 1, 1, 1), bias * scale
        return pointwise(x, weight, bias)


def accumulate_product(out, a, b):
    """out + a @ b (batched). Without gradients it accumulates into `out` through out= (one pass
    less over the output than out of place; the FLOP counter sees an out= product, not baddbmm_).
    Out of place where the dtypes differ: autocast casts the operands of out-of-place products
    only."""
    if torch.is_grad_enabled() or not out.dtype == a.dtype == b.dtype:
        return torch.baddbmm(out, a, b)
    return torch.baddbmm(out, a, b, out=out)


class CTRGCNGraphConv(nn.Module):
    """relu(BN(Σ_subsets CTRGC aggregation) + down(x)), down a 1×1 conv + BN when the width changes.

    In evaluation the BN's affine map s·y + (β − s·μ) folds into the products: s into each subset's
    values, the shift (with the projection's folded bias) into the first aggregation's output, and
    the projection accumulates into the same output.
    """

    def __init__(self, in_channels, out_channels, A, adaptive=True, topology_conv=CTRGC):
        super().__init__()
        self.convs = nn.ModuleList(topology_conv(in_channels, out_channels) for _ in range(len(A)))
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1),
                                      nn.BatchNorm2d(out_channels))
        else:
            self.down = nn.Identity()
        A = torch.tensor(A)   # a copy: every block learns its own adjacency
        if adaptive:
            self.PA = nn.Parameter(A)
        else:
            self.register_buffer('A', A, persistent=False)
        self.alpha = nn.Parameter(torch.zeros(1))
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init_conv(m)
            elif isinstance(m, nn.BatchNorm2d):
                init_bn(m, 1)
        init_bn(self.bn, 1e-6)

    @property
    def adjacency(self):
        return self.PA if hasattr(self, 'PA') else self.A

    @property
    def projects(self):
        return not isinstance(self.down, nn.Identity)

    def aggregate(self, x, out=None, scale=None):
        """Σ_subsets values @ topology^T as (N·C, T, U), accumulated into `out` (N·C, T, U) when
        given."""
        x_mean = mean_keepdim(x, (2,))                                    # (N, C_in, 1, V)
        for conv, A in zip(self.convs, self.adjacency):
            values = conv.values(x, scale)                                # (N, C, T, V)
            n, c, t, v = values.shape
            values = values.view(n * c, t, v)
            topology = conv.topology_transposed(x_mean, A, self.alpha).view(n * c, v, v)
            out = (torch.bmm(values, topology) if out is None
                   else accumulate_product(out, values, topology))
        return out.view(n, c, t, v)

    def forward(self, x):
        if not self.training:
            return self.forward_folded(x)
        y = self.bn(self.aggregate(x))
        y += conv_bn(x, *self.down) if self.projects else x
        return self.relu(y)

    def forward_folded(self, x):
        n, _, t, v = x.shape
        scale, shift = batch_norm_affine(self.bn)
        if self.projects:
            down_weight, down_bias = fold_batch_norm(*self.down)
            shift = shift + down_bias
        c = len(shift)
        # the shift materialised: the products accumulate into it in place
        start = shift.view(1, c, 1).expand(n, c, t * v).contiguous().view(n * c, t, v)
        y = self.aggregate(x, out=start, scale=scale)   # (N, C, T, V)
        if self.projects:
            weight = down_weight.view(c, -1).expand(n, -1, -1)
            y = accumulate_product(y.view(n, c, t * v), weight, x.reshape(n, -1, t * v))
            y = y.view(n, c, t, v)
        else:
            y = y + x
        return y.relu_()


def drop_training_heads(state, model):
    """FR-Head checkpoints of CTR-GCN carry training-only `ren_*` heads; the backbone's keys are
    CTR-GCN's."""
    return {k: v for k, v in state.items() if not k.startswith('ren_')}


@register_model('ctrgcn', inference_args)
def ctrgcn(num_class: Count = 60, num_point: Count = 25, num_person: Count = 2,
           in_channels: Count = 3, graph: str = 'ntu25', channels: Counts = REFERENCE_CHANNELS,
           strides: Counts = REFERENCE_STRIDES, drop_out: DropRate = 0.0, adaptive: bool = True,
           sf_head: Optional[dict] = None):
    """CTR-GCN; the defaults give the reference NTU-60 model (1,446,672 parameters)."""
    return SkeletonGCN(
        make_gcn=lambda c_in, c_out, A: CTRGCNGraphConv(c_in, c_out, A, adaptive),
        num_class=num_class, num_point=num_point, num_person=num_person, in_channels=in_channels,
        graph=graph, channels=channels, strides=strides, drop_out=drop_out, sf_head=sf_head,
        reference_filter=drop_training_heads)
