"""nDCG@10 on a held-out dev split, computed during training for best-checkpoint selection.

Re-encoding a whole corpus at every evaluation would cost as much as an epoch on a CPU, so the
dev ranking runs over a *pool*: the dev queries' judged positives plus each dev query's BM25
top-``depth`` (the construction of NanoBEIR's small corpora). Absolute values are therefore
higher than full-corpus ones; they serve to compare checkpoints of one run. The metric itself
is injected (the CLI passes :func:`eval.retrieval.evaluate`'s nDCG@10), keeping ``rag`` free of
imports from the ``eval`` layer above it.

Example:
    (Not run as a doctest: needs dev pairs, an index and a SentenceTransformer.)
    >>> pool = dev_pool(dev_pairs, documents, index, depth=10)          # doctest: +SKIP
    >>> evaluator = DevEvaluator(pool, ndcg10)                           # doctest: +SKIP
    >>> evaluator(model)["dev_ndcg@10"]                                 # doctest: +SKIP
    0.81
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from rag.compat.sentence_transformers import BaseEvaluator
from rag.training.data import Pair

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]
Metric = Callable[[Run, Qrels], float]


@dataclass(frozen=True)
class DevPool:
    """Dev queries, their judgments, and the documents they are ranked among."""

    queries: dict[str, str]
    qrels: Qrels
    documents: dict[str, str]


def dev_pool(dev_pairs: Sequence[Pair], documents: Mapping[str, str], index=None, depth: int = 10) -> DevPool:
    """The pool of the dev queries: their positives ∪ BM25 top-``depth`` (when ``index`` is given)."""
    queries = {p.query_id: p.query for p in dev_pairs}
    qrels: Qrels = {}
    for p in dev_pairs:
        qrels.setdefault(p.query_id, {})[p.positive_id] = 1
    pool = {d for judged in qrels.values() for d in judged}
    if index is not None:
        doc_ids = index.store.doc_ids()
        for text in queries.values():
            rows, _ = index.bm25.rank(text, depth)
            pool.update(doc_ids[r] for r in rows.tolist() if doc_ids[r] in documents)
    return DevPool(queries, qrels, {d: documents[d] for d in sorted(pool)})


class DevEvaluator(BaseEvaluator):
    """Ranks the pool with the model being trained and reports ``{name}_ndcg@10``.

    Args:
        pool: the dev queries, qrels and pooled documents.
        metric: ``(run, qrels) -> nDCG@10`` (the project's pytrec_eval-based evaluation).
        name: metric prefix; the trainer logs it as ``eval_{name}_ndcg@10``.
        batch_size: encoding batch.
        k: documents kept per query in the run.
    """

    def __init__(self, pool: DevPool, metric: Metric, name: str = "dev", batch_size: int = 64, k: int = 100) -> None:
        super().__init__()
        self.pool, self.metric, self.name, self.batch_size, self.k = pool, metric, name, batch_size, k
        self.primary_metric = "ndcg@10"

    def __call__(self, model, output_path: str | None = None, epoch: float = -1, steps: int = -1) -> dict[str, float]:
        was_training = model.training
        model.eval()
        qids, doc_ids = list(self.pool.queries), list(self.pool.documents)
        with torch.no_grad():
            q = model.encode([self.pool.queries[i] for i in qids], batch_size=self.batch_size,
                             normalize_embeddings=True, convert_to_tensor=True)  # (Q, d)
            d = model.encode([self.pool.documents[i] for i in doc_ids], batch_size=self.batch_size,
                             normalize_embeddings=True, convert_to_tensor=True)  # (D, d)
            scores, rows = torch.topk(q @ d.T, min(self.k, len(doc_ids)), dim=1)  # (Q, k), (Q, k)
        model.train(was_training)
        run = {qid: {doc_ids[r]: float(s) for r, s in zip(rr.tolist(), ss.tolist())}
               for qid, rr, ss in zip(qids, rows, scores)}
        metrics = self.prefix_name_to_metrics({"ndcg@10": self.metric(run, self.pool.qrels)}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics
