"""Commits: numbered manifest generations over immutable segments, published by one atomic rename.

Layout of an index directory (format 2)::

    manifest.json              the current commit (the pointer: replaced by one atomic rename)
    commits/0000000007.json    commit 7, the same text; readers hold a shared lock on it
    segments/s000007/          an immutable segment: passages, BM25 counts, vectors (+ structure)
    deletes/s000003-000007.npy rows of segment s000003 deleted as of commit 7 (tombstones)

A writer (``rag index`` over an existing index, ``rag add``, ``rag delete``, ``rag compact``)
holds the build lock, writes new segments and tombstone files (each ``fsync``-ed, a segment
renamed into place only when whole), writes ``commits/N.json`` with ``fsync``, then replaces
``manifest.json`` (``fsync`` then ``rename``, then the folder is ``fsync``-ed). At every instant
``manifest.json`` names a complete commit: a crash anywhere leaves the previous or the next one.
Afterwards it removes what no kept commit references; a commit is kept while it is current or
any reader holds its lock (``flock`` shared; a killed reader's lock goes with its process), so a
reader keeps the files of the commit it opened (Lucene's commit points, as a design).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from indexes.atomic import atomic_write_text
from indexes.errors import IndexFormatError, StorageError
from indexes.manifest import MANIFEST_NAME, Manifest, SegmentInfo

COMMITS_DIR = "commits"
SEGMENTS_DIR = "segments"
DELETES_DIR = "deletes"
#: The data files of a format-1 index, at its root (its one segment, named ".").
ROOT_FILES = ("passages.sqlite", "bm25_postings.npz", "bm25_vocab.json", "vectors.npy", "vector_passages.npy", "faiss.index")
#: Test hook: ``RAG_FAULT_POINT=name`` kills this process (SIGKILL) when the writer reaches ``name``.
FAULT_ENV = "RAG_FAULT_POINT"


def fault_point(name: str) -> None:
    """Die here, as ``kill -9`` would, when the environment names this point (fault-injection tests)."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), 9)


def segments_of(manifest: Manifest) -> tuple[SegmentInfo, ...]:
    """The segments of a commit; a format-1 manifest has one, the root."""
    if manifest.segments:
        return manifest.segments
    dense = manifest.dense.vectors if manifest.dense else 0
    return (SegmentInfo(name=".", passages=manifest.corpus.passages, vectors=dense),)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def fsync_path(path: Path) -> None:
    """``fsync`` a file or a folder (a folder: so a rename inside it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_path(directory: Path, generation: int) -> Path:
    return Path(directory) / COMMITS_DIR / f"{generation:010d}.json"


@contextlib.contextmanager
def new_segment(directory: str | os.PathLike[str], name: str) -> Iterator[Path]:
    """Yield an empty folder for segment ``name``; on success it is synced and renamed into ``segments/``."""
    segments = Path(directory) / SEGMENTS_DIR
    segments.mkdir(exist_ok=True)
    tmp, final = segments / f".tmp-{os.getpid()}-{name}", segments / name
    for stale in (tmp, final):  # a crashed writer's leftovers: never part of a published commit
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except StorageError as exc:  # name the file the user will look for, not its temporary twin
        shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(str(exc).replace(str(tmp), str(final))) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fault_point("segment-before-fsync")
    for f in tmp.iterdir():
        fsync_path(f)
    fsync_path(tmp)
    os.replace(tmp, final)
    fsync_path(segments)


def segment_checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file of a segment folder."""
    return {f.name: sha256_file(f) for f in sorted(folder.iterdir()) if f.is_file()}


def publish(directory: str | os.PathLike[str], manifest: Manifest) -> None:
    """Make ``manifest`` the current commit: ``commits/N.json`` then ``manifest.json``, each synced."""
    directory = Path(directory)
    text = manifest.model_dump_json(indent=2) + "\n"
    (directory / COMMITS_DIR).mkdir(exist_ok=True)
    fault_point("commit-before-write")
    atomic_write_text(commit_path(directory, manifest.generation), text)
    fsync_path(directory / COMMITS_DIR)
    fault_point("commit-before-pointer")
    atomic_write_text(directory / MANIFEST_NAME, text)
    fault_point("commit-after-pointer")
    fsync_path(directory)


class CommitLease:
    """A reader's hold on one commit: its files stay until :meth:`close` (or the process ends)."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __del__(self) -> None:
        self.close()


def open_commit(directory: str | os.PathLike[str]) -> tuple[Manifest, CommitLease]:
    """Read the current commit and hold it (see :class:`CommitLease`).

    Raises:
        IndexNotFoundError: no index at ``directory``.
        IndexFormatError: the manifest is damaged, or commits changed too fast to catch one.
    """
    directory = Path(directory)
    for _ in range(100):
        manifest = Manifest.read(directory)
        if not manifest.segments:
            return manifest, CommitLease(None)  # format 1: one commit, replaced only by a full rebuild
        try:
            fd = os.open(commit_path(directory, manifest.generation), os.O_RDONLY)
        except FileNotFoundError:
            continue  # removed after a newer commit was published: read the pointer again
        fcntl.flock(fd, fcntl.LOCK_SH)
        if os.fstat(fd).st_nlink == 0:  # removed between open and lock
            os.close(fd)
            continue
        return manifest, CommitLease(fd)
    raise IndexFormatError(f"{directory}: commits change too fast to open one; try again")


def _referenced(manifest: Manifest) -> set[str]:
    names: set[str] = set()
    for seg in segments_of(manifest):
        names.add(seg.name)
        if seg.deleted:
            names.add(seg.deleted)
    names.update(c.path for c in manifest.caches)
    return names


def collect_garbage(directory: str | os.PathLike[str], current: Manifest, previous: Manifest | None = None,
                    sweep: bool = False) -> list[str]:
    """Remove commits no reader holds (all but ``current``) and files no kept commit references.

    Call with the build lock held. ``previous``: the commit replaced, when it was a format-1 one
    (it has no commit file; its caches go too). ``sweep`` (a full rebuild): also remove every other
    entry the index owns (:mod:`indexes.layout`: stale files of older builds, unrecorded cache
    folders) that no kept commit references. Returns the removed paths (relative to ``directory``).
    """
    directory = Path(directory)
    kept = [current]
    dropped: list[Manifest] = [previous] if previous is not None and not previous.segments else []
    removed: list[str] = []
    for path in sorted((directory / COMMITS_DIR).glob("*.json")):
        if path.name == commit_path(directory, current.generation).name:
            continue
        with open(path, "rb") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a reader holds it: keep it and what it references
                with contextlib.suppress(ValueError, IndexFormatError):
                    kept.append(Manifest.model_validate(json.loads(fh.read())))
                continue
            with contextlib.suppress(ValueError):
                dropped.append(Manifest.model_validate(json.loads(fh.read())))
            path.unlink()
            removed.append(f"{COMMITS_DIR}/{path.name}")
    live = set().union(*(_referenced(m) for m in kept))
    for folder in (SEGMENTS_DIR, DELETES_DIR):
        for entry in sorted((directory / folder).glob("*")) if (directory / folder).is_dir() else ():
            rel = f"{folder}/{entry.name}"
            if rel in live or (entry.name.startswith(".tmp-") and _writer_alive(entry.name)):
                continue
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            removed.append(rel)
    if current.engine is not None:  # the engine's rows of removed segments go with their folders
        from indexes.milvus_store import MilvusCollections, segment_number

        gone = [segment_number(r) for r in removed if r.startswith(f"{SEGMENTS_DIR}/")]
        if gone:
            MilvusCollections(current.engine).delete_segments(gone)
    if "." not in live:
        for name in ROOT_FILES:
            if (directory / name).exists():
                (directory / name).unlink()
                removed.append(name)
    if sweep:
        from indexes.layout import index_owner

        owns = index_owner(directory)
        structure = {MANIFEST_NAME, COMMITS_DIR, SEGMENTS_DIR, DELETES_DIR}
        tops = {Path(name).parts[0] for name in live if name != "."}
        for entry in sorted(directory.iterdir()):
            if owns(entry.name) and entry.name not in structure and entry.name not in tops and not entry.name.startswith("."):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                removed.append(entry.name)
    for m in dropped:
        for cache in m.caches:
            if cache.path not in live and (directory / cache.path).exists():
                shutil.rmtree(directory / cache.path, ignore_errors=True)
                removed.append(cache.path)
    return removed


def _writer_alive(name: str) -> bool:
    pid = name.removeprefix(".tmp-").split("-")[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

