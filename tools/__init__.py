"""Command-line tools, run as modules: python -m tools.ensemble, tools.compare, tools.tables,
tools.model_info, tools.benchmark, tools.benchmark_data; tools/reference/ holds the reference-style
implementations that the equivalence tests and benchmarks compare with."""
