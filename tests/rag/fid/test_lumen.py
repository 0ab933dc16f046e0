"""LUMEN: all layers live equals FiD; memory is question-agnostic; the store round-trips bit-exactly."""

from __future__ import annotations

import pytest
import torch

from indexes.lumen_store import LumenStore, write_lumen_memory
from indexes.manifest import ChunkingSpec, CorpusInfo, Manifest
from indexes.passage_store import Passage, write_passages
from rag.fid.lumen import LumenEncoder
from rag.fid.inputs import passage_text
from rag.fid.memory import attach_memory, build_lumen_memory, open_lumen_memory
from rag.fid.reader import FiDConfig, FiDReader, answer_labels

CONFIG = FiDConfig(n_passages=3, max_passage_tokens=64)


def _logits(reader: FiDReader, inputs) -> torch.Tensor:
    labels = answer_labels(reader.tokenizer, ["william shakespeare", "in 1927"], max_tokens=8)
    with torch.no_grad():
        return reader.forward(inputs, labels).logits  # (B, T, V)


def test_all_layers_live_equals_fid(tiny):
    # Given: a 3-layer encoder read as FiD and as LUMEN with K = 3 live layers
    model, tokenizer = tiny.model, tiny.tokenizer
    fid = FiDReader(model, tokenizer, CONFIG)
    lumen = FiDReader(model, tokenizer, CONFIG, encoder=LumenEncoder(model, live_layers=3))
    inputs = fid.tokenize(tiny.questions, tiny.passages)
    # When: both score the same answers
    a, b = _logits(fid, inputs), _logits(lumen, inputs)
    # Then: the logits agree to 1e-4 (fp32)
    assert (a - b).abs().max() <= 1e-4


def test_fewer_live_layers_change_the_encoding(tiny):
    # Given: the same model with K = 1 of 3 layers live (2 memory layers)
    model, tokenizer = tiny.model, tiny.tokenizer
    fid = FiDReader(model, tokenizer, CONFIG)
    lumen = FiDReader(model, tokenizer, CONFIG, encoder=LumenEncoder(model, live_layers=1))
    inputs = fid.tokenize(tiny.questions, tiny.passages)
    # When / Then: passages no longer see the question in the first layers, so the outputs differ
    assert (_logits(fid, inputs) - _logits(lumen, inputs)).abs().max() > 1e-3


def test_memory_is_padding_and_question_independent(tiny):
    # Given: K = 1, a passage's memory computed alone and inside a padded batch of another question
    model, tokenizer = tiny.model, tiny.tokenizer
    enc = LumenEncoder(model, live_layers=1)
    reader = FiDReader(model, tokenizer, CONFIG)
    alone = reader.tokenize(["anything else entirely?"], [[tiny.passages[1][0]]])
    batch = reader.tokenize(tiny.questions, tiny.passages)
    # When: the memory layers run over both
    with torch.no_grad():
        m1 = enc.memory(alone.passage_ids[:, 0], alone.passage_mask[:, 0])[0]  # (Lp, d)
        m2 = enc.memory(batch.passage_ids[1], batch.passage_mask[1])[0]
    # Then: the real-token states agree
    n = int(alone.passage_mask[0, 0].sum())
    assert torch.allclose(m1[:n], m2[:n], atol=1e-5)


def test_memory_store_round_trips_bit_exactly(tmp_path):
    # Given: fp16 memory states of three passages of different lengths
    g = torch.Generator().manual_seed(0)
    states = [torch.randn(L, 16, generator=g).half() for L in (5, 1, 9)]
    # When: they are written and read back through the memory-mapped store
    info = write_lumen_memory(tmp_path, states, model="tiny", key="k1", live_layers=1)
    back = LumenStore(tmp_path, info).get([2, 0, 1])
    # Then: every bit is the same, and the record says what was stored
    assert all(torch.equal(a.view(torch.int16), b.view(torch.int16)) for a, b in zip([states[2], states[0], states[1]], back))
    assert (info.kind, info.dtype, info.passages) == ("lumen", "float16", 3)


def test_stored_memory_reproduces_on_the_fly_lumen(tiny, tmp_path):
    # Given: an index of the passages and its LUMEN memory for K = 1, recorded in the manifest
    model, tokenizer = tiny.model, tiny.tokenizer
    texts = tiny.passages[0] + tiny.passages[1]
    write_passages(tmp_path, [Passage(id=str(i), doc_id=str(i), title="", text=t) for i, t in enumerate(texts)])
    Manifest(corpus=CorpusInfo(source="t", sha256="0", documents=5, passages=5, chunking=ChunkingSpec())).write(tmp_path)
    enc = LumenEncoder(model, live_layers=1)
    reader = FiDReader(model, tokenizer, CONFIG, encoder=enc)
    info = build_lumen_memory(tmp_path, reader, enc, model_id="tiny")
    store = open_lumen_memory(tmp_path, info.key)
    # When: questions are read with the stored (fp16) memory and with memory computed on the fly
    inputs = reader.tokenize(tiny.questions, [[passage_text("", t) for t in ps] for ps in tiny.passages])
    stored = _logits(reader, attach_memory(inputs, store, [[0, 1, 2], [3, 4]]))
    fresh = _logits(reader, inputs)
    # Then: they agree up to fp16 rounding of the memory, and the manifest lists the store
    assert (stored - fresh).abs().max() < 2e-2
    assert Manifest.read(tmp_path).caches == (info,)


def test_freezing_memory_layers_keeps_stored_memory_valid(tiny):
    # Given: a trainable copy of the model with K = 1 and its memory layers frozen
    model, tokenizer = tiny.model, tiny.tokenizer
    model = type(model)(model.config).train()
    enc = LumenEncoder(model, live_layers=1)
    enc.freeze_memory_layers()
    reader = FiDReader(model, tokenizer, CONFIG, encoder=enc)
    inputs = reader.tokenize(tiny.questions, tiny.passages)
    before = enc.memory(inputs.passage_ids[0], inputs.passage_mask[0]).detach()
    live_before = model.get_encoder().block[2].layer[1].DenseReluDense.wo.weight.detach().clone()
    # When: one optimizer step is taken
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    reader.forward(inputs, answer_labels(tokenizer, ["a", "b"], 4)).loss.backward()
    opt.step()
    # Then: memory is unchanged while the live layer learned
    assert torch.equal(before, enc.memory(inputs.passage_ids[0], inputs.passage_mask[0]).detach())
    assert not torch.equal(live_before, model.get_encoder().block[2].layer[1].DenseReluDense.wo.weight)


def test_live_layers_out_of_range_is_a_user_error(tiny):
    from indexes.errors import InputError

    # Given: a 3-layer encoder
    model = tiny.model
    # When / Then: asking for 4 live layers names the option and the limit
    with pytest.raises(InputError, match="live-layers 4"):
        LumenEncoder(model, live_layers=4)
