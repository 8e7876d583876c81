"""Feeders (datasets) by name: `build_feeder(name, **feeder_args)`."""

import inspect

from data.synthetic import ensure_demo_dataset
from feeders.feeder import SkeletonFeeder, UclaFeeder
from feeders.pose2d import Pose2DFeeder
from torchlight.registry import Registry

FEEDERS = Registry('feeder')
FEEDERS.register('skeleton')(SkeletonFeeder)
FEEDERS.register('ucla')(UclaFeeder)
FEEDERS.register('pose2d')(Pose2DFeeder)


def with_generate(signature):
    """A feeder's arguments and `generate`."""
    generate = inspect.Parameter(
        'generate', inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool
    )
    return signature.replace(parameters=[*signature.parameters.values(), generate])


@FEEDERS.register('demo')
class DemoFeeder(SkeletonFeeder):
    """The skeleton feeder on the bundled synthetic dataset, generated on first use at its default
    location (data/demo/xsub), or anywhere with `generate: true`."""

    def __init__(self, data_path, *, generate=False, **kwargs):
        ensure_demo_dataset(data_path, generate)
        super().__init__(data_path, **kwargs)

    # The registry checks config keys and values against this signature.
    __init__.__signature__ = with_generate(inspect.signature(SkeletonFeeder.__init__))


@FEEDERS.register('demo2d')
class Demo2DFeeder(Pose2DFeeder):
    """The 2D feeder on the synthetic dataset's COCO-17 keypoints, generated on first use at their
    default location (data/demo/coco2d), or anywhere with `generate: true`."""

    def __init__(self, data_path, *, generate=False, **kwargs):
        ensure_demo_dataset(data_path, generate, layout='coco17')
        super().__init__(data_path, **kwargs)

    __init__.__signature__ = with_generate(inspect.signature(Pose2DFeeder.__init__))


def build_feeder(name, **feeder_args):
    return FEEDERS.build(name, **feeder_args)


def run_split(config, split='test', arguments='test_feeder_args'):
    """Split `split` read through a (run's) config: its feeder with `arguments`, its benchmark and
    stream (the demo data is generated if needed)."""
    shared = {'benchmark': config.get('benchmark'), 'stream': config.get('stream', 'joint')}
    return build_feeder(config['feeder'], **{**config[arguments], 'split': split, **shared})
