"""Full disks, read-only folders and damaged index files: one line naming the file and what to do.

Tests run as root, which ignores file modes, so refusals are injected as the real ``OSError``
(``errno.ENOSPC``/``EROFS``/``EACCES``) from the ``os`` call that would raise it, and a full SQLite
database is made real with ``PRAGMA max_page_count``.
"""

from __future__ import annotations

import errno
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from indexes.errors import IndexFormatError, StorageError
from rag.cli import main
from rag.indexer import IndexOptions, build_index

FIXTURES = Path(__file__).parents[1] / "fixtures"


def run_cli(capsys, *args) -> tuple[int, str]:
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rag: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def lexical(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lex") / "lexical"
    build_index(FIXTURES / "corpus.jsonl", out, IndexOptions(progress=False, encoder=None))
    return out


def as_format_1(index: Path) -> Path:
    """Lay a one-segment index out as format 1 did (its files at the root, no commits, no checksums):
    these tests damage the files a loader reads; on format 2 the checksums refuse them first
    (tests/indexes/test_checksums.py)."""
    import json as _json

    manifest = _json.loads((index / "manifest.json").read_text())
    (segment,) = manifest.pop("segments")
    for f in (index / segment["name"]).iterdir():
        f.rename(index / f.name)
    shutil.rmtree(index / "segments")
    shutil.rmtree(index / "commits")
    manifest.update(format_version=1, generation=0)
    (index / "manifest.json").write_text(_json.dumps(manifest))
    return index


@pytest.fixture()
def copy_of(tmp_path):
    def copy(index: Path) -> Path:
        return as_format_1(Path(shutil.copytree(index, tmp_path / index.name)))
    return copy


def refuse(monkeypatch, module, name: str, code: int) -> None:
    """Make ``module.name`` (an ``os`` function) raise the real OSError for ``code``."""
    def fail(*args, **kwargs):
        raise OSError(code, __import__("os").strerror(code), str(args[0]) if args else None)
    monkeypatch.setattr(module, name, fail)


# --- writes -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "why"), [(errno.EROFS, "read-only"), (errno.EACCES, "permission denied"),
                                           (errno.ENOSPC, "no space left")])
def test_build_into_a_refusing_folder_is_one_line_and_exit_1(capsys, monkeypatch, tmp_path, code, why):
    # Given a parent folder where creating the build directory fails as a read-only / denied / full one does
    import indexes.atomic

    refuse(monkeypatch, indexes.atomic.os, "mkdir", code)
    out = tmp_path / "idx"
    # When
    rc, err = run_cli(capsys, "index", FIXTURES / "corpus.jsonl", "--out", out, "--no-dense")
    # Then one line names the folder, the reason and what to do; nothing was left behind
    line = one_line_error(err)
    assert rc == 1 and str(tmp_path) in line and why in line and ("choose" in line or "free space" in line)
    assert not out.exists()


def test_disk_full_while_writing_a_file_keeps_the_old_one(monkeypatch, tmp_path):
    # Given a file and a disk that fills up during the rewrite (the error surfaces at fsync)
    import indexes.atomic
    from indexes.atomic import atomic_write_text

    atomic_write_text(tmp_path / "manifest.json", "old")
    refuse(monkeypatch, indexes.atomic.os, "fsync", errno.ENOSPC)
    # When / Then: a StorageError names the file; the old content and no temporary file remain
    with pytest.raises(StorageError, match=r"cannot write .*manifest\.json: no space left on the device; free space"):
        atomic_write_text(tmp_path / "manifest.json", "new")
    assert (tmp_path / "manifest.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_sqlite_database_or_disk_is_full_names_the_store(monkeypatch, capsys, lexical, tmp_path):
    # Given SQLite refusing to grow the passage store past 2 pages: its real SQLITE_FULL error
    import indexes.passage_store as ps

    connect = sqlite3.connect

    def tiny(*args, **kwargs):
        con = connect(*args, **kwargs)
        con.execute("PRAGMA max_page_count = 2")
        return con

    monkeypatch.setattr(ps.sqlite3, "connect", tiny)
    # When the index is rebuilt
    current = lexical / "segments" / "s000001" / "passages.sqlite"  # format 2: the store lives in a segment
    before = current.read_bytes()
    rc, err = run_cli(capsys, "index", FIXTURES / "corpus.jsonl", "--out", lexical, "--no-dense")
    # Then the message names the store at its final place (not the temporary build folder)
    line = one_line_error(err)
    assert rc == 1 and f"{lexical / 'segments' / 's000002' / 'passages.sqlite'}: no space left" in line and "database or disk is full" in line
    assert ".tmp-" not in line and current.read_bytes() == before
    assert not [p for p in lexical.parent.iterdir() if ".tmp-" in p.name]


def test_safetensors_writes_check_space_and_read_back(monkeypatch, tmp_path):
    # Given a disk with 10 bytes free
    import torch

    import indexes.io_errors as io_errors

    monkeypatch.setattr("shutil.disk_usage", lambda p: shutil._ntuple_diskusage(100, 90, 10))
    # When / Then
    with pytest.raises(StorageError, match=r"shard\.safetensors: no space left .*400 bytes needed, 10 free"):
        io_errors.save_safetensors({"k": torch.zeros(100)}, tmp_path / "shard.safetensors")


def test_safetensors_short_file_is_a_storage_error(monkeypatch, tmp_path):
    # Given a writer whose output comes back truncated (safetensors drops its final flush error)
    import safetensors.torch
    import torch

    from indexes.io_errors import save_safetensors

    real = safetensors.torch.save_file

    def truncating(tensors, path, metadata=None):
        real(tensors, path, metadata=metadata)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[:-64])

    monkeypatch.setattr(safetensors.torch, "save_file", truncating)
    # When / Then
    with pytest.raises(StorageError, match="came back incomplete"):
        save_safetensors({"k": torch.zeros(100)}, tmp_path / "m.safetensors")


# --- reads --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "content", "expected"), [
    ("passages.sqlite", b"this is not a database" * 200, "damaged SQLite file"),
    ("passages.sqlite", b"", "damaged SQLite file (no such table: passages)"),  # an empty file is an empty database
    ("bm25_postings.npz", b"PK\x03\x04 garbage", "damaged BM25 postings (BadZipFile"),
    ("bm25_postings.npz", b"", "damaged BM25 postings (EOFError"),
    ("bm25_vocab.json", b'["a", ', "damaged BM25 vocabulary"),
])
def test_damaged_index_files_are_one_line_and_exit_1(capsys, copy_of, lexical, name, content, expected):
    # Given an index with one damaged file
    index = copy_of(lexical)
    (index / name).write_bytes(content)
    # When it is searched
    rc, err = run_cli(capsys, "search", "--index", index, "--mode", "bm25", "sky")
    # Then exit 1 (never 130 "aborted"), one line naming the file and saying to rebuild
    line = one_line_error(err)
    assert rc == 1 and expected in line and "rebuild" in line
    assert name in line or "passages.sqlite" in line


def test_bit_flip_inside_the_postings_is_caught(copy_of, lexical):
    # Given a postings archive with one byte changed inside an array (the zip CRC no longer matches)
    from rag.index import open_index

    index = copy_of(lexical)
    raw = bytearray((index / "bm25_postings.npz").read_bytes())
    raw[200] ^= 0xFF
    (index / "bm25_postings.npz").write_bytes(bytes(raw))
    # When / Then
    with pytest.raises(IndexFormatError, match=r"bm25_postings\.npz: damaged BM25 postings .*rebuild"):
        open_index(index).bm25


def test_postings_that_disagree_with_the_vocabulary(copy_of, lexical):
    from rag.index import open_index

    index = copy_of(lexical)
    vocab = json.loads((index / "bm25_vocab.json").read_text())
    (index / "bm25_vocab.json").write_text(json.dumps(vocab[:-1]))
    with pytest.raises(IndexFormatError, match="BM25 vocabulary and postings disagree"):
        open_index(index).bm25


def test_invalid_token_pattern_in_the_manifest(capsys, copy_of, lexical):
    # Given a manifest edited by hand to an invalid regular expression
    index = copy_of(lexical)
    manifest = json.loads((index / "manifest.json").read_text())
    manifest["bm25"]["analyzer"]["token_pattern"] = r"(?u)\b\w\w+\b("
    (index / "manifest.json").write_text(json.dumps(manifest))
    # When
    rc, err = run_cli(capsys, "search", "--index", index, "--mode", "bm25", "sky")
    # Then
    line = one_line_error(err)
    assert rc == 1 and "manifest.json: invalid manifest field 'bm25.analyzer.token_pattern'" in line and "not a valid regular expression" in line


@pytest.mark.parametrize("content", [b"", b"\x93NUMPY garbage", None])
def test_damaged_dense_vectors(capsys, copy_of, sample_index, content):
    # Given an index whose vectors.npy is empty, damaged, or of the wrong shape
    index = copy_of(sample_index)
    if content is None:
        np.save(index / "vectors.npy", np.zeros(5, np.float32))
    else:
        (index / "vectors.npy").write_bytes(content)
    # When a dense search runs
    rc, err = run_cli(capsys, "search", "--index", index, "--mode", "dense", "sky")
    # Then
    line = one_line_error(err)
    assert rc == 1 and "vectors.npy" in line and "rebuild" in line


def test_damaged_faiss_index(tmp_path):
    # Given an hnsw index whose faiss.index is damaged
    from indexes.dense_store import DenseStore, write_vectors
    from indexes.manifest import FaissSpec

    write_vectors(tmp_path, np.eye(4, dtype=np.float32))
    (tmp_path / "faiss.index").write_bytes(b"IHNf" + b"\x00" * 40)
    # When / Then
    with pytest.raises(IndexFormatError, match=r"faiss\.index: damaged FAISS index .*rebuild"):
        DenseStore(tmp_path, FaissSpec(kind="hnsw"), use_gpu=False)
    (tmp_path / "faiss.index").unlink()
    with pytest.raises(IndexFormatError, match=r"faiss\.index: missing FAISS index"):
        DenseStore(tmp_path, FaissSpec(kind="hnsw"), use_gpu=False)


def test_damaged_kv_prefix_and_lumen_memory(tmp_path):
    # Given a KV store whose prefix is damaged, and a LUMEN memory file that is empty
    import torch

    from indexes.kv_store import PREFIX_NAME, KVStore, KVStoreSpec, KVStoreWriter
    from indexes.lumen_store import MEMORY_NAME, LumenStore, write_lumen_memory

    spec = KVStoreSpec(model="m", key="k", layers=1, kv_heads=1, head_dim=2, see_prefix=False, template_sha256="t")
    writer = KVStoreWriter(tmp_path / "kv", spec)
    writer.put_prefix(torch.zeros(1, 1, 3, 2), torch.zeros(1, 1, 3, 2))
    (tmp_path / "kv" / PREFIX_NAME).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    info = write_lumen_memory(tmp_path, [torch.ones(3, 4)], model="t5", key="abc", live_layers=2)
    (tmp_path / info.path / MEMORY_NAME).write_bytes(b"")
    # When / Then
    with pytest.raises(IndexFormatError, match=r"prefix\.safetensors: unreadable KV prefix"):
        KVStore(tmp_path / "kv").prefix()
    with pytest.raises(IndexFormatError, match=r"memory\.safetensors: LUMEN memory unreadable"):
        LumenStore(tmp_path, info)


def test_unexpected_eof_is_not_reported_as_aborted(capsys, monkeypatch):
    # Given a command that meets an EOFError from some reader (click turns those into Abort)
    import rag.cli.search as search

    def eof(*args, **kwargs):
        raise EOFError("No data left in file")

    monkeypatch.setattr(search, "open_index", eof, raising=False)
    monkeypatch.setattr("rag.index.open_index", eof)
    # When
    rc, err = run_cli(capsys, "search", "--index", FIXTURES, "sky")
    # Then an error with exit 1, not "rag: aborted" with 130
    assert rc == 1 and "empty or truncated" in one_line_error(err)


@pytest.mark.parametrize(("content", "expected"), [(b"", "damaged manifest"), (b'{"format_version": 1, "corpus": 3}',
                                                                              "invalid manifest field 'corpus'")])
def test_damaged_manifest(capsys, copy_of, lexical, content, expected):
    # Given an index whose manifest.json is empty or has a wrong field
    index = copy_of(lexical)
    (index / "manifest.json").write_bytes(content)
    # When / Then
    rc, err = run_cli(capsys, "search", "--index", index, "--mode", "bm25", "sky")
    line = one_line_error(err)
    assert rc == 1 and "manifest.json" in line and expected in line and "rebuild the index" in line


def test_unreadable_manifest_is_a_storage_error(monkeypatch, lexical):
    # Given a manifest the file system refuses to read
    from indexes.manifest import Manifest

    def denied(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    # When / Then
    with pytest.raises(StorageError, match=r"cannot read .*manifest\.json: permission denied"):
        Manifest.read(lexical)


def test_any_refused_write_of_a_command_is_one_line(capsys, lexical, tmp_path):
    # Given a run file path whose folder is a regular file (a real ENOTDIR from the OS)
    (tmp_path / "file").write_text("x")
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"_id": "q1", "text": "sky"}\n')
    # When a batch search writes its run there
    rc, err = run_cli(capsys, "search", "--index", lexical, "--mode", "bm25", "--queries", queries,
                      "--run", tmp_path / "file" / "run.trec")
    # Then one line (after the progress bar) names the file, not its temporary twin, and the reason; exit 1
    line = one_line_error(err.strip().splitlines()[-1])
    assert rc == 1 and f"{tmp_path / 'file' / 'run.trec'}: Not a directory" in line and "Traceback" not in err


@pytest.fixture()
def small_tmpfs(tmp_path):
    """A 64 KiB tmpfs (real ENOSPC, and EROFS after a read-only remount); skipped where mounting is not allowed."""
    import subprocess

    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                                                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_really_full_and_a_really_read_only_file_system(capsys, small_tmpfs, tmp_path):
    # Given a corpus of ~600 KB and a 64 KiB file system
    import subprocess

    corpus = tmp_path / "big.jsonl"
    corpus.write_text("".join(json.dumps({"_id": f"d{i}", "text": f"passage {i} " + "lorem ipsum dolor " * 40}) + "\n"
                              for i in range(800)))
    # When it is indexed there, Then SQLite's real "database or disk is full" is one line, nothing is left
    rc, err = run_cli(capsys, "index", corpus, "--out", small_tmpfs / "idx", "--no-dense")
    line = one_line_error(err.strip().splitlines()[-1])
    assert rc == 1 and f"{small_tmpfs / 'idx' / 'segments' / 's000001' / 'passages.sqlite'}: no space left" in line
    assert [p.name for p in small_tmpfs.iterdir()] == [".idx.lock"]
    # When the file system is remounted read-only (root cannot write there either)
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    rc, err = run_cli(capsys, "index", FIXTURES / "corpus.jsonl", "--out", small_tmpfs / "other", "--no-dense")
    # Then
    line = one_line_error(err.strip().splitlines()[-1])
    assert rc == 1 and "the file system is read-only" in line and str(small_tmpfs) in line
