"""ST-GCN (Yan et al., AAAI 2018), as in the original code, on the shared blocks.

The original's temporal unit opens with BN + ReLU (`tcn.0`, `tcn.1`); here they close the graph unit
instead, which computes the same function and puts SF-Head (when used) on normalised, rectified
features. The original's single `A` buffer, `edge_importance.{i}` and 1×1-conv classifier `fcn` are
mapped on load.
"""
import re
from typing import Optional

import torch
from torch import nn

from graph import distance_partition
from model.blocks import (
    REFERENCE_CHANNELS,
    REFERENCE_STRIDES,
    Count,
    Counts,
    DropRate,
    SkeletonGCN,
    TemporalConv,
    inference_args,
    pointwise,
)
from model.registry import register_model


class STGraphConv(nn.Module):
    """out[w] = Σ_k Σ_v conv_k(x)[v] · (A ⊙ importance)[k, v, w], then BN and ReLU.

    The 1×1 conv commutes with the sum over joints, so the unit aggregates first: each subset's
    aggregation of the C_in input channels (a batched matrix product), then one product over the
    K·C_in aggregated channels. Measured against the reference's order (the conv to K·C_out
    channels, then the aggregations summed over the subsets), this is faster at every width,
    forward and backward (docs/performance.md).
    """

    def __init__(self, in_channels, out_channels, A, edge_importance=True):
        super().__init__()
        self.subsets = len(A)
        self.conv = nn.Conv2d(in_channels, out_channels * self.subsets, 1)
        self.register_buffer('A', torch.tensor(A))   # a copy per block, as loaded from a checkpoint
        self.importance = nn.Parameter(torch.ones_like(self.A), requires_grad=edge_importance)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        A = self.A * self.importance                                      # (K, V, W)
        n, c_in, t, v = x.shape
        k = self.subsets
        joints = x.reshape(n, c_in * t, v)
        aggregated = torch.stack([torch.bmm(joints, A[i].expand(n, v, v)) for i in range(k)],
                                 dim=1)                                   # (N, K, C_in·T, W)
        c_out = self.conv.out_channels // k
        # W[k·C_out + o, c] → W'[o, k·C_in + c]; the bias b_k[o] sums over v into Σ_v A[k, v, w]
        weight = self.conv.weight.view(k, c_out, c_in).transpose(0, 1).reshape(c_out, k * c_in)
        bias = (self.conv.bias.view(k, c_out, 1) * A.sum(1).unsqueeze(1)).sum(0)     # (C_out, W)
        y = pointwise(aggregated.view(n, k * c_in, t, v), weight).add_(bias.view(1, c_out, 1, v))
        return self.relu(self.bn(y))


def init_like_reference(module):
    """The original training code's init: conv (and the 1×1-conv classifier) weights N(0, 0.02), BN
    weights N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
    else:
        return
    if module.bias is not None:
        nn.init.zeros_(module.bias)


REFERENCE_RENAMES = [
    (r'^st_gcn_networks\.(\d+)\.gcn\.conv\.', 'gcn1.conv.'),
    (r'^st_gcn_networks\.(\d+)\.tcn\.0\.', 'gcn1.bn.'),
    (r'^st_gcn_networks\.(\d+)\.tcn\.2\.', 'tcn1.conv.'),
    (r'^st_gcn_networks\.(\d+)\.tcn\.3\.', 'tcn1.bn.'),
    (r'^st_gcn_networks\.(\d+)\.residual\.0\.', 'residual.conv.'),
    (r'^st_gcn_networks\.(\d+)\.residual\.1\.', 'residual.bn.'),
    (r'^st_gcn_networks\.(\d+)\.sf_head\.', 'sf_head.'),
    (r'^edge_importance\.(\d+)$', 'gcn1.importance'),
]


def from_reference(state, model):
    """Rename an original ST-GCN state dict to this model's keys (the shared `A` goes to every
    block)."""
    if 'fcn.weight' not in state:
        return state
    renamed = {}
    for key, value in state.items():
        for pattern, target in REFERENCE_RENAMES:
            match = re.match(pattern, key)
            if match:
                renamed[f'l{int(match.group(1)) + 1}.{target}' + key[match.end():]] = value
                break
        else:
            if key == 'A':
                renamed.update({f'{name}.gcn1.A': value for name in model.block_names})
            elif key.startswith('fcn.'):
                renamed['fc.' + key[4:]] = value.flatten(1) if value.dim() == 4 else value
            else:
                renamed[key] = value
    return renamed


@register_model('stgcn', inference_args)
def stgcn(num_class: Count = 60, num_point: Count = 25, num_person: Count = 2,
          in_channels: Count = 3, graph: str = 'ntu25', channels: Counts = REFERENCE_CHANNELS,
          strides: Counts = REFERENCE_STRIDES, drop_out: DropRate = 0.5,
          edge_importance: bool = True, temporal_kernel: Count = 9, sf_head: Optional[dict] = None):
    """ST-GCN; the defaults give the original NTU-60 model (3,098,832 parameters). `drop_out` is the
    temporal units' dropout (none in the first block), as in the original."""
    model = SkeletonGCN(
        make_gcn=lambda c_in, c_out, A: STGraphConv(c_in, c_out, A, edge_importance),
        make_tcn=lambda c, stride, index: TemporalConv(c, c, temporal_kernel, stride,
                                                       dropout=drop_out if index else 0.0),
        num_class=num_class, num_point=num_point, num_person=num_person, in_channels=in_channels,
        graph=graph, channels=channels, strides=strides, drop_out=0.0, sf_head=sf_head,
        adjacency=distance_partition, data_bn_per_person=True, reference_filter=from_reference)
    model.apply(init_like_reference)
    return model
