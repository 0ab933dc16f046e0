"""Benchmark scripts: each prints its figures and writes its own section of docs/benchmarks.md."""
