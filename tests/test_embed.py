"""The backbones' feature API (forward_head's pre-logits) and tools/embed.py on a trained tiny run:
features that reproduce the run's scores, figures with one panel per run, seeded results."""


import json
import os
import pickle

import numpy as np
import pytest
import torch
import yaml

from feeders import build_feeder
from model import build_model
from tests.runs import fake_run
from tools.embed import analyse
from tools.embed import main as embed_main
from torchlight.checkpoint import load_checkpoint

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


def test_embed_refuses_what_is_not_a_trained_run(tmp_path, demo_root, capsys):
    assert embed_main([str(tmp_path), '--epoch', 'best']) == 2
    assert capsys.readouterr().err == (
        f'error: {tmp_path} is not a training run: it has no config.yaml\n'
    )
    run, _ = fake_run(tmp_path / 'scores_only', demo_root, {})
    assert embed_main([run, run, '--epoch', 'last', '--labels', 'a']) == 2
    assert capsys.readouterr().err == 'error: --labels names 1 runs, but 2 are given\n'
    assert embed_main([run, '--epoch', 'last']) == 2
    assert capsys.readouterr().err == f'error: checkpoint not found: {run}/last.pt\n'


@pytest.mark.slow
def test_embed_features_reproduce_the_scores_and_each_figure_has_a_panel_per_run(
    trained, tmp_path, capsys
):
    pytest.importorskip('matplotlib')
    _, run = trained
    out = tmp_path / 'figures'
    panels = analyse([run, run], 'best', out=str(out), labels=['baseline', 'SF-Head'])
    groups = ['wave_vs_salute', 'jump_up_vs_hop', 'sit_down_vs_stand_up']
    figures = [f'embed_{g}.png' for g in groups] + ['embed_all.png']
    assert sorted(os.listdir(out)) == sorted(figures)
    assert sorted(panels) == sorted(figures)
    for titles in panels.values():     # two panels, the runs in the order given
        assert [t.split('\n')[0] for t in titles] == ['baseline', 'SF-Head']
    assert 'silhouette' in panels['embed_wave_vs_salute.png'][0]
    # the saved features, through the checkpoint's classifier, give the run's saved scores
    saved = np.load(os.path.join(run, 'features_best.npz'))
    test_set = build_feeder('skeleton', split='test', **read_config(run)['test_feeder_args'])
    assert list(saved['names']) == test_set.names
    np.testing.assert_array_equal(saved['labels'], test_set.labels)
    results = json.load(open(os.path.join(run, 'results.json')))
    weights = load_checkpoint(os.path.join(run, 'best.pt'))['model']
    logits = saved['features'] @ weights['fc.weight'].numpy().T + weights['fc.bias'].numpy()
    with open(os.path.join(run, results['best']['scores']), 'rb') as f:
        scores = np.stack(list(pickle.load(f).values()))
    np.testing.assert_allclose(logits, scores, rtol=1e-4, atol=1e-4)
    separability = json.load(open(os.path.join(run, 'separability_best.json')))
    assert separability['checkpoint_epoch'] == results['best']['epoch']
    assert list(separability['groups']) == ['wave vs salute', 'jump up vs hop',
                                            'sit down vs stand up']
    # seeded: the same run gives the same figures and numbers
    again = tmp_path / 'again'
    analyse([run, run], 'best', out=str(again), labels=['baseline', 'SF-Head'])
    for name in figures:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    assert json.load(open(os.path.join(run, 'separability_best.json'))) == separability


def read_config(run):
    with open(os.path.join(run, 'config.yaml')) as f:
        return yaml.safe_load(f)
