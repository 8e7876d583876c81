"""tools/tables.py on a tiny set of hand-made demo runs: cells by hand, missing cells marked,
published figures."""

import json
import math

import yaml

from feeders import build_feeder
from tests.runs import fake_run, fake_separability
from tools.tables import main as tables_main


def make_run(folder, demo_root, model, *, sf_head, stream, wrong, top1=None, seed=None):
    """A finished demo run whose first `wrong` test samples are predicted as the next class."""
    labels = build_feeder('skeleton', data_path=demo_root, split='test').labels
    accuracy = 100.0 * (len(labels) - wrong) / len(labels) if top1 is None else top1
    test = {
        'top1': accuracy,
        'ambiguous': {
            'accuracy': accuracy - 1,
            'groups': {
                'wave vs salute': {'accuracy': accuracy - 2, 'confusion': 0.0, 'samples': 72}
            },
        },
    }
    fake_run(
        folder,
        demo_root,
        {i: (labels[i] + 1) % 10 for i in range(wrong)},
        model=model,
        sf_head=sf_head,
        stream=stream,
        epoch=2,
        test=test,
        seed=seed,
    )


def test_tables_from_demo_runs(tmp_path, demo_root, capsys):
    root = tmp_path / 'runs'
    # CTR-GCN without SF-Head: all four streams; 36, 18, 18 and 0 of 360 test samples wrong.
    for stream, wrong in (('joint', 36), ('bone', 18), ('joint_motion', 18), ('bone_motion', 0)):
        make_run(
            root / f'ctrgcn_{stream}',
            demo_root,
            'ctrgcn',
            sf_head=False,
            stream=stream,
            wrong=wrong,
        )
    # CTR-GCN + SF-Head: the joint stream only. ST-GCN: nothing.
    make_run(root / 'ctrgcn_sf_joint', demo_root, 'ctrgcn', sf_head=True, stream='joint', wrong=9)
    (root / 'unfinished').mkdir()
    assert tables_main([str(root), '--epoch', 'best', '--out', str(tmp_path / 't.md')]) == 0
    text = (tmp_path / 't.md').read_text()
    # Fused with weights 1 (no reference weights for the demo): samples 0-17 get 3 votes for the
    # wrong class and 1 for the right one; samples 18-35 only the joint stream's wrong vote → 18
    # wrong, 95.00 %.
    assert '| CTR-GCN | 90.00 | 95.00 | 95.00 | 100.00 | 95.00 |' in text
    assert '| CTR-GCN + SF-Head | 97.50 | — | — | — | — |' in text
    assert '| demo/xsub | CTR-GCN | joint | 90.00 | 97.50 | +7.50 | — |' in text
    assert '| demo/xsub | CTR-GCN | bone | 95.00 | — | — | — |' in text
    assert '| wave vs salute | 88.00 | 95.50 |' in text


def test_published_figures_sit_beside_ours_and_reference_rows(tmp_path, demo_root):
    root = tmp_path / 'runs'
    make_run(root / 'stgcn_joint', demo_root, 'stgcn', sf_head=False, stream='joint', wrong=36)
    # Pretend this run is NTU-60 X-Sub: ST-GCN's published joint figure is 81.6, FR-Head has a
    # reference row.
    results = json.loads((root / 'stgcn_joint' / 'results.json').read_text())
    results['meta'].update(dataset='ntu60', benchmark='xsub')
    (root / 'stgcn_joint' / 'results.json').write_text(json.dumps(results))
    assert tables_main([str(root), '--epoch', 'best', '--out', str(tmp_path / 't.md')]) == 0
    text = (tmp_path / 't.md').read_text()
    # Yan et al.'s figure came from 300 padded frames without augmentation: marked, and said so
    assert '| ST-GCN | 90.00 (pub. 81.6*) | — | — | — | — |' in text
    assert ('* ST-GCN (Yan et al., AAAI 2018; released models): published with 300 frames '
            'zero-padded, no augmentation; our configs train on 64-frame windows' in text)
    assert '| ST-GCN + SF-Head | — | — | — | — | — |' in text
    assert (
        '| CTR-GCN + FR-Head (Zhou et al., CVPR 2023) (published) | 90.33 | 91.08 | 88.68 | 87.56 '
        '| 92.8 |' in text
    )


def test_no_runs_is_a_clear_error(tmp_path, capsys, demo_root):
    assert tables_main([str(tmp_path), '--epoch', 'best']) == 2
    assert 'no finished run under' in capsys.readouterr().err
    # a mistyped folder beside one with runs: refused, not shown as a column of empty cells
    make_run(tmp_path / 'runs' / 'a', demo_root, 'ctrgcn', sf_head=False, stream='joint', wrong=0)
    typo = str(tmp_path / 'rnus')
    assert tables_main([str(tmp_path / 'runs'), typo, '--epoch', 'best']) == 2
    assert capsys.readouterr().err == (
        f'error: {typo} is not a folder (the runs are looked for under the folders given)\n')


def test_seeds_of_one_setting_make_one_cell_mean_and_standard_deviation(tmp_path, demo_root):
    root = tmp_path / 'runs'
    # three seeds of the baseline: 36, 18 and 0 wrong → 90, 95, 100: mean 95, sample standard
    # deviation √((25 + 0 + 25) / 2) = 5
    for seed, wrong in ((1, 36), (2, 18), (3, 0)):
        make_run(root / f'base/seed{seed}', demo_root, 'ctrgcn', sf_head=False, stream='joint',
                 wrong=wrong, seed=seed)
    # two seeds of SF-Head, 9 and 27 wrong → 97.5, 92.5: mean 95, deviation √12.5 = 3.54
    for seed, wrong in ((1, 9), (2, 27)):
        make_run(root / f'sf/seed{seed}', demo_root, 'ctrgcn', sf_head=True, stream='joint',
                 wrong=wrong, seed=seed)
    # SF-Head's seed 1 again, later: the newer run of a seed counts, the older is noted
    make_run(root / 'sf_again', demo_root, 'ctrgcn', sf_head=True, stream='joint', wrong=0,
             seed=1)
    # tools/embed.py measured two of the baseline's seeds: silhouette 0.2 and 0.4
    for seed, silhouette in ((1, 0.2), (2, 0.4)):
        numbers = {'silhouette': silhouette, 'knn': 80.0, 'probe': 90.0}
        fake_separability(str(root / f'base/seed{seed}'), {'wave vs salute': numbers},
                          epoch='best', checkpoint_epoch=2)
    assert tables_main([str(root), '--epoch', 'best', '--out', str(tmp_path / 't.md')]) == 0
    text = (tmp_path / 't.md').read_text()
    assert '| CTR-GCN | 95.00 ± 5.00 (n=3) | — | — | — | — |' in text
    # SF-Head: seeds 1 (sf_again, 100) and 2 (92.5) → 96.25 ± 5.30
    assert '| CTR-GCN + SF-Head | 96.25 ± 5.30 (n=2) | — | — | — | — |' in text
    assert '| demo/xsub | CTR-GCN | joint | 95.00 ± 5.00 (n=3) | 96.25 ± 5.30 (n=2) | +1.25 |' in (
        text
    )
    assert f"{root / 'sf/seed1'}: same setting and seed as {root / 'sf_again'}" in text
    # the group accuracy is the top-1 less 2 in make_run; the separability beside it: mean 0.3,
    # deviation √0.02 = 0.141 over the 2 measured seeds of 3
    assert ('| wave vs salute | 93.00 ± 5.00 (n=3) | 0.300 ± 0.141 (n=2) [2 of 3 runs] | '
            '80.00 ± 0.00 (n=2) [2 of 3 runs] | 90.00 ± 0.00 (n=2) [2 of 3 runs] | '
            '94.25 ± 5.30 (n=2) |') in text


def test_another_setting_is_not_averaged_in(tmp_path, demo_root):
    root = tmp_path / 'runs'
    make_run(root / 'a', demo_root, 'ctrgcn', sf_head=False, stream='joint', wrong=36, seed=1)
    make_run(root / 'b', demo_root, 'ctrgcn', sf_head=False, stream='joint', wrong=0, seed=2)
    # the newer run of the key has another learning rate: its setting wins, alone
    with open(root / 'b' / 'config.yaml', 'a') as f:
        f.write('base_lr: 0.05\n')
    assert tables_main([str(root), '--epoch', 'best', '--out', str(tmp_path / 't.md')]) == 0
    text = (tmp_path / 't.md').read_text()
    assert '| CTR-GCN | 100.00 | — | — | — | — |' in text
    assert f"{root / 'a'}: another setting than {root / 'b'}, which is newer; left out" in text


def test_welch_p_of_two_seeds_each_by_hand(tmp_path, demo_root):
    root = tmp_path / 'runs'
    # top-1 of the seeds: baseline 80, 90; SF-Head 82, 92 (the runs' recorded metrics)
    for name, sf_head, top1s in (('base', False, (80.0, 90.0)), ('sf', True, (82.0, 92.0))):
        for seed, top1 in enumerate(top1s, 1):
            make_run(root / f'{name}{seed}', demo_root, 'ctrgcn', sf_head=sf_head,
                     stream='joint', wrong=0, top1=top1, seed=seed)
    folders = [str(root / name) for name in ('base1', 'base2', 'sf1', 'sf2')]
    assert tables_main([*folders, '--epoch', 'best', '--out', str(tmp_path / 't.md')]) == 0
    text = (tmp_path / 't.md').read_text()
    # Equal variances (50) and sizes (2): t = 2 / √(50/2 + 50/2) = 0.2828 on 2 degrees of freedom,
    # whose two-sided p is 1 − t / √(2 + t²) = 0.804.
    t = 2 / math.sqrt(50)
    assert f'| +2.00 | {1 - t / math.sqrt(2 + t * t):.3g} |' in text
    assert f"# Results of the runs under {', '.join(folders)} (best epoch)" in text


def test_an_out_of_another_kind_or_in_a_missing_folder_is_refused_before_any_work(
    tmp_path, demo_root, capsys
):
    root = tmp_path / 'runs'
    make_run(root / 'a', demo_root, 'ctrgcn', sf_head=False, stream='joint', wrong=36)
    checkpoint = root / 'a' / 'best.pt'
    checkpoint.write_bytes(b'weights')
    assert tables_main([str(root), '--epoch', 'best', '--out', str(checkpoint)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (f'error: --out {checkpoint}: the output must be a .md or .markdown or '
                            f'.txt file\n')
    assert captured.out == ''    # no table computed
    assert checkpoint.read_bytes() == b'weights'
    missing = tmp_path / 'nonexist' / 't.md'
    assert tables_main([str(root), '--epoch', 'best', '--out', str(missing)]) == 2
    assert capsys.readouterr().err == (f'error: --out {missing}: the folder {missing.parent} does '
                                       f'not exist\n')
    assert not missing.parent.exists()


def set_data(folder, data_path, layout):
    """Make a fake run one on the data at `data_path` of `layout`, in a dataset named custom."""
    config = yaml.safe_load((folder / 'config.yaml').read_text())
    config['test_feeder_args']['data_path'] = data_path
    (folder / 'config.yaml').write_text(yaml.safe_dump(config))
    results = json.loads((folder / 'results.json').read_text())
    results['meta'].update(dataset='custom', benchmark='test', layout=layout)
    (folder / 'results.json').write_text(json.dumps(results))


def test_datasets_of_one_name_get_tables_of_their_own(tmp_path, demo_root):
    root = tmp_path / 'runs'
    # two custom datasets, both prepared from folders named custom: the baseline ran on one, the
    # SF-Head run on the other
    make_run(root / 'a', demo_root, 'ctrgcn', sf_head=False, stream='joint', wrong=36)
    make_run(root / 'b', demo_root, 'ctrgcn', sf_head=True, stream='joint', wrong=9)
    set_data(root / 'a', 'data/one/custom', 'coco17')
    set_data(root / 'b', 'data/two/custom', 'openpose18')
    assert tables_main([str(root), '--epoch', 'best', '--out', str(tmp_path / 't.md')]) == 0
    text = (tmp_path / 't.md').read_text()
    # no difference between runs on different data
    assert '| custom/test (data/one/custom, coco17) | CTR-GCN | joint | 90.00 | — | — | — |' in text
    assert ('| custom/test (data/two/custom, openpose18) | CTR-GCN | joint | — | 97.50 | — | — |'
            in text)
    assert '## custom/test (data/one/custom, coco17): top-1 per stream' in text
    assert 'left out' not in text


def as_test_run(run, folder, weights=None):
    """What `main.py --phase test` writes into `folder` when it tests `weights` (default: the
    fake training run's best.pt) and scores as that run's best epoch."""
    folder.mkdir(parents=True)
    (folder / 'config.yaml').write_text((run / 'config.yaml').read_text())
    results = json.loads((run / 'results.json').read_text())
    best = results['best']
    (folder / 'epoch1_test_score.pkl').write_bytes((run / best['scores']).read_bytes())
    tested = {'meta': results['meta'], 'weights': str(weights or run / 'best.pt'), 'epoch': 2,
              'test': best['test'], 'scores': 'epoch1_test_score.pkl'}
    (folder / 'results.json').write_text(json.dumps(tested))


def test_a_test_run_counts_on_its_own_not_inside_the_run_it_tests(tmp_path, demo_root):
    root = tmp_path / 'runs'
    make_run(root / 'mine', demo_root, 'ctrgcn', sf_head=False, stream='joint', wrong=36)
    # tested again inside its own folder, or in a folder below it: the same run, not a second one
    as_test_run(root / 'mine', root / 'mine' / 'test_20261201-120000')
    as_test_run(root / 'mine', root / 'mine' / 'eval' / 'test_20261201-123000')
    assert tables_main([str(root), '--epoch', 'best', '--out', str(tmp_path / 't.md')]) == 0
    text = (tmp_path / 't.md').read_text()
    assert '| CTR-GCN | 90.00 | — | — | — | — |' in text and 'left out' not in text
    # a test run of a released checkpoint (from no run of this framework) is a run of its own
    other = tmp_path / 'released'
    make_run(tmp_path / 'scratch', demo_root, 'stgcn', sf_head=False, stream='joint', wrong=18)
    as_test_run(tmp_path / 'scratch', other / 'test_20261201-130000',
                weights=tmp_path / 'downloads' / 'stgcn_ntu60_xsub.pt')
    assert tables_main([str(other), '--epoch', 'best', '--out', str(tmp_path / 'u.md')]) == 0
    assert '| ST-GCN | 95.00 | — | — | — | — |' in (tmp_path / 'u.md').read_text()
