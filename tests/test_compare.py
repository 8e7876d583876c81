"""tools/compare.py on two hand-made runs over the demo test split; the figures it draws."""

import os
import re

import numpy as np
import pytest

from feeders import build_feeder
from tests.runs import fake_run, fake_separability
from tools.compare import confusion_changes, most_confused_pairs
from tools.compare import main as compare_main
from torchlight.metrics import mcnemar_exact


def test_mcnemar_by_hand():
    # 10 samples: both right on 0-1, both wrong on 2, only A right on 3, only B right on 4-9.
    a = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0], bool)
    b = np.array([1, 1, 0, 0, 1, 1, 1, 1, 1, 1], bool)
    # 7 discordant samples, 1 of them A's: P(X <= 1) for X ~ Binomial(7, 1/2) is (1 + 7) / 128;
    # two-sided, twice that: 0.125.
    assert mcnemar_exact(a, b) == (1, 6, 0.125)
    assert mcnemar_exact(b, a) == (6, 1, 0.125)
    # an even split, and no discordant sample at all, say nothing: p = 1
    assert mcnemar_exact([1, 0, 1], [0, 1, 1]) == (1, 1, 1.0)
    assert mcnemar_exact([1, 0], [1, 0]) == (0, 0, 1.0)


@pytest.mark.parametrize('only_a, only_b', [(0, 5), (3, 17), (40, 61), (250, 180)])
def test_mcnemar_agrees_with_scipys_binomial_test(only_a, only_b):
    stats = pytest.importorskip('scipy.stats')
    a = np.array([True] * only_a + [False] * only_b + [True] * 9)
    b = np.array([False] * only_a + [True] * only_b + [True] * 9)
    expected = stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert mcnemar_exact(a, b).p_value == pytest.approx(expected, rel=1e-12)


def test_pairs_by_hand():
    cm = np.array([[5, 3, 0], [1, 4, 2], [0, 0, 6]])
    # Mutual confusion: (0, 1) 3 + 1 = 4, (1, 2) 2, (0, 2) 0.
    assert most_confused_pairs(cm, 5) == [(0, 1, 4), (1, 2, 2)]
    after = np.array([[8, 0, 0], [0, 4, 3], [0, 1, 5]])
    # (0, 1): 4 → 0; (1, 2): 2 → 4; sorted by change, largest fall first.
    assert confusion_changes(cm, after) == [(0, 1, 4, 0), (1, 2, 2, 4)]


def row(out, name):
    """The figures of the table row that starts with `name` (whatever the column widths)."""
    line = next(line for line in out.splitlines() if re.match(rf'{re.escape(name)}\s+\d', line))
    return line[len(name) :].split()


@pytest.mark.slow  # the plots drawn with matplotlib
def test_comparison_by_hand(tmp_path, demo_root, capsys):
    labels = build_feeder('skeleton', data_path=demo_root, split='test').labels
    waves = np.flatnonzero(labels == 0)  # 36 test samples per class
    salutes = np.flatnonzero(labels == 1)
    claps = np.flatnonzero(labels == 4)
    # Baseline: 9 waves called salute, 3 salutes called wave, 4 claps called punch.
    base, _ = fake_run(
        tmp_path / 'base',
        demo_root,
        {**{i: 1 for i in waves[:9]}, **{i: 0 for i in salutes[:3]}, **{i: 8 for i in claps[:4]}},
    )
    # SF-Head (the configs differ in it alone: the runs are named baseline and SF-Head): 2 waves
    # called salute, no salute wrong, 6 claps called punch.
    other, _ = fake_run(tmp_path / 'sf', demo_root,
                        {**{i: 1 for i in waves[:2]}, **{i: 8 for i in claps[:6]}}, sf_head=True)
    assert compare_main([base, other, '--epoch', 'last', '--plots', str(tmp_path / 'plots')]) == 0
    out = capsys.readouterr().out
    # Top-1: (360 - 16) / 360 = 95.56 %, (360 - 8) / 360 = 97.78 %.
    assert 'overall top-1: baseline 95.56 %, SF-Head 97.78 %, difference +2.22' in out
    # Only the baseline right: claps 4 and 5; only SF-Head: waves 2-8 and salutes 0-2 (10). Of 12
    # discordant samples 2 are the baseline's: p = 2 (1 + 12 + 66) / 2^12 = 0.0386.
    assert "McNemar's exact test: only baseline right 2, only SF-Head right 10, p = 0.0386" in out
    # wave vs salute: 72 samples, 12 wrong → 83.33 %, then 2 wrong → 97.22 %; the 10 samples
    # that only SF-Head got right against none: p = 2 / 2^10 = 0.00195.
    assert row(out, 'wave vs salute') == ['83.33%', '97.22%', '+13.89', '72', '0', '10', '0.00195']
    assert row(out, 'jump up vs hop') == ['100.00%', '100.00%', '+0.00', '72', '0', '0', '1']
    # Per class: wave 27/36 = 75.00 → 34/36 = 94.44; salute 33/36 = 91.67 → 100.
    assert row(out, 'wave') == ['75.00%', '94.44%', '+19.44', '36']
    assert row(out, 'salute') == ['91.67%', '100.00%', '+8.33', '36']
    assert 'wave ↔ salute: 12 → 2 (-10)' in out
    assert 'clap ↔ punch: 4 → 6 (+2)' in out
    assert sorted(os.listdir(tmp_path / 'plots')) == [
        'accuracy_difference.png',
        'confusion_ambiguous_SF-Head.png',
        'confusion_ambiguous_baseline.png',
    ]


def test_separability_sits_beside_the_group_accuracies(tmp_path, demo_root, capsys):
    base, _ = fake_run(tmp_path / 'base', demo_root, {})
    other, _ = fake_run(tmp_path / 'sf', demo_root, {})
    fake_separability(base, {'wave vs salute': {'silhouette': 0.1, 'knn': 60.0, 'probe': 87.5}})
    fake_separability(other, {'wave vs salute': {'silhouette': 0.35, 'knn': 75.25, 'probe': 90}})
    assert compare_main([base, other, '--epoch', 'last']) == 0
    out = capsys.readouterr().out
    assert row(out, 'wave vs salute')[7:] == ['0.10', '→', '0.35', '60.0', '→', '75.2',
                                              '87.5', '→', '90.0']
    # a group that tools/embed.py did not measure
    assert row(out, 'jump up vs hop')[7:] == ['—', '→', '—'] * 3
    # measured on a checkpoint that is no longer the run's last epoch: left out, and said so
    fake_separability(other, {'wave vs salute': {'silhouette': 0.35}}, checkpoint_epoch=2)
    assert compare_main([base, other, '--epoch', 'last']) == 0
    out = capsys.readouterr().out
    assert 'separability_last.json measured epoch 2, but the run\'s last epoch is now 3' in out
    assert row(out, 'wave vs salute')[7:] == ['0.10', '→', '—', '60.0', '→', '—', '87.5', '→', '—']


def test_one_run_lists_and_writes_its_most_confused_pairs(tmp_path, demo_root, capsys):
    labels = build_feeder('skeleton', data_path=demo_root, split='test').labels
    hops = np.flatnonzero(labels == 3)
    run, _ = fake_run(tmp_path / 'base', demo_root, {**{i: 2 for i in hops[:5]}, hops[5]: 9})
    assert (
        compare_main(
            [run, '--epoch', 'last', '--top-pairs', '2', '--write-groups', str(tmp_path / 'g.yaml')]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert 'jump up ↔ hop: 5' in out and 'hop ↔ bow: 1' in out
    import yaml

    assert yaml.safe_load((tmp_path / 'g.yaml').read_text()) == {
        'jump up / hop': ['jump up', 'hop'],
        'hop / bow': ['hop', 'bow'],
    }


@pytest.mark.slow  # the plots drawn with matplotlib
def test_figures_carry_class_names_and_differences():
    pytest.importorskip('matplotlib')
    from torchlight import plots

    cm = np.array([[8, 2, 0], [1, 9, 0], [0, 0, 10]])
    figure = plots.ambiguous_confusion_figure(
        cm, ['wave', 'salute', 'bow'], {'g': [1, 0], 'h': [2]}, 'title'
    )
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_yticklabels()] == ['salute', 'wave', 'bow']
    # Row-normalised percent: salute row (1 wrong of 10) → [90, 10] in the (salute, wave) order.
    np.testing.assert_allclose(axes.images[0].get_array()[0, :2], [90, 10])
    bars = plots.accuracy_difference_figure(
        ['a', 'b', 'c'],
        [50, 80, 70],
        [60, 70, 70],
        counts=[10, 10, 5],
        labels=['x', 'y'],
        title='t',
    )
    widths = [p.get_width() for p in bars.axes[0].patches]
    assert widths == [-10, 0, 10]  # sorted by difference: b, c, a
    assert [t.get_text() for t in bars.axes[0].get_yticklabels()] == ['b (10)', 'c (5)', 'a (10)']


def overall_line(out):
    return next(line for line in out.splitlines() if line.startswith('overall top-1:'))


def test_runs_are_named_by_what_differs_in_their_configs_else_by_their_folders(
    tmp_path, demo_root, capsys
):
    # two SF-Head runs, seeds of one setting: their folders name them
    first, _ = fake_run(tmp_path / 'sf/seed1', demo_root, {}, sf_head=True)
    second, _ = fake_run(tmp_path / 'sf/seed2', demo_root, {}, sf_head=True)
    assert compare_main([first, second, '--epoch', 'last', '--plots', str(tmp_path / 'p')]) == 0
    assert overall_line(capsys.readouterr().out).startswith('overall top-1: seed1 100.00 %, '
                                                            'seed2 100.00 %')
    assert 'confusion_ambiguous_seed2.png' in os.listdir(tmp_path / 'p')
    # backbone and SF-Head differ, the stream does not
    stgcn, _ = fake_run(tmp_path / 'stgcn', demo_root, {}, model='stgcn')
    assert compare_main([stgcn, first, '--epoch', 'last']) == 0
    assert overall_line(capsys.readouterr().out).startswith(
        'overall top-1: ST-GCN baseline 100.00 %, CTR-GCN SF-Head 100.00 %')
    # one folder twice; --labels still names them
    assert compare_main([first, first, '--epoch', 'last']) == 0
    assert 'first run 100.00 %, second run 100.00 %' in overall_line(capsys.readouterr().out)
    assert compare_main([stgcn, first, '--epoch', 'last', '--labels', 'old', 'new']) == 0
    assert 'old 100.00 %, new 100.00 %' in overall_line(capsys.readouterr().out)


def test_outputs_that_would_replace_a_file_are_refused_before_any_work(
    tmp_path, demo_root, capsys
):
    base, _ = fake_run(tmp_path / 'base', demo_root, {})
    other, _ = fake_run(tmp_path / 'sf', demo_root, {}, sf_head=True)
    readme = tmp_path / 'README.md'
    readme.write_text('notes')
    assert compare_main([base, other, '--epoch', 'last', '--plots', str(readme)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f'error: --plots {readme} is a file, not a folder\n'
    assert captured.out == ''
    checkpoint = tmp_path / 'base' / 'best.pt'
    checkpoint.write_bytes(b'weights')
    assert compare_main([base, '--epoch', 'last', '--write-groups', str(checkpoint)]) == 2
    assert capsys.readouterr().err == (f'error: --write-groups {checkpoint}: the output must be a '
                                       f'.yaml or .yml file\n')
    config = tmp_path / 'base' / 'config.yaml'
    before = config.read_text()
    assert compare_main([base, '--epoch', 'last', '--write-groups', str(config)]) == 2
    assert capsys.readouterr().err == (f'error: --write-groups {config} is also an input of this '
                                       f'command; name another file\n')
    assert compare_main([base, other, '--epoch', 'last', '--labels', 'a', 'a',
                         '--plots', str(tmp_path / 'plots')]) == 2
    assert capsys.readouterr().err == 'error: --labels: the two runs need two names, got a twice\n'
    assert readme.read_text() == 'notes' and checkpoint.read_bytes() == b'weights'
    assert config.read_text() == before
    assert not (tmp_path / 'plots').exists()


def test_help_keeps_each_example_command_on_its_own_lines(capsys):
    with pytest.raises(SystemExit):
        compare_main(['--help'])
    lines = capsys.readouterr().out.splitlines()
    example = ('    python -m tools.compare work_dir/ntu60/backbones/ctrgcn --epoch best '
               '--top-pairs 10 \\')
    assert example in lines
    assert '        --plots work_dir/compare' in lines
