import math
import os

import pytest
import torch

from main import main, parse_args
from torchlight.config import load_yaml_config
from torchlight.registry import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, 'config/demo/joint.yaml')


def write(path, text):
    path.write_text(text)
    return str(path)


def test_base_inheritance_merges_mappings(tmp_path):
    parent = write(
        tmp_path / 'joint.yaml',
        'model: ctrgcn\nfeeder: demo\nbase_lr: 0.1\n'
        'train_feeder_args: {data_path: d, window_size: 32}\n',
    )
    child = write(
        tmp_path / 'bone.yaml',
        'base: joint.yaml\nbase_lr: 0.05\ntrain_feeder_args: {window_size: 16}\n',
    )
    cfg = load_yaml_config(child)
    assert cfg['base_lr'] == 0.05
    assert cfg['train_feeder_args'] == {'data_path': 'd', 'window_size': 16}
    assert load_yaml_config(parent)['base_lr'] == 0.1


def test_demo_stream_configs_are_a_few_lines_over_joint():
    cfg, _ = parse_args(['--config', os.path.join(ROOT, 'config/demo/bone_motion.yaml')])
    assert cfg['stream'] == 'bone_motion' and cfg['train_feeder_args']['window_size'] == 32
    assert cfg['work_dir'] == 'work_dir/demo/bone_motion'


def test_command_line_overrides():
    cfg, flags = parse_args(
        [
            '--config',
            DEMO,
            '--base_lr',
            '0.05',
            '--stream',
            'bone',
            '--train_feeder_args',
            'window_size=48',
            '--model_args',
            'sf_head.groups=4',
            'drop_out=0.5',
            '--device',
            '0',
            '1',
            '--step',
            '30',
            '--work-dir',
            '/tmp/x',
            '--resume',
        ]
    )
    assert cfg['base_lr'] == 0.05
    assert cfg['stream'] == 'bone' and cfg['train_feeder_args']['window_size'] == 48
    assert cfg['test_feeder_args']['window_size'] == 32
    assert cfg['model_args']['sf_head'] == {'groups': 4} and cfg['model_args']['drop_out'] == 0.5
    assert cfg['device'] == [0, 1]
    assert cfg['step'] == [30]
    assert cfg['work_dir'] == '/tmp/x'
    assert flags['resume']
    cfg, _ = parse_args(['--config', DEMO, '--model_args', 'sf_head=null', '--device', 'cpu'])
    assert cfg['model_args']['sf_head'] is None and cfg['device'] == 'cpu'


def test_defaults_fill_what_the_config_leaves_out(tmp_path):
    path = write(tmp_path / 'c.yaml', 'model: ctrgcn\nfeeder: demo\n')
    cfg, _ = parse_args(['--config', path])
    assert cfg['nesterov'] is True and cfg['warm_up_epoch'] == 5 and cfg['step'] == [35, 55]


@pytest.mark.parametrize(
    'text, message',
    [
        (
            'model: ctrgcn\nfeeder: demo\nbase_lt: 0.1\n',
            "unknown key 'base_lt'.*did you mean 'base_lr'",
        ),
        ('model: ctrgnc\nfeeder: demo\n', "unknown model 'ctrgnc'.*did you mean 'ctrgcn'"),
        ('model: ctrgcn\nfeeder: dmeo\n', "unknown feeder 'dmeo'.*did you mean 'demo'"),
        ('model: ctrgcn\nfeeder: demo\nbase_lr: -0.1\n', 'base_lr must be a number > 0, got -0.1'),
        ('model: ctrgcn\nfeeder: demo\ndevice: gpu\n', 'device must be auto, cpu, or GPU ids'),
        (
            'model: ctrgcn\nfeeder: demo\nbatch_size: 0\n',
            'batch_size must be an integer >= 1, got 0',
        ),
        ('model: ctrgcn\nfeeder: demo\nphase: test\n', 'phase test needs --weights'),
        ('model: !!python/object/apply:os.system ["echo hacked"]\n', 'not valid YAML'),
        ('base: missing.yaml\n', 'config file not found: .*missing.yaml'),
        ('- a list\n', 'must hold a mapping'),
        (
            'model: ctrgcn\nfeeder: demo\nloss_args: {sf_redundancy: 1}\n',
            r'bad.yaml: loss_args was removed: the auxiliary loss weights are model arguments '
            r'now, e.g. '
            r'model_args: \{sf_head: \{loss_weights: \{redundancy: 0.1, consistency: 0.1\}\}\}$',
        ),
        (
            'model: ctrgcn\nfeeder: demo\ntest_feeder_args: {data_path: d, vel: true}\n',
            r'bad.yaml: test_feeder_args.vel was removed: set the top-level stream \(joint \| bone '
            r'\| joint_motion \| bone_motion\), which applies to both feeders',
        ),
        ('model: ctrgcn\nfeeder: demo\nstream: hand\n', 'stream must be one of'),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, text, message):
    path = write(tmp_path / 'bad.yaml', text)
    with pytest.raises(ConfigError, match=message):
        parse_args(['--config', path])


def test_unknown_command_line_option_suggests_the_closest():
    with pytest.raises(ConfigError, match="unknown option '--base-lt'.*did you mean '--base-lr'"):
        parse_args(['--config', DEMO, '--base-lt', '0.1'])
    with pytest.raises(ConfigError, match="takes key=value pairs"):
        parse_args(['--config', DEMO, '--train_feeder_args', 'window_size'])
    with pytest.raises(ConfigError, match='the command line: train_feeder_args.bone was removed'):
        parse_args(['--config', DEMO, '--train_feeder_args', 'bone=true'])
    with pytest.raises(ConfigError, match='--loss_args was removed: the auxiliary loss weights'):
        parse_args(['--config', DEMO, '--loss_args', 'sf_redundancy=1'])


def test_main_prints_one_error_line_and_writes_nothing(tmp_path, capsys):
    work_dir = tmp_path / 'run'
    assert main(['--config', str(tmp_path / 'nope.yaml')]) == 2
    assert capsys.readouterr().err.strip() == f'error: config file not found: {tmp_path}/nope.yaml'
    assert main(['--config', DEMO, '--base_lr', '-1', '--work-dir', str(work_dir)]) == 2
    assert capsys.readouterr().err.count('\n') == 1
    missing = tmp_path / 'c.yaml'
    missing.write_text(
        f'model: ctrgcn\nfeeder: skeleton\ntest_feeder_args: {{data_path: {tmp_path}/none}}\n'
        f'work_dir: {work_dir}\n'
    )
    assert main(['--config', str(missing)]) == 2
    assert 'data file not found' in capsys.readouterr().err
    ntu = tmp_path / 'ntu.yaml'
    ntu.write_text(f'base: {ROOT}/config/ntu60/xview/joint.yaml\nwork_dir: {work_dir}\n')
    assert main(['--config', str(ntu)]) == 2
    assert capsys.readouterr().err == (
        'error: data file not found: data/ntu60/ntu60.h5; write it with: python -m '
        'data.prepare ntu60 --raw <the folder of .skeleton files> --out data/ntu60\n'
    )
    assert not work_dir.exists()


def test_learning_rate_schedule_by_hand():
    from torchlight.trainer import lr_factor

    step = lr_factor(
        {
            'warm_up_epoch': 5,
            'step': [35, 55],
            'lr_decay_rate': 0.1,
            'num_epoch': 65,
            'lr_scheduler': 'step',
        }
    )
    assert [step(e) for e in (0, 1, 4, 5, 34, 35, 54, 55, 64)] == pytest.approx(
        [0.2, 0.4, 1.0, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    )
    cosine = lr_factor(
        {
            'warm_up_epoch': 2,
            'step': [],
            'lr_decay_rate': 0.1,
            'num_epoch': 12,
            'lr_scheduler': 'cosine',
        }
    )
    # After warm-up, 0.5·(1 + cos(π·(e − 2)/10)): 1 at e = 2, 0.5 at e = 7, (1 + cos(0.9π))/2
    # at e = 11.
    assert [cosine(e) for e in (0, 1, 2, 7, 11)] == pytest.approx(
        [0.5, 1.0, 1.0, 0.5, (1 + math.cos(0.9 * math.pi)) / 2]
    )


def test_a_seeds_sweep_is_one_run_per_seed_in_its_own_folder(tmp_path):
    from main import seed_runs

    work_dir = str(tmp_path / 'sweep')
    cfg, flags = parse_args(['--config', DEMO, '--seeds', '3', '1', '--work-dir', work_dir])
    runs = seed_runs(cfg, flags)
    assert [(c['seed'], c['seeds'], c['work_dir']) for c, _ in runs] == [
        (3, None, f'{work_dir}/seed3'),
        (1, None, f'{work_dir}/seed1'),
    ]
    # every other key as the sweep's
    assert all({k: v for k, v in c.items() if k not in ('seed', 'seeds', 'work_dir')}
               == {k: v for k, v in cfg.items() if k not in ('seed', 'seeds', 'work_dir')}
               for c, _ in runs)
    assert parse_args(['--config', DEMO, '--seeds', 'null'])[0]['seeds'] is None


def test_a_resumed_sweep_treats_each_seed_as_its_single_run(tmp_path):
    from main import seed_runs

    work_dir = tmp_path / 'sweep'

    def sweep(*extra):
        return parse_args(['--config', DEMO, '--seeds', '3', '1', '2', '--work-dir',
                           str(work_dir), '--resume', *extra])

    cfg, _ = sweep()
    epochs = cfg['num_epoch']

    def write_seed(seed, epoch, finished):
        folder = work_dir / f'seed{seed}'
        folder.mkdir(parents=True)
        saved = {**cfg, 'seed': seed, 'seeds': None, 'work_dir': str(folder)}
        torch.save({'config': saved, 'epoch': epoch}, folder / 'last.pt')
        if finished:
            (folder / 'results.json').write_text('{}')

    # seed 3 finished, seed 1 interrupted after one epoch, seed 2 never started
    write_seed(3, epochs, finished=True)
    write_seed(1, 1, finished=False)
    runs = seed_runs(*sweep())
    assert [(c['seed'], f['resume']) for c, f in runs] == [(1, True), (2, False)]
    # seed 2 starts afresh, replacing what a stop in its first epoch left there, and only that
    assert runs[1][1]['overwrite'] and not runs[0][1]['overwrite']
    stopped = work_dir / 'seed2'
    stopped.mkdir()
    for name in ('config.yaml', 'log.txt', '.lock'):
        (stopped / name).write_text('a stop in the first epoch\n')
    assert seed_runs(*sweep())[1][1]['overwrite']
    (stopped / 'my_notes.txt').write_text('mine\n')
    assert not seed_runs(*sweep())[1][1]['overwrite']
    # a raised num_epoch continues the finished seed too, as it would a single run
    raised = sweep('--num_epoch', str(epochs + 5))
    assert [(c['seed'], f['resume']) for c, f in seed_runs(*raised)] == [
        (3, True), (1, True), (2, False)
    ]
    # a changed option is refused before any seed trains, even for the finished seed
    (work_dir / 'seed1' / 'last.pt').unlink()
    with pytest.raises(ConfigError, match=r'seed3/last.pt; these options differ from it: base_lr'):
        seed_runs(*sweep('--base-lr', '0.5'))
    with pytest.raises(ConfigError, match='num_epoch may be raised, not lowered'):
        seed_runs(*sweep('--num_epoch', str(epochs - 1)))


@pytest.mark.parametrize(
    'args, message',
    [
        (['--seeds', '1', '2', '1'], 'seeds lists seed 1 twice'),
        (['--seeds', '1', '-2'], r'seeds must be a list \(each item an integer >= 0\) or null'),
        (['--seeds', '1', '--phase', 'test', '--weights', 'w.pt'], 'seeds sweeps train'),
    ],
)
def test_bad_seeds_are_named(args, message):
    with pytest.raises(ConfigError, match=message):
        parse_args(['--config', DEMO, *args])


def test_a_sweep_is_refused_in_the_folder_of_a_single_run(tmp_path):
    from main import seed_runs

    (tmp_path / 'config.yaml').write_text('seed: 1\n')
    (tmp_path / 'results.json').write_text('{}')
    cfg, flags = parse_args(['--config', DEMO, '--seeds', '1', '--work-dir', str(tmp_path)])
    with pytest.raises(ConfigError, match='holds a single run; a sweep writes its seed<N> folders'):
        seed_runs(cfg, flags)
