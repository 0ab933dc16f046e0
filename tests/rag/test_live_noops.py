"""Changes that change nothing leave the index folder byte-identical; identical upserts are counted
``unchanged`` and never rewritten (as Elasticsearch's ``detect_noop``); ``rag compact`` says what it did."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from indexes.manifest import Manifest
from rag.cli import main
from rag.indexer import IndexOptions, build_index
from rag.live import add_documents, compact_index, delete_documents
from tests.rag.live_helpers import HashEncoder

DOCS = [
    {"_id": "s1", "title": "Blue sky", "text": "the sky is blue because air scatters blue light", "year": 2019,
     "source": "wiki", "open": True},
    {"_id": "s2", "title": "Sunsets", "text": "red sky at sunset light travels through more air", "year": 2012.5,
     "source": "paper", "open": False},
]
ENCODER = HashEncoder()


def run_cli(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _tree(index: Path) -> dict[str, str]:
    """Every file and folder under ``index``: relative path -> sha256 of its bytes ('dir' for a folder)."""
    return {str(p.relative_to(index)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(index.rglob("*"))}


@pytest.fixture
def index(tmp_path, capsys) -> Path:
    """A BM25-only index of DOCS at its first commit."""
    assert main(["index", str(_jsonl(tmp_path / "c.jsonl", DOCS)), "--out", str(tmp_path / "idx"), "--no-dense"]) == 0
    capsys.readouterr()
    return tmp_path / "idx"


def _with_a_tombstone(index: Path, tmp_path: Path, capsys) -> None:
    """Two segments, one passage deleted: ``deletes/`` exists and compacting has work to do."""
    assert main(["add", "--index", str(index), str(_jsonl(tmp_path / "n.jsonl", [{"_id": "n1", "text": "blue ocean"}]))]) == 0
    assert main(["delete", "--index", str(index), "s2"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("history", ["fresh", "tombstoned"])
@pytest.mark.parametrize("op", ["delete-unknown", "add-identical", "compact-simple"])
def test_a_change_that_changes_nothing_leaves_the_folder_byte_identical(capsys, tmp_path, index, op, history):
    # Given an index, fresh (no deletes/ folder) or with a tombstone
    if history == "tombstoned":
        _with_a_tombstone(index, tmp_path, capsys)
        if op == "compact-simple":
            assert main(["compact", "--index", str(index)]) == 0  # now one segment, no tombstones
            capsys.readouterr()
    g, before = Manifest.read(index).generation, _tree(index)
    live = [d for d in DOCS if history == "fresh" or d["_id"] != "s2"]
    # When a no-op runs: unknown ids deleted, the stored documents re-added as they are, a simple index compacted
    args = {"delete-unknown": ("delete", "--index", index, "nope"),
            "add-identical": ("add", "--index", index, _jsonl(tmp_path / "same.jsonl", live)),
            "compact-simple": ("compact", "--index", index)}[op]
    rc, out, _ = run_cli(capsys, *args)
    # Then: success, "no new commit", and not one byte, file or folder of the index changed
    assert rc == 0 and out.endswith(f"; no new commit, the index is still at commit {g}\n"), out
    assert _tree(index) == before


def test_re_adding_identical_documents_counts_them_unchanged_and_writes_no_commit(capsys, tmp_path, index):
    # Given the index of DOCS at commit g
    g = Manifest.read(index).generation
    same = _jsonl(tmp_path / "same.jsonl", DOCS)
    # When the same two documents are added again
    rc, out, err = run_cli(capsys, "add", "--index", index, same)
    # Then: both unchanged, nothing written
    assert rc == 0 and err == ""
    assert out == f"{same}: nothing to change, 2 documents unchanged; no new commit, the index is still at commit {g}\n"


def test_only_the_documents_that_differ_are_rewritten(capsys, tmp_path, index):
    # Given the index of DOCS at commit g (one segment: s1, s2)
    g = Manifest.read(index).generation
    changed = [DOCS[0], {**DOCS[1], "text": "red sky at dusk"}, {"_id": "n1", "text": "blue ocean"}]
    f = _jsonl(tmp_path / "mix.jsonl", changed)
    # When s1 (identical), s2 (new text) and n1 (new) are added
    rc, out, _ = run_cli(capsys, "add", "--index", index, f)
    # Then: 1 added, 1 replaced, 1 unchanged; 2 passages written (s2, n1), 1 tombstoned (old s2); commit g + 1
    assert rc == 0 and out.startswith(
        f"added {f}: 1 added, 1 replaced, 0 deleted documents, 1 unchanged (+2/-1 passages); commit {g + 1}, 2 segments, ")
    m = Manifest.read(index)
    assert [s.passages for s in m.segments] == [2, 2] and m.segments[0].n_deleted == 1  # s1 never rewritten


@pytest.mark.parametrize("change", [{"title": "Blue skies"}, {"open": False}, {"year": 2019.0}, {"source": None},
                                    {"lang": "en"}],
                         ids=["title", "value", "int-vs-float", "null-field", "new-field"])
def test_a_document_differing_only_in_title_or_metadata_is_replaced(capsys, tmp_path, index, change):
    # Given the index of DOCS; s1 holds open=true, year=2019
    g = Manifest.read(index).generation
    f = _jsonl(tmp_path / "one.jsonl", [{**DOCS[0], **change}])
    # When s1 is re-added with its title or one metadata value differing (2019 and 2019.0 are kept
    # apart: the stored JSON differs)
    rc, out, _ = run_cli(capsys, "add", "--index", index, f)
    # Then it is replaced in a new commit, never counted unchanged
    assert rc == 0 and out.startswith(f"added {f}: 0 added, 1 replaced, 0 deleted documents (+1/-1 passages); commit {g + 1}, ")


def _words(text: str) -> int:
    return len(text.split())


def test_compact_says_how_many_segments_it_merged_and_passages_and_vectors_it_purged(tmp_path):
    # Given a dense+BM25 index of 2 documents, 2 single-document upserts (3 segments) and one deletion
    base = [{"_id": "a", "text": "virus vaccine gene cell protein storm rain sky blue light ocean salt virus"},  # 13 words
            {"_id": "b", "text": "sky blue light"}]
    build_index(_jsonl(tmp_path / "base.jsonl", base), tmp_path / "idx", IndexOptions(progress=False), encoder=ENCODER)
    index = tmp_path / "idx"
    for d in ("c", "d"):
        add_documents(index, _jsonl(tmp_path / f"{d}.jsonl", [{"_id": d, "text": "salt ocean"}]), encoder=ENCODER,
                      progress=False)
    delete_documents(index, ["a"])  # 1 passage of 13 words: HashEncoder's 2 windows (more than 12 words)
    g = Manifest.read(index).generation
    size_before = sum(p.stat().st_size for p in index.rglob("*") if p.is_file())
    # When it is compacted
    report = compact_index(index)
    size_after = sum(p.stat().st_size for p in index.rglob("*") if p.is_file())
    # Then: 3 segments merged into 1, 1 deleted passage purged with its 2 vector rows, the folder's sizes
    assert (report.segments_merged, report.passages_purged, report.vectors_purged) == (3, 1, 2)
    assert (report.bytes_before, report.bytes_after) == (size_before, size_after) and size_after < size_before
    line = report.summary(f"compacted {index}")
    assert line.startswith(f"compacted {index}: merged 3 segments into 1, purged 1 deleted passage (2 vector rows), folder ")
    assert f"; commit {g + 1}, 1 segment, " in line
    # and the report says nothing of documents it did not add, replace or delete
    assert "added" not in line and "replaced" not in line


def test_rag_compact_summary_of_a_bm25_index(capsys, tmp_path, index):
    # Given the BM25 index with 2 segments and s2 deleted (commit g)
    _with_a_tombstone(index, tmp_path, capsys)
    g = Manifest.read(index).generation
    # When rag compact runs
    rc, out, _ = run_cli(capsys, "compact", "--index", index)
    # Then: 2 segments merged, 1 passage purged, no vector rows mentioned (no dense part)
    assert rc == 0 and out.startswith(f"compacted {index}: merged 2 segments into 1, purged 1 deleted passage, folder ")
    assert f"; commit {g + 1}, 1 segment, " in out and "vector" not in out


def test_a_second_cache_build_that_finds_every_passage_stored_changes_no_byte(tmp_path):
    # Given an index with a KV cache of every passage (tiny random-weight generator)
    from rag.generation.cache_build import build_passage_cache
    from rag.generation.passage_cache import CacheConfig
    from tests.rag.kv_tiny import tiny_generator, write_corpus

    build_index(write_corpus(tmp_path / "corpus.jsonl"), tmp_path / "index", IndexOptions(encoder=None, progress=False))
    index, gen, config = tmp_path / "index", tiny_generator("llama"), CacheConfig(dtype="float32")
    build_passage_cache(index, gen, config, progress=False)
    before = _tree(index)
    # When the cache is built again
    report = build_passage_cache(index, gen, config, progress=False)
    # Then nothing is encoded and not one byte, file or folder of the index changed
    assert report.encoded == 0 and _tree(index) == before
