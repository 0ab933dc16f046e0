"""query2doc: expand the query with a pseudo-document written by a generator, for BM25 and dense search.

query2doc (Wang, Yang, Wei, "Query2doc: Query Expansion with Large Language Models", EMNLP 2023,
arXiv:2303.07678, §2) prompts an LLM to write a passage ``d'`` that answers the query ``q`` and
searches with the query rewritten as

    sparse:  q+ = concat({q} × n, d')        # n = 5: the query repeated to keep its weight (BM25)
    dense:   q+ = concat(q, [SEP], d')       # the encoder reads both; [SEP] is its separator token

The repetition matters for BM25: a pseudo-document of ~100 words would otherwise outweigh a
short query's terms. Unlike HyDE (:mod:`rag.hyde`), which averages the *embeddings* of the query
and hypothetical documents and only serves dense search, query2doc rewrites the query *text*, so
the same pseudo-document serves BM25, dense and hybrid retrieval; in hybrid search each side gets
its own rewrite (BM25 the repeated query, dense the ``[SEP]`` concatenation) and the candidates
are fused exactly as for a plain query.

The paper writes ``d'`` with 4 in-context examples from MS MARCO and ``text-davinci-003``; here
the prompt is zero-shot (SmolLM2-135M-Instruct follows instructions; the examples would cost
prompt tokens on a CPU) and decoding is greedy, so a query's expansion is reproducible.

Example:
    (Not run as a doctest: needs an index on disk and a causal LM.)
    >>> docs = pseudo_documents(["vitamin D and bone density"], generator)            # doctest: +SKIP
    >>> retriever = query2doc_retriever(index, "hybrid", docs)                         # doctest: +SKIP
    >>> retriever.search("vitamin D and bone density", k=10)                           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from indexes.errors import InputError
from indexes.filters import RowFilter
from rag.generation.sampling import SamplingConfig
from rag.retrievers import HybridRetriever, _Base


@dataclass(frozen=True)
class Query2docConfig:
    """query2doc settings.

    Attributes:
        repeats: ``n``, copies of the query before the pseudo-document in the BM25 query (the paper's 5).
        max_new_tokens: length limit of the pseudo-document (the paper's passages are ~128 tokens).
        prompt: the instruction, ``{question}`` replaced by the query (the paper's, without its examples).
        batch_size: queries whose pseudo-documents are generated together (one padded batch).
    """

    repeats: int = 5
    max_new_tokens: int = 128
    prompt: str = "Write a passage that answers the given query.\nQuery: {question}\nPassage:"
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise InputError(f"query2doc repeats the query at least once, got repeats={self.repeats}")


def sparse_query(query: str, document: str, repeats: int = 5) -> str:
    """``concat({q} × n, d')``: the BM25 query text."""
    return " ".join([query] * repeats + [document])


def dense_query(query: str, document: str, sep: str = " ") -> str:
    """``concat(q, [SEP], d')``: the dense query text (``sep``: the encoder's separator token, with spaces)."""
    return f"{query}{sep}{document}"


def pseudo_documents(queries: Sequence[str], generator, config: Query2docConfig = Query2docConfig()) -> dict[str, str]:
    """Greedy pseudo-documents ``{query: d'}``, generated ``config.batch_size`` queries at a time
    (:func:`rag.generation.batch.complete_batch`)."""
    from rag.generation.batch import complete_batch

    unique = list(dict.fromkeys(queries))
    sampling = SamplingConfig(max_new_tokens=config.max_new_tokens, temperature=0.0)
    out: dict[str, str] = {}
    for s in range(0, len(unique), config.batch_size):
        chunk = unique[s : s + config.batch_size]
        texts = complete_batch(generator, [config.prompt.format(question=q) for q in chunk], sampling)
        out.update(zip(chunk, texts))
    return out


class RewrittenQueries(_Base):
    """A scoring retriever searched with ``rewrite(query)`` in place of each query.

    Args:
        inner: a BM25 or dense retriever (anything with ``rank_batch``, ``rank_scoring`` and ``store``).
        rewrite: the query text to search with, per query.
    """

    def __init__(self, inner, rewrite: Callable[[str], str]) -> None:
        self.inner, self.rewrite, self.store = inner, rewrite, inner.store

    def rank_batch(self, queries: Sequence[str], depth: int, where: RowFilter | None = None):
        return self.inner.rank_batch([self.rewrite(q) for q in queries], depth, where)

    def rank_scoring(self, queries: Sequence[str], depth: int, where: RowFilter | None = None):
        return self.inner.rank_scoring([self.rewrite(q) for q in queries], depth, where)


def _separator(encoder) -> str:
    """`` [SEP] `` (the encoder tokenizer's separator, unwrapping caching encoders), else a space."""
    while not hasattr(encoder, "model") and hasattr(encoder, "encoder"):
        encoder = encoder.encoder  # rag.encoder_cache.CachingEncoder
    sep = getattr(getattr(getattr(encoder, "model", None), "tokenizer", None), "sep_token", None)
    return f" {sep} " if sep else " "


def query2doc_retriever(index, mode: str, documents: Mapping[str, str], config: Query2docConfig = Query2docConfig()):
    """``index``'s ``mode`` retriever searching with query2doc rewrites of the queries in ``documents``.

    Raises:
        InputError: a query has no pseudo-document, or ``mode`` is unknown.
    """

    def doc(q: str) -> str:
        if q not in documents:
            raise InputError(f"query2doc: no pseudo-document for query {q[:60]!r}")
        return documents[q]

    parts = {}  # first stages only: a reranker (the index's, if any) reorders the expanded ranking, by the plain query
    if mode in ("bm25", "hybrid"):
        parts["bm25"] = RewrittenQueries(index.retriever("bm25", rerank=False), lambda q: sparse_query(q, doc(q), config.repeats))
    if mode in ("dense", "hybrid"):
        sep = _separator(index.dense.encoder)
        parts["dense"] = RewrittenQueries(index.retriever("dense", rerank=False), lambda q: dense_query(q, doc(q), sep))
    if mode == "hybrid":
        parts["hybrid"] = HybridRetriever(parts["bm25"], parts["dense"], index.hybrid_config)
    if mode not in parts:
        raise InputError(f"unknown search mode {mode!r}: use bm25, dense or hybrid")
    reranker = getattr(index, "reranker", None)
    if reranker is None:
        return parts[mode]
    from rag.rerank import RerankingRetriever

    return RerankingRetriever(parts[mode], reranker)
