"""Training pairs for a bi-encoder: (query, positive passage[, hard negatives...]).

Pairs come from BEIR files (queries + qrels + corpus, as DPR's (q, p+) pairs, Karpukhin et al.
2020, arXiv:2004.04906 §3) or from a JSONL of pairs/triples. Everything is checked before any
model is loaded: a qrels id missing from the queries or the corpus, an empty text or a pair set
with nothing in it raises :class:`~indexes.errors.InputError` naming the file and what to do.

Example:
    >>> pairs = beir_pairs({"q1": "what is bm25"}, {"q1": {"d1": 1}}, {"d1": "BM25 ranks ..."})
    >>> pairs[0].query, pairs[0].positive_id
    ('what is bm25', 'd1')
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from indexes.errors import InputError
from rag.textfile import parse_json_line, read_lines


@dataclass(frozen=True)
class Pair:
    """One training example: a query, one relevant passage and optional hard negatives."""

    query_id: str
    query: str
    positive_id: str
    positive: str
    negatives: tuple[str, ...] = ()


def load_documents(path: str | Path) -> dict[str, str]:
    """``{doc id: text}`` of a corpus, each text as it is indexed (title, then body)."""
    from rag.corpus import read_corpus
    from rag.encoder import passage_text

    docs = {d.id: passage_text(d.title, d.text) for d in read_corpus(path)}
    if not docs:
        raise InputError(f"{path}: the corpus has no documents")
    return docs


def beir_pairs(queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]], documents: Mapping[str, str],
               min_grade: int = 1, qrels_name: str = "qrels") -> list[Pair]:
    """One pair per judged (query, document) with grade ≥ ``min_grade``, in qrels order.

    Raises:
        InputError: a judged query id is not in ``queries``, a judged document id is not in
            ``documents``, or no judgment reaches ``min_grade``.
    """
    missing_q = [q for q in qrels if q not in queries]
    if missing_q:
        raise InputError(f"{qrels_name}: {len(missing_q)} query ids are not in the queries file "
                         f"(e.g. {missing_q[0]!r}); pass the queries file that belongs to these qrels")
    missing_d = sorted({d for judged in qrels.values() for d in judged if d not in documents})
    if missing_d:
        raise InputError(f"{qrels_name}: {len(missing_d)} document ids are not in the corpus "
                         f"(e.g. {missing_d[0]!r}); pass the corpus that belongs to these qrels")
    pairs = [Pair(q, queries[q], d, documents[d]) for q, judged in qrels.items() for d, grade in judged.items()
             if grade >= min_grade]
    if not pairs:
        raise InputError(f"{qrels_name}: no judgment has relevance ≥ {min_grade}; there is nothing to train on")
    return pairs


def read_jsonl_pairs(path: str | Path) -> list[Pair]:
    """Pairs from JSONL lines ``{"query": ..., "positive": ..., "negative"|"negatives": ...}``.

    ``anchor`` is accepted for ``query``. Every line must carry the same number of negatives
    (the loss needs rectangular batches).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"pairs file not found: {path}")
    pairs: list[Pair] = []
    for lineno, line in read_lines(path, "pairs file"):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        rec = parse_json_line(line, where, malformed="not a JSON object")
        if not isinstance(rec, dict):
            raise InputError(f"{where}: expected a JSON object with query and positive")
        query, positive = rec.get("query", rec.get("anchor")), rec.get("positive")
        negatives = rec.get("negatives", [rec["negative"]] if "negative" in rec else [])
        texts = [query, positive, *negatives] if isinstance(negatives, list) else [None]
        if not all(isinstance(t, str) and t.strip() for t in texts):
            raise InputError(f"{where}: query, positive and each negative must be non-empty strings")
        pairs.append(Pair(str(rec.get("id", lineno)), query, f"{where}:positive", positive, tuple(negatives)))
    if not pairs:
        raise InputError(f"{path}: no pairs")
    counts = {len(p.negatives) for p in pairs}
    if len(counts) > 1:
        raise InputError(f"{path}: lines carry different numbers of negatives {sorted(counts)}; give each line the same")
    return pairs


def split_dev(pairs: Sequence[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Hold out a random ``fraction`` of the *queries* (all their pairs) as a dev split."""
    if not 0 <= fraction < 1:
        raise InputError(f"dev fraction must be in [0, 1), got {fraction}")
    qids = sorted({p.query_id for p in pairs})
    n_dev = round(fraction * len(qids))
    dev = set(random.Random(seed).sample(qids, n_dev))
    train = [p for p in pairs if p.query_id not in dev]
    if not train:
        raise InputError("the dev split left no training pairs; lower --dev-fraction")
    return train, [p for p in pairs if p.query_id in dev]


def with_negatives(pairs: Sequence[Pair], negatives: Sequence[Sequence[str]]) -> list[Pair]:
    """``pairs`` with their hard-negative texts set (one sequence per pair)."""
    return [replace(p, negatives=tuple(n)) for p, n in zip(pairs, negatives, strict=True)]


def data_sha256(pairs: Iterable[Pair]) -> str:
    """A content hash of the training examples, recorded next to the trained weights."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(json.dumps([p.query, p.positive, *p.negatives], ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return "sha256:" + h.hexdigest()
