"""Every shipped config resolves and builds its model; stream and benchmark variants differ only as
intended."""

import glob
import os

import pytest
import yaml

from main import parse_args
from model import build_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_CONFIGS = sorted(
    p
    for p in glob.glob(os.path.join(ROOT, 'config', '**', '*.yaml'), recursive=True)
    if '/ambiguous/' not in p
)


STREAMS = ('joint', 'bone', 'joint_motion', 'bone_motion')


def resolved(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    return parse_args(['--config', os.path.relpath(path, ROOT)])[0]


@pytest.mark.parametrize('path', RUN_CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_config_resolves_with_its_stream(path, monkeypatch):
    cfg = resolved(path, monkeypatch)
    assert cfg['work_dir'] == os.path.join(
        'work_dir', os.path.relpath(path, 'config')[: -len('.yaml')]
    )
    name = os.path.basename(path)[: -len('.yaml')]
    assert cfg['stream'] == (name if name in STREAMS else 'joint')
    assert cfg['ambiguous_groups'] is None or os.path.isfile(cfg['ambiguous_groups'])


@pytest.mark.slow
@pytest.mark.parametrize('path', RUN_CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_config_builds_its_model(path, monkeypatch):
    cfg = resolved(path, monkeypatch)
    build_model(cfg['model'], **cfg['model_args'])


def test_ntu120_configs_are_the_ntu60_ones_with_other_classes_and_data(monkeypatch):
    for ntu60, ntu120 in (
        ('joint', 'joint'),
        ('xview/bone', 'xset/bone'),
        ('backbones/stgcn', 'backbones/stgcn'),
    ):
        a = resolved(f'config/ntu60/{ntu60}.yaml', monkeypatch)
        b = resolved(f'config/ntu120/{ntu120}.yaml', monkeypatch)
        differ = {k for k in a if a[k] != b[k]}
        benchmark = {'benchmark'} if ntu60.startswith('xview') else set()
        data = {'train_feeder_args', 'test_feeder_args'}
        assert differ == {'work_dir', 'model_args', 'ambiguous_groups'} | data | benchmark
        for key in data:
            assert b[key] == {**a[key], 'data_path': 'data/ntu120/ntu120.h5'}
        assert b['model_args']['num_class'] == 120
        assert {**b['model_args'], 'num_class': 60} == a['model_args']


@pytest.mark.parametrize(
    'path, epochs, steps, weight_decay, batch',
    [
        ('ntu60/backbones/tcagcn_sf', 75, [35, 55], 4e-4, 64),
        ('ntu60/xview/backbones/tcagcn_sf', 75, [35, 55], 3e-4, 64),
        ('ntu120/backbones/tcagcn_sf', 65, [35, 55, 65], 4e-4, 64),
        ('ucla/backbones/tcagcn_sf', 75, [50], 1e-4, 16),
    ],
)
def test_tcagcn_configs_take_tcagcns_own_recipe(
    path, epochs, steps, weight_decay, batch, monkeypatch
):
    cfg = resolved(f'config/{path}.yaml', monkeypatch)
    assert cfg['model'] == 'tcagcn' and cfg['warm_up_epoch'] == 5
    assert (cfg['num_epoch'], cfg['step'], cfg['weight_decay'], cfg['batch_size']) == (
        epochs,
        steps,
        weight_decay,
        batch,
    )
    plain = resolved(f"config/{path.replace('tcagcn_sf', 'tcagcn')}.yaml", monkeypatch)
    assert plain['model_args']['sf_head'] is None and plain['num_epoch'] == epochs


def test_ntu_main_config_is_ctrgcn_with_sf_head_and_the_reference_recipe(monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg, _ = parse_args(['--config', 'config/ntu60/joint.yaml'])
    assert cfg['model'] == 'ctrgcn' and cfg['model_args'] == {
        'num_class': 60,
        'sf_head': {'groups': 8},
    }
    assert cfg['train_feeder_args']['data_path'] == 'data/ntu60/ntu60.h5'
    assert cfg['benchmark'] == 'xsub'
    assert (
        cfg['base_lr'],
        cfg['step'],
        cfg['num_epoch'],
        cfg['warm_up_epoch'],
        cfg['weight_decay'],
        cfg['batch_size'],
        cfg['nesterov'],
    ) == (0.1, [35, 55], 65, 5, 4e-4, 64, True)
    view, _ = parse_args(['--config', 'config/ntu60/xview/bone_motion.yaml'])
    assert view['test_feeder_args']['data_path'] == 'data/ntu60/ntu60.h5'
    assert view['benchmark'] == 'xview' and view['stream'] == 'bone_motion'
    stgcn, _ = parse_args(['--config', 'config/ntu60/backbones/stgcn.yaml'])
    assert (
        stgcn['model'] == 'stgcn'
        and stgcn['model_args']['sf_head'] is None
        and stgcn['step'] == [10, 50]
    )


@pytest.mark.parametrize('dataset, classes', [('ntu60', 60), ('ntu120', 120), ('ucla', 10)])
def test_ambiguous_groups_name_valid_action_ids(dataset, classes):
    from torchlight.metrics import resolve_groups

    groups = yaml.safe_load(open(os.path.join(ROOT, 'config', 'ambiguous', f'{dataset}.yaml')))
    resolved = resolve_groups(groups, [f'class {i}' for i in range(classes)], dataset)
    if dataset == 'ucla':
        assert resolved['pick up'] == [0, 1] and resolved['drop vs throw'] == [2, 8]
    else:
        assert resolved['waving vs saluting'] == [22, 37] and resolved['hopping vs jumping'] == [
            25,
            26,
        ]
