"""Crash safety of commits: ``kill -9`` at every step of a change leaves the previous or the next
commit, complete and searchable; the next change succeeds and clears the debris. Readers keep
the commit they opened through any number of later commits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.rag.live_helpers import write_corpus

from indexes.commits import FAULT_ENV, SEGMENTS_DIR
from indexes.manifest import Manifest
from rag.index import open_index
from rag.indexer import IndexOptions, build_index
from rag.live import add_documents, compact_index, delete_documents

QUERIES = ["virus vaccine", "blue sky light", "salt ocean storm rain", "gene cell protein"]
OPTS = IndexOptions(encoder=None, progress=False)


def _state(path: Path) -> tuple:
    """Everything a user sees: passage ids and the top-5 BM25 hits of each query."""
    index = open_index(path)
    try:
        runs = tuple(tuple((h.id, round(h.score, 12)) for h in index.retriever("bm25").search(q, 5)) for q in QUERIES)
        return tuple(sorted(index.store.ids())), runs
    finally:
        index.close()


def _setup(tmp: Path) -> Path:
    idx = tmp / "idx"
    build_index(write_corpus(tmp / "a.jsonl", {f"d{i}": 0 for i in range(6)}), idx, OPTS)
    add_documents(idx, write_corpus(tmp / "b.jsonl", {"d1": 1, "d7": 0}), progress=False)
    write_corpus(tmp / "c.jsonl", {"d2": 2, "d8": 0, "d9": 1})
    write_corpus(tmp / "full.jsonl", {f"d{i}": 3 for i in range(4)})
    return idx


def _args(op: str, tmp: Path, idx: Path) -> list[str]:
    return {"add": ["add", str(tmp / "c.jsonl"), "--index", str(idx)],
            "delete": ["delete", "d3", "d7", "--index", str(idx)],
            "compact": ["compact", "--index", str(idx)],
            "index": ["index", str(tmp / "full.jsonl"), "--out", str(idx), "--no-dense"]}[op]


def _run(args: list[str], fault: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], env=env, capture_output=True, text=True, timeout=300)


CASES = [
    ("add", "segment-before-fsync"), ("add", "commit-before-write"), ("add", "commit-before-pointer"),
    ("add", "commit-after-pointer"), ("delete", "tombstones-before-write"), ("delete", "commit-before-pointer"),
    pytest.param("delete", "commit-after-pointer", marks=pytest.mark.slow),
    ("compact", "segment-before-fsync"), pytest.param("compact", "commit-before-pointer", marks=pytest.mark.slow),
    ("index", "commit-before-pointer"), pytest.param("index", "segment-before-fsync", marks=pytest.mark.slow),
    pytest.param("index", "commit-after-pointer", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("op, point", CASES)
def test_kill_9_leaves_the_previous_or_the_next_commit(tmp_path, op, point):
    # Given: an index of two segments, and what it looks like before and after the change
    idx = _setup(tmp_path)
    before = _state(idx)
    shutil.copytree(idx, tmp_path / "ref")
    assert _run(_args(op, tmp_path, tmp_path / "ref")).returncode == 0
    after = _state(tmp_path / "ref")
    assert after != before or op == "compact"
    # When: the change is killed (SIGKILL) at the injected point
    killed = _run(_args(op, tmp_path, idx), fault=point)
    # Then: the process died there, and the index is whole: the previous or the next commit
    assert killed.returncode == -9, killed.stderr
    assert _state(idx) in (before, after)
    # And: the change can be made again; afterwards nothing unreferenced is left behind
    assert _run(_args(op, tmp_path, idx)).returncode == 0
    current = Manifest.read(idx)
    assert _state(idx) == after
    assert sorted(p.name for p in (idx / SEGMENTS_DIR).iterdir()) == sorted(Path(s.name).name for s in current.segments)


def test_a_reader_keeps_its_commit_through_later_commits(tmp_path):
    # Given: a reader opened on the current commit, before any part is loaded
    idx = _setup(tmp_path)
    expected = _state(idx)
    reader = open_index(idx)
    # When: documents are added, deleted, compacted and the index rebuilt in place
    add_documents(idx, tmp_path / "c.jsonl", progress=False)
    delete_documents(idx, ["d0", "d4"])
    compact_index(idx)
    build_index(tmp_path / "full.jsonl", idx, OPTS)
    # Then: it still returns its own commit's results (its files were kept for it) ...
    runs = tuple(tuple((h.id, round(h.score, 12)) for h in reader.retriever("bm25").search(q, 5)) for q in QUERIES)
    assert (tuple(sorted(reader.store.ids())), runs) == expected
    # ... a new reader sees the last commit, and closing the old one lets the next commit collect its files
    assert _state(idx) != expected
    held = {s.name for s in reader.manifest.segments}
    reader.close()
    add_documents(idx, tmp_path / "c.jsonl", progress=False)
    assert not any((idx / name).exists() for name in held)
