"""One helper for the tests of tools that read finished runs (compare, tables): a fake run folder
written the way the trainer writes one (config.yaml, results.json, a score file)."""

import json
import os
import pickle

import numpy as np

from feeders import build_feeder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fake_run(
    folder,
    demo_root,
    wrong,
    *,
    model='ctrgcn',
    sf_head=False,
    stream='joint',
    epoch=3,
    test=None,
    seed=None,
):
    """A finished demo run whose test predictions are right but for `wrong` {sample index:
    predicted class}; its best and last epoch are `epoch`, with `test` metrics (default: the top-1
    of those predictions); its config records `seed` if given. Returns (folder, test labels)."""
    os.makedirs(folder)
    split = build_feeder('skeleton', data_path=demo_root, split='test')
    predicted = split.labels.copy()
    for index, cls in wrong.items():
        predicted[index] = cls
    scores = f'epoch{epoch}_test_score.pkl'
    with open(os.path.join(folder, scores), 'wb') as f:
        pickle.dump({n: np.eye(10, dtype=np.float32)[p] for n, p in zip(split.names, predicted)}, f)
    with open(os.path.join(folder, 'config.yaml'), 'w') as f:
        f.write(
            f"feeder: skeleton\ntest_feeder_args: {{data_path: {demo_root}}}\n"
            f"stream: {stream}\nmodel: {model}\n"
            f"model_args: {{num_class: 10, sf_head: {'{groups: 2}' if sf_head else 'null'}}}\n"
            f"ambiguous_groups: {os.path.join(ROOT, 'config/ambiguous/demo.yaml')}\n"
            + (f'seed: {seed}\n' if seed is not None else '')
        )
    test = test or {'top1': 100.0 * float(np.mean(predicted == split.labels))}
    entry = {'epoch': epoch, 'test': test, 'scores': scores}
    results = {
        'meta': {'dataset': 'demo', 'benchmark': 'xsub', 'model': model, 'stream': stream},
        'best': {**entry, 'chosen_on': 'test', 'top1': test['top1']},
        'last': entry,
    }
    with open(os.path.join(folder, 'results.json'), 'w') as f:
        json.dump(results, f)
    return str(folder), split.labels


def fake_separability(folder, groups, *, epoch='last', checkpoint_epoch=3):
    """The separability file that tools/embed.py writes, with `groups` {group: {'silhouette',
    'knn', 'probe'}} measured on the checkpoint of `checkpoint_epoch`."""
    record = {'epoch': epoch, 'checkpoint_epoch': checkpoint_epoch, 'groups': groups}
    with open(os.path.join(folder, f'separability_{epoch}.json'), 'w') as f:
        json.dump(record, f)


def checkpoint_test_args(work_dir, weights, *extra):
    """main.py's arguments that test checkpoint `weights` with the saved config of the run in
    `work_dir` (`--phase test`), then `extra`."""
    return ['--config', os.path.join(work_dir, 'config.yaml'), '--phase', 'test', '--weights',
            str(weights), *map(str, extra)]
