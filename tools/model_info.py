"""Parameters and multiply-adds of a config's model, with SF-Head's share of both.

    python -m tools.model_info --config config/ntu60/joint.yaml [--frames 64] [any config override]

Multiply-adds are counted by torch.utils.flop_counter (convolutions, matrix products, einsums;
element-wise operations are not counted) for one sample of `frames` frames and all its persons, and
halved (one multiply-add = two flops).
"""

import argparse
import sys

import torch
from torch.utils.flop_counter import FlopCounterMode

from feeders import FEEDERS
from model import MODELS, build_model, full_model_args
from model.sf_head import SFHead
from torchlight.config import parse_args
from torchlight.registry import ConfigError


def count_multiply_adds(model, x):
    """(total, inside SF-Heads) multiply-adds of one forward pass."""
    with FlopCounterMode(display=False) as counter:
        model(x)
    per_module = counter.get_flop_counts()
    total = sum(per_module['Global'].values()) // 2
    heads = {name for name, module in model.named_modules() if isinstance(module, SFHead)}
    in_heads = (
        sum(
            sum(counts.values())
            for name, counts in per_module.items()
            if name.split('.', 1)[-1] in heads and name != 'Global'
        )
        // 2
    )
    return total, in_heads


def model_report(name, model_args, frames):
    args = full_model_args(name, model_args)
    model = build_model(name, **model_args).eval()
    params = sum(p.numel() for p in model.parameters())
    head_params = sum(
        p.numel() for m in model.modules() if isinstance(m, SFHead) for p in m.parameters()
    )
    x = torch.zeros(1, args['in_channels'], frames, args['num_point'], args['num_person'])
    # (with autograd on: the counter's module hooks need it)
    macs, head_macs = count_multiply_adds(model, x)
    return {
        'parameters': params,
        'sf_head_parameters': head_params,
        'multiply_adds': macs,
        'sf_head_multiply_adds': head_macs,
        'frames': frames,
    }


def share(part, whole):
    return f'{100.0 * part / whole:.2f} %'


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--frames',
        type=int,
        default=None,
        help="frames per sample (default: the config's test window_size, else 64)",
    )
    args, rest = parser.parse_known_args(argv)
    try:
        cfg, _ = parse_args(rest, {'model': MODELS, 'feeder': FEEDERS}, own_options=['--frames'])
        frames = args.frames if args.frames is not None else (
            cfg['test_feeder_args'].get('window_size', 64))
        if frames < 1:
            raise ConfigError(f'--frames must be at least 1, got {frames}')
        report = model_report(cfg['model'], cfg['model_args'], frames)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f"model {cfg['model']}, {frames} frames, one sample")
    print(
        f"  parameters     {report['parameters']:>14,}   "
        f"SF-Head {report['sf_head_parameters']:>10,} "
        f"({share(report['sf_head_parameters'], report['parameters'])})"
    )
    print(
        f"  multiply-adds  {report['multiply_adds']:>14,}   "
        f"SF-Head {report['sf_head_multiply_adds']:>10,} "
        f"({share(report['sf_head_multiply_adds'], report['multiply_adds'])})"
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
