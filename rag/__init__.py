"""Models and pipeline: text in, what the indexes store, and answers out.

Modules:
    analyzer: text → BM25 terms (Unicode word segmentation, case folding, stopwords, stemming).
    highlight: where a query's terms occur in a passage, as the analyzer matched them.
    bm25: the BM25 variants of Kamphuis et al. as pure functions, and the vectorised scorer.
    bm25_pruning: exact top-k by MaxScore dynamic pruning over per-term score bounds.
    bm25_kernels: the same exact top-k compiled with numba (block-max MaxScore; the ``fast`` extra);
        bm25_blocks: the block and sub-block maxima it prunes with, built once per index.
    milvus_bm25: BM25 on Milvus with our exact weights (passage sparse vectors, query term counts).
    ray_pipeline: index and cache builds as Ray Data pipelines (an actor pool of encoders).
    fusion: reciprocal rank fusion and convex combination of normalised scores.
    retrievers: BM25, dense and hybrid retrievers (a query-side model plus an index part).
    protocols: the declared seams ``ScoringRetriever`` and ``QueryEncoder``.
    live: upsert and delete documents, compact segments (one commit each).
    live_report: what one change did (``UpdateReport``): the CLI summary line and the REST response.
    live_caches: passage KV states and LUMEN memory carried into each new commit (caches follow the documents).
    types: the protocol between pieces (``Hit``, ``Retriever``).
    encoder: the bi-encoder → L2-normalised vectors; its backend (auto: onnx-int8 on CPU, torch on GPU).
    encoder_cache: an encoder that computes each text once.
    llm_embed: sentence embeddings from a causal LM (PromptEOL, Echo, mean pooling) for ``--encoder llm:MODEL``.
    windows: token windows that fit a bi-encoder's input (long passages are never truncated).
    query2doc: query expansion with a generated pseudo-document, for BM25, dense and hybrid search.
    models: one place that finds, identifies and loads every model; model_import: named local
        models and GGUF files converted once into Hugging Face folders.
    onnx_backend: ONNX Runtime execution of the bi-encoder for fast CPU queries and passages;
        onnx_fuse: its fused export (Attention, SkipLayerNorm, BiasGelu) before int8 quantisation.
    onnx_cache: the on-disk cache of exported ONNX encoder graphs (the export is paid once per model).
    onnx_fast: the torch-free start-up path of a cached ONNX query encoder (onnxruntime + tokenizers).
    onnx_pool: passage encoding in several ONNX Runtime worker processes.
    corpus: corpus readers (BEIR JSONL, generic JSONL, CSV/TSV, SQuAD JSON, folders of text).
    textfile: decoding the user's text files (BOM, bad UTF-8, lone surrogates) in one place.
    tabular: CSV and TSV records with exact line numbers; squad: SQuAD JSON as corpus and queries.
    queries: query, qrels and TREC run formats; questions: question files for batch answering.
    chunking: documents → overlapping passages.
    indexer: build an index directory; index: open one and get retrievers over it.
    batch: a set of queries → a TREC run.
    rerank: a cross-encoder reranking the first stage's top N passages; rerank_interpolation: its
        score interpolated with the first stage's (min-max per query, weight α).
    hyde: HyDE search with hypothetical documents from a generator.
    pipeline: ``ask``: retrieve, then answer with numbered citations (one question or a batch).
    extractive: extractive answers (the closest sentences, cited, or no answer).
    streaming: an answer as a stream of text pieces, then the whole answer.
    wording: counts in summary lines (``1 commit``, ``2 commits``).

Sub-packages: ``generation`` (decoder-only generators and passage KV caches), ``fid`` (FiD
readers and LUMEN memory), ``training`` (retriever, query-encoder, reranker and generator trainers),
``compat`` (the adapters over transformers' and sentence-transformers' internals) and ``cli``
(the ``rag`` command, the composition root). Importing any of them loads no model.
"""
