"""Reproducible benchmark scripts; each is runnable with ``python -m eval.benchmarks.<name>``."""
