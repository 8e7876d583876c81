"""The backbones' feature API (forward_head's pre-logits) and tools/embed.py on a trained tiny run:
features that reproduce the run's scores, figures with one panel per run, seeded results."""


import pytest
import torch

from model import build_model

SMALL = {'num_class': 6, 'channels': [16, 16], 'strides': [1, 2]}


@pytest.mark.parametrize('name', ['ctrgcn', 'stgcn', 'tcagcn'])
def test_pre_logits_are_the_pooled_features_that_the_classifier_reads(name):
    torch.manual_seed(0)
    model = build_model(name, **SMALL, sf_head={'groups': 2}).eval()
    x = torch.randn(3, 3, 12, 25, 2)
    with torch.no_grad():
        features = model.forward_features(x)
        pooled = model.forward_head(features, pre_logits=True)
        logits = model(x)
    n, m, c, t, v = features.shape
    assert (n, m, c) == (3, 2, 16)
    # the mean over persons, frames and joints, all equally many: a plain sum over M·T'·V' values
    manual = features.double().sum((1, 3, 4)) / (m * t * v)
    torch.testing.assert_close(pooled.double(), manual, rtol=1e-6, atol=1e-6)
    # the classifier is an affine map of exactly these features, and model(x) is unchanged
    torch.testing.assert_close(logits, pooled @ model.fc.weight.T + model.fc.bias)
    torch.testing.assert_close(logits, model.forward_head(features))
