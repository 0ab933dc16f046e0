"""Models and pipeline: text in, what the indexes store, and answers out.

Modules:
    analyzer: text → BM25 terms (normalisation, lowercasing, stopwords, stemming).
    bm25: the BM25 variants of Kamphuis et al. as pure functions, and the vectorised scorer.
    fusion: reciprocal rank fusion and convex combination of normalised scores.
    retrievers: BM25, dense and hybrid retrievers (a query-side model plus an index part).
    types: the protocol between pieces (``Hit``, ``Retriever``).
    encoder: the bi-encoder (sentence-transformers) → L2-normalised vectors.
    onnx_backend: ONNX Runtime execution of the bi-encoder for fast CPU queries.
    corpus: corpus readers (BEIR JSONL, generic JSONL, CSV/TSV, folders of text).
    chunking: documents → overlapping passages.
    indexer: build an index directory; index: open one and get retrievers over it.
    batch: a set of queries → a TREC run.
    hyde: HyDE search with hypothetical documents from a generator.
    pipeline: ``ask``: retrieve, then answer with numbered citations.

Sub-packages: ``generation`` (decoder-only generators and passage KV caches), ``fid`` (FiD
readers and LUMEN memory), ``training`` (retriever, query-encoder and generator trainers),
``compat`` (the adapters over transformers' and sentence-transformers' internals) and ``cli``
(the ``rag`` command, the composition root). Importing any of them loads no model.
"""
