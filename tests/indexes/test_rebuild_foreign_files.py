"""A rebuild never deletes files it did not create (a user's notes, a sub-folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexes.atomic import atomic_directory
from indexes.errors import InputError
from rag.cli import main
from rag.indexer import IndexOptions, build_index

FIXTURES = Path(__file__).parents[1] / "fixtures"
BM25_ONLY = IndexOptions(progress=False, encoder=None)


def test_rebuild_refuses_a_folder_holding_user_files_and_keeps_them(capsys, tmp_path):
    # Given an index folder where the user also keeps notes.txt and a sub-folder
    out = tmp_path / "idx"
    build_index(FIXTURES / "corpus.jsonl", out, BM25_ONLY)
    (out / "notes.txt").write_text("my notes")
    (out / "runs").mkdir()
    (out / "runs" / "bm25.trec").write_text("q1 Q0 d1 1 1.0 x\n")
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    # When it is rebuilt
    rc = main(["index", str(FIXTURES / "corpus.jsonl"), "--out", str(out), "--no-dense"])
    err = capsys.readouterr().err
    # Then the build is refused with one line naming the foreign entries, and nothing was touched
    assert rc == 1 and err.count("\n") == 1 and "notes.txt, runs/" in err and "move them out" in err
    assert (out / "notes.txt").read_text() == "my notes" and (out / "runs" / "bm25.trec").is_file()
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_rebuild_replaces_the_index_own_files_and_caches(tmp_path):
    # Given an index holding only its own files, an old FAISS file, a cache folder and SQLite side files
    out = tmp_path / "idx"
    build_index(FIXTURES / "corpus.jsonl", out, BM25_ONLY)
    for name in ("faiss.index", "vectors.npy", "passages.sqlite-journal"):
        (out / name).write_bytes(b"old")
    (out / "kv" / "0123456789abcdef").mkdir(parents=True)
    (out / "lumen-abc").mkdir()
    # When it is rebuilt
    build_index(FIXTURES / "corpus.jsonl", out, BM25_ONLY)
    # Then exactly the new build's files remain (stale parts of the old index are gone): its commit and segment
    assert sorted(p.name for p in out.iterdir()) == ["commits", "manifest.json", "segments"]
    assert sorted(p.name for p in (out / "segments").iterdir()) == ["s000002"]
    assert sorted(p.name for p in (out / "segments" / "s000002").iterdir()) == ["bm25_postings.npz", "bm25_vocab.json", "passages.sqlite"]


def test_a_file_appearing_during_the_build_is_not_deleted(tmp_path):
    # Given an index, and a foreign file created while the rebuild is running
    out = tmp_path / "idx"
    build_index(FIXTURES / "corpus.jsonl", out, BM25_ONLY)
    owned = {"manifest.json", "passages.sqlite"}
    # When the build reaches its swap
    with pytest.raises(InputError, match=r"late\.txt"):
        with atomic_directory(out, owned=owned.__contains__) as tmp:
            (tmp / "manifest.json").write_text("{}")
            (out / "late.txt").write_text("written meanwhile")
    # Then the old index and the new file are both there, and no temporary folder is left
    assert (out / "late.txt").is_file() and (out / "segments" / "s000001" / "bm25_vocab.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".idx.lock", "idx"]


def test_a_non_index_folder_is_still_refused(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    with pytest.raises(InputError, match="is not an index"):
        build_index(FIXTURES / "corpus.jsonl", tmp_path / "docs", BM25_ONLY)


@pytest.mark.parametrize("command", ["retriever", "query-encoder"])
def test_training_into_a_folder_of_other_files_is_refused_before_training(capsys, tmp_path, sample_index, command):
    # Given an --out folder holding the user's files (no record of an earlier run of this command)
    out = tmp_path / "models"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = {"retriever": ["train", "retriever", "--out", str(out), "--corpus", str(FIXTURES / "corpus.jsonl"),
                          "--queries", str(FIXTURES / "queries.jsonl"), "--qrels", str(FIXTURES / "qrels.tsv")],
            "query-encoder": ["train", "query-encoder", "--index", str(sample_index), "--out", str(out)]}[command]
    # When
    rc = main(args)
    err = capsys.readouterr().err
    # Then it stops at once with one line, and the folder is untouched
    assert rc == 1 and "was not written by this command" in err and str(out) in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
