"""Every file of a commit has a sha256 in its manifest: damage is refused with one line naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from indexes.errors import IndexFormatError
from indexes.manifest import Manifest, VectorBackendSpec
from rag.cli import main
from rag.index import open_index
from rag.indexer import IndexOptions, build_index
from tests.rag.live_helpers import HashEncoder

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture(scope="module")
def hnsw_index(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ck") / "idx"
    build_index(FIXTURES / "corpus.jsonl", out, IndexOptions(progress=False, backend=VectorBackendSpec(kind="hnsw")),
                encoder=HashEncoder())
    return out


def _segment(index: Path) -> Path:
    return index / Manifest.read(index).segments[0].name


@pytest.mark.parametrize("name, damage", [
    ("vectors.npy", lambda b: b[:-7] + bytes([b[-7] ^ 0x40]) + b[-6:]),  # one flipped bit inside a float
    ("faiss.index", lambda b: b[:100] + b"\x00" * 8 + b[108:]),
    ("passages.sqlite", lambda b: b[:-1] + bytes([b[-1] ^ 1])),
    ("bm25_postings.npz", lambda b: b[:-30] + bytes([b[-30] ^ 1]) + b[-29:]),
])
def test_a_damaged_file_is_refused_on_open_and_by_rag_check(capsys, tmp_path, hnsw_index, name, damage):
    # Given a copy of the index with one file damaged
    index = Path(shutil.copytree(hnsw_index, tmp_path / "idx"))
    path = _segment(index) / name
    path.write_bytes(damage(path.read_bytes()))
    # When it is opened / checked
    with pytest.raises(IndexFormatError, match=rf"{name}: checksum mismatch"):
        open_index(index, encoder=HashEncoder())
    rc = main(["check", "--index", str(index)])
    err = capsys.readouterr().err
    # Then: one line naming the file
    assert rc == 1 and err.count("\n") == 1 and f"{path}: checksum mismatch" in err


def test_rag_check_passes_an_intact_index_across_commits(capsys, tmp_path, hnsw_index):
    # Given an index with two commits, the older held by a reader
    index = Path(shutil.copytree(hnsw_index, tmp_path / "idx"))
    reader = open_index(index, encoder=HashEncoder())
    from rag.live import delete_documents

    delete_documents(index, ["sky1"])
    # When
    rc = main(["check", "--index", str(index)])
    # Then: the files of both commits were verified
    assert rc == 0 and "commits verified" in capsys.readouterr().out  # the result: stdout
    assert len(list((index / "commits").iterdir())) == 2
    reader.close()


@pytest.mark.parametrize("name", ["vectors.npy", "vector_passages.npy", "faiss.index", "passages.sqlite",
                                  "bm25_postings.npz", "bm25_vocab.json"])
def test_a_deleted_file_is_reported_missing_on_open_and_by_rag_check(capsys, tmp_path, hnsw_index, name):
    # Given a copy of the index with one file of its commit deleted
    index = Path(shutil.copytree(hnsw_index, tmp_path / "idx"))
    path = _segment(index) / name
    path.unlink()
    # When it is opened / checked
    with pytest.raises(IndexFormatError) as opened:
        open_index(index, encoder=HashEncoder())
    rc = main(["check", "--index", str(index)])
    err = capsys.readouterr().err
    # Then: "missing" with the file's path, never a checksum mismatch; one line, exit 1
    assert str(opened.value).startswith(f"{path}: missing") and "checksum" not in str(opened.value)
    assert rc == 1 and err.count("\n") == 1 and f"{path}: missing" in err and "checksum" not in err


def test_a_deleted_tombstone_file_is_reported_missing(capsys, tmp_path, hnsw_index):
    # Given a copy of the index after a delete (a tombstone file), that file then deleted
    from rag.live import delete_documents

    index = Path(shutil.copytree(hnsw_index, tmp_path / "idx"))
    delete_documents(index, ["sky1"])
    rel = next(s.deleted for s in Manifest.read(index).segments if s.deleted)
    (index / rel).unlink()
    # When / Then: opening and `rag check` name it as missing
    with pytest.raises(IndexFormatError, match=rf"{rel}: missing"):
        open_index(index, encoder=HashEncoder())
    assert main(["check", "--index", str(index)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{index / rel}: missing" in err
