"""Passage encoding through ONNX Runtime at index time: the PyTorch build's vectors, in one
process or several, and the backend recorded in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from indexes.manifest import Manifest  # noqa: E402
from rag.cli import main  # noqa: E402
from rag.encoder import Encoder, EncoderConfig, passage_text  # noqa: E402

FIXTURES = Path(__file__).parents[1] / "fixtures"


def fixture_passages() -> list[str]:
    rows = [json.loads(line) for line in (FIXTURES / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [passage_text(r.get("title", ""), r["text"]) for r in rows]
    # one passage longer than MiniLM's 256 pieces, so windows are encoded too
    return texts + [" ".join(texts)]


@pytest.fixture(scope="module")
def onnx_encoder():
    return Encoder(EncoderConfig(device="cpu", backend="onnx", onnx_threads=2))


def test_onnx_passage_windows_equal_the_torch_build(encoder, onnx_encoder):
    # Given the PyTorch encoder's window vectors of the fixture corpus (with one long passage)
    texts = fixture_passages()
    reference, owner = encoder.encode_passage_windows(texts, overlap=64)
    # When the ONNX fp32 backend encodes the same passages
    vectors, owner_onnx = onnx_encoder.encode_passage_windows(texts, overlap=64)
    # Then the same windows and the same vectors to 1e-5
    assert owner.max() == len(texts) - 1 and owner.size > len(texts)
    np.testing.assert_array_equal(owner_onnx, owner)
    assert vectors.dtype == np.float32 and vectors.shape == reference.shape
    assert np.abs(vectors - reference).max() <= 1e-5


def test_worker_processes_give_the_single_process_vectors(onnx_encoder):
    # Given the vectors of one process
    texts = fixture_passages()
    single = onnx_encoder.encode_passages(texts)
    # When two worker processes encode the same passages in batches of 3
    pooled = Encoder(EncoderConfig(device="cpu", backend="onnx", workers=2, batch_size=3))
    vectors = pooled.encode_passages(texts)
    # Then every row is the same vector (equal-length batches: no padding, any worker)
    assert np.abs(vectors - single).max() <= 1e-6


def test_index_records_the_passage_backend(tmp_path, capsys):
    # Given / When an index built with the ONNX int8 backend in two processes
    out = tmp_path / "idx"
    rc = main(["index", str(FIXTURES / "corpus.jsonl"), "--out", str(out), "--encoder-backend", "onnx-int8",
               "--encoder-workers", "2"])
    # Then the manifest says so, and dense search works
    assert rc == 0
    assert Manifest.read(out).dense.passage_backend == "onnx-int8"
    capsys.readouterr()
    assert main(["search", "--index", str(out), "--mode", "dense", "-k", "1", "--json", "why is the sky blue"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"][0]["id"] == "sky1"


def test_workers_without_an_onnx_backend_are_refused(tmp_path, capsys):
    # When worker processes are asked for with the torch backend (the default, auto, runs ONNX on a CPU)
    rc = main(["index", str(FIXTURES / "corpus.jsonl"), "--out", str(tmp_path / "x"), "--encoder-workers", "2",
               "--encoder-backend", "torch"])
    # Then one line naming the option, nothing built
    assert rc == 1
    assert "--encoder-workers needs --encoder-backend onnx" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("quantize", [True, False])
def test_texts_run_side_by_side_give_the_one_thread_vectors(encoder, quantize):
    # Given the fixture windows encoded on one thread, one group after another
    from rag.onnx_backend import OnnxEncoderModel

    windows = [w for t in fixture_passages() for w in encoder.passage_windows(t, overlap=64)]
    serial = OnnxEncoderModel(encoder.model, quantize=quantize, threads=1).encode(windows, batch_size=4)
    # When two threads run groups side by side (each on a one-thread session)
    model = OnnxEncoderModel(encoder.model, quantize=quantize, threads=2)
    parallel = model.encode(windows, batch_size=4)
    # Then every vector is the same bits, in the input order
    assert model._single is not None
    np.testing.assert_array_equal(parallel, serial)
