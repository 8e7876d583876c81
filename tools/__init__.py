"""Command-line tools: model report (more to come: ensemble, tables, benchmarks)."""
