"""FiDAnswerer and `rag cache lumen`: stored LUMEN memory read through an index gives the on-the-fly answer."""

from __future__ import annotations

import dataclasses

import torch

from indexes.manifest import ChunkingSpec, CorpusInfo, Manifest
from indexes.passage_store import Passage, write_passages
from rag.fid.answer import FiDAnswerer
from rag.fid.lumen import LumenEncoder
from rag.fid.reader import FiDConfig, FiDReader
from rag.types import Hit

CONFIG = FiDConfig(n_passages=3, max_passage_tokens=32, max_new_tokens=5)


def _index_and_model(tiny, tmp_path):
    texts = tiny.passages[0]
    (tmp_path / "idx").mkdir()
    write_passages(tmp_path / "idx", [Passage(id=f"p{i}", doc_id=f"d{i}", title="T", text=t) for i, t in enumerate(texts)])
    Manifest(corpus=CorpusInfo(source="t", sha256="0", documents=3, passages=3, chunking=ChunkingSpec())).write(tmp_path / "idx")
    tiny.model.save_pretrained(tmp_path / "m")
    tiny.tokenizer.save_pretrained(tmp_path / "m")
    return [Hit(id=f"p{i}", doc_id=f"d{i}", score=1.0, title="T", text=t) for i, t in enumerate(texts)]


def test_lumen_answer_from_index_equals_on_the_fly_fp16_memory(tiny, tmp_path):
    from rag.cli import main
    import rag.cli.lumen  # noqa: F401  (registers `rag cache lumen`)

    # Given: an index of three passages whose K = 1 memory was built by `rag cache lumen`
    hits = _index_and_model(tiny, tmp_path)
    assert main(["cache", "lumen", "-g", str(tmp_path / "m"), "-K", "1", "-i", str(tmp_path / "idx"),
                 "--max-passage-tokens", "32"]) == 0
    # When: the answerer reads the stored memory, and a reader computes the same memory in fp16 itself
    stored = FiDAnswerer.load(tmp_path / "m", tmp_path / "idx", CONFIG, live_layers=1)
    enc = LumenEncoder(tiny.model, live_layers=1)
    reader = FiDReader(tiny.model, tiny.tokenizer, CONFIG, encoder=enc)
    inputs = reader.tokenize([tiny.questions[0]], [[f"title: T context: {h.text}" for h in hits]])
    B, N, Lp = inputs.passage_ids.shape
    with torch.no_grad():
        mem = enc.memory(inputs.passage_ids.reshape(B * N, Lp), inputs.passage_mask.reshape(B * N, Lp)).half()
    expected = reader.generate(dataclasses.replace(inputs, memory=mem.reshape(B, N, Lp, -1)))[0]
    # Then: the stored memory is bit-identical on real tokens, and the answers are the same tokens
    from rag.fid.memory import attach_memory

    read = attach_memory(inputs, stored.memory, [[0, 1, 2]]).memory.reshape(B * N, Lp, -1)
    real = inputs.passage_mask.reshape(B * N, Lp)
    assert torch.equal(read[real], mem[real]), (read[real].float() - mem[real].float()).abs().max()
    got = stored.answer(tiny.questions[0], hits)
    assert got == tiny.tokenizer.decode(expected, skip_special_tokens=True).strip()


def test_plain_fid_answerer_needs_no_memory(tiny, tmp_path):
    # Given: a saved tiny model and hits
    hits = _index_and_model(tiny, tmp_path)
    # When: it answers without --live-layers
    fid = FiDAnswerer.load(tmp_path / "m", None, CONFIG)
    # Then: it is the plain FiD reader's greedy answer
    assert fid.answer(tiny.questions[0], hits) == FiDReader(tiny.model, tiny.tokenizer, CONFIG).answer(
        [tiny.questions[0]], [[f"title: T context: {h.text}" for h in hits]])[0]


def test_memory_of_a_retrained_model_is_refused(tiny, tmp_path):
    import pytest

    from indexes.errors import IndexFormatError
    from rag.fid.lumen import LumenEncoder as Enc
    from rag.fid.memory import build_lumen_memory
    from rag.models import model_revision

    # Given: memory built for the saved model, which is then retrained in place (one weight changed)
    _index_and_model(tiny, tmp_path)
    reader = FiDReader(tiny.model, tiny.tokenizer, CONFIG)
    build_lumen_memory(tmp_path / "idx", reader, Enc(tiny.model, 1), model_id=str(tmp_path / "m"),
                       revision=model_revision(tmp_path / "m"))
    retrained = type(tiny.model)(tiny.model.config)
    retrained.load_state_dict(tiny.model.state_dict())
    with torch.no_grad():
        retrained.lm_head.weight[0, 0] += 1.0
    retrained.save_pretrained(tmp_path / "m")
    # When / Then: loading LUMEN for it names the command that rebuilds the memory
    with pytest.raises(IndexFormatError, match="rag cache lumen"):
        FiDAnswerer.load(tmp_path / "m", tmp_path / "idx", CONFIG, live_layers=1)


def test_memory_keyed_by_an_older_version_still_opens(tiny, tmp_path):
    from rag.fid.lumen import LumenEncoder as Enc
    from rag.fid.memory import build_lumen_memory, legacy_revision

    # Given: memory recorded under the revision older versions computed (the weight files'
    # names, sizes and mtimes) for the unchanged saved model
    hits = _index_and_model(tiny, tmp_path)
    reader = FiDReader(tiny.model, tiny.tokenizer, CONFIG)
    old = legacy_revision(tmp_path / "m")
    build_lumen_memory(tmp_path / "idx", reader, Enc(tiny.model, 1), model_id=str(tmp_path / "m"), revision=old)
    assert [c.revision for c in Manifest.read(tmp_path / "idx").caches] == [old]
    # When: the answerer loads LUMEN memory for the model
    stored = FiDAnswerer.load(tmp_path / "m", tmp_path / "idx", CONFIG, live_layers=1)
    # Then: it reads that store, and answers as the store built today does
    assert stored.memory is not None
    build_lumen_memory(tmp_path / "idx", reader, Enc(tiny.model, 1), model_id=str(tmp_path / "m"))
    today = FiDAnswerer.load(tmp_path / "m", tmp_path / "idx", CONFIG, live_layers=1)
    assert today.memory.info.revision.startswith("sha256:")
    assert stored.answer(tiny.questions[0], hits) == today.answer(tiny.questions[0], hits)
