"""The benchmarks' timing loop: the contenders' order within rounds, the rates it reports, and the
paired ratios of two contenders with the benchmark's median and quartiles of them."""
import pytest

from tools import timing


def test_rounds_alternate_the_order_and_rates_are_items_over_seconds(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(timing.time, 'perf_counter', lambda: clock[0])
    calls = []

    def contender(name, seconds_per_call):
        def call(i):
            calls.append(name)
            # the machine runs at half speed in the second timed round (calls 10 to 15, after the
            # warm-up's 3 and the first round's 6)
            clock[0] += seconds_per_call * (2 if 10 <= len(calls) <= 15 else 1)
        return call

    functions = {'a': contender('a', 0.5), 'b': contender('b', 2.0), 'c': contender('c', 0.25)}
    rounds = timing.interleaved_rounds(functions, calls=2, repeats=3, items_per_call=4,
                                       warm_up_calls=1)
    # the warm-up, then rounds in the order a b c, c b a, a b c, each contender called twice
    assert ''.join(calls) == 'abc' + 'aabbcc' + 'ccbbaa' + 'aabbcc'
    # 2 calls of 4 items in 2 × the contender's seconds per call (twice that in round 2)
    assert rounds == {'a': [8.0, 4.0, 8.0], 'b': [2.0, 1.0, 2.0], 'c': [16.0, 8.0, 16.0]}
    assert timing.medians(rounds) == {'a': 8.0, 'b': 2.0, 'c': 16.0}


def test_paired_ratios_are_taken_round_by_round():
    # the machine's speed moves between rounds; a is twice as fast as b in every round but one
    a, b = [10.0, 30.0, 20.0, 12.0, 40.0], [5.0, 20.0, 10.0, 6.0, 4.0]
    assert timing.paired_ratios(a, b) == [2.0, 1.5, 2.0, 2.0, 10.0]
    with pytest.raises(ValueError):
        timing.paired_ratios(a, b[:4])                # rounds of two different timings


def test_the_summary_ratio_is_the_median_with_its_quartiles():
    fast, slow = [10.0, 30.0, 20.0, 12.0, 40.0], [5.0, 20.0, 10.0, 6.0, 4.0]
    # ratios 1.5, 2, 2, 2, 10: median 2 (the medians' ratio would be 20 / 6); quartiles by
    # statistics.quantiles' default method: 1.75 and 6
    assert timing.format_ratio('speed-up', fast, slow) == '2.00x (1.75 to 6.00x)'
    # SF-Head's cost: time with it over time without, as rates without over rates with
    assert timing.format_ratio('extra time', fast, slow) == '+100.0 % (+75.0 to +500.0 %)'
    # a negative extra time keeps its sign; fewer than 4 rounds give no quartiles
    assert timing.format_ratio('extra time', [9.0, 9.5], [10.0, 10.0]) == '-7.5 %'


@pytest.mark.slow  # two full-size models built and timed
def test_the_json_record_keeps_each_rounds_rates_and_their_medians(tmp_path):
    """tools/gpu_check.sh reads run['train']['ours'] from the benchmark's --json records."""
    import json
    import statistics

    from tools.benchmark import main

    record = tmp_path / 'bench.jsonl'
    main(['--model', 'stgcn', '--sf-groups', '0', '--repeats', '3', '--steps', '1',
          '--frames', '8', '--batch', '2', '--json', str(record)])
    run = json.loads(record.read_text())
    for what in ('train', 'infer'):
        rounds = run['rounds'][what]
        assert sorted(rounds) == ['baseline', 'ours'] and len(rounds['ours']) == 3
        assert run[what] == {name: statistics.median(rates) for name, rates in rounds.items()}
