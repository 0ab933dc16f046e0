"""Micro-batching: concurrent query encodings merged into one encoder call.

A transformer forward pass over B short queries costs far less than B passes over one (the
matrix products fill the CPU's vector units, and the per-call Python overhead of tokenising and
dispatching is paid once). Under load, requests arrive while the encoder is busy; each call of
the encoder thread takes *everything* that queued up meanwhile, up to ``max_batch``, so the batch
size — and the throughput — grows with the load by itself (continuous batching). When the encoder
is idle, the first query waits at most ``wait_ms`` for company, which bounds the latency it adds.

:class:`MicroBatchEncoder` has the query side of :class:`rag.encoder.Encoder`'s interface, so an
:class:`rag.index.Index` built with it (and every retriever, hybrid fusion and the extractive
answer on top) batches transparently. Callers block in worker threads, never on the event loop.

Example:
    (Not run as a doctest: needs an index on disk; starts a worker thread.)
    >>> batcher = MicroBatchEncoder(Encoder(), wait_ms=2.0)        # doctest: +SKIP
    >>> index = open_index("build/scifact", encoder=batcher)       # doctest: +SKIP
    >>> batcher.close()                                            # doctest: +SKIP
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np

from indexes.errors import RagError

_STOP = object()


class EncoderClosedError(RagError):
    """The service is shutting down; the encoder takes no more work."""

    code = "encoder_closed"


class MicroBatchEncoder:
    """Thread-safe query encoder that merges concurrent calls into one batch.

    Args:
        encoder: the loaded :class:`rag.encoder.Encoder` (shared; passages are encoded directly).
        wait_ms: longest wait for more queries after the first one of an idle encoder.
        max_batch: most queries per encoder call; a larger single request runs alone.
        on_batch: called with the number of queries of every encoder call (metrics).
        threads: encoder threads taking batches from the one queue; with one torch thread each,
            ``n`` threads use ``n`` cores for encoding (torch releases the GIL in its kernels).
        shared_passes: run a batch's queries in shared forward passes (faster with torch under
            load). Off by default: each query then runs its own pass inside the batch, and its
            vector, hence every score, is bit-identical to ``rag search``; with shared passes the
            last bits depend on the batch (scores within 1e-6; passages whose scores differ by
            less than that may swap).
    """

    def __init__(self, encoder, wait_ms: float = 2.0, max_batch: int = 64,
                 on_batch: Callable[[int], None] | None = None, threads: int = 1, shared_passes: bool = False) -> None:
        self.encoder = encoder
        self.shared_passes = shared_passes
        self.config = encoder.config
        self.wait_s = wait_ms / 1e3
        self.max_batch = max_batch
        self._on_batch = on_batch
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._threads = [threading.Thread(target=self._run, name=f"rag-encoder-{i}", daemon=True) for i in range(threads)]
        for t in self._threads:
            t.start()

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def spec(self):
        return self.encoder.spec()

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """(B, d) unit vectors for ``queries``; blocks the calling thread until its batch ran."""
        if not queries:
            return np.zeros((0, self.dim), np.float32)
        if self._closed:
            raise EncoderClosedError("the service is shutting down; retry on another instance")
        job: Future = Future()
        self._jobs.put((list(queries), job, time.perf_counter()))
        return job.result()

    def encode_passages(self, passages: Sequence[str], progress: bool = False) -> np.ndarray:
        """(N, d) passage vectors, straight from the encoder (used by extractive answers)."""
        return self.encoder.encode_passages(passages, progress=progress)

    def close(self) -> None:
        """Finish the queued work and stop the encoder threads."""
        if not self._closed:
            self._closed = True
            for _ in self._threads:
                self._jobs.put(_STOP)
            for t in self._threads:
                t.join()
            self._drain()

    def _collect(self, first) -> tuple[list, object, bool]:
        """``first`` plus whatever arrives within the wait, up to ``max_batch`` queries.

        Jobs are ``(queries, future, arrival time)``. A first job that already waited while the
        encoder was busy waits no longer; its batch takes whatever queued up meanwhile. Returns
        the batch, a job that did not fit (it opens the next batch) and whether to stop.
        """
        batch, size, carry, stop = [first], len(first[0]), None, False
        deadline = first[2] + self.wait_s  # counted from the first query's arrival, not from now
        while size < self.max_batch:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                try:
                    item = self._jobs.get(timeout=left)
                except queue.Empty:
                    break
            if item is _STOP:
                stop = True
                break
            if size + len(item[0]) > self.max_batch:
                carry = item
                break
            batch.append(item)
            size += len(item[0])
        return batch, carry, stop

    def _run(self) -> None:
        stop, carry = False, None
        while not stop:
            first, carry = (carry or self._jobs.get()), None
            if first is _STOP:
                break
            batch, carry, stop = self._collect(first)
            texts = [q for qs, _, _ in batch for q in qs]
            try:
                vectors = (self.encoder.encode_queries(texts, alone=False) if self.shared_passes
                           else self.encoder.encode_queries(texts))  # (B, d)
            except BaseException as exc:  # handed to every waiting request, never lost
                for _, job, _ in batch:
                    job.set_exception(exc)
                continue
            if self._on_batch is not None:
                self._on_batch(len(texts))
            start = 0
            for qs, job, _ in batch:
                job.set_result(vectors[start : start + len(qs)])
                start += len(qs)
        if carry is not None:
            self._jobs.put(carry)  # failed by _drain once every thread has stopped

    def _drain(self) -> None:
        while True:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                item[1].set_exception(EncoderClosedError("the service is shutting down; retry on another instance"))
