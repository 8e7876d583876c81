"""Plain implementations of the reference models, written the way the reference code is (per-subset 1×1
convolutions, separate temporal branches, permute + contiguous around SF-Head's gates), with the reference key
names: the tests' second implementations and the benchmark's baseline (tools/benchmark.py)."""
