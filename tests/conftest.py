"""Shared fixtures. Tests never touch the network or the GPU; real data is for benchmarks."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SLOW_TEST_TIMEOUT_S = 3 * 3600


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` (real-data runs, simulations: ``make test-slow``) get hours, not the
    default suite's per-test ``timeout`` (pyproject.toml), unless they set their own."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TEST_TIMEOUT_S))


@pytest.fixture(scope="session")
def encoder():
    """The embedded MiniLM encoder on the torch backend (the reference the ONNX backends are
    compared with), loaded once per test session. The default backend (``auto``: onnx-int8 on
    CPU) is tested where it is the subject (tests/rag/test_encoder_defaults.py)."""
    from rag.encoder import Encoder, EncoderConfig

    return Encoder(EncoderConfig(device="cpu", backend="torch"))


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory, encoder) -> Path:
    """A BM25 + dense index of the 20-document fixture corpus."""
    from rag.indexer import IndexOptions, build_index

    out = tmp_path_factory.mktemp("idx") / "sample"
    build_index(FIXTURES / "corpus.jsonl", out, IndexOptions(progress=False), encoder=encoder)
    return out


@pytest.fixture(scope="session")
def query_encoder(sample_index, tmp_path_factory) -> Path:
    """A 2-layer query encoder distilled from the sample index's MiniLM by ``rag train query-encoder``."""
    from rag.cli import main

    out = tmp_path_factory.mktemp("qenc") / "q2"
    assert main(["train", "query-encoder", "--index", str(sample_index), "--out", str(out), "--layers", "2",
                 "--epochs", "4", "--batch-size", "8", "--device", "cpu", "--quiet"]) == 0
    return out


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    """A seeded 2-layer, 32-wide BERT sequence classifier (one logit) with MiniLM's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from rag.models import EMBEDDED_MODEL, resolve_model

    root = tmp_path_factory.mktemp("tiny-ce") / "ce"
    tok = AutoTokenizer.from_pretrained(str(resolve_model(EMBEDDED_MODEL, "encoder").path), local_files_only=True)
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                                                     num_attention_heads=2, intermediate_size=64,
                                                     max_position_embeddings=128, num_labels=1))
    model.save_pretrained(root)
    tok.save_pretrained(root)
    return root
