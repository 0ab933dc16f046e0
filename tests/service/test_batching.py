"""The micro-batcher: fewer encoder calls under concurrency, every caller gets its own rows."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest

from service.batching import EncoderClosedError, MicroBatchEncoder


@dataclass(frozen=True)
class _Config:
    query_prefix: str = ""


class CountingEncoder:
    """A fake encoder: vector of "q<i>" is e_i; records the size of every call; 20 ms per call."""

    dim = 64
    config = _Config()

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def encode_queries(self, queries):
        time.sleep(0.02)
        with self.lock:
            self.calls.append(len(queries))
        out = np.zeros((len(queries), self.dim), np.float32)  # (B, d)
        for row, q in enumerate(queries):
            if q == "boom":
                raise ValueError("cannot encode boom")
            out[row, int(q[1:])] = 1.0
        return out


@pytest.mark.parametrize("threads", [1, 2])
def test_concurrent_calls_share_encoder_calls_and_get_their_own_rows(threads):
    # Given 32 threads, each encoding one distinct query at the same moment
    fake = CountingEncoder()
    batcher = MicroBatchEncoder(fake, wait_ms=5, max_batch=64, threads=threads)
    start = threading.Barrier(32)

    def one(i):
        start.wait()
        return batcher.encode_queries([f"q{i}"])

    # When
    with ThreadPoolExecutor(32) as pool:
        vectors = list(pool.map(one, range(32)))
    batcher.close()
    # Then every caller got exactly its own vector, from far fewer than 32 encoder calls
    for i, v in enumerate(vectors):
        assert v.shape == (1, 64) and v[0, i] == 1.0 and v.sum() == 1.0
    assert sum(fake.calls) == 32 and len(fake.calls) <= 4 * threads


def test_batches_never_exceed_max_batch_and_multi_query_jobs_stay_whole():
    # Given jobs of 3 queries each, max_batch 8
    fake = CountingEncoder()
    batcher = MicroBatchEncoder(fake, wait_ms=5, max_batch=8)
    jobs = [[f"q{3 * j + r}" for r in range(3)] for j in range(10)]
    # When
    with ThreadPoolExecutor(10) as pool:
        out = list(pool.map(batcher.encode_queries, jobs))
    batcher.close()
    # Then batches hold whole jobs (multiples of 3, at most 6 ≤ 8) and rows come back in order
    assert all(c % 3 == 0 and c <= 8 for c in fake.calls) and sum(fake.calls) == 30
    for j, v in enumerate(out):
        assert [int(np.argmax(row)) for row in v] == [3 * j, 3 * j + 1, 3 * j + 2]


def test_an_idle_encoder_waits_at_most_wait_ms():
    # Given an idle batcher with a 5 ms wait, and a 20 ms encoder
    batcher = MicroBatchEncoder(CountingEncoder(), wait_ms=5)
    # When one query arrives alone
    t0 = time.perf_counter()
    batcher.encode_queries(["q1"])
    elapsed = time.perf_counter() - t0
    batcher.close()
    # Then it waited for company no longer than the bound (plus the call itself and slack)
    assert elapsed < 0.02 + 0.005 + 0.05


@pytest.mark.parametrize("threads", [1, 3])
def test_an_encoder_error_reaches_the_callers_and_the_batcher_survives(threads):
    batcher = MicroBatchEncoder(CountingEncoder(), wait_ms=0, threads=threads)
    with pytest.raises(ValueError, match="boom"):
        batcher.encode_queries(["boom"])
    assert batcher.encode_queries(["q2"])[0, 2] == 1.0
    batcher.close()
    with pytest.raises(EncoderClosedError):
        batcher.encode_queries(["q3"])


def test_batched_real_encodings_equal_single_ones(encoder):
    # Given the real encoder behind a batcher, and queries of different lengths
    queries = ["why is the sky blue", "vaccines", "how do hard disk drives store data on platters"]
    batcher = MicroBatchEncoder(encoder, wait_ms=20)
    # When encoded concurrently (one batch) and one by one
    with ThreadPoolExecutor(3) as pool:
        together = np.vstack(list(pool.map(lambda q: batcher.encode_queries([q]), queries)))
    batcher.close()
    alone = np.vstack([encoder.encode_queries([q]) for q in queries])
    # Then padding inside a batch changes nothing beyond float rounding
    np.testing.assert_allclose(together, alone, atol=1e-5)
