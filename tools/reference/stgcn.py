"""A second ST-GCN, written for the tests from Yan et al.'s description with the original code's
layout: parameter names, the temporal unit opening with BN + ReLU, per-person data-BN and a 1×1-conv
classifier. With `sf_groups`, the released SF-Head sits after that BN + ReLU, before the temporal
convolution."""
import torch
import torch.nn.functional as F
from torch import nn

from tools.reference.sf_head import ReleasedSFHead

WIDTHS = [(3, 64, 1), (64, 64, 1), (64, 64, 1), (64, 64, 1), (64, 128, 2), (128, 128, 1),
          (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 256, 1)]


class Unit(nn.Module):
    def __init__(self, c_in, c_out, stride, first, dropout, sf_groups):
        super().__init__()
        self.gcn = nn.Module()
        self.gcn.conv = nn.Conv2d(c_in, 3 * c_out, 1)
        self.tcn = nn.Sequential(nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                                 nn.Conv2d(c_out, c_out, (9, 1), (stride, 1), (4, 0)),
                                 nn.BatchNorm2d(c_out),
                                 nn.Dropout(0.0 if first else dropout, inplace=True))
        self.sf_head = ReleasedSFHead(c_out, sf_groups) if sf_groups else None
        self.first = first
        if not first and (c_in != c_out or stride != 1):
            self.residual = nn.Sequential(nn.Conv2d(c_in, c_out, 1, (stride, 1)),
                                          nn.BatchNorm2d(c_out))
        else:
            self.residual = None

    def forward(self, x, A):
        shortcut = 0 if self.first else (x if self.residual is None else self.residual(x))
        y = self.gcn.conv(x)
        n, kc, t, v = y.shape
        out = torch.einsum('nkctv,kvw->nctw', y.view(n, 3, kc // 3, t, v), A)
        out = self.tcn[1](self.tcn[0](out))
        if self.sf_head is not None:
            out = self.sf_head(out)
        return F.relu(self.tcn[2:](out) + shortcut, inplace=True)


class OriginalSTGCN(nn.Module):
    def __init__(self, A, num_class=60, dropout=0.5, sf_groups=None):
        super().__init__()
        self.register_buffer('A', A)
        self.data_bn = nn.BatchNorm1d(3 * 25)
        self.st_gcn_networks = nn.ModuleList(Unit(a, b, s, i == 0, dropout, sf_groups)
                                             for i, (a, b, s) in enumerate(WIDTHS))
        self.edge_importance = nn.ParameterList(nn.Parameter(torch.ones(3, 25, 25)) for _ in WIDTHS)
        self.fcn = nn.Conv2d(256, num_class, 1)

    def forward(self, x):
        n, c, t, v, m = x.shape
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t))
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for unit, importance in zip(self.st_gcn_networks, self.edge_importance):
            x = unit(x, self.A * importance)
        x = F.avg_pool2d(x, x.shape[2:]).view(n, m, -1, 1, 1).mean(1)
        return self.fcn(x).view(n, -1)
