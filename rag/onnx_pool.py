"""Passage encoding in worker processes, one ONNX Runtime session (one core) per process.

Index builds encode thousands of passages; a single session parallelises each matrix product
over its intra-op threads, but tokenisation, pooling and the many small operators of a 6-layer
MiniLM stay serial. ``W`` processes with one thread each keep every core busy on independent
length-sorted batches instead. Workers are started with ``spawn`` (safe with the OpenMP and
tokenizer threads of the parent) and rebuild the encoder from its pickled graph and tokenizer,
so they never import torch.

The batches are the same as in one process (neighbours in token-length order), so a text's
vector does not depend on which worker encoded it: the result equals the single-process one to
float rounding (~1e-7).

Example:
    >>> with PassagePool(onnx_model, workers=2) as pool:                 # doctest: +SKIP
    ...     vectors = list(pool.map([["a b", "c d"], ["longer text here"]], batch_size=64))
"""

from __future__ import annotations

import copy
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat

import numpy as np

from rag.onnx_backend import OnnxEncoderModel

_MODEL: OnnxEncoderModel | None = None  # the worker's encoder, set once by _start


def _start(model: OnnxEncoderModel) -> None:
    global _MODEL
    _MODEL = model


def _encode(texts: Sequence[str], batch_size: int) -> np.ndarray:
    assert _MODEL is not None, "worker not initialised"
    return _MODEL.encode(texts, batch_size=batch_size)  # (B, d)


class PassagePool:
    """A pool of ``workers`` processes that each run ``model`` with one intra-op thread.

    Args:
        model: the parent's ONNX encoder; a copy with one thread is sent to every worker.
        workers: processes (>= 2; with 1, call ``model.encode`` directly).
    """

    def __init__(self, model: OnnxEncoderModel, workers: int) -> None:
        if workers < 2:
            raise ValueError(f"a pool needs at least 2 workers, got {workers}")
        single = copy.copy(model)
        single.threads = 1  # the pickled copy rebuilds its session with this
        self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start, initargs=(single,))

    def map(self, chunks: Sequence[Sequence[str]], batch_size: int) -> Iterator[np.ndarray]:
        """(len(chunk), d) unit vectors of each chunk, in the order of ``chunks``."""
        return self._executor.map(_encode, chunks, repeat(batch_size))

    def close(self) -> None:
        self._executor.shutdown()

    def __enter__(self) -> PassagePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
