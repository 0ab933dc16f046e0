"""Opening an index directory: the manifest, the passage store, and retrievers over them.

Parts load on first use (a BM25-only user never loads an encoder) under a lock, so one
:class:`Index` can be shared by the threads of the service. An :class:`Index` holds the commit
it opened (:mod:`indexes.commits`): later commits never change its results, and their writers
keep its files until :meth:`Index.close`.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from indexes.commits import open_commit
from indexes.errors import InputError
from indexes.filters import And, Condition, Filter, MetadataColumns, Or, RowFilter, parse_filter
from indexes.manifest import BM25Spec
from indexes.segmented import CommitView
from rag.analyzer import Analyzer
from rag.bm25 import BM25Scorer
from rag.encoder import Encoder, EncoderConfig
from rag.protocols import ScoringRetriever
from rag.retrievers import BM25Retriever, DenseRetriever, HybridConfig, HybridRetriever
from rag.types import SearchMode


class Index:
    """A read-only index directory and lazily built retrievers over it.

    Args:
        path: the index directory.
        encoder: a loaded encoder to share (its spec must match the manifest's dimension);
            default: load the manifest's encoder on first dense search.
        bm25: override the manifest's BM25 parameters (the stored counts allow any).
        hybrid: fusion settings.
        device: device of the encoder loaded on first dense search.
        encoder_backend: how that encoder runs (``torch``, ``onnx``, ``onnx-int8``, or ``auto``: the
            backend that encoded the index's passages where it can run, see
            :func:`rag.encoder.resolve_backend`).
        query_encoder: encode queries with this model, distilled from the index's encoder by
            ``rag train query-encoder`` (checked on first dense search).
        reranker: a loaded :class:`rag.rerank.CrossEncoderReranker`; :meth:`retriever` then
            reranks every mode's top ``reranker.config.depth`` passages with it.
    """

    def __init__(self, path: str | Path, *, encoder: Encoder | None = None, bm25: BM25Spec | None = None,
                 hybrid: HybridConfig = HybridConfig(), device: str | None = None, encoder_backend: str = "auto",
                 query_encoder: str | Path | None = None, reranker=None) -> None:
        self.path = Path(path)
        self.manifest, self._lease = open_commit(self.path)
        try:
            self._view = CommitView(self.path, self.manifest)
        except BaseException:
            self._lease.close()
            raise
        self.store = self._view.store
        self.hybrid_config = hybrid
        self._bm25_params = bm25
        self._encoder = encoder
        self._device = device
        self._encoder_backend = encoder_backend
        self._query_encoder = query_encoder
        self.reranker = reranker
        self._lock = threading.RLock()
        self._bm25: BM25Retriever | None = None
        self._dense: DenseRetriever | None = None
        self._columns: MetadataColumns | None = None
        self._filters: dict[Filter, RowFilter] = {}  # masks of the filters seen (a batch reuses one)

    @property
    def name(self) -> str:
        return self.path.name

    def modes(self) -> list[SearchMode]:
        """Search modes this index supports."""
        m = self.manifest
        out: list[SearchMode] = []
        if m.bm25:
            out.append("bm25")
        if m.dense:
            out.append("dense")
        if m.bm25 and m.dense:
            out.append("hybrid")
        return out

    @property
    def bm25(self) -> BM25Retriever | ScoringRetriever:
        with self._lock:
            if self._bm25 is None:
                info = self.manifest.bm25
                if info is None:
                    raise InputError(f"{self.path} has no BM25 index (built with --no-bm25); use --mode dense")
                analyzer = Analyzer(info.analyzer)  # its token_pattern was validated with the manifest
                if self.manifest.engine is not None:  # --backend milvus: the weights live in the engine
                    from indexes.milvus_search import MilvusBM25Store
                    from rag.milvus_bm25 import MilvusBM25Retriever, check_variant

                    check_variant(self._bm25_params or info.params)
                    if self._bm25_params not in (None, info.params):
                        raise InputError(f"{self.path}: a Milvus index holds the BM25 weights it was built with ({info.params.variant}, "
                                         f"k1={info.params.k1}, b={info.params.b}); rebuild it to change them")
                    engine = MilvusBM25Store(self._view.engine(), self._view.engine_rows(), self.manifest.engine.bm25_epoch)
                    self._bm25 = MilvusBM25Retriever(engine, self._view.bm25().term_index(), analyzer, self.store)
                    return self._bm25
                scorer = BM25Scorer(self._view.bm25(), self._bm25_params or info.params)
                self._bm25 = BM25Retriever(scorer, analyzer, self.store)
            return self._bm25

    @property
    def dense(self) -> DenseRetriever:
        with self._lock:
            if self._dense is None:
                info = self.manifest.dense
                if info is None:
                    raise InputError(f"{self.path} has no dense index (built with --no-dense); use --mode bm25")
                encoder = self._encoder or Encoder(EncoderConfig.from_dense(
                    info, query_encoder=self._query_encoder, index_name=str(self.path), device=self._device,
                    backend=self._encoder_backend))
                self._dense = DenseRetriever(self._view.vector_store(), encoder, self.store)
            return self._dense

    def where(self, spec: Filter | str | dict | None) -> RowFilter | None:
        """The rows of this commit that a metadata filter selects (``None`` for no filter).

        Args:
            spec: a parsed :data:`indexes.filters.Filter`, its JSON text or its JSON object.

        Raises:
            InputError: bad syntax, a field no passage of this index has, or a value whose type the
                field never holds (one line naming the field).
        """
        if spec is None:
            return None
        f = spec if isinstance(spec, (Condition, And, Or)) else parse_filter(spec)
        with self._lock:
            if f not in self._filters:
                if self._columns is None:  # one read of every passage's metadata, on the first filter
                    self._columns = MetadataColumns(self.store.metadata(), self.manifest.metadata_fields)
                if len(self._filters) >= 64:
                    self._filters.clear()
                self._filters[f] = self._columns.resolve(f)
            return self._filters[f]

    def per_document_depth(self, k: int) -> int:
        """First passage depth for ``k`` documents under max-passage grouping: each extra window of
        a split document can push one duplicate into the top ``k`` (capped at 10·k). Searches that
        find fewer than ``k`` documents at this depth deepen it
        (:func:`rag.retrievers.search_documents`)."""
        c = self.manifest.corpus
        return k + min(c.passages - c.documents, 9 * k)

    @property
    def generation(self) -> int:
        """The commit this index was opened at (0: a format-1 index)."""
        return self.manifest.generation

    def retriever(self, mode: SearchMode = "bm25", *, rerank: bool = True, rerank_depth: int | None = None,
                  rerank_weight: float | None = None, **hybrid_overrides):
        """The retriever for ``mode``; ``hybrid_overrides`` replace fields of the hybrid config.

        With a :attr:`reranker` (and ``rerank``), a :class:`rag.rerank.RerankingRetriever` over it that
        reranks the top ``rerank_depth`` passages (default: the reranker's depth) with interpolation
        weight ``rerank_weight`` (default: the reranker's).
        """
        base = self._first_stage(mode, **hybrid_overrides)
        if self.reranker is None or not rerank:
            return base
        from rag.rerank import RerankingRetriever

        return RerankingRetriever(base, self.reranker.with_depth(rerank_depth).with_weight(rerank_weight))

    def _first_stage(self, mode: SearchMode, **hybrid_overrides) -> ScoringRetriever | HybridRetriever:
        if mode == "bm25":
            return self.bm25
        if mode == "dense":
            return self.dense
        if mode == "hybrid":
            return HybridRetriever(self.bm25, self.dense, replace(self.hybrid_config, **hybrid_overrides))
        raise InputError(f"unknown search mode {mode!r}: use bm25, dense or hybrid")

    def close(self) -> None:
        self.store.close()
        self._lease.close()


def open_index(path: str | Path, **kwargs) -> Index:
    """Open the index at ``path`` (see :class:`Index` for the keyword arguments)."""
    return Index(path, **kwargs)
