"""LUMEN memory follows the documents: after a change, every live row's memory equals a fresh build's."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from indexes.manifest import Manifest
from rag.fid.lumen import LumenEncoder
from rag.fid.memory import build_lumen_memory, open_lumen_memory
from rag.fid.reader import FiDConfig, FiDReader
from rag.indexer import IndexOptions, build_index
from rag.live import add_documents, compact_index, delete_documents
from rag.live_caches import LumenFiller

DOCS = [{"_id": f"d{i}", "text": t} for i, t in enumerate(
    ["Hamlet is a tragedy written by William Shakespeare.", "The play is set in Denmark.", "A short one.",
     "The river flooded in 1927.", "Valleys are low areas between hills, often with a river."])]


def _index(path: Path, docs: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    corpus = path.parent / f"{path.name}.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    build_index(corpus, path, IndexOptions(encoder=None, progress=False))
    return path


def _memory(index: Path, key: str) -> list[torch.Tensor]:
    store = open_lumen_memory(index, key)
    return store.get(range(len(store)))


def test_lumen_memory_follows_deletes_adds_and_compaction(tiny, tmp_path):
    # Given: an index of five passages and its LUMEN memory (K = 1) for the tiny T5
    reader = FiDReader(tiny.model, tiny.tokenizer, FiDConfig(max_passage_tokens=32))
    enc = LumenEncoder(tiny.model, live_layers=1)
    index = _index(tmp_path / "idx", DOCS)
    info = build_lumen_memory(index, reader, enc, model_id="tiny")
    # When: d1 is deleted (rows after it shift up) / Then: each row's memory equals a fresh build's
    # When: d0 is then replaced and d9 added with the model, then the index compacted
    delete_documents(index, ["d1"])
    corpus = [d for d in DOCS if d["_id"] != "d1"]
    fresh = _index(tmp_path / "fresh1" / "idx", corpus)
    build_lumen_memory(fresh, reader, enc, model_id="tiny")
    assert all(torch.equal(a, b) for a, b in zip(_memory(index, info.key), _memory(fresh, info.key), strict=True))
    new = [{"_id": "d0", "text": "Macbeth is another tragedy."}, {"_id": "d9", "text": "Rivers carve valleys."}]
    (tmp_path / "new.jsonl").write_text("".join(json.dumps(d) + "\n" for d in new))
    report = add_documents(index, tmp_path / "new.jsonl", progress=False,
                           fillers=[LumenFiller(reader, enc, "tiny")])
    corpus = [d for d in corpus if d["_id"] != "d0"] + new
    fresh = _index(tmp_path / "fresh2" / "idx", corpus)
    build_lumen_memory(fresh, reader, enc, model_id="tiny")
    # Then: the memory of every row equals the fresh index's row (same passages, same row order)
    assert report.notes == []
    got, want = _memory(index, info.key), _memory(fresh, info.key)
    assert len(got) == len(want) == 5
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    compact_index(index)
    assert all(torch.equal(a, b) for a, b in zip(_memory(index, info.key), want, strict=True))


def test_lumen_memory_is_dropped_when_added_passages_cannot_be_computed(tiny, tmp_path):
    # Given: an index with LUMEN memory
    reader = FiDReader(tiny.model, tiny.tokenizer, FiDConfig(max_passage_tokens=32))
    index = _index(tmp_path / "idx", DOCS)
    build_lumen_memory(index, reader, LumenEncoder(tiny.model, live_layers=1), model_id="tiny")
    # When: a document is added without the reader
    (tmp_path / "new.jsonl").write_text('{"_id": "d9", "text": "Rivers carve valleys."}\n')
    report = add_documents(index, tmp_path / "new.jsonl", progress=False)
    # Then: the store leaves the commit (it cannot hold a gap), and the report names the command that rebuilds it
    assert Manifest.read(index).caches == ()
    assert len(report.notes) == 1 and "rag cache lumen" in report.notes[0]
