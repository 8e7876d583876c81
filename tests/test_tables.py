"""tools/tables.py on a tiny set of hand-made demo runs: cells by hand, missing cells marked,
published figures."""

import json

from feeders import build_feeder
from tests.runs import fake_run
from tools.tables import main as tables_main


def make_run(folder, demo_root, model, *, sf_head, stream, wrong, top1=None):
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
    assert '| demo/xsub | CTR-GCN | joint | 90.00 | 97.50 | +7.50 |' in text
    assert '| demo/xsub | CTR-GCN | bone | 95.00 | — | — |' in text
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
    assert '| ST-GCN | 90.00 (pub. 81.6) | — | — | — | — |' in text
    assert '| ST-GCN + SF-Head | — | — | — | — | — |' in text
    assert (
        '| CTR-GCN + FR-Head (Zhou et al., CVPR 2023) (published) | 90.33 | 91.08 | 88.68 | 87.56 | 92.8 |'
        in text
    )


def test_no_runs_is_a_clear_error(tmp_path, capsys):
    assert tables_main([str(tmp_path), '--epoch', 'best']) == 2
    assert 'no finished run under' in capsys.readouterr().err
