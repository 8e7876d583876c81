"""Timing for the benchmark scripts: rates measured in rounds, the contenders alternating round by
round."""

import statistics
import time


def interleaved_rounds(
    functions, calls, repeats, items_per_call=1, warm_up_calls=2, synchronise=None
):
    """{name: [items/s in each round]}: `repeats` timed rounds of `calls` calls of each function(i),
    the functions alternating round by round (so that a change of machine load hits all of them),
    after a warm-up. Every other round runs them in reverse order: a machine whose speed drifts
    within a round would otherwise favour whichever runs first. `synchronise` (e.g.
    torch.cuda.synchronize) runs before and after each timed round."""

    def seconds(function, count):
        if synchronise:
            synchronise()
        start = time.perf_counter()
        for i in range(count):
            function(i)
        if synchronise:
            synchronise()
        return time.perf_counter() - start

    for function in functions.values():
        seconds(function, warm_up_calls)
    rounds = {name: [] for name in functions}
    order = list(functions)
    for repeat in range(repeats):
        for name in order if repeat % 2 == 0 else order[::-1]:
            rounds[name].append(calls * items_per_call / seconds(functions[name], calls))
    return rounds


def medians(rounds):
    """{name: median items/s} of `interleaved_rounds`' per-round rates."""
    return {name: statistics.median(rates) for name, rates in rounds.items()}


def paired_ratios(numerator, denominator):
    """numerator[r] / denominator[r] for each round r, from two contenders' per-round rates of one
    `interleaved_rounds`. Each compares two timings made in the same round, so a change of the
    machine's speed from round to round cancels out of it; it does not cancel out of the ratio of
    the two medians, which may come from different rounds."""
    return [a / b for a, b in zip(numerator, denominator, strict=True)]


def format_ratio(kind, fast, slow):
    """`fast` and `slow`, two contenders' per-round rates: the median of their paired ratios as a
    speed-up (fast / slow), an extra time in % or a time ratio, followed from 4 rounds up by the
    first and third quartiles, the spread that the machine's noise gives it."""
    def show(ratio):
        return f'{100 * (ratio - 1):+.1f}' if kind == 'extra time' else f'{ratio:.2f}'

    unit = ' %' if kind == 'extra time' else 'x'
    ratios = paired_ratios(fast, slow)
    text = show(statistics.median(ratios)) + unit
    if len(ratios) >= 4:
        first, _, third = statistics.quantiles(ratios, n=4)
        text += f' ({show(first)} to {show(third)}{unit})'
    return text


def loader_rate(dataset, workers, batch_size=64, batches=20):
    """Samples/s a shuffling DataLoader with `workers` workers delivers, timed after its first batch
    (workers started and warm), over at most `batches` batches."""
    import torch

    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        generator=torch.Generator().manual_seed(0),
    )
    batches = min(batches, len(loader) - 1)
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)
