"""A second CTR-GCN / TCA-GCN, written (for the tests and as the benchmark's baseline) from the
papers and the reference models' layout (parameter names, layer order, where each residual joins),
independently of model/. With `tca=True` each subset aggregates temporally calibrated features
through the reference's explicit per-sample weight tensor and the TCN ends with AFF called with a
zero residual; `conv3` stays in (unused), as in the reference."""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from graph import get_layout, spatial_adjacency
from tools.reference.sf_head import ReleasedSFHead

WIDTHS = [(3, 64, 1), (64, 64, 1), (64, 64, 1), (64, 64, 1), (64, 128, 2), (128, 128, 1),
          (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 256, 1)]


class ConvBN(nn.Module):
    """A (kernel × 1) convolution then BatchNorm, keys `conv`, `bn` as in the reference."""

    def __init__(self, c_in, c_out, kernel=1, stride=1, dilation=1):
        super().__init__()
        pad = (kernel + (kernel - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(c_in, c_out, (kernel, 1), (stride, 1), (pad, 0), (dilation, 1))
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return self.bn(self.conv(x))


class RouteFunc(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.g = nn.Conv2d(c_in, c_in, 1)
        self.a = nn.Conv2d(c_in, c_in // 2, (3, 1), padding=(1, 0))
        self.bn = nn.BatchNorm2d(c_in // 2)
        self.b = nn.Conv2d(c_in // 2, c_out, (3, 1), padding=(1, 0), bias=False)

    def forward(self, x):
        context = self.g(F.adaptive_avg_pool2d(x, 1))
        hidden = self.a(F.adaptive_avg_pool2d(x, (None, 1)) + context)
        return self.b(F.relu(self.bn(hidden), inplace=True)) + 1


class Subset(nn.Module):
    def __init__(self, c_in, c_out, tca):
        super().__init__()
        rel = 8 if c_in in (3, 9) else c_in // 8
        self.conv1, self.conv2 = nn.Conv2d(c_in, rel, 1), nn.Conv2d(c_in, rel, 1)
        self.conv3, self.conv4 = nn.Conv2d(c_in, c_out, 1), nn.Conv2d(rel, c_out, 1)
        self.tca = tca
        if tca:
            self.conv_rf = RouteFunc(c_in, c_out)
            self.conv = nn.Module()
            self.conv.weight = nn.Parameter(torch.zeros(c_out, c_in, 1, 1))

    def forward(self, x, A, alpha):
        x1, x2 = self.conv1(x).mean(-2), self.conv2(x).mean(-2)
        if self.tca:
            weight = (self.conv_rf(x).unsqueeze(2) * self.conv.weight).squeeze(-1)  # (N, U, C, T)
            x3 = torch.einsum('nctv,nuct->nutv', x, weight)
        else:
            x3 = self.conv3(x)
        topology = (self.conv4(torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))) * alpha
                    + A[None, None])
        return torch.einsum('ncuv,nctv->nctu', topology, x3)


class GraphUnit(nn.Module):
    def __init__(self, c_in, c_out, A, tca):
        super().__init__()
        self.PA = nn.Parameter(torch.from_numpy(A.astype(np.float32)))
        self.alpha = nn.Parameter(torch.zeros(1))
        self.convs = nn.ModuleList(Subset(c_in, c_out, tca) for _ in range(3))
        self.down = (nn.Sequential(nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out))
                     if c_in != c_out else None)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        y = self.convs[0](x, self.PA[0], self.alpha)
        for i in range(1, 3):
            y = self.convs[i](x, self.PA[i], self.alpha) + y
        y = self.bn(y)
        y += x if self.down is None else self.down(x)
        return F.relu(y, inplace=True)


def mlp(c):
    return [nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 1), nn.BatchNorm2d(c)]


class TemporalUnit(nn.Module):
    def __init__(self, c, stride, tca):
        super().__init__()
        w = c // 4
        self.branches = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(c, w, 1), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                           ConvBN(w, w, 5, stride, d))
             for d in (1, 2)]
            + [nn.Sequential(nn.Conv2d(c, w, 1), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                             nn.MaxPool2d((3, 1), (stride, 1), (1, 0)), nn.BatchNorm2d(w)),
               nn.Sequential(nn.Conv2d(c, w, 1, stride=(stride, 1)), nn.BatchNorm2d(w))])
        self.tca = tca
        if tca:
            self.af = nn.Module()
            self.af.local_att = nn.Sequential(*mlp(c))
            self.af.global_att = nn.Sequential(nn.AdaptiveAvgPool2d(1), *mlp(c))

    def forward(self, x):
        out = torch.cat([b(x) for b in self.branches], 1)
        if not self.tca:
            out += 0   # CTR-GCN adds the TCN's own residual in place; in its blocks that is 0
            return out
        residual = 0
        fused = out + residual
        w = torch.sigmoid(self.af.local_att(fused) + self.af.global_att(fused))
        return 2 * out * w + 2 * residual * (1 - w)


class Layer(nn.Module):
    def __init__(self, c_in, c_out, stride, A, first, tca, sf_groups):
        super().__init__()
        self.gcn1 = GraphUnit(c_in, c_out, A, tca)
        self.sf_head = ReleasedSFHead(c_out, sf_groups) if sf_groups else None
        self.tcn1 = TemporalUnit(c_out, stride, tca)
        self.first = first
        self.residual = (ConvBN(c_in, c_out, 1, stride)
                         if not first and (c_in != c_out or stride != 1) else None)

    def forward(self, x):
        shortcut = 0 if self.first else (x if self.residual is None else self.residual(x))
        y = self.gcn1(x)
        if self.sf_head is not None:
            y = self.sf_head(y)
        return F.relu(self.tcn1(y) + shortcut, inplace=True)


class ReferenceCTRGCN(nn.Module):
    """CTR-GCN (TCA-GCN with `tca`), with the released SF-Head inline in every block when
    `sf_groups`."""

    def __init__(self, num_class=60, tca=False, sf_groups=None):
        super().__init__()
        A = spatial_adjacency(get_layout('ntu25'))
        self.data_bn = nn.BatchNorm1d(2 * 3 * 25)
        for i, (a, b, s) in enumerate(WIDTHS):
            setattr(self, f'l{i + 1}', Layer(a, b, s, A, i == 0, tca, sf_groups))
        self.fc = nn.Linear(256, num_class)

    def forward(self, x):
        n, c, t, v, m = x.shape
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t))
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for i in range(len(WIDTHS)):
            x = getattr(self, f'l{i + 1}')(x)
        x = x.view(n, m, x.shape[1], -1).mean(3).mean(1)
        return self.fc(x)
