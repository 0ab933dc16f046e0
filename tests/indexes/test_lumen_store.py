"""The LUMEN memory store: fp16 states round-trip bit-exactly through the memory-mapped reader."""

from __future__ import annotations

import torch

from indexes.lumen_store import LumenStore, write_lumen_memory


def test_memory_store_round_trips_bit_exactly(tmp_path):
    # Given: fp16 memory states of three passages of different lengths
    g = torch.Generator().manual_seed(0)
    states = [torch.randn(L, 16, generator=g).half() for L in (5, 1, 9)]
    # When: they are written and read back through the memory-mapped store
    info = write_lumen_memory(tmp_path, states, model="tiny", key="k1", live_layers=1)
    back = LumenStore(tmp_path, info).get([2, 0, 1])
    # Then: every bit is the same, and the record says what was stored
    assert all(torch.equal(a.view(torch.int16), b.view(torch.int16)) for a, b in zip([states[2], states[0], states[1]], back))
    assert (info.kind, info.dtype, info.passages) == ("lumen", "float16", 3)
