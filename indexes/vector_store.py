"""The seam between retrieval and vector search: :class:`VectorStore`.

Everything above ``indexes/`` talks to dense vectors through this protocol, so a different
library (or a distributed backend) can replace FAISS without touching ``rag/``. Rows are
*passage* rows: a store may hold several vectors (windows) per passage and scores a passage as
its best window (MaxP, Dai & Callan, SIGIR 2019). Metadata filters reach a store as a
:class:`indexes.filters.RowFilter`: a backend-neutral expression and the passage rows it selects.
:class:`indexes.dense_store.DenseStore` (FAISS files) and :class:`indexes.milvus_search.MilvusVectorStore`
(a Milvus collection, opened by :meth:`indexes.segmented.CommitView.vector_store`) implement it;
:func:`open_vector_store` opens the files a manifest names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from indexes.filters import RowFilter
from indexes.manifest import VectorBackendSpec


@runtime_checkable
class VectorStore(Protocol):
    """Passage vectors and a top-k inner-product search over them."""

    @property
    def dim(self) -> int:
        """Vector dimension ``d``."""
        ...

    def __len__(self) -> int:
        """Number of passages."""
        ...

    def search(self, queries: np.ndarray, k: int, where: RowFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` passages of each query (B, d) → ``(scores (B, k), rows (B, k))``, ``-1`` rows where fewer.

        With ``where`` only passages satisfying it compete, *before* the top ``k`` is cut. A
        store that keeps metadata itself may translate ``where.expr`` (:mod:`indexes.filters`)
        into its own filter language; one that does not selects ``where.mask`` (P,) rows.
        """
        ...

    def passage_scores(self, vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact scores of one query (d,) for the passages at ``rows`` (C,) → (C,)."""
        ...

    def vectors_of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of the passages at ``rows`` (C,) → ``(vectors (W, d), passage of each (W,) in 0..C-1)``."""
        ...

    def add(self, vectors: np.ndarray, passage_of_row: np.ndarray | None = None) -> VectorStore:
        """A store with these passages' vectors appended (rows ``len(self)..``)."""
        ...

    def remove(self, rows: np.ndarray) -> VectorStore:
        """A store without the passages at ``rows`` (later rows shift down)."""
        ...


def open_vector_store(directory: str | Path, spec: VectorBackendSpec, *, windowed: bool, use_gpu: bool = True) -> VectorStore:
    """The vector store of ``spec.library`` saved in ``directory``."""
    from indexes.dense_store import DenseStore  # the only library today: FAISS

    return DenseStore(directory, spec, use_gpu=use_gpu, windowed=windowed)


def vector_store_from_arrays(vectors: np.ndarray, passage_of_row: np.ndarray | None, spec: VectorBackendSpec) -> VectorStore:
    """A store of ``spec``'s library over in-memory vectors (R, d) and their passage map (R,)."""
    from indexes.dense_store import DenseStore

    return DenseStore.from_arrays(vectors, passage_of_row, spec)


def write_vector_store(directory: str | Path, vectors: np.ndarray, passage_of_row: np.ndarray | None, spec: VectorBackendSpec) -> None:
    """Save vectors (R, d), their passage map (R,) and ``spec``'s structure into ``directory``."""
    from indexes.dense_store import write_dense

    write_dense(directory, vectors, passage_of_row, spec)
