"""Checkpoints: atomic saving, safe loading (weights_only) and loading weights into a model."""
import os

import torch

from torchlight.registry import ConfigError


def save_checkpoint(state, path):
    """torch.save to a temporary file, then rename: a crash never leaves a half-written checkpoint."""
    tmp = f'{path}.tmp{os.getpid()}'
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path):
    if not os.path.isfile(path):
        raise ConfigError(f'checkpoint not found: {path}')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001  (unpickling errors come in many types)
        raise ConfigError(f'cannot load {path} as a checkpoint: {str(err).splitlines()[0]}') from None


def extract_state_dict(checkpoint):
    """The model's state dict from our checkpoints or a plain / wrapped state dict; `module.` prefixes removed."""
    state = checkpoint
    for key in ('model', 'state_dict'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return {k.removeprefix('module.'): v for k, v in state.items()}


def load_weights(model, path):
    """Load the weights of checkpoint `path` into `model`, refusing any key or shape mismatch.

    Returns the checkpoint (a dict) so that callers can read its metadata.
    """
    checkpoint = load_checkpoint(path)
    apply_weights(model, checkpoint, path)
    return checkpoint


def apply_weights(model, checkpoint, source):
    """Copy a loaded checkpoint's weights into `model`; a mismatch is reported with examples.

    A model whose reference code names its weights differently converts them in `model.adapt_reference_state`.
    """
    state = extract_state_dict(checkpoint)
    if hasattr(model, 'adapt_reference_state'):
        state = model.adapt_reference_state(state)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f'{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}'
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (('missing keys', missing), ('unexpected keys', unexpected),
                             ('shape mismatches', shapes)):
            if items:
                parts.append(f"{len(items)} {label} (e.g. {', '.join(items[:3])})")
        raise ConfigError(f'{source} does not fit this model: ' + '; '.join(parts))
    model.load_state_dict(state)
