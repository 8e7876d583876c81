"""Models: `build_model(name, **model_args)` returns an nn.Module mapping (N, C, T, V, M) to logits."""
from model import ctrgcn  # noqa: F401  (registers the backbone)
from model.registry import MODELS, register_model


def build_model(name, **model_args):
    return MODELS.build(name, **model_args)


__all__ = ['build_model', 'register_model', 'MODELS']
