"""Hard negatives mined from an index, excluding known positives, with a false-negative guard.

DPR (Karpukhin et al. 2020, arXiv:2004.04906 §3.2) adds to each (q, p+) pair a passage that BM25
ranks high but that is not relevant: contrasting against it teaches the encoder what in-batch
(random) negatives cannot. Unjudged passages are not necessarily irrelevant, so a candidate is
skipped when it scores too close to, or above, the known positive p+ (the usual false-negative
guard; sentence-transformers' ``mine_hard_negatives`` calls it a *relative margin*)::

    keep d  ⇔  d ∉ P(q)  and  s(q, d) < s(q, p+) − m·|s(q, p+)|

with s the BM25 score (or the dense inner product), P(q) every judged positive of q and m the
margin. Negatives are drawn at random, seeded, from the surviving top-``depth`` candidates; a
query with too few survivors is topped up with random corpus documents (easy but valid negatives).

Example:
    (Not run as a doctest: needs an index on disk and training pairs.)
    >>> cfg = NegativeConfig(count=1, depth=30)                     # doctest: +SKIP
    >>> negs = mine_negatives(pairs, open_index("idx"), documents, cfg)  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from indexes.errors import InputError
from rag.training.data import Pair


@dataclass(frozen=True)
class NegativeConfig:
    """How hard negatives are mined.

    Attributes:
        count: hard negatives per pair; 1 doubles the passages per step and is where DPR's gain
            mostly comes from (DPR Table 3: one BM25 negative per question).
        depth: candidates looked at per query; top-30 is hard without being mostly unjudged
            positives on small expert corpora such as SciFact.
        relative_margin: m in the guard above; 0.05 is sentence-transformers' suggested value.
        source: ``bm25`` or ``dense`` (the index's own encoder).
        seed: the sampling seed.
    """

    count: int = 1
    depth: int = 30
    relative_margin: float = 0.05
    source: Literal["bm25", "dense"] = "bm25"
    seed: int = 13


def mine_negatives(pairs: Sequence[Pair], index, documents: Mapping[str, str],
                   config: NegativeConfig = NegativeConfig()) -> list[list[str]]:
    """Document ids of ``config.count`` hard negatives for each pair (same order as ``pairs``).

    Args:
        pairs: training pairs whose ``positive_id`` are document ids of ``index``'s corpus.
        index: an opened :class:`rag.index.Index` over the same corpus as ``documents``.
        documents: ``{doc id: text}`` of the corpus (every id is a negative candidate of last resort).
        config: the mining settings.
    """
    if config.count < 1:
        return [[] for _ in pairs]
    doc_of_row = np.asarray(index.store.doc_ids(), dtype=object)  # (R,)
    unknown = [d for d in set(doc_of_row.tolist()) if d not in documents][:1]
    if unknown:
        raise InputError(f"index {index.path} holds document {unknown[0]!r}, which is not in the corpus: "
                         "mine negatives from an index built from the same corpus")
    rows_of: dict[str, list[int]] = defaultdict(list)
    for row, doc in enumerate(doc_of_row.tolist()):
        rows_of[doc].append(row)
    positives: dict[str, set[str]] = defaultdict(set)
    for p in pairs:
        positives[p.query_id].add(p.positive_id)

    queries = {p.query_id: p.query for p in pairs}
    qids = list(queries)
    rankings, scorers = _rank(index, config.source, [queries[q] for q in qids], config.depth)
    ranked = dict(zip(qids, rankings))
    scorer = dict(zip(qids, scorers))
    rng = random.Random(config.seed)
    all_ids = sorted(documents)
    if len(all_ids) <= max(len(v) for v in positives.values()) + config.count:
        raise InputError(f"the corpus has {len(all_ids)} documents: too few to draw {config.count} negatives per query")
    absent = [p.positive_id for p in pairs if p.positive_id not in rows_of][:1]
    if absent:
        raise InputError(f"positive document {absent[0]!r} is not in index {index.path}: rebuild it from the training corpus")
    out: list[list[str]] = []
    for p in pairs:
        rows, scores = ranked[p.query_id]
        s_pos = float(np.max(scorer[p.query_id](np.asarray(rows_of[p.positive_id], dtype=np.int64))))
        bound = s_pos - config.relative_margin * abs(s_pos)
        seen: set[str] = set()
        pool = []
        for r, s in zip(rows.tolist(), scores.tolist()):
            d = doc_of_row[r]
            if d in seen or d in positives[p.query_id]:
                continue
            seen.add(d)
            if s < bound:
                pool.append(d)
        chosen = rng.sample(pool, min(config.count, len(pool)))
        while len(chosen) < config.count:  # top up with random documents
            d = all_ids[rng.randrange(len(all_ids))]
            if d not in positives[p.query_id] and d not in chosen:
                chosen.append(d)
        out.append(chosen)
    return out


def _rank(index, source: str, texts: list[str], depth: int) -> tuple[list, list]:
    """Top-``depth`` (rows, scores) of each query, and a function scoring given rows for it."""
    if source == "bm25":
        bm25 = index.bm25
        return ([bm25.rank(t, depth) for t in texts],
                [lambda rows, t=t: bm25.score_rows(t, rows) for t in texts])
    if source == "dense":
        dense = index.dense
        vectors = dense.encoder.encode_queries(texts)  # (Q, d)
        return dense.rank_vectors(vectors, depth), [lambda rows, v=v: dense.score_rows(v, rows) for v in vectors]
    raise InputError(f"unknown negative source {source!r}: use bm25 or dense")
