"""Second-stage reranking: a cross-encoder re-scores the first stage's top ``N`` passages.

A bi-encoder scores a query and a passage from two separately computed vectors; a cross-encoder
reads them together, ``s(q, p) = w·BERT([CLS] q [SEP] p [SEP])[CLS]`` (monoBERT, Nogueira & Cho
2019, arXiv:1901.04085 §2), which is more accurate and far too slow to run over a corpus. So it
runs over the first stage's top ``N`` only (the *rerank depth*) and reorders them:

- positions 1..N: the same N passages, sorted by cross-encoder score (the raw logit, never a
  sigmoid, which saturates into ties), ties by index row, i.e. by document id as everywhere else;
- positions N+1..: the first stage's passages in its own order, their scores shifted by one
  constant so that every one lies below the lowest reranked score (scores stay monotone, so a
  run file sorted by score keeps this order).

Reranking therefore never changes *which* passages are in the top N: recall@N is the first
stage's (property-tested in ``tests/rag/test_rerank.py``). Cross-encoder scores are comparable
only within one ranking.

With a rerank weight α < 1 (``rerank.json`` beside a ``rag train reranker`` model, chosen on its
dev split, or ``--rerank-weight``) the head is sorted by ``α·mm(CE) + (1−α)·mm(first stage)``
instead, ties in first-stage order (:mod:`rag.rerank_interpolation`); α = 1 is the cross-encoder
alone, exactly as above, and α = 0 the first stage's order (the cross-encoder is then not run).

Example:
    (Not run as a doctest: needs a cross-encoder folder and an index.)
    >>> reranker = CrossEncoderReranker.load(RerankConfig("build/reranker", depth=20))   # doctest: +SKIP
    >>> index = open_index("build/scifact", reranker=reranker)                          # doctest: +SKIP
    >>> index.retriever("hybrid").search("statins reduce cardiovascular risk", k=5)      # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from indexes.errors import InputError
from indexes.filters import RowFilter
from indexes.passage_store import PassageStore
from rag.protocols import Ranking, RowScorer
from rag.rerank_interpolation import PURE_CE, check_weight, interpolate, read_weight, read_weight_record
from rag.retrievers import _Base

DEFAULT_DEPTH = 100  # the usual BEIR reranking depth (Thakur et al. 2021, §4: BM25 top-100 + cross-encoder)


@dataclass(frozen=True)
class RerankConfig:
    """Which cross-encoder reranks, and how deep.

    Attributes:
        model: a cross-encoder folder, a cached HF id (never downloaded), e.g. ``rag train reranker``'s output.
        depth: N, the first-stage passages re-scored per query.
        batch_size: query–passage pairs per forward pass.
        max_length: tokens per pair (``None``: the model's own limit).
        weight: α of the interpolation with the first stage's score, in [0, 1] (``None``: the
            model's ``rerank.json``, else 1 = the cross-encoder alone).
    """

    model: str
    depth: int = DEFAULT_DEPTH
    batch_size: int = 32
    max_length: int | None = None
    weight: float | None = None

    def __post_init__(self) -> None:
        if self.weight is not None:
            check_weight(self.weight)
        if self.depth < 1:
            raise InputError(f"rerank depth must be at least 1, got {self.depth}")
        if self.batch_size < 1:
            raise InputError(f"rerank batch size must be at least 1, got {self.batch_size}")


def pair_text(title: str, text: str) -> str:
    """The passage side of a pair, as the first stage indexes it (title, then body)."""
    from rag.encoder import passage_text

    return passage_text(title, text)


class CrossEncoderReranker:
    """A loaded sentence-transformers ``CrossEncoder`` and its :class:`RerankConfig`.

    Scoring is serialised by a lock (one model shared by the service's threads). The score of a
    pair is the same whatever else is scored with it, up to float32 padding noise (~1e-6).
    """

    def __init__(self, model, config: RerankConfig, revision: str | None = None, saved_weight: float | None = None) -> None:
        self.model, self.config, self.revision, self.saved_weight = model, config, revision, saved_weight
        self.saved_mode: str | None = None  # the first stage the saved weight was tuned for (rerank.json "mode")
        self._lock = threading.Lock()

    @property
    def alpha(self) -> float:
        """The interpolation weight in use: the configured one, else the saved one, else 1 (pure CE)."""
        if self.config.weight is not None:
            return self.config.weight
        return PURE_CE if self.saved_weight is None else self.saved_weight

    @classmethod
    def load(cls, config: RerankConfig, device: str | None = None) -> CrossEncoderReranker:
        """Load ``config.model`` from local files.

        Raises:
            ModelLoadError: not found locally, or not a cross-encoder (one line saying what to do).
        """
        from rag.models import load_cross_encoder

        model, resolved = load_cross_encoder(config.model, device=device, max_length=config.max_length)
        reranker = cls(model, config, resolved.revision, read_weight(resolved.path))
        mode = (read_weight_record(resolved.path) or {}).get("mode")
        reranker.saved_mode = mode if isinstance(mode, str) else None
        return reranker

    def with_depth(self, depth: int | None) -> CrossEncoderReranker:
        """The same model at another rerank depth (``None``: this one)."""
        if depth is None or depth == self.config.depth:
            return self
        return self._replace(depth=depth)

    def with_weight(self, weight: float | None) -> CrossEncoderReranker:
        """The same model with another interpolation weight α (``None``: this one)."""
        if weight is None or weight == self.config.weight:
            return self
        return self._replace(weight=check_weight(weight))

    def _replace(self, **changes) -> CrossEncoderReranker:
        from dataclasses import replace

        other = CrossEncoderReranker(self.model, replace(self.config, **changes), self.revision, self.saved_weight)
        other._lock = self._lock  # one model, one lock
        other.saved_mode = self.saved_mode
        return other

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """Cross-encoder logits of ``(query, passage)`` pairs: float64 array (len(passages),)."""
        if not passages:
            return np.zeros(0, dtype=np.float64)
        import torch

        with self._lock:
            logits = self.model.predict([(query, p) for p in passages], batch_size=self.config.batch_size,
                                        activation_fn=torch.nn.Identity(), show_progress_bar=False,
                                        convert_to_numpy=True)  # (n,) or (n, 1)
        return np.asarray(logits, dtype=np.float64).reshape(len(passages))


def rerank_ranking(ranking: Ranking, head_scores: np.ndarray, ties: str = "row") -> Ranking:
    """Reorder the head of ``ranking`` by ``head_scores``; keep the tail in place, shifted below.

    Args:
        ranking: (rows (n,), scores (n,)) of the first stage, best first.
        head_scores: new scores of its first ``m = len(head_scores) ≤ n`` rows.
        ties: equal new scores in ``"row"`` order (lower row first) or in first-stage ``"position"`` order.

    Returns:
        (rows (n,), scores (n,)): the head sorted by descending new score, ties as ``ties`` says;
        then the tail rows in their order with scores ``s - max(tail) + min(head) - 1``.

    Example:
        >>> rows, scores = rerank_ranking((np.array([5, 2, 9, 7]), np.array([4.0, 3.0, 2.0, 1.0])), np.array([0.5, 2.0, 0.5]))
        >>> rows.tolist(), scores.tolist()
        ([2, 5, 9, 7], [2.0, 0.5, 0.5, -0.5])
    """
    rows, scores = ranking
    m = len(head_scores)
    if m > len(rows):
        raise ValueError(f"{m} head scores for a ranking of {len(rows)} rows")
    head_rows = rows[:m]
    tie_key = head_rows if ties == "row" else np.arange(m)
    order = np.lexsort((tie_key, -np.asarray(head_scores, dtype=np.float64)))  # score desc, then tie key asc
    new_rows = np.concatenate([head_rows[order], rows[m:]])
    tail = np.asarray(scores[m:], dtype=np.float64)
    if tail.size and m:
        tail = tail - tail.max() + float(np.min(head_scores)) - 1.0
    new_scores = np.concatenate([np.asarray(head_scores, dtype=np.float64)[order], tail])
    return new_rows, new_scores


def rerank_interpolated(ranking: Ranking, ce_scores: np.ndarray, alpha: float) -> Ranking:
    """Reorder the head of ``ranking`` by the cross-encoder's scores mixed with weight ``alpha``.

    ``alpha = 1``: :func:`rerank_ranking` on the raw logits (ties by row); otherwise by
    ``α·mm(CE) + (1−α)·mm(first-stage head scores)``, ties in first-stage order, so ``alpha = 0``
    returns the first stage's order (scores normalised).

    Example:
        >>> rows, scores = rerank_interpolated((np.array([5, 2, 9]), np.array([3.0, 2.0, 1.0])), np.array([0.0, 4.0, 2.0]), 0.5)
        >>> rows.tolist(), scores.tolist()
        ([2, 5, 9], [0.75, 0.5, 0.25])
    """
    if alpha == PURE_CE:
        return rerank_ranking(ranking, ce_scores)
    first = np.asarray(ranking[1][: len(ce_scores)], dtype=np.float64)
    return rerank_ranking(ranking, interpolate(ce_scores, first, alpha), ties="position")


class RerankingRetriever(_Base):
    """A first-stage retriever whose top ``reranker.config.depth`` passages a cross-encoder reorders.

    Args:
        base: any retriever with ``rank_batch`` and a passage ``store`` (BM25, dense, hybrid).
        reranker: the loaded cross-encoder and its depth N.
    """

    def __init__(self, base, reranker: CrossEncoderReranker) -> None:
        self.base, self.reranker = base, reranker
        self.store: PassageStore = base.store

    @property
    def depth(self) -> int:
        return self.reranker.config.depth

    def rank_batch(self, queries: Sequence[str], depth: int, where: RowFilter | None = None) -> list[Ranking]:
        """Top-``depth`` rows of each query: the first stage's top-N reranked, then its own order.
        With ``where`` (a metadata filter) the first stage ranks only the passages it selects."""
        out, alpha = [], self.reranker.alpha
        for query, (rows, scores) in zip(queries, self.base.rank_batch(queries, max(depth, self.depth), where)):
            if alpha == 0.0:  # the first stage alone: nothing to score
                out.append((rows[:depth], scores[:depth]))
                continue
            head = rows[: self.depth]
            passages = [pair_text(p.title, p.text) for p in self.store.get(head.tolist())]
            new_rows, new_scores = rerank_interpolated((rows, scores), self.reranker.score(query, passages), alpha)
            out.append((new_rows[:depth], new_scores[:depth]))
        return out

    def rank_scoring(self, queries: Sequence[str], depth: int,
                     where: RowFilter | None = None) -> list[tuple[Ranking, RowScorer]]:
        raise InputError("a reranked ranking cannot be fused again: rerank after fusion")
