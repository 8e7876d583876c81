"""Paper-style tables from finished runs, each figure beside the published one where one is known.

    python -m tools.tables work_dir --epoch best --out work_dir/tables.md

Collects every finished run under the folder (a directory with config.yaml and results.json) by
dataset × benchmark × backbone × SF-Head × stream and writes markdown tables: top-1 per stream
and for the 4-stream ensemble (fused with the reference weights, when all four streams have a
run); with and without SF-Head per backbone; accuracy per group of confusable classes. A cell
without a run is marked "—", never filled in. Published figures come from
tools/published_results.yaml (with their sources).
"""

import argparse
import os
import sys

import numpy as np
import yaml

from feeders import run_split
from torchlight.fusion import REFERENCE_WEIGHTS, STREAMS, fuse, load_streams
from torchlight.metrics import topk_accuracy
from torchlight.registry import ConfigError
from torchlight.scores import align, read_run

PUBLISHED = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'published_results.yaml')
BACKBONES = {'stgcn': 'ST-GCN', 'ctrgcn': 'CTR-GCN', 'tcagcn': 'TCA-GCN'}
COLUMNS = (*STREAMS, 'fused')
HEADINGS = {
    'joint': 'joint',
    'bone': 'bone',
    'joint_motion': 'joint motion',
    'bone_motion': 'bone motion',
    'fused': '4-stream',
}
MISSING = '—'


def variant_name(model, sf_head):
    return BACKBONES.get(model, model) + (' + SF-Head' if sf_head else '')


def find_runs(root, epoch):
    """{(dataset/benchmark, model, sf_head, stream): run} for the finished runs under `root`; the
    newest run wins where several share a key (the others are listed in `notes`)."""
    runs, notes = {}, []
    for folder, _, files in sorted(os.walk(root)):
        if 'results.json' not in files or 'config.yaml' not in files:
            continue
        try:
            config, results = read_run(folder)
        except ConfigError as err:
            notes.append(f'{err}; left out')
            continue
        meta = results.get('meta')
        if meta is None:
            notes.append(
                f'{folder}: results.json has no meta (written by an older version); left out'
            )
            continue
        evaluation = results if 'test' in results else results.get(epoch)
        if evaluation is None:
            notes.append(f'{folder}: no {epoch} epoch; left out')
            continue
        key = (
            f"{meta['dataset']}/{meta['benchmark']}",
            meta['model'],
            bool((config.get('model_args') or {}).get('sf_head')),
            meta['stream'],
        )
        run = {
            'dir': folder,
            'config': config,
            'test': evaluation['test'],
            'time': os.path.getmtime(os.path.join(folder, 'results.json')),
        }
        if key in runs:
            older, run = sorted([runs[key], run], key=lambda r: r['time'])
            notes.append(f"{older['dir']}: same setting as {run['dir']}, which is newer; left out")
        runs[key] = run
    return runs, notes


def fused_top1(streams, benchmark, epoch):
    """Top-1 of the 4-stream ensemble with the reference weights (1 each where there are none)."""
    weights = REFERENCE_WEIGHTS.get(tuple(benchmark.split('/')), (1, 1, 1, 1))
    feeder = run_split(streams[0]['config'])
    scored = load_streams([run['dir'] for run in streams], epoch)
    fused = align(scored[0].names, fuse(scored, weights), feeder.names, scored[0].path)
    return topk_accuracy(fused, np.asarray(feeder.labels), 1)


def published_figures():
    with open(PUBLISHED) as f:
        return yaml.safe_load(f)


def cell(value, published=None):
    text = MISSING if value is None else f'{value:.2f}'
    return text if published is None else f'{text} (pub. {published:g})'


def stream_table(benchmark, runs, published, epoch):
    models = sorted({m for b, m, _, _ in runs if b == benchmark})
    lines = [
        f"| model | {' | '.join(HEADINGS[c] for c in COLUMNS)} |",
        '|---' * (len(COLUMNS) + 1) + '|',
    ]
    for model in models:
        for sf_head in (False, True):
            row = {s: runs.get((benchmark, model, sf_head, s)) for s in STREAMS}
            values = {s: r and r['test']['top1'] for s, r in row.items()}
            values['fused'] = (
                fused_top1([row[s] for s in STREAMS], benchmark, epoch)
                if all(row.values())
                else None
            )
            figures = next(
                (
                    p['top1'].get(benchmark, {})
                    for p in published
                    if p['model'] == model and p.get('sf_head') == sf_head
                ),
                {},
            )
            lines.append(
                f'| {variant_name(model, sf_head)} | '
                + ' | '.join(cell(values[c], figures.get(c)) for c in COLUMNS)
                + ' |'
            )
    for entry in published:
        if entry['model'] not in BACKBONES and benchmark in entry['top1']:
            figures = entry['top1'][benchmark]
            lines.append(
                f"| {entry['name']} (published) | "
                + ' | '.join(f'{figures[c]:g}' if c in figures else MISSING for c in COLUMNS)
                + ' |'
            )
    return lines


def sf_head_table(runs):
    lines = [
        '| benchmark | backbone | stream | without SF-Head | with SF-Head | difference |',
        '|---' * 6 + '|',
    ]
    for benchmark, model, stream in sorted({(b, m, s) for b, m, _, s in runs}):
        without, with_sf = (runs.get((benchmark, model, sf, stream)) for sf in (False, True))
        a, b = (r and r['test']['top1'] for r in (without, with_sf))
        difference = f'{b - a:+.2f}' if a is not None and b is not None else MISSING
        lines.append(
            f'| {benchmark} | {BACKBONES.get(model, model)} | {stream} | {cell(a)} | {cell(b)} | {difference} |'
        )
    return lines


def group_table(benchmark, runs):
    """Per group of confusable classes, the accuracy of each variant's joint-stream run (or first
    stream)."""
    chosen = {}
    for (b, model, sf_head, stream), run in sorted(runs.items()):
        if b == benchmark and 'ambiguous' in run['test']:
            if (model, sf_head) not in chosen or stream == 'joint':
                chosen[model, sf_head] = {'stream': stream, 'run': run}
    if not chosen:
        return []
    groups = list(
        dict.fromkeys(g for c in chosen.values() for g in c['run']['test']['ambiguous']['groups'])
    )
    variants = sorted(chosen)
    lines = [
        '| group | '
        + ' | '.join(f"{variant_name(*v)} ({chosen[v]['stream']})" for v in variants)
        + ' |',
        '|---' * (len(variants) + 1) + '|',
    ]
    for name in ['all groups', *groups]:
        values = []
        for v in variants:
            ambiguous = chosen[v]['run']['test']['ambiguous']
            value = (
                ambiguous['accuracy']
                if name == 'all groups'
                else ambiguous['groups'].get(name, {}).get('accuracy')
            )
            values.append(cell(value))
        lines.append(f'| {name} | ' + ' | '.join(values) + ' |')
    return lines


def write_tables(root, epoch):
    runs, notes = find_runs(root, epoch)
    if not runs:
        raise ConfigError(
            f'no finished run under {root} (a folder with config.yaml and results.json)'
        )
    published = published_figures()
    lines = [
        f'# Results of the runs under {root} ({epoch} epoch)',
        '',
        f'Top-1 accuracy in %. "{MISSING}": no finished run (never filled in). "(pub. x)": the published figure '
        f'for the same model (tools/published_results.yaml). 4-stream: the four streams\' scores summed with '
        f'the reference weights.',
        '',
    ]
    for benchmark in sorted({b for b, _, _, _ in runs}):
        lines += [
            f'## {benchmark}: top-1 per stream',
            '',
            *stream_table(benchmark, runs, published, epoch),
            '',
        ]
    lines += ['## With and without SF-Head', '', *sf_head_table(runs), '']
    for benchmark in sorted({b for b, _, _, _ in runs}):
        table = group_table(benchmark, runs)
        if table:
            lines += [f'## {benchmark}: accuracy per group of confusable classes', '', *table, '']
    if notes:
        lines += ['Runs left out:', '', *[f'- {n}' for n in notes], '']
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        'root', nargs='?', default='work_dir', help='folder holding the runs (default work_dir)'
    )
    parser.add_argument(
        '--epoch', choices=['best', 'last'], required=True, help='which epoch of each run'
    )
    parser.add_argument('--out', help='write the markdown here too')
    args = parser.parse_args(argv)
    try:
        text = write_tables(args.root, args.epoch)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
