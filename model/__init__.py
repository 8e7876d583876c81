"""Models: `build_model(name, **model_args)` returns an nn.Module mapping (N, C, T, V, M) to
logits."""
import inspect
import json

from model import ctrgcn, stgcn, tcagcn  # noqa: F401  (registers the backbones)
from model.registry import INFERENCE_ARGS, MODELS, register_model


def build_model(name, **model_args):
    return MODELS.build(name, **model_args)


def full_model_args(name, model_args):
    """`model_args` with every default filled in, as plain JSON-like values (tuples become
    lists)."""
    bound = inspect.signature(MODELS.get(name)).bind(**model_args)
    bound.apply_defaults()
    return json.loads(json.dumps(bound.arguments))


def inference_args(name, model_args):
    """The full arguments that decide what a trained model computes: without those its builder
    declares training-only (`inference_args` registered with it)."""
    return INFERENCE_ARGS[name](full_model_args(name, model_args))


__all__ = ['build_model', 'full_model_args', 'inference_args', 'register_model', 'MODELS']
