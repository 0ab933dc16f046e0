"""Passage KV states follow the documents through ``rag add`` / ``delete`` / ``compact``.

After any change, the states the cached path reads for every live passage equal those of a fresh
``rag cache build`` of a fresh index of the resulting corpus (bit for bit: the same computation
on the same text), deleted and replaced passages' old states are gone, and added passages are
either encoded with the change (a :class:`KVFiller`) or missing until ``rag cache build`` fills
them in.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tests.rag.kv_tiny import CORPUS, tiny_generator

from indexes.manifest import Manifest
from rag.generation.cache_build import build_passage_cache
from rag.generation.passage_cache import CacheConfig, open_passage_states
from rag.index import open_index
from rag.indexer import IndexOptions, build_index
from rag.live import add_documents, compact_index, delete_documents
from rag.live_caches import KVFiller

NEW = [
    {"_id": "sky", "title": "Sky colour", "text": "Air molecules scatter blue light more than red light."},  # replaced
    {"_id": "owls", "title": "Owls", "text": "Owls hunt at night and hear their prey under snow."},  # added
]


def _write(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


def _index(path: Path, docs: list[dict]) -> Path:
    build_index(_write(path.parent / f"{path.name}.jsonl", docs), path, IndexOptions(encoder=None, progress=False))
    return path


def _states(index: Path, gen) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    store = open_passage_states(index, gen, CacheConfig()).store
    return {pid: store.get(pid) for pid in store.ids()}


def _assert_equal_to_fresh(index: Path, corpus: list[dict], tmp: Path, gen) -> None:
    tmp.mkdir()
    fresh = _index(tmp / "fresh", corpus)
    build_passage_cache(fresh, gen, CacheConfig(), progress=False)
    got, want = _states(index, gen), _states(fresh, gen)
    live = open_index(index).store.ids()
    assert sorted(got) == sorted(want) == sorted(live)
    for pid in live:
        assert torch.equal(got[pid][0], want[pid][0]) and torch.equal(got[pid][1], want[pid][1]), pid


def test_kv_states_follow_adds_replacements_deletes_and_compaction(tmp_path):
    # Given: an index of four documents and its KV cache for a tiny random Llama
    gen = tiny_generator("llama", 0)
    index = _index(tmp_path / "idx", CORPUS)
    build_passage_cache(index, gen, CacheConfig(), progress=False)
    before = Manifest.read(index).caches[0].path
    # When: "sky" is replaced and "owls" added (states encoded with the change), then "disk" deleted
    report = add_documents(index, _write(tmp_path / "new.jsonl", NEW), progress=False, fillers=[KVFiller(gen)])
    corpus = [d for d in CORPUS if d["_id"] != "sky"] + NEW
    # Then: every live passage's states equal a fresh build's (the replaced one's are its new text's)
    assert report.notes == [] and Manifest.read(index).caches[0].path != before
    _assert_equal_to_fresh(index, corpus, tmp_path / "a", gen)
    delete_documents(index, ["disk"])
    corpus = [d for d in corpus if d["_id"] != "disk"]
    _assert_equal_to_fresh(index, corpus, tmp_path / "b", gen)
    compact_index(index)
    _assert_equal_to_fresh(index, corpus, tmp_path / "c", gen)
    # And: the first commit's store is gone (no reader holds it)
    assert not (index / before).exists()


def test_without_the_model_added_passages_wait_for_cache_build(tmp_path):
    # Given: an index with its KV cache
    gen = tiny_generator("llama", 0)
    index = _index(tmp_path / "idx", CORPUS)
    build_passage_cache(index, gen, CacheConfig(), progress=False)
    # When: documents are upserted without a filler
    report = add_documents(index, _write(tmp_path / "new.jsonl", NEW), progress=False)
    # Then: the kept passages' states are there, the two new ones are not (encoded at question time), as the report says
    assert sorted(_states(index, gen)) == ["bees", "disk", "vaccine"]
    assert len(report.notes) == 1 and "2 added passages are encoded at question time" in report.notes[0]
    # When: `rag cache build` runs again / Then: it encodes only those two, and the store equals a fresh one
    again = build_passage_cache(index, gen, CacheConfig(), progress=False)
    assert (again.encoded, again.skipped) == (2, 3)
    _assert_equal_to_fresh(index, [d for d in CORPUS if d["_id"] != "sky"] + NEW, tmp_path / "a", gen)


def test_a_reader_of_the_old_commit_keeps_its_states(tmp_path):
    # Given: KV states opened before a change
    gen = tiny_generator("llama", 0)
    index = _index(tmp_path / "idx", CORPUS)
    build_passage_cache(index, gen, CacheConfig(), progress=False)
    held = open_index(index)  # holds the commit (and its cache folder)
    old = _states(index, gen)
    # When: "sky" is replaced
    add_documents(index, _write(tmp_path / "new.jsonl", NEW[:1]), progress=False, fillers=[KVFiller(gen)])
    # Then: the old commit's folder still serves the old text's states; the new commit has the new ones
    info = Manifest.read(index).caches[0]
    assert not torch.equal(_states(index, gen)["sky"][0], old["sky"][0])
    assert (index / "kv" / info.key[:16]).is_dir()
    held.close()


def test_rag_add_loads_the_cache_generator_and_fills_the_new_passages(tmp_path, capsys):
    # Given: an index whose KV cache was built by `rag cache build` with a tiny Llama saved to a folder
    from rag.cli import main
    from tests.rag.kv_tiny import save_tiny_generator

    model = save_tiny_generator(tmp_path / "tiny-llama")
    index = _index(tmp_path / "idx", CORPUS)
    assert main(["cache", "build", "--index", str(index), "--generator", str(model), "--device", "cpu"]) == 0
    # When: `rag add` upserts two documents (the cache's model is loaded from the manifest)
    assert main(["add", "--index", str(index), str(_write(tmp_path / "new.jsonl", NEW)), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    # Then: no note (nothing left to question time), and the states equal a fresh build with that model
    from rag.generation.generator import Generator, GeneratorConfig

    gen = Generator.load(GeneratorConfig(str(model), device="cpu"))
    assert "question time" not in err and "not loaded" not in err
    _assert_equal_to_fresh(index, [d for d in CORPUS if d["_id"] != "sky"] + NEW, tmp_path / "a", gen)
    # And: with --no-cache-models the added passages are left to question time, and the command says so
    assert main(["add", "--index", str(index), str(_write(tmp_path / "more.jsonl", [CORPUS[0] | {"_id": "sky2"}])),
                 "--no-cache-models"]) == 0
    assert "1 added passage is encoded at question time" in capsys.readouterr().err  # singular: one passage


def test_a_cache_build_with_nothing_left_to_encode_writes_no_commit(tmp_path):
    # Given an index whose KV store holds every passage (one build done)
    gen = tiny_generator()
    index = _index(tmp_path / "idx", CORPUS)
    build_passage_cache(index, gen, CacheConfig(), progress=False)
    manifest = (index / "manifest.json").read_bytes()
    commits = sorted(p.name for p in (index / "commits").iterdir())
    # When the build runs again
    report = build_passage_cache(index, gen, CacheConfig(), progress=False)
    # Then nothing was encoded and no commit was published: the manifest is byte for byte the same
    assert report.encoded == 0 and report.skipped == len(CORPUS)
    assert (index / "manifest.json").read_bytes() == manifest
    assert sorted(p.name for p in (index / "commits").iterdir()) == commits
