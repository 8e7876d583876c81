"""Feeders (datasets) by name: `build_feeder(name, **feeder_args)`."""
import inspect

from feeders.feeder import SkeletonFeeder, UclaFeeder
from torchlight.registry import Registry

FEEDERS = Registry('feeder')
FEEDERS.register('skeleton')(SkeletonFeeder)
FEEDERS.register('ucla')(UclaFeeder)


@FEEDERS.register('demo')
class DemoFeeder(SkeletonFeeder):
    """The skeleton feeder on the bundled synthetic dataset, generated on first use."""

    def __init__(self, data_path='data/demo/xsub', **kwargs):
        from data.synthetic import ensure_demo_dataset
        ensure_demo_dataset(data_path)
        super().__init__(data_path, **kwargs)

    # Same arguments as the skeleton feeder (the registry checks config keys against this signature).
    __init__.__signature__ = inspect.signature(SkeletonFeeder.__init__)


def build_feeder(name, **feeder_args):
    return FEEDERS.build(name, **feeder_args)
