"""SF-Head written as the released module is structured: channel groups folded into the batch, gates
applied on permuted copies (`permute(...).contiguous()`), and the unused `bn` / `relu` built (their
keys are in the released state dict). The parameters are those of model/sf_head.py; only the
computation differs."""
import torch
from torch import nn

from model.sf_head import SFHead


def gate_first_axis(gate, x):
    """The release's gate: pool over dim 1 of a (permuted, copied) tensor, conv 7×7 + BN, sigmoid,
    multiply."""
    pooled = torch.cat((torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)), dim=1)
    return x * torch.sigmoid(gate.conv(pooled))


class ReleasedSFHead(SFHead):
    def __init__(self, channels, groups=8):
        super().__init__(channels, groups)
        self.bn = nn.BatchNorm2d(channels)          # built but unused, as in the release
        self.relu = nn.ReLU()

    def forward(self, x):
        n, c, t, v = x.shape
        x = x.reshape(n * self.groups, -1, t, v)
        x1, x2, x3, x4 = x.chunk(4, dim=1)
        f_t = x1 * torch.sigmoid(self.cweight * x1.mean((2, 3), keepdim=True) + self.cbias)
        f_s = x3 * torch.sigmoid(self.sweight * self.gn(x3) + self.sbias)
        w = torch.softmax(self.w, 0)
        r_cv = (gate_first_axis(self.cv, f_t.permute(0, 2, 1, 3).contiguous())
                .permute(0, 2, 1, 3).contiguous())
        r_tc = (gate_first_axis(self.tc, f_s.permute(0, 3, 2, 1).contiguous())
                .permute(0, 3, 2, 1).contiguous())
        r_tv = gate_first_axis(self.tv, x2)
        f_r = w[0] * r_cv + w[1] * r_tc + w[2] * r_tv + w[3] * x2
        out = torch.cat([f_t, f_s, f_r, x4], dim=1).reshape(n, -1, t, v)
        out = out.reshape(n, 2, c // 2, t, v).permute(0, 2, 1, 3, 4).contiguous()
        return out.reshape(n, c, t, v)
