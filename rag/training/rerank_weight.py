"""Choosing a trained reranker's interpolation weight α on the dev split of its training queries.

The dev queries are those the trainer held out for checkpoint selection (``training.json``
records them); each is ranked by the first stage to ``dev_depth`` documents, the cross-encoder
scores those documents, and :func:`rag.rerank_interpolation.select_weight` picks the α of the
grid with the best mean nDCG@10 (pytrec_eval's, over every judged document). No test query is
ever read: the judgments come from the training qrels only.

Example:
    (Not run as a doctest: needs a trained cross-encoder and an index.)
    >>> alpha, record = dev_weight(model, dev_pairs, documents, index, "hybrid", 20)   # doctest: +SKIP
    >>> write_weight("build/reranker", alpha, record)                                   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from rag.rerank_interpolation import GRID, select_weight
from rag.training.data import Pair

log = logging.getLogger(__name__)


def first_stage_documents(index, queries: Mapping[str, str], mode: str, depth: int) -> dict[str, list[tuple[str, float]]]:
    """Each query's top-``depth`` distinct (document id, best passage score) of ``index``'s first stage, best first."""
    retriever = index.retriever(mode, rerank=False)
    doc_ids = index.store.doc_ids()
    qids = list(queries)
    out: dict[str, list[tuple[str, float]]] = {}
    for start in range(0, len(qids), 64):
        chunk = qids[start : start + 64]
        for qid, (rows, scores) in zip(chunk, retriever.rank_batch([queries[q] for q in chunk], index.per_document_depth(depth))):
            best: dict[str, float] = {}
            for r, s in zip(rows.tolist(), scores.tolist()):
                best.setdefault(doc_ids[r], float(s))
            out[qid] = list(best.items())[:depth]
    return out


def dev_weight(model, dev: Sequence[Pair], documents: Mapping[str, str],
               candidates: Mapping[str, Sequence[tuple[str, float]]], depth: int,
               grid: Sequence[float] = GRID) -> tuple[float, dict]:
    """α with the best dev nDCG@10 for ``model`` over each dev query's first-stage top ``depth``.

    Args:
        model: a sentence-transformers ``CrossEncoder`` (its raw logits are interpolated).
        dev: judged (query, positive) pairs of the dev queries.
        documents: ``{doc id: text}`` as the reranker reads it (title, then body).
        candidates: :func:`first_stage_documents` of (at least) the dev queries.
        depth: first-stage documents reranked per dev query.
        grid: candidate weights.

    Returns:
        (α, record): the record holds the dev curve ``{α: nDCG@10}``, the first stage's and the
        cross-encoder's own dev nDCG@10, the depth and the number of dev queries.
    """
    import torch

    by_query: dict[str, list[Pair]] = defaultdict(list)
    for p in dev:
        by_query[p.query_id].append(p)
    lists, qrels = [], []
    for qid, ps in sorted(by_query.items()):
        docs = [d for d, _ in candidates[qid][:depth]]
        first = np.array([s for _, s in candidates[qid][:depth]], dtype=np.float64)  # (n,)
        ce = model.predict([(ps[0].query, documents[d]) for d in docs], batch_size=32, show_progress_bar=False,
                           activation_fn=torch.nn.Identity(), convert_to_numpy=True) if docs else np.zeros(0)
        lists.append((docs, first, np.asarray(ce, dtype=np.float64).reshape(len(docs))))
        qrels.append({p.positive_id: 1 for p in ps})
    alpha, curve = select_weight(lists, qrels, grid)
    log.info("rerank weight α = %.2f on %d dev queries (dev nDCG@10 %.4f; first stage %.4f, cross-encoder %.4f)",
             alpha, len(lists), curve[alpha], curve[0.0], curve[1.0])
    record = {"selected_on": "dev split of the training queries", "dev_queries": len(lists), "dev_depth": depth,
              "dev_ndcg@10": curve[alpha], "dev_ndcg@10_first_stage": curve.get(0.0),
              "dev_ndcg@10_cross_encoder": curve.get(1.0), "dev_curve": {f"{a:.2f}": v for a, v in curve.items()}}
    return alpha, record
