"""Paper-style tables from finished runs, each figure beside the published one where one is known.

    python -m tools.tables work_dir --epoch best --out work_dir/tables.md

Collects every finished run (a directory with config.yaml and results.json) under the folders
given (default work_dir) by dataset × benchmark × backbone × SF-Head × stream and writes markdown
tables: top-1 per stream and for the 4-stream ensemble (fused with the reference weights, when all
four streams have a run); with and without SF-Head per backbone (with several seeds, Welch's
t-test of the difference); accuracy per group of confusable classes, with the
separability of each group's classes in feature space beside it where tools/embed.py measured the
run (`<run>/separability_<epoch>.json`, for the same checkpoint epoch). Several seeds of one
setting (runs whose configs differ only in seed, such as the `<work_dir>/seed<N>` folders of a
`seeds` sweep) make one cell: mean ± standard deviation (n seeds). A cell without a run is marked
"—", never filled in. Published figures come from tools/published_results.yaml (with their
sources).

A dataset is its name and benchmark as the runs recorded them together with the data they read
(the test data_path of their configs and the joint layout): runs on other data of the same name
(two custom datasets prepared from folders named alike) get tables of their own, headed by the
name followed by that data, never a shared row.
"""

import argparse
import json
import os
import sys
from typing import NamedTuple

import numpy as np
import yaml
from scipy import stats

from feeders import run_split
from torchlight.files import atomic_write, check_output_file
from torchlight.fusion import REFERENCE_WEIGHTS, STREAMS, fuse, load_streams
from torchlight.metrics import topk_accuracy
from torchlight.registry import ConfigError
from torchlight.scores import align, read_run
from torchlight.separability import read_separability

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
# What --out may be: markdown, or plain text (never a checkpoint or a config named by mistake).
OUT_SUFFIXES = ('.md', '.markdown', '.txt')
# What several seeds of one setting may differ in: the seed, and where and how the run ran.
PER_RUN_KEYS = ('seed', 'seeds', 'work_dir', 'num_worker', 'device')
# The separability columns beside a variant's group accuracies: (key, heading).
SEPARABILITY = (('silhouette', 'silhouette'), ('knn', 'k-NN %'), ('probe', 'probe %'))


def has_sf_head(config):
    return bool((config.get('model_args') or {}).get('sf_head'))


def variant_name(model, sf_head):
    return BACKBONES.get(model, model) + (' + SF-Head' if sf_head else '')


class Benchmark(NamedTuple):
    """A dataset and benchmark as the runs name it (`ntu60/xsub`: what published figures and
    reference weights are looked up by) and the data the runs read, which tells apart datasets
    of one name (two custom datasets prepared from folders named alike)."""

    name: str
    data: str


def benchmark_of(config, meta):
    """The runs' test data file (as their configs name it) and layout (as they recorded it)."""
    data_path = (config.get('test_feeder_args') or {}).get('data_path') or ''
    data = f"{os.path.normpath(data_path) if data_path else '?'}, {meta.get('layout') or '?'}"
    return Benchmark(f"{meta['dataset']}/{meta['benchmark']}", data)


def benchmark_headings(benchmarks):
    """{benchmark: heading}: its name, followed by its data where another benchmark has the
    same name."""
    names = [b.name for b in benchmarks]
    return {b: b.name if names.count(b.name) == 1 else f'{b.name} ({b.data})' for b in benchmarks}


def find_runs(roots, epoch):
    """{(Benchmark, model, sf_head, stream): [run, ...]}: the finished runs under `roots`,
    the seeds of one setting together (ordered by seed). Where several settings share a key, the
    newest run's setting wins; where a seed ran twice, its newest run (the others are listed in
    `notes`)."""
    found, notes = {}, []
    walked = (entry for root in roots for entry in sorted(os.walk(root)))
    for folder, _, files in walked:
        if 'results.json' not in files or 'config.yaml' not in files:
            continue
        try:
            config, results = read_run(folder)
        except ConfigError as err:
            notes.append(f'{err}; left out')
            continue
        if tests_a_listed_run(results):
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
            benchmark_of(config, meta),
            meta['model'],
            has_sf_head(config),
            meta['stream'],
        )
        separability, note = read_separability(folder, epoch, results)
        notes += [note] if note else []
        run = {
            'dir': folder,
            'config': config,
            'seed': config.get('seed'),
            'setting': setting(config),
            'test': evaluation['test'],
            'separability': separability,
            'time': os.path.getmtime(os.path.join(folder, 'results.json')),
        }
        found.setdefault(key, []).append(run)
    return {key: newest_setting(candidates, notes) for key, candidates in found.items()}, notes


def tests_a_listed_run(results):
    """Whether results.json is a --phase test run's whose checkpoint belongs to a training run
    that the tables list (which they show already); a test run of a checkpoint from elsewhere (a
    released one, say) is listed itself."""
    if 'weights' not in results:
        return False
    try:
        _, tested = read_run(os.path.dirname(results['weights']))
    except ConfigError:
        return False
    return tested.get('meta') is not None


def setting(config):
    """What makes runs seeds of one setting: their config but for PER_RUN_KEYS."""
    return json.dumps({k: v for k, v in config.items() if k not in PER_RUN_KEYS}, sort_keys=True)


def newest_setting(candidates, notes):
    """The runs of the newest run's setting, one per seed (its newest), ordered by seed; each run
    left out is noted."""
    candidates = sorted(candidates, key=lambda r: r['time'], reverse=True)
    newest, chosen = candidates[0], {}
    for run in candidates:
        if run['setting'] != newest['setting']:
            notes.append(f"{run['dir']}: another setting than {newest['dir']}, which is newer; "
                         f'left out')
        elif run['seed'] in chosen:
            notes.append(f"{run['dir']}: same setting and seed as {chosen[run['seed']]['dir']}, "
                         f'which is newer; left out')
        else:
            chosen[run['seed']] = run
    return [chosen[seed] for seed in sorted(chosen, key=str)]


def fused_top1(streams, benchmark, epoch):
    """[top-1 of the 4-stream ensemble] with the reference weights (1 each where there are none),
    one per seed that all four streams ran."""
    weights = REFERENCE_WEIGHTS.get(tuple(benchmark.name.split('/')), (1, 1, 1, 1))
    feeder = run_split(streams[0][0]['config'])
    seeds = set.intersection(*({run['seed'] for run in runs} for runs in streams))
    values = []
    for seed in sorted(seeds, key=str):
        dirs = [next(run['dir'] for run in runs if run['seed'] == seed) for runs in streams]
        scored = load_streams(dirs, epoch)
        fused = align(scored[0].names, fuse(scored, weights), feeder.names, scored[0].path)
        values.append(topk_accuracy(fused, np.asarray(feeder.labels), 1))
    return values


def published_figures():
    with open(PUBLISHED) as f:
        return yaml.safe_load(f)


def cell(values, published=None, form='.2f', mark=''):
    """One value as it is; several (seeds) as 'mean ± sample standard deviation (n=k)'; none as
    MISSING; `mark` follows the published figure (a note under the table says what it means)."""
    if not values:
        text = MISSING
    elif len(values) == 1:
        text = format(values[0], form)
    else:
        mean, spread = np.mean(values), np.std(values, ddof=1)
        text = f'{format(mean, form)} ± {format(spread, form)} (n={len(values)})'
    return text if published is None else f'{text} (pub. {published:g}{mark})'


def top1s(runs):
    """The test top-1 of each seed's run (none without runs)."""
    return [run['test']['top1'] for run in runs or []]


def stream_table(benchmark, runs, published, epoch):
    models = sorted({m for b, m, _, _ in runs if b == benchmark})
    lines = [
        f"| model | {' | '.join(HEADINGS[c] for c in COLUMNS)} |",
        '|---' * (len(COLUMNS) + 1) + '|',
    ]
    notes = []
    for model in models:
        for sf_head in (False, True):
            row = {s: runs.get((benchmark, model, sf_head, s)) for s in STREAMS}
            values = {s: top1s(r) for s, r in row.items()}
            values['fused'] = (
                fused_top1([row[s] for s in STREAMS], benchmark, epoch)
                if all(row.values())
                else None
            )
            entry = next(
                (p for p in published if p['model'] == model and p.get('sf_head') == sf_head),
                {},
            )
            figures = entry.get('top1', {}).get(benchmark.name, {})
            mark = ''
            if entry.get('protocol') and figures:
                mark = '*' * (len(notes) + 1)
                notes.append(f"{mark} {entry['name']}: published with {entry['protocol']}.")
            lines.append(
                f'| {variant_name(model, sf_head)} | '
                + ' | '.join(cell(values[c], figures.get(c), mark=mark) for c in COLUMNS)
                + ' |'
            )
    for entry in published:
        if entry['model'] not in BACKBONES and benchmark.name in entry['top1']:
            figures = entry['top1'][benchmark.name]
            lines.append(
                f"| {entry['name']} (published) | "
                + ' | '.join(f'{figures[c]:g}' if c in figures else MISSING for c in COLUMNS)
                + ' |'
            )
    return lines + ([''] + notes if notes else [])


def sf_head_table(runs, headings):
    lines = [
        '| benchmark | backbone | stream | without SF-Head | with SF-Head | difference '
        '| p (seeds) |',
        '|---' * 7 + '|',
    ]
    for benchmark, model, stream in sorted({(b, m, s) for b, m, _, s in runs}):
        a, b = (top1s(runs.get((benchmark, model, sf, stream))) for sf in (False, True))
        # with seeds, the difference of the means
        difference = f'{np.mean(b) - np.mean(a):+.2f}' if a and b else MISSING
        lines.append(
            f'| {headings[benchmark]} | {BACKBONES.get(model, model)} | {stream} | {cell(a)} '
            f'| {cell(b)} | {difference} | {welch_p(a, b)} |'
        )
    return lines


def welch_p(first, second):
    """Two-sided p-value of Welch's t-test on two sets of seeds' top-1 (equal means, variances
    free); MISSING with fewer than 2 seeds on a side, or no spread at all, to test against."""
    if len(first) < 2 or len(second) < 2:
        return MISSING
    p_value = stats.ttest_ind(second, first, equal_var=False).pvalue
    return f'{p_value:.3g}' if np.isfinite(p_value) else MISSING


def group_table(benchmark, runs):
    """Per group of confusable classes, the accuracy of each variant's joint-stream runs (or first
    stream), with the separability numbers beside it where tools/embed.py measured them."""
    chosen = {}
    for (b, model, sf_head, stream), found in sorted(runs.items()):
        measured = [run for run in found if 'ambiguous' in run['test']]
        if b == benchmark and measured:
            if (model, sf_head) not in chosen or stream == 'joint':
                chosen[model, sf_head] = {'stream': stream, 'runs': measured}
    if not chosen:
        return []
    groups = list(
        dict.fromkeys(
            group
            for variant in chosen.values()
            for run in variant['runs']
            for group in run['test']['ambiguous']['groups']
        )
    )
    columns = []  # (heading, runs, key): key None for the accuracy, else a separability number
    for variant in sorted(chosen):
        runs_of, name = chosen[variant]['runs'], variant_name(*variant)
        columns.append((f"{name} ({chosen[variant]['stream']})", runs_of, None))
        if any(run['separability'] for run in runs_of):
            columns += [(f'{name} {title}', runs_of, key) for key, title in SEPARABILITY]
    lines = [
        '| group | ' + ' | '.join(heading for heading, _, _ in columns) + ' |',
        '|---' * (len(columns) + 1) + '|',
    ]
    for group in ['all groups', *groups]:
        cells = [group_cell(runs_of, group, key) for _, runs_of, key in columns]
        lines.append(f'| {group} | ' + ' | '.join(cells) + ' |')
    return lines


def group_cell(runs, group, key):
    """A group's accuracy (key None) or separability number `key`, over the runs that have it."""
    if key is None:
        ambiguous = [run['test']['ambiguous'] for run in runs]
        values = [
            a['accuracy'] if group == 'all groups' else a['groups'].get(group, {}).get('accuracy')
            for a in ambiguous
        ]
        return cell([v for v in values if v is not None])
    numbers = [(run['separability'] or {}).get(group) or {} for run in runs]
    values = [n[key] for n in numbers if key in n]
    text = cell(values, form='.3f' if key == 'silhouette' else '.2f')
    # the accuracy beside it may be over more seeds than were measured
    return text + (f' [{len(values)} of {len(runs)} runs]' if 0 < len(values) < len(runs) else '')


def write_tables(roots, epoch):
    runs, notes = find_runs(roots, epoch)
    where = ', '.join(roots)
    if not runs:
        raise ConfigError(
            f'no finished run under {where} (a folder with config.yaml and results.json)'
        )
    published = published_figures()
    lines = [
        f'# Results of the runs under {where} ({epoch} epoch)',
        '',
        f'Top-1 accuracy in %. "{MISSING}": no finished run (never filled in). "(pub. x)": the '
        f'published figure for the same model (tools/published_results.yaml). 4-stream: the four '
        f"streams' scores summed with the reference weights. \"m ± s (n=k)\": the mean and the "
        f'sample standard deviation over k seeds of one setting (runs whose configs differ only '
        f'in seed); "p (seeds)": Welch\'s t-test of the two variants\' seeds. Silhouette, k-NN %, '
        f"probe %: how well a group's classes separate in feature space (python -m tools.embed; "
        f'docs/analysis.md).',
        '',
    ]
    headings = benchmark_headings(sorted({b for b, _, _, _ in runs}))
    for benchmark, heading in headings.items():
        lines += [
            f'## {heading}: top-1 per stream',
            '',
            *stream_table(benchmark, runs, published, epoch),
            '',
        ]
    lines += ['## With and without SF-Head', '', *sf_head_table(runs, headings), '']
    for benchmark, heading in headings.items():
        table = group_table(benchmark, runs)
        if table:
            lines += [f'## {heading}: accuracy per group of confusable classes', '', *table, '']
    if notes:
        lines += ['Runs left out:', '', *[f'- {n}' for n in notes], '']
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        'roots',
        nargs='*',
        default=['work_dir'],
        help='folders holding the runs (default work_dir)',
    )
    parser.add_argument(
        '--epoch', choices=['best', 'last'], required=True, help='which epoch of each run'
    )
    parser.add_argument('--out', help='write the markdown here too (a .md, .markdown or .txt file '
                        'in an existing folder)')
    args = parser.parse_args(argv)
    try:
        missing = [root for root in args.roots if not os.path.isdir(root)]
        if missing:
            # a mistyped folder would only show as empty cells
            raise ConfigError(f'{missing[0]} is not a folder (the runs are looked for under the '
                              f'folders given)')
        if args.out:
            check_output_file(args.out, '--out', OUT_SUFFIXES)
        text = write_tables(args.roots, args.epoch)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(text)
    if args.out:
        try:
            atomic_write(args.out, (text + '\n').encode())
        except OSError as err:
            print(f'error: --out {args.out}: cannot write it ({err.strerror})', file=sys.stderr)
            return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
