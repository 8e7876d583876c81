"""Blocks shared by the graph-convolutional backbones.

A backbone is data-BN → blocks → pooling over joints and persons → dropout → linear classifier; each
block is GCN unit → (SF-Head) → TCN unit, plus a residual. Only the GCN unit differs between
backbones.
"""
import math
from typing import Annotated

import torch
from torch import nn

from graph import get_layout, spatial_adjacency
from model.losses import sf_head_losses
from model.sf_head import SFHead
from torchlight.registry import ConfigError, check_keys
from torchlight.validation import Range

# The types of the backbones' arguments, checked when a config is read (torchlight/validation.py).
Count = Annotated[int, Range(ge=1)]
Counts = list[Count]
DropRate = Annotated[float, Range(ge=0, lt=1)]

# CTR-GCN's ten blocks: width and temporal stride of each.
REFERENCE_CHANNELS = (64, 64, 64, 64, 128, 128, 128, 256, 256, 256)
REFERENCE_STRIDES = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)


def init_conv(conv):
    nn.init.kaiming_normal_(conv.weight, mode='fan_out')
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def init_bn(bn, scale):
    nn.init.constant_(bn.weight, scale)
    nn.init.zeros_(bn.bias)


def conv1x1(x, conv):
    """A 1×1 nn.Conv2d (temporal stride allowed) on x (N, C, T, V), computed as one batched matrix
    product."""
    return pointwise(x, conv.weight, conv.bias, conv.stride[0])


def conv_bn(x, conv, bn):
    """bn(conv(x)); a 1×1 conv as one matrix product, with the BN's affine map folded into its
    weight and bias in evaluation (one pass over the output instead of two). Larger kernels stay
    oneDNN convolutions, unfolded: oneDNN keeps a module weight's reordered copy, and a folded
    weight made at each call measured slower."""
    if conv.kernel_size != (1, 1):
        return bn(conv(x))
    if bn.training or bn.running_mean is None:
        return bn(conv1x1(x, conv))
    return pointwise(x, *fold_batch_norm(conv, bn), conv.stride[0])


def batch_norm_affine(bn):
    """(scale, shift) of a BN in evaluation, bn(y) = scale · y + shift: γ / √(σ² + ε) and
    β − scale · μ."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def fold_batch_norm(conv, bn):
    """(weight, bias) of conv followed by bn in evaluation: scale · (W x + b) + shift."""
    scale, shift = batch_norm_affine(bn)
    bias = conv.bias * scale + shift if conv.bias is not None else shift
    return conv.weight * scale.view(-1, 1, 1, 1), bias


def pointwise(x, weight, bias=None, stride=1):
    """F.conv2d(x, weight, bias, stride=(stride, 1)) for a 1×1 weight (C_out, C, 1, 1), as a batched
    matmul.

    The same function at other rounding; oneDNN's NCHW 1×1 convolution is slower on the shapes that
    widen the channels at many frames, forward and backward (docs/performance.md).
    """
    x = x[:, :, ::stride]
    n, c, t, v = x.shape
    flat = x.reshape(n, c, t * v)                                         # (N, C, T·V)
    weight = weight.view(-1, c).expand(n, -1, -1)                         # (N, C_out, C)
    out = torch.bmm(weight, flat)
    if bias is not None:
        # added in place: baddbmm first copies the bias, broadcast, into the output, which measured
        # slower than this pass
        out.add_(bias.view(1, -1, 1))
    return out.view(n, -1, t, v)


class Dropout(nn.Module):
    """nn.Dropout's function: in training each element is kept with probability 1 − p and scaled by
    1 / (1 − p), else zeroed; the identity in evaluation.

    The mask is drawn as uniform 32-bit integers, kept where they are at least −2³¹ + p·2³²: the
    integers come two to a 64-bit draw of `random_`, which on CPU is cheaper than `torch.rand`'s
    floats, themselves cheaper than `bernoulli_` (docs/performance.md). The comparison runs in
    float32 (float64 for float64 input), whose rounding of the integers moves the kept fraction by
    less than 1e-7, as `torch.rand`'s 24-bit floats do; the scale is applied in that dtype too, so
    that a bf16 or fp16 input under autocast keeps p exact.
    """

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        dtype = torch.promote_types(x.dtype, torch.float32)
        count = x.numel()
        draws = torch.empty((count + 1) // 2, dtype=torch.int64, device=x.device)
        # the full 64-bit range (from the lowest int64, no upper bound): every bit uniform
        bits = draws.random_(-2 ** 63, None).view(torch.int32)[:count].view(x.shape)
        keep = bits.to(dtype).ge_(-2.0 ** 31 + self.p * 2.0 ** 32)                 # 1.0 or 0.0
        return x * keep.mul_(1 / (1 - self.p)).to(x.dtype)

    def extra_repr(self):
        return f'p={self.p}'


class TemporalConv(nn.Module):
    """Conv (kernel × 1) along time, 'same' padding, then BatchNorm (and dropout, as in ST-GCN's
    unit)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1, dropout=0.0):
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, (kernel_size, 1), padding=(pad, 0),
                              stride=(stride, 1), dilation=(dilation, 1))
        self.bn = nn.BatchNorm2d(out_channels)
        self.dropout = Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x):
        return self.dropout(conv_bn(x, self.conv, self.bn))


class MultiScaleTCN(nn.Module):
    """CTR-GCN's temporal unit: one branch per dilation, a max-pool branch and a 1×1 branch,
    concatenated.

    Each branch opens with 1×1 conv + BN + ReLU (the 1×1 branch with conv + BN only); no activation
    follows the concatenation.
    """

    def __init__(self, channels, kernel_size=5, stride=1, dilations=(1, 2)):
        super().__init__()
        num_branches = len(dilations) + 2
        if channels % num_branches:
            raise ConfigError(f'multi-scale TCN: {channels} channels do not split into '
                              f'{num_branches} branches')
        width = channels // num_branches

        def opening():
            return [nn.Conv2d(channels, width, 1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]

        self.branches = nn.ModuleList(
            [nn.Sequential(*opening(), TemporalConv(width, width, kernel_size, stride, d))
             for d in dilations]
            + [nn.Sequential(*opening(), nn.MaxPool2d((3, 1), stride=(stride, 1), padding=(1, 0)),
                             nn.BatchNorm2d(width)),
               nn.Sequential(nn.Conv2d(channels, width, 1, stride=(stride, 1)),
                             nn.BatchNorm2d(width))])
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init_conv(m)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        # The 1×1 convs that open the first branches run as one matrix product (their weights
        # concatenated: one pass over x; in evaluation each with its BN folded in); each branch then
        # continues with its own BN, ReLU and layers.
        openers = self.branches[:-1]
        widths = [branch[0].out_channels for branch in openers]
        if self.training:
            weight = torch.cat([branch[0].weight for branch in openers])
            bias = torch.cat([branch[0].bias for branch in openers])
            opened = pointwise(x, weight, bias).split(widths, dim=1)
            outputs = [branch[2](branch[1](y)) for branch, y in zip(openers, opened)]   # BN, ReLU
        else:
            weights, biases = zip(*(fold_batch_norm(branch[0], branch[1]) for branch in openers))
            outputs = list(pointwise(x, torch.cat(weights), torch.cat(biases)).relu_()
                           .split(widths, dim=1))
        # The max-pool over frames is faster on channels-last memory (same values and gradient;
        # docs/performance.md).
        outputs[-1] = outputs[-1].contiguous(memory_format=torch.channels_last)
        outputs = [branch[3:](y) for branch, y in zip(openers, outputs)]
        last = self.branches[-1]                                        # 1×1 conv (strided) + BN
        return torch.cat([*outputs, conv_bn(x, last[0], last[1])], dim=1)


def make_residual(in_channels, out_channels, stride):
    """Identity when the shape is kept, else a strided 1×1 temporal conv + BN."""
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    residual = TemporalConv(in_channels, out_channels, 1, stride)
    init_conv(residual.conv)
    init_bn(residual.bn, 1)
    return residual


class Block(nn.Module):
    """relu(TCN(GCN(x)) + residual(x)) with an optional SF-Head after the GCN unit.

    `inline`: the head's output feeds the TCN. `branch`: the head reads the GCN output for the
    losses only and the backbone path is untouched, so the head is skipped when no features are
    asked for (inference). Key names `gcn1`, `tcn1`, `residual` as in CTR-GCN.
    """

    def __init__(self, gcn, tcn, residual, sf_head=None, sf_mode='inline'):
        super().__init__()
        self.gcn1 = gcn
        self.sf_head = sf_head
        self.sf_mode = sf_mode
        self.tcn1 = tcn
        self.residual = residual
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x, return_features=False):
        """(N·M, C, T, V) → output, and the SF-Head's features (or None) when `return_features`."""
        y = self.gcn1(x)
        features = None
        if self.sf_head is not None and (self.sf_mode == 'inline' or return_features):
            head_out, features = self.sf_head(y, return_features=True)
            if self.sf_mode == 'inline':
                y = head_out
        y = self.tcn1(y)
        if self.residual is not None:
            y += self.residual(x)
        y = self.relu(y)
        return (y, features) if return_features else y


SF_HEAD_KEYS = ('groups', 'mode', 'blocks', 'loss_weights')
SF_LOSS_WEIGHTS = {'redundancy': 0.1, 'consistency': 0.1}


def parse_sf_head(sf_head, num_blocks):
    """The `sf_head` model argument → None (off) or {'groups', 'mode', 'blocks' (0-based
    indices), 'loss_weights' {'redundancy', 'consistency'}}."""
    if sf_head is None:
        return None
    if not isinstance(sf_head, dict):
        raise ConfigError(f'model_args.sf_head must be a mapping such as {{groups: 8}} or null, '
                          f'got {sf_head!r}')
    check_keys(sf_head, SF_HEAD_KEYS, 'model_args.sf_head')
    settings = {'groups': 8, 'mode': 'inline', 'blocks': 'all', **sf_head}
    settings['loss_weights'] = parse_loss_weights(sf_head.get('loss_weights') or {})
    if settings['mode'] not in ('inline', 'branch'):
        raise ConfigError(f"model_args.sf_head.mode must be inline or branch, "
                          f"got {settings['mode']!r}")
    blocks = settings['blocks']
    if blocks == 'all':
        settings['blocks'] = list(range(num_blocks))
    elif isinstance(blocks, list) and all(isinstance(b, int) and 1 <= b <= num_blocks
                                          for b in blocks):
        settings['blocks'] = [b - 1 for b in blocks]
    else:
        raise ConfigError(f"model_args.sf_head.blocks must be 'all' or a list of block numbers "
                          f"1..{num_blocks}, got {blocks!r}")
    return settings


def parse_loss_weights(weights):
    """sf_head.loss_weights over their defaults; each a number >= 0."""
    where = 'model_args.sf_head.loss_weights'
    if not isinstance(weights, dict):
        raise ConfigError(f'{where} must be a mapping such as {{redundancy: 0.1}}, got {weights!r}')
    check_keys(weights, SF_LOSS_WEIGHTS, where)
    for name, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ConfigError(f'{where}.{name} must be a number >= 0, got {value!r}')
    return {**SF_LOSS_WEIGHTS, **weights}


def inference_args(args):
    """A backbone's full arguments without the training-only ones: dropout, the SF-Head loss
    weights, and the whole SF-Head in branch mode (it only feeds the losses)."""
    args = {k: v for k, v in args.items() if k != 'drop_out'}
    sf_head = args.get('sf_head')
    if sf_head is not None:
        mode = sf_head.get('mode', 'inline')
        args['sf_head'] = ({k: v for k, v in sf_head.items() if k != 'loss_weights'}
                           if mode == 'inline' else None)
    return args


class SkeletonGCN(nn.Module):
    """A stack of blocks on (N, C, T, V, M) skeleton input, returning logits (N, num_class).

    The backbone supplies its units: `make_gcn(in_channels, out_channels, A)` and
    `make_tcn(channels, stride, block_index)`; `A` is the (K, V, V) adjacency that
    `adjacency(layout)` gives for the layout named by `graph`. data-BN normalises over M·V·C
    (CTR-GCN) or, with `data_bn_per_person`, over V·C shared by the persons (ST-GCN). `drop_out` is
    applied before the classifier. `reference_filter(state, model)` renames a reference checkpoint's
    keys to this model's (or drops the ones it does not use).
    """

    def __init__(self, *, make_gcn, num_class, num_point, num_person, in_channels, graph, channels,
                 strides, drop_out, sf_head, make_tcn=None, adjacency=spatial_adjacency,
                 data_bn_per_person=False, reference_filter=None):
        super().__init__()
        layout = get_layout(graph)
        if num_point != layout.num_joints:
            raise ConfigError(f"num_point is {num_point} but graph '{graph}' has "
                              f"{layout.num_joints} joints")
        if len(channels) != len(strides):
            raise ConfigError(f'channels ({len(channels)} blocks) and strides ({len(strides)}) '
                              f'differ in length')
        make_tcn = make_tcn or (lambda c, stride, index: MultiScaleTCN(c, stride=stride))
        sf_head = parse_sf_head(sf_head, len(channels))
        self.loss_weights = sf_head['loss_weights'] if sf_head else {}
        A = adjacency(layout)
        self.reference_filter = reference_filter
        self.data_bn_per_person = data_bn_per_person
        self.data_bn = nn.BatchNorm1d((1 if data_bn_per_person else num_person) * in_channels
                                      * num_point)
        init_bn(self.data_bn, 1)
        self.block_names = []
        widths = [in_channels, *channels]
        for i, (c_in, c_out, stride) in enumerate(zip(widths, widths[1:], strides)):
            name = f'l{i + 1}'
            with_head = sf_head is not None and i in sf_head['blocks']
            head = (SFHead(c_out, sf_head['groups'], where=f' of block {name}') if with_head
                    else None)
            # The first block has no residual, as in the references.
            residual = make_residual(c_in, c_out, stride) if i else None
            self.add_module(name, Block(make_gcn(c_in, c_out, A), make_tcn(c_out, stride, i),
                                        residual, head, sf_head['mode'] if sf_head else 'inline'))
            self.block_names.append(name)
        self.drop_out = Dropout(drop_out) if drop_out else nn.Identity()
        self.fc = nn.Linear(widths[-1], num_class)
        nn.init.normal_(self.fc.weight, 0, math.sqrt(2.0 / num_class))

    def adapt_state(self, state, trained_args=None):
        """A checkpoint's state dict in this model's names: the backbone's own renaming of
        reference keys, the released SF-Head's unused `bn` dropped, and, when the checkpoint's
        model arguments `trained_args` had training-only branch-mode heads where this model has
        none, their weights dropped."""
        state = self.reference_filter(state, self) if self.reference_filter else state
        unused = [f'{name}.sf_head.bn.' for name in self.block_names
                  if getattr(self, name).sf_head is not None]
        if ((trained_args or {}).get('sf_head') or {}).get('mode') == 'branch':
            unused += [f'{name}.sf_head.' for name in self.block_names
                       if getattr(self, name).sf_head is None]
        unused = tuple(unused)
        return {k: v for k, v in state.items() if not k.startswith(unused)} if unused else state

    @property
    def blocks(self):
        return [getattr(self, name) for name in self.block_names]

    def normalise_input(self, x):
        """data-BN, then (N, C, T, V, M) → (N·M, C, T, V)."""
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2)                                     # (N, M, V, C, T)
        if self.data_bn_per_person:
            x = self.data_bn(x.reshape(n * m, v * c, t))
        else:
            x = self.data_bn(x.reshape(n, m * v * c, t))
        return x.reshape(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)

    def forward_features(self, x, head_features=None):
        """(N, C, T, V, M) → features (N, M, C', T', V') after the last block.

        With a list as `head_features`, each SF-Head's intermediate features are appended to it.
        """
        n, m = x.shape[0], x.shape[-1]
        x = self.normalise_input(x)
        for block in self.blocks:
            if head_features is not None and block.sf_head is not None:
                x, features = block(x, return_features=True)
                head_features.append(features)
            else:
                x = block(x)
        return x.reshape(n, m, *x.shape[1:])

    def forward_head(self, features, pre_logits=False):
        """`forward_features`' output → logits (N, num_class): mean over frames and joints, then
        over persons; dropout; linear classifier. With `pre_logits`, the pooled features (N, C')
        that the classifier reads (the feature space of tools/embed.py; dropout is left out, as
        evaluation leaves it out)."""
        pooled = features.mean((3, 4)).mean(1)              # (N, M, C', T', V') → (N, C')
        if pre_logits:
            return pooled
        return self.fc(self.drop_out(pooled))

    def forward(self, x, return_aux=False):
        """Logits (N, num_class); with `return_aux`, also the auxiliary losses {name: scalar} of the
        heads, each already times its weight (sf_head.loss_weights)."""
        if not return_aux:
            return self.forward_head(self.forward_features(x))
        head_features = []
        logits = self.forward_head(self.forward_features(x, head_features))
        losses = sf_head_losses(head_features)
        return logits, {f'sf_{name}': self.loss_weights[name] * losses[name] for name in losses}
