"""Fixtures of the training tests: the fixture corpus as pairs, a BM25 index, a tiny random encoder."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parents[2] / "fixtures"


@pytest.fixture(scope="session")
def documents() -> dict[str, str]:
    from rag.training.data import load_documents

    return load_documents(FIXTURES / "corpus.jsonl")


@pytest.fixture(scope="session")
def fixture_pairs(documents):
    """The 12 judged fixture queries as (query, positive) pairs."""
    from eval.retrieval import load_qrels, load_queries
    from rag.training.data import beir_pairs

    return beir_pairs(load_queries(FIXTURES / "queries.jsonl"), load_qrels(FIXTURES / "qrels.tsv"), documents)


@pytest.fixture(scope="session")
def bm25_index(tmp_path_factory):
    from rag.index import open_index
    from rag.indexer import IndexOptions, build_index

    out = tmp_path_factory.mktemp("train-idx") / "bm25"
    build_index(FIXTURES / "corpus.jsonl", out, IndexOptions(encoder=None, progress=False))
    index = open_index(out)
    yield index
    index.close()


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer, 32-wide BERT with MiniLM's tokenizer, saved as a
    sentence-transformers model (mean pooling + normalisation): trains in seconds on a CPU."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    from rag.models import EMBEDDED_MODEL, resolve_model

    root = tmp_path_factory.mktemp("tiny-encoder")
    tok = AutoTokenizer.from_pretrained(str(resolve_model(EMBEDDED_MODEL, "encoder").path), local_files_only=True)
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=64, max_position_embeddings=128))
    bert.save_pretrained(root / "bert")
    tok.save_pretrained(root / "bert")
    transformer = Transformer(str(root / "bert"), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(32, "mean"), Normalize()], device="cpu")
    model.save(str(root / "st"))
    return root / "st"
