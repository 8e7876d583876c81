"""SF-Head's training losses, designed from the paper's description (its formulas are not public).

Both work on each head's features, flattened per sample and channel group into vectors (N·G, D):
- F-RL, feature redundancy: the temporal and spatial features should carry different information.
  L_red = mean over vectors of cos²(f_t − mean(f_t), f_s − mean(f_s)) (centred per vector), in [0, 1]:
  0 when they are uncorrelated, 1 when one is a scaled copy of the other (of either sign).
- F-CL, feature consistency: the refined feature should stay consistent with what it was built from.
  L_con = mean over vectors and over x ∈ {f_t, f_s, f_c} of 1 − cos(f_r, x), in [0, 2].
Each loss is averaged over the SF-Heads of the model.
"""
import torch
import torch.nn.functional as F

AUX_LOSSES = ('sf_redundancy', 'sf_consistency')


def flat(feature):
    return feature.reshape(feature.shape[0], -1)


def redundancy_loss(f_t, f_s):
    a, b = flat(f_t), flat(f_s)
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (F.cosine_similarity(a, b, dim=1, eps=1e-8) ** 2).mean()


def consistency_loss(f_r, sources):
    r = flat(f_r)
    return torch.stack([(1 - F.cosine_similarity(r, flat(x), dim=1, eps=1e-8)).mean() for x in sources]).mean()


def sf_head_losses(features):
    """{'sf_redundancy', 'sf_consistency'} averaged over heads, from each head's {'t', 's', 'r', 'c'}."""
    if not features:
        return {}
    return {
        'sf_redundancy': torch.stack([redundancy_loss(f['t'], f['s']) for f in features]).mean(),
        'sf_consistency': torch.stack([consistency_loss(f['r'], (f['t'], f['s'], f['c'])) for f in features]).mean(),
    }
