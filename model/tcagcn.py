"""TCA-GCN (Wang et al., 2022): CTR-GCN with temporal aggregation in the graph unit and AFF in the
TCN.

Differences from CTR-GCN, as in the reference code:
- each subset aggregates temporally calibrated features Σ_c (a ⊙ W)[n, u, c, t] · x[n, c, t, v]:
  a 1×1 conv W scaled per sample, output channel and frame by a routing function
  a = b(relu(bn(a(mean_V x + g(mean_TV x))))) + 1. The reference builds that N × C_out × C_in × T
  weight tensor; here it is computed as a · (W x), the same function without the tensor.
- the multi-scale TCN ends with attentional feature fusion called with a zero residual:
  out · 2 · σ(local(out) + global(out)).
- the reference keeps CTR-GCN's `conv3` in each subset although its forward never uses it (656,064
  parameters at NTU-60 size that never receive a gradient). It is left out here; its keys are
  dropped on load.
"""
import math
from typing import Optional

import torch
from torch import nn

from model.blocks import (
    REFERENCE_CHANNELS,
    REFERENCE_STRIDES,
    Count,
    Counts,
    DropRate,
    MultiScaleTCN,
    SkeletonGCN,
    conv_bn,
    inference_args,
    pointwise,
)
from model.ctrgcn import CTRGCNGraphConv, TopologyRefinement
from model.ops import mean_keepdim
from model.registry import register_model


class RouteFunction(nn.Module):
    """Per-sample, per-channel, per-frame calibration factors (N, C_out, T, 1), starting near 1."""

    def __init__(self, in_channels, out_channels, ratio=2, kernels=(3, 3)):
        super().__init__()
        hidden = in_channels // ratio
        self.g = nn.Conv2d(in_channels, in_channels, 1)
        self.a = nn.Conv2d(in_channels, hidden, (kernels[0], 1), padding=(kernels[0] // 2, 0))
        self.bn = nn.BatchNorm2d(hidden)
        self.relu = nn.ReLU(inplace=True)
        self.b = nn.Conv2d(hidden, out_channels, (kernels[1], 1), padding=(kernels[1] // 2, 0),
                           bias=False)

    def forward(self, x):
        per_frame = mean_keepdim(x, (3,))                                 # (N, C, T, 1)
        context = pointwise(per_frame.mean(2, keepdim=True), self.g.weight,
                            self.g.bias)                                          # (N, C, 1, 1)
        return self.b(self.relu(conv_bn(per_frame + context, self.a, self.bn))) + 1


class TemporalAggregation(nn.Module):
    """a[n, u, t] · Σ_c W[u, c] x[n, c, t, v] for a 1×1 conv weight W (out, in, 1, 1), calibration
    a."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 1, 1))
        # the reference's init (not a Conv2d there)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x, calibration, scale=None):
        """x (N, C, T, V), calibration (N, U, T, 1); `scale` (U,) multiplies each output channel."""
        weight = self.weight if scale is None else self.weight * scale.view(-1, 1, 1, 1)
        return pointwise(x, weight) * calibration


class TCAGC(TopologyRefinement):
    """CTR-GCN's topology refinement aggregating temporally calibrated features."""

    def __init__(self, in_channels, out_channels, rel_reduction=8):
        super().__init__(in_channels, out_channels, rel_reduction)
        self.conv_rf = RouteFunction(in_channels, out_channels)
        self.conv = TemporalAggregation(in_channels, out_channels)

    def values(self, x, scale=None):
        return self.conv(x, self.conv_rf(x), scale)


class AttentionalFusion(nn.Module):
    """AFF with one input: x · 2 · σ(local(x) + global(x)); local is per position, global on the
    (T, V) mean. Key names `local_att`, `global_att` as in the reference."""

    def __init__(self, channels):
        super().__init__()

        def mlp():
            return [nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels),
                    nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 1),
                    nn.BatchNorm2d(channels)]
        self.local_att = nn.Sequential(*mlp())
        self.global_att = nn.Sequential(nn.AdaptiveAvgPool2d(1), *mlp())

    @staticmethod
    def mlp(x, layers):
        """conv + BN, ReLU, conv + BN, each 1×1 conv a matrix product (BN folded in evaluation)."""
        hidden = conv_bn(x, layers[0], layers[1]).relu_()
        return conv_bn(hidden, layers[3], layers[4])

    def forward(self, x):
        global_att = self.mlp(mean_keepdim(x, (2, 3)), self.global_att[1:])     # (N, C, 1, 1)
        # in place where autograd allows: one new full-size tensor instead of four
        gate = self.mlp(x, self.local_att).add_(global_att).sigmoid_()
        return (x * gate).mul_(2)


class MultiScaleTCNWithFusion(MultiScaleTCN):
    def __init__(self, channels, stride=1):
        super().__init__(channels, stride=stride)
        # created after the branches' init, as in the reference
        self.af = AttentionalFusion(channels)

    def forward(self, x):
        return self.af(super().forward(x))


def drop_unused_conv3(state, model):
    return {k: v for k, v in state.items() if not ('.gcn1.convs.' in k and '.conv3.' in k)}


@register_model('tcagcn', inference_args)
def tcagcn(num_class: Count = 60, num_point: Count = 25, num_person: Count = 2,
           in_channels: Count = 3, graph: str = 'ntu25', channels: Counts = REFERENCE_CHANNELS,
           strides: Counts = REFERENCE_STRIDES, drop_out: DropRate = 0.0, adaptive: bool = True,
           sf_head: Optional[dict] = None):
    """TCA-GCN; the defaults give the reference NTU-60 model (5,624,728 parameters there, 4,968,664
    here: the reference's unused `conv3` weights are left out)."""
    return SkeletonGCN(
        make_gcn=lambda c_in, c_out, A: CTRGCNGraphConv(c_in, c_out, A, adaptive,
                                                        topology_conv=TCAGC),
        make_tcn=lambda c, stride, index: MultiScaleTCNWithFusion(c, stride),
        num_class=num_class, num_point=num_point, num_person=num_person, in_channels=in_channels,
        graph=graph, channels=channels, strides=strides, drop_out=drop_out, sf_head=sf_head,
        reference_filter=drop_unused_conv3)
