"""Checkpoints: atomic saving, safe loading (weights_only) and loading weights into a model."""

import io
import os
import zipfile

import torch

from torchlight.files import atomic_write
from torchlight.registry import ConfigError

# The first bytes of a checkpoint in torch.save's legacy (non-zip) format: a pickled magic number.
LEGACY_MAGIC = b'\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19'


def save_checkpoint(state, path):
    """torch.save to a temporary file, then rename: a crash never leaves a half-written one."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue())


def load_checkpoint(path):
    """A checkpoint (a dict) read without running code; anything else is refused in plain words."""
    if not os.path.isfile(path):
        raise ConfigError(f'checkpoint not found: {path}')
    if os.path.getsize(path) == 0:
        raise ConfigError(f'{path} is empty (0 bytes): not a checkpoint')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001  (unpickling errors come in many types)
        raise ConfigError(
            f'cannot load {path} as a checkpoint: {unreadable_because(path, err)}'
        ) from None
    if not isinstance(checkpoint, dict):
        raise ConfigError(
            f'{path} holds a {type(checkpoint).__name__}, not a checkpoint (a '
            f'mapping of weight names to tensors)'
        )
    return checkpoint


def unreadable_because(path, err):
    """Why torch.load failed, in words; torch's own words for a file it refused to unpickle."""
    with open(path, 'rb') as f:
        head = f.read(len(LEGACY_MAGIC))
    if head.startswith(b'PK') and not zipfile.is_zipfile(path):
        return 'it is truncated (an incomplete zip archive)'
    if not head.startswith(b'PK') and not head.startswith(LEGACY_MAGIC):
        return 'it is not a file written by torch.save'
    if isinstance(err, EOFError):
        return 'it is truncated'
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    refusal = [line for line in lines if 'GLOBAL' in line]
    return (refusal or lines or [type(err).__name__])[0]


def extract_state_dict(checkpoint, source):
    """The model's state dict from our checkpoints or a plain / wrapped state dict; `module.`
    prefixes removed."""
    state = checkpoint
    for key in ('model', 'state_dict'):
        if isinstance(state.get(key), dict):
            state = state[key]
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ConfigError(f'{source} is not a state dict: {not_tensors[0]!r} is not a tensor')
    return {k.removeprefix('module.'): v for k, v in state.items()}


def check_finite_weights(state, when, path):
    """Refuse to write NaN or Inf weights as a checkpoint."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ConfigError(
            f'the weights hold NaN or Inf {when} ({bad[0]}, ...): not written to {path}'
        )


def load_weights(model, path):
    """Load the weights of checkpoint `path` into `model`, refusing any key or shape mismatch.

    Returns the checkpoint (a dict) so that callers can read its metadata.
    """
    checkpoint = load_checkpoint(path)
    apply_weights(model, checkpoint, path)
    return checkpoint


def apply_weights(model, checkpoint, source):
    """Copy a loaded checkpoint's weights into `model`; a mismatch is reported with examples.

    A model adapts a state dict to itself in `model.adapt_state(state, trained_args)` (reference
    key names, training-only weights), given the model arguments the checkpoint records.
    """
    state = extract_state_dict(checkpoint, source)
    if hasattr(model, 'adapt_state'):
        trained_args = (checkpoint.get('config') or {}).get('model_args')
        state = model.adapt_state(state, trained_args if isinstance(trained_args, dict) else None)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f'{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}'
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (
            ('missing keys', missing),
            ('unexpected keys', unexpected),
            ('shape mismatches', shapes),
        ):
            if items:
                parts.append(f"{len(items)} {label} (e.g. {', '.join(items[:3])})")
        raise ConfigError(f'{source} does not fit this model: ' + '; '.join(parts))
    model.load_state_dict(state)
