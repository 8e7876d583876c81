"""SF-Head's training losses, designed from the paper's description (its formulas are not public).

Both work on each head's features (N·G, c, T, V), taken as one vector per channel group over the
whole batch (G vectors of N·c·T·V numbers):
- F-RL, feature redundancy: the temporal and spatial features should carry different information.
  L_red = mean over groups of cos²(f_t − mean(f_t), f_s − mean(f_s)) (centred per vector),
  in [0, 1]: 0 when they are uncorrelated, 1 when one is a scaled copy of the other (of either
  sign).
- F-CL, feature consistency: the refined feature should stay consistent with what it was built from.
  L_con = mean over groups and over x ∈ {f_t, f_s, f_c} of 1 − cos(f_r, x), in [0, 2].
Each loss is averaged over the SF-Heads of the model.

Why one vector per group over the batch rather than per sample: a cosine's gradient scales with
1 / |vector|, and one sample's chunk of a group (a single channel at 64 channels and G = 8) is often
nearly all zero after a ReLU. Per-sample vectors gave gradients 10,000 times larger than the
cross-entropy's on the demo model and training collapsed to chance; over the batch the norms are
large and the gradients stay about 20 times smaller than the cross-entropy's.
"""
import torch
import torch.nn.functional as F


def flat(feature, groups):
    """(N·G, c, T, V) → (G, N·c·T·V): one vector per channel group, over the whole batch."""
    return feature.reshape(-1, groups, feature[0].numel()).transpose(0, 1).reshape(groups, -1)


def redundancy_loss(f_t, f_s, groups):
    a, b = flat(f_t, groups), flat(f_s, groups)
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (F.cosine_similarity(a, b, dim=1, eps=1e-8) ** 2).mean()


def consistency_loss(f_r, sources, groups):
    r = flat(f_r, groups)
    return torch.stack([(1 - F.cosine_similarity(r, flat(x, groups), dim=1, eps=1e-8)).mean()
                        for x in sources]).mean()


def sf_head_losses(features):
    """{'redundancy', 'consistency'} averaged over heads (unweighted), from each head's
    {'t', 's', 'r', 'c', 'groups'}."""
    if not features:
        return {}
    return {
        'redundancy': torch.stack([redundancy_loss(f['t'], f['s'], f['groups'])
                                      for f in features]).mean(),
        'consistency': torch.stack([consistency_loss(f['r'], (f['t'], f['s'], f['c']),
                                                        f['groups'])
                                       for f in features]).mean(),
    }
