"""A mean whose gradient is not materialised. Several units pool a block's features over frames,
joints or both while the features also feed other operations; PyTorch's mean writes its input's
full-size gradient (the incoming one divided elementwise over the broadcast) where a broadcast view,
added into the other operations' gradients, would do."""
import math

import torch


class BroadcastMean(torch.autograd.Function):
    """x.mean(dims, keepdim=True); the backward returns grad / count expanded to x's shape, a view
    that autograd adds into x's other gradients without first writing it out."""

    @staticmethod
    def forward(ctx, x, dims):
        ctx.shape = x.shape
        ctx.count = math.prod(x.shape[d] for d in dims)
        return x.mean(dims, keepdim=True)

    @staticmethod
    def backward(ctx, grad):
        return (grad / ctx.count).expand(ctx.shape), None


def mean_keepdim(x, dims):
    """x.mean(dims, keepdim=True), with BroadcastMean's gradient when one is needed."""
    if torch.is_grad_enabled() and x.requires_grad:
        return BroadcastMean.apply(x, tuple(dims))
    return x.mean(dims, keepdim=True)
