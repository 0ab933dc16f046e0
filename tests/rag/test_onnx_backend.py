"""The ONNX Runtime query backend: same vectors as PyTorch (fp32), close ones (int8), clear refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from rag.encoder import Encoder, EncoderConfig, ModelLoadError  # noqa: E402
from rag.onnx_backend import OnnxBackendError, _pipeline  # noqa: E402

TEXTS = [
    "what is BM25?",
    "Do statins reduce the risk of heart attack in people over seventy?",
    "a",
    "Mitochondria are the powerhouse of the cell, and their DNA is inherited from the mother " * 3,
    "ünïcödé and emoji ✓ in a query",
]


@pytest.fixture(scope="module")
def onnx_fp32():
    return Encoder(EncoderConfig(backend="onnx", batch_size=2))


@pytest.fixture(scope="module")
def onnx_int8():
    return Encoder(EncoderConfig(backend="onnx-int8", batch_size=1))


def test_onnx_fp32_vectors_equal_the_torch_encoders(encoder, onnx_fp32):
    # Given: the PyTorch encoder's vectors for queries of very different lengths
    reference = encoder.encode_queries(TEXTS)  # (5, 384)
    # When: the ONNX backend encodes them, in padded groups of 2 and one at a time
    grouped = onnx_fp32.encode_queries(TEXTS)
    single = np.concatenate([onnx_fp32.encode_queries([t]) for t in TEXTS])
    # Then: the same vectors (fp32 kernels differ only in summation order), in the input order
    assert grouped.shape == reference.shape and grouped.dtype == np.float32
    assert np.abs(grouped - reference).max() <= 1e-5
    assert np.abs(single - reference).max() <= 1e-5
    assert np.allclose(np.linalg.norm(grouped, axis=1), 1.0, atol=1e-5)


def test_onnx_int8_is_quantised_yet_close(encoder, onnx_int8):
    # Given / When
    reference = encoder.encode_queries(TEXTS)
    quantised = onnx_int8.encode_queries(TEXTS)
    cos = (quantised * reference).sum(1)
    # Then: the weights really are int8 (vectors differ) but point the same way
    # (SciFact test queries: min cosine 0.984, docs/benchmarks.md)
    assert np.abs(quantised - reference).max() > 1e-3
    assert cos.min() >= 0.97


def test_onnx_backend_ranks_the_sample_index_like_torch(sample_index, onnx_fp32):
    from rag.index import open_index

    torch_index = open_index(sample_index)
    onnx_index = open_index(sample_index, encoder=onnx_fp32)
    for query in ("solar energy storage", "how do vaccines work", "ancient rome"):
        a = torch_index.retriever("hybrid").search(query, 5)
        b = onnx_index.retriever("hybrid").search(query, 5)
        assert [h.id for h in a] == [h.id for h in b]
        assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-5)


def test_empty_input_gives_an_empty_matrix(onnx_fp32):
    assert onnx_fp32.encode_queries([]).shape[0] == 0


def test_unsupported_pipelines_are_refused_with_the_reason():
    class Transformer: ...

    class Pooling:
        def __init__(self, mode):
            self.mode = mode

        def get_config_dict(self):
            return {"pooling_mode": self.mode, "include_prompt": True}

    class Dense: ...

    with pytest.raises(OnnxBackendError, match="Transformer → Pooling → Dense"):
        _pipeline([Transformer(), Pooling("mean"), Dense()])
    with pytest.raises(OnnxBackendError, match="lasttoken"):
        _pipeline([Transformer(), Pooling("lasttoken")])
    assert _pipeline([Transformer(), Pooling("cls")])[1] == "cls"


def test_unknown_backend_is_a_model_load_error():
    with pytest.raises(ModelLoadError, match="unknown encoder backend 'tensorrt'"):
        Encoder(EncoderConfig(backend="tensorrt"))


def test_cli_search_with_onnx_backend_matches_torch(sample_index):
    def run(*extra):
        out = subprocess.run([sys.executable, "-m", "rag.cli", "search", "solar energy storage", "--index", str(sample_index),
                              "--mode", "dense", "--json", "-k", "3", *extra], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)["hits"]

    torch_hits, onnx_hits = run(), run("--encoder-backend", "onnx")
    assert [h["id"] for h in torch_hits] == [h["id"] for h in onnx_hits]
    assert np.allclose([h["score"] for h in torch_hits], [h["score"] for h in onnx_hits], atol=1e-5)
