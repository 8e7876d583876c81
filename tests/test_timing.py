"""The benchmarks' timing loop: the contenders' order within rounds, and the rates it reports."""
from tools import timing


def test_rounds_alternate_the_order_and_rates_are_items_over_seconds(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(timing.time, 'perf_counter', lambda: clock[0])
    calls = []

    def contender(name, seconds_per_call):
        def call(i):
            calls.append(name)
            clock[0] += seconds_per_call
        return call

    rates = timing.interleaved_rates(
        {'a': contender('a', 0.5), 'b': contender('b', 2.0), 'c': contender('c', 0.25)},
        calls=2, repeats=3, items_per_call=4, warm_up_calls=1)
    # the warm-up, then rounds in the order a b c, c b a, a b c, each contender called twice
    assert ''.join(calls) == 'abc' + 'aabbcc' + 'ccbbaa' + 'aabbcc'
    # 2 calls of 4 items in 2 × the contender's seconds per call
    assert rates == {'a': 8.0, 'b': 2.0, 'c': 16.0}
