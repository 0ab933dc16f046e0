"""The test suite: one package per source package (tests/rag, tests/indexes, tests/eval, tests/service)."""
