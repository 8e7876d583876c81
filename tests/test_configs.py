"""Every shipped config resolves and builds its model; stream and benchmark variants differ only as intended."""
import glob
import os

import pytest
import yaml

from model import build_model
from torchlight.config import parse_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_CONFIGS = sorted(p for p in glob.glob(os.path.join(ROOT, 'config', '**', '*.yaml'), recursive=True)
                     if '/ambiguous/' not in p)


@pytest.mark.parametrize('path', RUN_CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_config_resolves_and_builds(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg, _ = parse_args(['--config', os.path.relpath(path, ROOT)])
    assert cfg['work_dir'] == os.path.join('work_dir', os.path.relpath(path, 'config')[:-len('.yaml')])
    stream = os.path.basename(path)[:-len('.yaml')]
    for args in (cfg['train_feeder_args'], cfg['test_feeder_args']):
        assert bool(args.get('bone')) == stream.startswith('bone')
        assert bool(args.get('vel')) == stream.endswith('motion')
    assert cfg['ambiguous_groups'] is None or os.path.isfile(cfg['ambiguous_groups'])
    build_model(cfg['model'], **cfg['model_args'])


def test_ntu_main_config_is_ctrgcn_with_sf_head_and_the_reference_recipe(monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg, _ = parse_args(['--config', 'config/ntu60/joint.yaml'])
    assert cfg['model'] == 'ctrgcn' and cfg['model_args'] == {'num_class': 60, 'sf_head': {'groups': 8}}
    assert cfg['train_feeder_args']['data_path'] == 'data/ntu60/xsub'
    assert (cfg['base_lr'], cfg['step'], cfg['num_epoch'], cfg['warm_up_epoch'], cfg['weight_decay'],
            cfg['batch_size'], cfg['nesterov']) == (0.1, [35, 55], 65, 5, 4e-4, 64, True)
    view, _ = parse_args(['--config', 'config/ntu60/xview/bone_motion.yaml'])
    assert view['test_feeder_args']['data_path'] == 'data/ntu60/xview'
    stgcn, _ = parse_args(['--config', 'config/ntu60/backbones/stgcn.yaml'])
    assert stgcn['model'] == 'stgcn' and stgcn['model_args']['sf_head'] is None and stgcn['step'] == [10, 50]


@pytest.mark.parametrize('dataset, classes', [('ntu60', 60), ('ntu120', 120), ('ucla', 10)])
def test_ambiguous_groups_name_valid_action_ids(dataset, classes):
    from torchlight.metrics import resolve_groups
    groups = yaml.safe_load(open(os.path.join(ROOT, 'config', 'ambiguous', f'{dataset}.yaml')))
    resolved = resolve_groups(groups, [f'class {i}' for i in range(classes)], dataset)
    if dataset == 'ucla':
        assert resolved['pick up'] == [0, 1] and resolved['drop vs throw'] == [2, 8]
    else:
        assert resolved['waving vs saluting'] == [22, 37] and resolved['hopping vs jumping'] == [25, 26]
