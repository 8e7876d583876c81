"""Score fusion: several streams' score files aligned to one sample order, summed with weights."""

from dataclasses import dataclass

import numpy as np

from torchlight.config import STREAMS
from torchlight.registry import ConfigError
from torchlight.scores import align, scores_of

# The reference ensembles' weights for (joint, bone, joint motion, bone motion).
REFERENCE_WEIGHTS = {
    ('ntu60', 'xsub'): (2, 2, 1, 1),
    ('ntu60', 'xview'): (0.6, 0.6, 0.4, 0.4),
    ('ntu120', 'xsub'): (0.6, 0.75, 0.3, 0.15),
    ('ntu120', 'xset'): (0.6, 0.75, 0.3, 0.15),
    ('ucla', 'xview'): (0.6, 0.6, 0.4, 0.4),
}

__all__ = ['REFERENCE_WEIGHTS', 'STREAMS', 'ScoredStream', 'fuse', 'load_streams']


@dataclass
class ScoredStream:
    path: str  # the score file
    names: list  # sample names, in the order of the first stream
    scores: np.ndarray  # (N, K)


def load_streams(sources, epoch, split='test'):
    """[ScoredStream], every stream aligned to the first one's samples."""
    streams = []
    for source in sources:
        names, scores, path = scores_of(source, epoch, split)
        if streams:
            first = streams[0]
            scores = align(names, scores, first.names, path)
            if scores.shape[1] != first.scores.shape[1]:
                raise ConfigError(
                    f'{path} scores {scores.shape[1]} classes, {first.path} {first.scores.shape[1]}'
                )
            names = first.names
        streams.append(ScoredStream(path, names, scores))
    return streams


def fuse(streams, weights):
    """Σ weight · scores: raw scores summed, as the references do."""
    return sum(w * stream.scores for w, stream in zip(weights, streams))
