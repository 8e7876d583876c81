"""Model speed against a plain baseline with the same weights: training step and inference
throughput.

    python -m tools.benchmark --summary                     # the four ratios the project targets
    python -m tools.benchmark --model ctrgcn --sf-groups 8  # CTR-GCN + SF-Head, batch 16, T=64, CPU
    python -m tools.benchmark --model stgcn --sf-groups 0
    python -m tools.benchmark --model ctrgcn --device cuda --amp bf16 --channels-last --batch 64

The baseline is the backbone written the way the reference code is (tools/reference/: per-subset 1×1
convolutions, separate temporal branches, the released SF-Head with its permute + contiguous copies,
TCA-GCN's per-sample weight tensor). It is built with random weights of a trained model's scale,
which our model loads through the same path as a reference checkpoint; the script prints the largest
difference between the two models' outputs (eval mode), then samples/s of a training step (forward,
cross-entropy, backward, SGD step) and of inference, each the median of --repeats timed rounds after
a warm-up, the models taking turns within each round (in reverse order every other round), and the
ratio ours / baseline: the median over rounds of the two models' ratio in each round (paired, so
that the machine's drift from round to round cancels out), with the first and third quartiles of
those ratios. `--summary` times, in one process and interleaved, CTR-GCN + SF-Head and its baseline,
CTR-GCN without SF-Head, TCA-GCN, ST-GCN and its baseline, and prints the project's targets: CTR-GCN
+ SF-Head ≥ 1.7× its baseline, SF-Head ≤ 10 % of CTR-GCN's time, TCA-GCN ≤ 1.5× CTR-GCN's time,
ST-GCN ≥ 1.3× its baseline in training. With --data it also measures the demo dataset's training
pipeline with 0 and --workers DataLoader workers. Figures, not pass/fail.
"""
import argparse
import json

import torch
import torch.nn.functional as F

from graph import distance_partition, get_layout
from model import build_model
from tools.reference import calibrate_batch_norms, randomise
from tools.reference.ctrgcn import ReferenceCTRGCN
from tools.reference.stgcn import OriginalSTGCN
from tools.timing import format_ratio, interleaved_rounds, loader_rate, medians
from torchlight.checkpoint import apply_weights

AMP_TYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16, 'off': None}


def baseline_and_ours(name, sf_groups, num_class=60):
    """The baseline with random weights, and our model carrying the same weights."""
    torch.manual_seed(0)
    if name == 'stgcn':
        A = torch.tensor(distance_partition(get_layout('ntu25')))
        baseline = OriginalSTGCN(A, num_class, sf_groups=sf_groups or None)
    else:
        baseline = ReferenceCTRGCN(num_class, tca=name == 'tcagcn', sf_groups=sf_groups or None)
    randomise(baseline)     # weights and statistics of a trained model's scale: outputs of order 1
    with torch.no_grad():   # keep TCA-GCN's calibration factors near 1, as in a trained model
        for key, value in baseline.state_dict().items():
            if key.endswith('conv_rf.b.weight'):
                value.mul_(0.01)
    calibrate_batch_norms(baseline, (4, 3, 24, 25, 2))
    ours = build_model(name, num_class=num_class,
                       sf_head={'groups': sf_groups} if sf_groups else None)
    apply_weights(ours, baseline.state_dict(), 'the baseline')
    return baseline, ours


def output_difference(baseline, ours, batch):
    baseline.eval(), ours.eval()
    with torch.no_grad():
        return (baseline(batch) - ours(batch)).abs().max().item()


def training_step(model, batch, labels, optimizer, amp):
    with torch.autocast(batch.device.type, dtype=AMP_TYPES[amp], enabled=amp != 'off'):
        loss = F.cross_entropy(model(batch), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def timed_rounds(models, batch, labels, args, device):
    """{'train': {name: [samples/s in each round]}, 'infer': {...}}, every model timed in the same
    rounds."""
    def train(model):
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
        return lambda i: training_step(model, batch, labels, optimizer, args.amp)

    def infer(model):
        model.eval()

        def step(i):
            with torch.no_grad(), torch.autocast(device.type, dtype=AMP_TYPES[args.amp],
                                                 enabled=args.amp != 'off'):
                model(batch)
        return step

    synchronise = torch.cuda.synchronize if device.type == 'cuda' else None
    return {what: interleaved_rounds({name: make(model) for name, model in models.items()},
                                     calls=args.steps * (1 if what == 'train' else 2),
                                     repeats=args.repeats, items_per_call=args.batch,
                                     synchronise=synchronise)
            for what, make in (('train', train), ('infer', infer))}


def make_batch(args, device):
    generator = torch.Generator().manual_seed(1)
    batch = torch.randn(args.batch, 3, args.frames, 25, 2, generator=generator).to(device)
    labels = torch.randint(0, 60, (args.batch,), generator=generator).to(device)
    return batch, labels


def model_benchmark(args, device):
    baseline, ours = baseline_and_ours(args.model, args.sf_groups)
    baseline, ours = baseline.to(device), ours.to(device)
    batch, labels = make_batch(args, device)
    difference = output_difference(baseline, ours, batch)
    if args.channels_last:
        ours = ours.to(memory_format=torch.channels_last)
    rounds = timed_rounds({'ours': ours, 'baseline': baseline}, batch, labels, args, device)
    return {'difference': difference, 'rounds': rounds}


# (ratio name, numerator model, denominator model, what the ratio measures, target)
SUMMARY_RATIOS = [
    ('CTR-GCN + SF-Head vs baseline', 'ctrgcn_sf', 'ctrgcn_sf_baseline', 'speed-up', '>= 1.7x'),
    ('SF-Head cost over CTR-GCN', 'ctrgcn', 'ctrgcn_sf', 'extra time', '<= 10 %'),
    ('TCA-GCN time / CTR-GCN time', 'ctrgcn', 'tcagcn', 'time ratio', '<= 1.5x'),
    ('ST-GCN vs baseline', 'stgcn', 'stgcn_baseline', 'speed-up', '>= 1.3x training'),
]


def summary_benchmark(args, device):
    """The project's four speed targets, every model timed in the same interleaved rounds."""
    ctrgcn_sf_baseline, ctrgcn_sf = baseline_and_ours('ctrgcn', 8)
    stgcn_baseline, stgcn = baseline_and_ours('stgcn', 0)
    models = {'ctrgcn_sf': ctrgcn_sf, 'ctrgcn_sf_baseline': ctrgcn_sf_baseline,
              'ctrgcn': baseline_and_ours('ctrgcn', 0)[1],
              'tcagcn': baseline_and_ours('tcagcn', 0)[1],
              'stgcn': stgcn, 'stgcn_baseline': stgcn_baseline}
    models = {name: model.to(device) for name, model in models.items()}
    batch, labels = make_batch(args, device)
    differences = {name: output_difference(models[f'{name}_baseline'], models[name], batch)
                   for name in ('ctrgcn_sf', 'stgcn')}
    return {'differences': differences, 'rounds': timed_rounds(models, batch, labels, args, device)}


def print_summary(result, label):
    print(f'summary: {label}')
    print(f"  largest output difference ours vs baseline: CTR-GCN + SF-Head "
          f"{result['differences']['ctrgcn_sf']:.2e}, ST-GCN {result['differences']['stgcn']:.2e}")
    rounds = result['rounds']
    for what in ('train', 'infer'):
        print(f'  {what:5s} samples/s (medians): ' + ', '.join(
            f'{name} {rate:.2f}' for name, rate in medians(rounds[what]).items()))
    print("  ratios: median of the rounds' paired ratios (first to third quartile)")
    print(f"  {'':32s} {'training step':>26s} {'inference':>26s}   target")
    for title, a, b, kind, target in SUMMARY_RATIOS:
        train, infer = (format_ratio(kind, rounds[w][a], rounds[w][b]) for w in ('train', 'infer'))
        print(f'  {title:32s} {train:>26s} {infer:>26s}   {target}')


def data_benchmark(workers):
    """The demo training pipeline's samples/s with 0 and `workers` DataLoader workers."""
    from data.synthetic import ensure_demo_dataset
    from feeders import build_feeder
    ensure_demo_dataset('data/demo/xsub')
    feeder = build_feeder('skeleton', data_path='data/demo/xsub', split='train', window_size=64,
                          p_interval=[0.5, 1], random_rot=True)
    feeder.repeat = 50                                                  # enough batches to time
    return {count: loader_rate(feeder, count) for count in (0, workers)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--summary', action='store_true',
                        help='time all backbones together and print the four target ratios')
    parser.add_argument('--model', choices=['ctrgcn', 'stgcn', 'tcagcn'], default='ctrgcn')
    parser.add_argument('--sf-groups', type=int, default=8,
                        help='SF-Head groups in every block; 0: no SF-Head')
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--frames', type=int, default=64)
    # many short rounds: this shared machine's speed moves within seconds, and a median of many
    # paired ratios is steadier than one of a few
    parser.add_argument('--steps', type=int, default=1,
                        help='training steps per timed round (inference: twice as many calls)')
    parser.add_argument('--repeats', type=int, default=15, help='timed rounds')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', choices=['off', 'bf16', 'fp16'], default='off')
    parser.add_argument('--channels-last', action='store_true',
                        help='our model in channels_last memory format')
    parser.add_argument('--data', action='store_true', help='also time the data pipeline')
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--json', help='append the figures to this file (one JSON object per line)')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    setting = (f"batch {args.batch}, T={args.frames}, "
               f"{device}{'' if device.type == 'cuda' else f' ({args.threads} threads)'}, "
               f"amp {args.amp}"
               f"{', channels_last' if args.channels_last else ''}, torch {torch.__version__}")
    if args.summary:
        label = setting
        result = summary_benchmark(args, device)
        print_summary(result, label)
    else:
        label = f"{args.model}{' + SF-Head' if args.sf_groups else ''}, {setting}"
        result = model_benchmark(args, device)
        print(f'{label}; largest output difference ours vs baseline: {result["difference"]:.2e}')
        for what in ('train', 'infer'):
            rounds = result['rounds'][what]
            rates = medians(rounds)
            print(f"  {what:5s}: ours {rates['ours']:8.1f} samples/s, "
                  f"baseline {rates['baseline']:8.1f} (medians), "
                  f"ratio {format_ratio('speed-up', rounds['ours'], rounds['baseline'])}")
    if args.data:
        rates = data_benchmark(args.workers)
        result['data'] = rates
        print('  data pipeline (demo, batch 64): ' + ', '.join(f'{w} workers {r:.0f} samples/s'
                                                             for w, r in rates.items()))
    if args.json:
        # each model's median samples/s beside the per-round rates (tools/gpu_check.sh reads them)
        rates = {what: medians(result['rounds'][what]) for what in ('train', 'infer')}
        with open(args.json, 'a') as f:
            f.write(json.dumps({'setting': label, **result, **rates}) + '\n')


if __name__ == '__main__':
    main()
