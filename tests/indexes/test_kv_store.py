"""The passage KV store: bit-exact disk round trip and resumable writes that refuse another key."""

from __future__ import annotations

import pytest
import torch

from indexes.errors import IndexFormatError
from indexes.kv_store import KVStore, KVStoreSpec, KVStoreWriter


def _spec(dtype="float16", key="k1") -> KVStoreSpec:
    return KVStoreSpec(model="m", key=key, dtype=dtype, layers=2, kv_heads=2, head_dim=4, see_prefix=True, template_sha256="t")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_store_round_trips_bit_exactly(tmp_path, dtype):
    # Given random states in the storage dtype
    torch.manual_seed(0)
    k, v = (torch.randn(2, 2, 7, 4).to(getattr(torch, dtype)) for _ in range(2))  # (n_layers, H, L, d)
    # When written, flushed and read back through the memory-mapped reader
    writer = KVStoreWriter(tmp_path, _spec(dtype), shard_size=1)
    writer.add("doc/1#0", k, v)
    writer.flush()
    got = KVStore(tmp_path).get("doc/1#0")
    # Then every bit is the same
    assert got[0].dtype == k.dtype and torch.equal(got[0].view(torch.int16 if dtype != "float32" else torch.int32),
                                                   k.view(torch.int16 if dtype != "float32" else torch.int32))
    assert torch.equal(got[1], v)
    assert KVStore(tmp_path).get("absent") is None


def test_writer_resumes_and_refuses_another_key(tmp_path):
    # Given a store with two flushed passages and one lost before its shard was written
    w = KVStoreWriter(tmp_path, _spec(), shard_size=2)
    for pid in ("a", "b", "c"):
        w.add(pid, torch.zeros(2, 2, 1, 4), torch.zeros(2, 2, 1, 4))
    # When a new writer opens it (the "crash" dropped the pending passage "c")
    resumed = KVStoreWriter(tmp_path, _spec(), shard_size=2)
    # Then it knows what is done, and a store for another key is refused
    assert resumed.done == {"a", "b"} and resumed.spec.passages == 2
    with pytest.raises(IndexFormatError, match="another model"):
        KVStoreWriter(tmp_path, _spec(key="other"))
