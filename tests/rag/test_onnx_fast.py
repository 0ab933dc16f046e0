"""The torch-free ONNX query path (rag.onnx_fast): same vectors as the torch-loaded ONNX encoder,
found only for an unchanged model folder, refused for pipelines it does not reproduce."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from rag import onnx_cache, onnx_fast  # noqa: E402
from rag.encoder import Encoder, EncoderConfig  # noqa: E402
from rag.models import EMBEDDED_MODEL, resolve_model  # noqa: E402
from rag.onnx_backend import OPSET  # noqa: E402

TEXTS = ["vitamin D deficiency and bone fractures", "Ünïcode  café   naïve TEST", "word " * 400,  # truncated at 256
         "", "  leading and trailing spaces  ", "CO2 → 3.5% [ref]; α-helix β-sheet", "東京の天気"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        folder = tmp_path_factory.mktemp("onnx-cache")
        mp.setenv(onnx_cache.CACHE_ENV, str(folder))
        yield folder


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory) -> Path:
    """The embedded MiniLM folder with its JSON files copied and everything else linked (cheap, editable)."""
    source = resolve_model(EMBEDDED_MODEL, "encoder").path
    out = tmp_path_factory.mktemp("minilm") / "model"
    for path in sorted(source.rglob("*")):
        target = out / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copy2 if path.suffix == ".json" else lambda a, b: Path(b).symlink_to(a))(path, target)
    return out


@pytest.mark.parametrize("backend", ["onnx-int8", "onnx"])
def test_torch_free_vectors_equal_the_torch_loaded_onnx_encoders(cache, backend):
    # Given the ONNX encoder loaded through sentence-transformers (exports the graph and records its entry)
    reference = Encoder(EncoderConfig(device="cpu", backend=backend))
    assert reference._fast is None
    expected_alone = reference.encode_queries(TEXTS)
    expected_batched = reference.encode_queries(TEXTS, alone=False)
    # When the same model is loaded again with the graph cached
    fast = Encoder(EncoderConfig(device="cpu", backend=backend))
    # Then it took the torch-free path, and every vector is the same bits, alone and batched
    assert fast._fast is not None and fast.config.backend == backend
    np.testing.assert_array_equal(fast.encode_queries(TEXTS), expected_alone)
    np.testing.assert_array_equal(fast.encode_queries(TEXTS, alone=False), expected_batched)
    assert fast.dim == reference.dim and fast.spec() == reference.spec()


def test_window_override_is_applied_on_the_torch_free_path(cache):
    # Given a cached graph, and a window of 8 tokens asked for
    from rag.models import load_sentence_transformer
    from rag.onnx_backend import OnnxEncoderModel

    Encoder(EncoderConfig(device="cpu", backend="onnx-int8"))
    st, _ = load_sentence_transformer(EMBEDDED_MODEL, device="cpu")
    st.max_seq_length = 8
    reference = OnnxEncoderModel(st, quantize=True)  # today's torch-loaded path with that window
    # When the torch-free encoder is loaded with the same window
    fast = Encoder(EncoderConfig(device="cpu", backend="onnx-int8", max_seq_length=8))
    # Then it truncates there too: the same bits as the reference, not those of the full window
    long = "the quick brown fox jumps over the lazy dog again and again"
    assert fast._fast is not None and fast.spec().max_seq_length == 8
    np.testing.assert_array_equal(fast.encode_queries([long]), reference.encode([long]))
    assert not np.array_equal(fast.encode_queries([long]), Encoder(EncoderConfig(device="cpu")).encode_queries([long]))


def test_a_changed_model_folder_is_not_found(cache, model_copy):
    # Given a model folder whose entry was recorded
    Encoder(EncoderConfig(model=str(model_copy), device="cpu", backend="onnx-int8"))
    assert onnx_fast.load(model_copy, quantize=True, threads=1, opset=OPSET) is not None
    # When one of its files gets a new modification time, or a file is added
    config = model_copy / "config.json"
    stat = config.stat()
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    # Then the entry is not found (the usual load runs and records a new one)
    assert onnx_fast.load(model_copy, quantize=True, threads=1, opset=OPSET) is None
    assert Encoder(EncoderConfig(model=str(model_copy), device="cpu", backend="onnx-int8"))._fast is None
    assert onnx_fast.load(model_copy, quantize=True, threads=1, opset=OPSET) is not None
    (model_copy / "extra.txt").write_text("x")
    assert onnx_fast.load(model_copy, quantize=True, threads=1, opset=OPSET) is None
    # And a quantisation that was never recorded is not found either
    assert onnx_fast.load(model_copy, quantize=False, threads=1, opset=OPSET) is None


@pytest.mark.parametrize(("pooling", "modules", "st_config", "expected"), [
    ({"pooling_mode_mean_tokens": True}, None, {}, "mean"),
    ({"pooling_mode_cls_token": False, "pooling_mode_max_tokens": True}, None, {}, "max"),
    ({"pooling_mode_mean_tokens": True, "pooling_mode_weightedmean_tokens": True}, None, {}, None),
    ({"pooling_mode_lasttoken": True}, None, {}, None),
    ({"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}, None, {}, None),
    ({"pooling_mode_mean_tokens": True, "include_prompt": False}, None, {}, None),
    ({"pooling_mode_mean_tokens": True}, None, {"do_lower_case": True}, None),
    ({"pooling_mode_mean_tokens": True}, ["Transformer", "Pooling", "Dense", "Normalize"], {}, None),
    ({"pooling_mode_mean_tokens": True}, ["Transformer", "Pooling"], {}, "mean"),
])
def test_only_pipelines_the_onnx_encoder_reproduces_are_accepted(tmp_path, pooling, modules, st_config, expected):
    # Given a sentence-transformers folder's module list, pooling and transformer configuration
    kinds = modules or ["Transformer", "Pooling", "Normalize"]
    paths = {"Transformer": "", "Pooling": "1_Pooling", "Normalize": "2_Normalize", "Dense": "2_Dense"}
    (tmp_path / "modules.json").write_text(json.dumps(
        [{"idx": i, "name": str(i), "path": paths[k], "type": f"sentence_transformers.models.{k}"} for i, k in enumerate(kinds)]))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 384, **pooling}))
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256, **st_config}))
    # When the fast path reads them / Then only Transformer → Pooling(one plain mode) [→ Normalize] passes
    found = onnx_fast._pipeline_pooling(tmp_path)
    assert (found and found[1]) == expected


def test_the_tokenizer_keeps_each_calls_settings_under_threads(cache):
    # Given the torch-free tokenizer, shared by threads that ask for different windows at once
    # (settings are state of a tokenizers.Tokenizer: re-set per call, one thread's could leak into another's)
    import threading

    Encoder(EncoderConfig(device="cpu", backend="onnx-int8"))  # records the entry
    entry = json.loads(next((cache / "fast").glob("*.json")).read_text(encoding="utf-8"))
    tokenizer = onnx_fast.FastTokenizer(entry)
    long = "word " * 300
    expected = {window: tokenizer([long], max_length=window)["input_ids"].shape[1] for window in (8, 64)}
    expected[None] = tokenizer([long], truncation=False)["input_ids"].shape[1]
    seen: dict = {window: set() for window in expected}

    def work(window):
        for _ in range(300):
            out = tokenizer([long], truncation=window is not None, max_length=window)
            seen[window].add(out["input_ids"].shape[1])

    # When they tokenise concurrently
    threads = [threading.Thread(target=work, args=(w,)) for w in (8, 64, None) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then every call got its own window: 8 and 64 tokens with [CLS]/[SEP], the whole text untruncated
    assert expected == {8: 8, 64: 64, None: 302}
    assert seen == {window: {length} for window, length in expected.items()}
