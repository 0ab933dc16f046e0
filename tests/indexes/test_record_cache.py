"""indexes.manifest.record_cache: the one writer of the manifest's cache entries, under the build lock."""

from __future__ import annotations

import threading
import time

import pytest

from indexes.atomic import build_lock
from indexes.errors import IndexFormatError
from indexes.manifest import CacheInfo, ChunkingSpec, CorpusInfo, Manifest, record_cache


def _index(tmp_path):
    index = tmp_path / "idx"
    index.mkdir()
    Manifest(corpus=CorpusInfo(source="c", sha256="0" * 64, documents=1, passages=1, chunking=ChunkingSpec())).write(index)
    for name in ("kv/a", "kv/b", "lumen-c"):
        (index / name).mkdir(parents=True)
    return index


def _info(path: str, key: str, passages: int = 1) -> CacheInfo:
    return CacheInfo(kind="lumen" if "lumen" in path else "kv", path=path, model="m", key=key, dtype="float16",
                     passages=passages)


def test_entries_are_added_and_replaced_by_key(tmp_path):
    # Given: an index with two cache stores
    index = _index(tmp_path)
    # When: both are recorded, then the first again with more passages
    record_cache(index, _info("kv/a", "A"))
    record_cache(index, _info("lumen-c", "C"))
    record_cache(index, _info("kv/a", "A", passages=5))
    # Then: one entry per key, the latest kept
    assert [(c.key, c.passages) for c in Manifest.read(index).caches] == [("C", 1), ("A", 5)]


def test_recording_waits_for_the_build_lock_and_loses_no_entry(tmp_path):
    # Given: another build holds the index's lock for 0.3 s while two stores are recorded from threads
    index = _index(tmp_path)
    released, done = [], []

    def hold():
        with build_lock(index):
            time.sleep(0.3)
            released.append(time.monotonic())

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.05)
    writers = [threading.Thread(target=lambda i=i: (record_cache(index, _info(i, i)), done.append(time.monotonic())))
               for i in ("kv/a", "kv/b")]
    # When
    for w in writers:
        w.start()
    for t in (holder, *writers):
        t.join()
    # Then: neither wrote before the lock was released, and both entries are in the manifest
    assert min(done) >= released[0]
    assert sorted(c.key for c in Manifest.read(index).caches) == ["kv/a", "kv/b"]


def test_a_store_missing_from_the_index_is_refused(tmp_path):
    index = _index(tmp_path)
    with pytest.raises(IndexFormatError, match=r"kv/zzz: the cache store is gone"):
        record_cache(index, _info("kv/zzz", "Z"))
    assert Manifest.read(index).caches == ()
