"""The default encoder backend (``auto``): onnx-int8 on a CPU for passages and queries alike,
queries following the index's passages, torch where ONNX cannot run, and the export cached on disk."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from indexes.manifest import Manifest  # noqa: E402
from rag.cli import main  # noqa: E402
from rag.encoder import CPU_BACKEND, Encoder, EncoderConfig, passage_text, resolve_backend  # noqa: E402

FIXTURES = Path(__file__).parents[1] / "fixtures"


def fixture_texts() -> list[str]:
    rows = [json.loads(line) for line in (FIXTURES / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    return [passage_text(r.get("title", ""), r["text"]) for r in rows]


@pytest.fixture(scope="module")
def default_index(tmp_path_factory) -> Path:
    """The fixture corpus indexed by `rag index` with every default."""
    out = tmp_path_factory.mktemp("defaults") / "idx"
    assert main(["index", str(FIXTURES / "corpus.jsonl"), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(("fields", "device_type", "expected"), [
    ({}, "cpu", "onnx-int8"),  # the CPU default
    ({}, "cuda", "torch"),  # ONNX Runtime runs on the CPU only here
    ({"index_backend": "torch"}, "cpu", "torch"),  # queries follow a torch-encoded index
    ({"index_backend": "onnx"}, "cpu", "onnx"),
    ({"index_backend": "onnx-int8"}, "cuda", "torch"),
    ({"model": "llm:smollm2"}, "cpu", "torch"),  # causal-LM embeddings run on torch only
    ({"backend": "torch"}, "cpu", "torch"),  # an explicit choice is kept
    ({"backend": "onnx", "index_backend": "onnx-int8"}, "cpu", "onnx"),
])
def test_auto_resolves_by_device_model_and_index(fields, device_type, expected):
    # Given / When / Then (no model is loaded)
    assert resolve_backend(EncoderConfig(**fields), device_type) == expected


def test_an_index_without_a_recorded_backend_gets_torch_queries():
    # Given the dense record of an index built before passage backends were recorded (torch)
    from indexes.manifest import DenseInfo, EncoderSpec, VectorBackendSpec

    old = DenseInfo(encoder=EncoderSpec(model="embedded:all-MiniLM-L6-v2", dim=384), backend=VectorBackendSpec(), vectors=3)
    # When its query encoder is configured with every default
    config = EncoderConfig.from_dense(old, device="cpu")
    # Then queries run through torch, as its passages did
    assert old.passage_backend is None and resolve_backend(config) == "torch"


def test_the_default_encoder_runs_onnx_int8_on_cpu():
    # Given / When the encoder every command loads by default, on a CPU
    enc = Encoder(EncoderConfig(device="cpu"))
    explicit = Encoder(EncoderConfig(device="cpu", backend="onnx-int8"))
    texts = fixture_texts()[:4]
    # Then it is the int8 ONNX backend, bit for bit
    assert enc.config.backend == CPU_BACKEND == "onnx-int8"
    np.testing.assert_array_equal(enc.encode_passages(texts), explicit.encode_passages(texts))


def test_int8_vectors_do_not_depend_on_their_batch_neighbours():
    # Given int8 passage vectors encoded in one padded-batch call (activation scales are per call)
    enc = Encoder(EncoderConfig(device="cpu", backend="onnx-int8", batch_size=64))
    texts = fixture_texts()
    together = enc.encode_passages(texts)
    # When each text is encoded alone, and a subset is encoded together
    alone = np.vstack([enc.encode_passages([t]) for t in texts])
    subset = enc.encode_passages(texts[3:9])
    # Then every vector is the same bits (in a shared padded batch they differed by up to 0.03)
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(subset, alone[3:9])


def test_index_search_and_add_agree_under_the_defaults(default_index, tmp_path, capsys):
    # Given an index built with the defaults: its manifest records what encoded the passages
    assert Manifest.read(default_index).dense.passage_backend == "onnx-int8"
    texts = fixture_texts()
    # When a passage's own text is searched (dense) with every default
    capsys.readouterr()
    assert main(["search", "--index", str(default_index), "--mode", "dense", "-k", "1", "--json", texts[0]]) == 0
    hit = json.loads(capsys.readouterr().out)["hits"][0]
    # Then the query ran through the passages' backend: the same vector, cosine 1
    rows = [json.loads(line) for line in (FIXTURES / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    assert hit["id"] == rows[0]["_id"] and abs(hit["score"] - 1.0) < 1e-6
    # ... and so do `rag add`'s passages: half indexed, half added equals a fresh build of all
    first, rest = tmp_path / "first.jsonl", tmp_path / "rest.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in rows[:10]), encoding="utf-8")
    rest.write_text("".join(json.dumps(r) + "\n" for r in rows[10:]), encoding="utf-8")
    grown = tmp_path / "grown"
    assert main(["index", str(first), "--out", str(grown)]) == 0
    assert main(["add", "--index", str(grown), str(rest)]) == 0
    capsys.readouterr()
    for query in ("why is the sky blue", "solar energy storage"):
        hits = []
        for index in (default_index, grown):
            assert main(["search", "--index", str(index), "--mode", "dense", "-k", "20", "--json", query]) == 0
            hits.append(json.loads(capsys.readouterr().out)["hits"])
        assert [(h["id"], h["score"]) for h in hits[0]] == [(h["id"], h["score"]) for h in hits[1]]


def test_torch_stays_selectable_and_differs_from_the_default(default_index, capsys):
    # Given / When the same query with the default backend, with onnx-int8 named, and with torch
    def run(*extra):
        assert main(["search", "--index", str(default_index), "--mode", "dense", "-k", "3", "--json", *extra,
                     "rotating storage for search engines"]) == 0
        return json.loads(capsys.readouterr().out)["hits"]

    capsys.readouterr()
    default, int8, torch_ = run(), run("--encoder-backend", "onnx-int8"), run("--encoder-backend", "torch")
    # Then the default is onnx-int8 exactly, and torch really is another encoder (same top passage)
    assert default == int8
    assert torch_[0]["id"] == default[0]["id"] and abs(torch_[0]["score"] - default[0]["score"]) > 1e-4


def _dense_model(tmp_path: Path) -> Path:
    """MiniLM with a Dense layer after pooling: a pipeline the ONNX backend does not run."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense

    from rag.models import EMBEDDED_MODEL, resolve_model

    st = SentenceTransformer(str(resolve_model(EMBEDDED_MODEL, "encoder").path), device="cpu", local_files_only=True)
    st.append(Dense(384, 16))
    st.save(str(tmp_path / "dense-model"))
    return tmp_path / "dense-model"


def test_auto_falls_back_to_torch_with_one_warning_where_onnx_cannot_run(tmp_path, caplog, monkeypatch):
    from rag.onnx_backend import OnnxBackendError

    # Given an encoder whose pipeline the ONNX export does not support
    model = str(_dense_model(tmp_path))
    # When it is loaded with the default backend
    with caplog.at_level(logging.WARNING, logger="rag.encoder"):
        enc = Encoder(EncoderConfig(model=model, device="cpu"))
    # Then it runs on torch, says so in one line, and gives torch's vectors
    assert enc.config.backend == "torch"
    (record,) = [r for r in caplog.records if r.name == "rag.encoder"]
    assert "cannot run on onnx-int8" in record.getMessage() and "Dense" in record.getMessage()
    assert "\n" not in record.getMessage()
    reference = Encoder(EncoderConfig(model=model, device="cpu", backend="torch"))
    np.testing.assert_array_equal(enc.encode_queries(["a query"]), reference.encode_queries(["a query"]))
    # ... while asking for ONNX by name is still an error naming the way out
    with pytest.raises(OnnxBackendError, match="use --encoder-backend torch"):
        Encoder(EncoderConfig(model=model, device="cpu", backend="onnx-int8"))
    # ... and without onnxruntime the default also runs on torch
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rag.encoder"):
        assert Encoder(EncoderConfig(device="cpu")).config.backend == "torch"
    assert any("onnxruntime" in r.getMessage() for r in caplog.records)


def test_the_onnx_export_is_cached_on_disk_and_reexported_when_damaged(tmp_path, monkeypatch):
    from rag import onnx_cache
    from rag.onnx_backend import OnnxEncoderModel

    # Given an empty cache folder
    monkeypatch.setenv(onnx_cache.CACHE_ENV, str(tmp_path / "cache"))
    first = Encoder(EncoderConfig(device="cpu", backend="onnx-int8"))
    (graph,) = list((tmp_path / "cache").glob("*.onnx"))
    # When the same model loads again, with the export made impossible
    monkeypatch.setattr(OnnxEncoderModel, "_export", lambda *a: pytest.fail("exported again despite the cache"))
    again = Encoder(EncoderConfig(device="cpu", backend="onnx-int8"))
    # Then the cached graph was used: the same vectors, bit for bit
    texts = fixture_texts()[:3]
    np.testing.assert_array_equal(first.encode_passages(texts), again.encode_passages(texts))
    # When the cached file is damaged, the graph is exported again and the file replaced
    monkeypatch.undo()
    monkeypatch.setenv(onnx_cache.CACHE_ENV, str(tmp_path / "cache"))
    graph.write_bytes(b"not an onnx graph")
    repaired = Encoder(EncoderConfig(device="cpu", backend="onnx-int8"))
    np.testing.assert_array_equal(repaired.encode_passages(texts), first.encode_passages(texts))
    assert graph.read_bytes() == first._onnx.graph


def test_the_cache_key_changes_with_the_weights_and_the_quantisation():
    # Given a tiny BERT and its digest
    import torch
    from transformers import BertConfig, BertModel

    from rag.onnx_cache import graph_key, model_digest

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16))
    before = model_digest(model)
    # When one weight changes by the smallest step
    with torch.no_grad():
        w = model.embeddings.word_embeddings.weight
        w[0, 0] = torch.nextafter(w[0, 0], torch.tensor(1.0))
    # Then the digest, hence the file, changes; and int8 and fp32 graphs never share a file
    assert model_digest(model) != before
    keys = {graph_key(before, quantize=q, inputs=("input_ids",), opset=17) for q in (True, False)}
    assert len(keys) == 2
