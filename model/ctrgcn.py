"""CTR-GCN (Chen et al., ICCV 2021): channel-wise topology refinement graph convolution."""
import torch
from torch import nn

from model.blocks import (REFERENCE_CHANNELS, REFERENCE_STRIDES, SkeletonGCN, batch_norm_affine, conv1x1,
                          conv_bn, fold_batch_norm, init_bn, init_conv, pointwise)
from model.registry import register_model


class CTRGC(nn.Module):
    """One subset's channel-wise topology: A refined per channel from pairwise joint differences.

    topology = conv4(tanh(mean_T conv1(x)[u] − mean_T conv2(x)[v])) · alpha + A        (N, C_out, V, V)
    out[n, c, t, u] = Σ_v topology[n, c, u, v] · conv3(x)[n, c, t, v]
    """
    reordered = False           # set by ctrgcn(exact=False), like the other modules below

    def __init__(self, in_channels, out_channels, rel_reduction=8):
        super().__init__()
        rel_channels = 8 if in_channels in (3, 9) else in_channels // rel_reduction
        self.conv1 = nn.Conv2d(in_channels, rel_channels, 1)
        self.conv2 = nn.Conv2d(in_channels, rel_channels, 1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, 1)
        self.conv4 = nn.Conv2d(rel_channels, out_channels, 1)

    def values(self, x):
        """The features that the refined topology aggregates, (N, C_out, T, V)."""
        return conv1x1(x, self.conv3) if self.reordered else self.conv3(x)

    def forward(self, x, A, alpha):
        """x (N, C_in, T, V) → (N, C_out, T, V), in the reference's order of operations."""
        query, key = self.conv1(x).mean(2), self.conv2(x).mean(2)        # (N, R, V)
        relation = torch.tanh(query.unsqueeze(-1) - key.unsqueeze(-2))    # (N, R, V, V)
        topology = self.conv4(relation) * alpha + A                       # (N, C, V, V)
        return torch.einsum('ncuv,nctv->nctu', topology, self.values(x))

    def topology_transposed(self, x_mean, A, alpha):
        """The refined topology transposed, (N, C_out, V, U), from the frame mean x_mean (N, C_in, 1, V): the
        right factor of out = values @ topology^T, built in that layout so that neither it nor its gradient is
        ever copied into it.

        conv1 and conv2 are 1×1 (affine), so mean_T conv(x) = conv(mean_T x): T times fewer operations. conv4,
        the scaling and the sum run as one matrix product: alpha·(W4 r + b4) + A = (alpha·W4) r + (alpha·b4 + A).
        """
        query, key = conv1x1(x_mean, self.conv1)[:, :, 0], conv1x1(x_mean, self.conv2)[:, :, 0]   # (N, R, V)
        relation = torch.tanh(query.unsqueeze(-2) - key.unsqueeze(-1))    # (N, R, V, U): [v, u] = q[u] − k[v]
        n, r, v, _ = relation.shape
        weight = (alpha * self.conv4.weight.view(-1, r)).expand(n, -1, -1)   # (N, C, R)
        bias = (alpha * self.conv4.bias).view(-1, 1) + A.t().reshape(1, v * v)  # (C, V·U)
        return torch.baddbmm(bias, weight, relation.reshape(n, r, v * v)).view(n, -1, v, v)


class CTRGCNGraphConv(nn.Module):
    """Sum of one CTRGC per adjacency subset, BN, plus a (projected) residual, ReLU.

    `reordered` computes the same function faster, at other rounding: the topologies from the frame mean
    (CTRGC.topology_transposed), the subsets' aggregations as batched matrix products accumulating into one
    output, the 1×1 convolutions as matrix products (conv1x1), the residual added in place; in evaluation the BNs
    folded into the products (forward_folded).
    """
    reordered = False

    def __init__(self, in_channels, out_channels, A, adaptive=True, topology_conv=CTRGC):
        super().__init__()
        self.convs = nn.ModuleList(topology_conv(in_channels, out_channels) for _ in range(len(A)))
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
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

    def forward(self, x):
        if self.reordered:
            return self.forward_reordered(x)
        y = sum(conv(x, self.adjacency[i], self.alpha) for i, conv in enumerate(self.convs))
        return self.relu(self.bn(y) + self.down(x))

    def forward_reordered(self, x):
        if not self.bn.training:
            return self.forward_folded(x)
        x_mean = x.mean(2, keepdim=True)                                  # (N, C_in, 1, V)
        y = None
        for conv, A in zip(self.convs, self.adjacency):
            values = conv.values(x)                                       # (N, C, T, V)
            n, c, t, v = values.shape
            # y[n, c, t, u] += Σ_v values[n, c, t, v] · topology[n, c, u, v]
            values = values.view(n * c, t, v)
            topology = conv.topology_transposed(x_mean, A, self.alpha).view(n * c, v, v)
            y = torch.bmm(values, topology) if y is None else y.baddbmm_(values, topology)
        y = self.bn(y.view(n, c, t, v))
        y += x if isinstance(self.down, nn.Identity) else conv_bn(x, *self.down)
        return self.relu(y)

    def forward_folded(self, x):
        """Evaluation: BN's affine map s·y + (β − s·μ) folded in — s into the values, the shift (with the
        projection's bias) into the first aggregation — and the projection accumulated into the same output."""
        x_mean = x.mean(2, keepdim=True)                                  # (N, C_in, 1, V)
        n, _, t, v = x.shape
        scale, shift = batch_norm_affine(self.bn)
        if not isinstance(self.down, nn.Identity):
            down_weight, down_bias = fold_batch_norm(*self.down)
            shift = shift + down_bias
        c = len(shift)
        y = shift.repeat(n).view(n * c, 1, 1)                            # broadcast into the first aggregation
        for i, (conv, A) in enumerate(zip(self.convs, self.adjacency)):
            values = pointwise(x, conv.conv3.weight * scale.view(-1, 1, 1, 1), conv.conv3.bias * scale)
            values = values.view(n * c, t, v)
            topology = conv.topology_transposed(x_mean, A, self.alpha).view(n * c, v, v)
            y = torch.baddbmm(y, values, topology) if i == 0 else y.baddbmm_(values, topology)   # (N·C, T, V)
        y = y.view(n, c, t, v)
        if isinstance(self.down, nn.Identity):
            y += x
        else:
            weight = down_weight.view(c, -1).expand(n, -1, -1).to(y.dtype)   # (under autocast y may be 16-bit)
            y.view(n, c, t * v).baddbmm_(weight, x.reshape(n, -1, t * v).to(y.dtype))
        return y.relu_()


def drop_training_heads(state, model):
    """FR-Head checkpoints of CTR-GCN carry training-only `ren_*` heads; the backbone's keys are CTR-GCN's."""
    return {k: v for k, v in state.items() if not k.startswith('ren_')}


@register_model('ctrgcn')
def ctrgcn(num_class=60, num_point=25, num_person=2, in_channels=3, graph='ntu25',
           channels=REFERENCE_CHANNELS, strides=REFERENCE_STRIDES, drop_out=0.0, adaptive=True, sf_head=None,
           exact=True):
    """CTR-GCN; the defaults give the reference NTU-60 model (1,446,672 parameters).

    `exact`: the reference's order of operations, so that a reference checkpoint gives bit-identical outputs.
    `exact: false` computes the same function, with the same state dict, 1.5–1.7× faster on CPU: 1×1 convolutions
    as batched matrix products, relation convs on the frame mean, subsets accumulated into one output, BNs folded
    in evaluation (CTRGCNGraphConv, MultiScaleTCN, TemporalConv), SF-Head's gates as 1-D convolutions (SFHead).
    Outputs move by float32 rounding, about 5e-7 of the largest logit.
    """
    model = SkeletonGCN(
        lambda c_in, c_out, A: CTRGCNGraphConv(c_in, c_out, A, adaptive),
        num_class, num_point, num_person, in_channels, graph, channels, strides, drop_out, sf_head)
    for module in model.modules():
        if hasattr(module, 'reordered'):        # CTRGC(NGraphConv), MultiScaleTCN, TemporalConv, SFHead
            module.reordered = not exact
    model.from_reference = drop_training_heads
    return model
