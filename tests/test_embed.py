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
from tools.embed import Features, analyse, figures_to_draw, group_figure
from tools.embed import main as embed_main
from torchlight.checkpoint import load_checkpoint
from torchlight.separability import group_separability

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


def synthetic_run(name, rng, spread):
    """Features of 4 classes of 20 samples in 8-D, around centres 10 apart, with noise `spread`."""
    labels = np.repeat(np.arange(4), 20)
    features = 10 * np.eye(4, 8)[labels] + spread * rng.normal(size=(80, 8))
    names = [f'S{i:03d}' for i in range(80)]
    return Features(name, {}, 7, features, labels, names, ['wave', 'salute', 'hop', 'jump'])


def test_a_group_figure_has_one_panel_per_run_with_the_groups_samples_by_class():
    pytest.importorskip('matplotlib')
    rng = np.random.default_rng(0)
    runs = [synthetic_run('a', rng, 1.0), synthetic_run('b', rng, 8.0)]
    groups = {'wave vs salute': [0, 1], 'hop vs jump': [2, 3]}
    numbers = [group_separability(r.features, r.labels, groups, r.class_names) for r in runs]
    figure = group_figure(runs, ['tight', 'loose'], 'wave vs salute', [0, 1], numbers, 'pca')
    assert len(figure.axes) == 2
    for axes, label, measured in zip(figure.axes, ['tight', 'loose'], numbers):
        # one point cloud per class of the group, 20 samples each, named in the legend
        assert [len(c.get_offsets()) for c in axes.collections] == [20, 20]
        assert [c.get_label() for c in axes.collections] == ['wave', 'salute']
        silhouette = measured['wave vs salute']['silhouette']
        assert axes.get_title().startswith(f'{label}\nsilhouette {silhouette:.2f}, k-NN ')
    assert [t.get_text() for t in figure.axes[-1].get_legend().get_texts()] == ['wave', 'salute']
    # the tight run separates, the loose one much less
    assert numbers[0]['wave vs salute']['silhouette'] > 0.5 > numbers[1]['wave vs salute'][
        'silhouette']
    # a group of fewer than 3 test samples is not drawn: the first 42 samples hold 2 hops
    few = runs[0]
    few = Features('c', {}, 7, few.features[:42], few.labels[:42], few.names[:42], few.class_names)
    assert figures_to_draw([few], groups) == {'embed_wave_vs_salute.png': 'wave vs salute',
                                              'embed_all.png': None}


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


def test_an_out_that_is_a_file_is_refused_before_any_work(tmp_path, demo_root, capsys):
    run, _ = fake_run(tmp_path / 'run', demo_root, {})
    readme = tmp_path / 'README.md'
    readme.write_text('notes')
    assert embed_main([run, '--epoch', 'last', '--out', str(readme)]) == 2
    assert capsys.readouterr().err == f'error: --out {readme} is a file, not a folder\n'
    assert readme.read_text() == 'notes'
    assert not os.path.exists(os.path.join(run, 'features_last.npz'))


def test_a_test_split_too_small_to_embed_is_skipped_and_said_so(tmp_path, monkeypatch, capsys):
    pytest.importorskip('matplotlib')
    run = tmp_path / 'run'
    run.mkdir()
    one = synthetic_run(str(run), np.random.default_rng(0), 1.0)
    one = Features(one.dir, {}, 7, one.features[:1], one.labels[:1], one.names[:1],
                   one.class_names)
    monkeypatch.setattr(Features, 'of_run', lambda *args: one)
    out = tmp_path / 'figures'
    assert analyse([str(run)], 'last', out=str(out), method='tsne') == {}
    printed = capsys.readouterr().out
    assert (f'embed_all.png: the test split of {run} has 1 sample(s), fewer than 3: no figure'
            in printed)
    assert 'figures to' in printed and not out.exists()
    # the group of wave and salute: one wave, no salute
    groups = tmp_path / 'groups.yaml'
    groups.write_text('wave vs salute: [wave, salute]\n')
    assert analyse([str(run)], 'last', groups_file=str(groups), out=str(out)) == {}
    assert 'wave vs salute: 1 test sample(s), fewer than 3: no figure' in capsys.readouterr().out
