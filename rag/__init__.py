"""Models and pipeline: analyzer, encoders, retrievers, fusion, HyDE, generators, trainers, CLI."""
