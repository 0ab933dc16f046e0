"""Benchmark scripts: each prints its figures and writes its own section of docs/benchmarks.md.

Retrieval: ``retrieval`` (SciFact quality and speed), ``tune_hybrid`` (the fusion default, on
train queries), ``train_retriever`` (trained vs embedded encoder), ``rerank_scifact`` (hybrid + trained cross-encoder
reranker on SciFact and SQuAD), ``query_backends`` (torch vs
ONNX query encoding), ``service_load`` (REST requests/s and latency), ``service_upserts`` (searches while documents are upserted: failures,
latency against a no-write baseline, visibility delay), ``slow_clients`` (hostile clients: slow
headers, huge headers), ``analyzer`` (BM25 analyzer version 2 against version 1), ``live_updates`` (upserts against a
rebuild, unmerged segments against a compacted index, checksum cost, BM25 through the CLI),
``filter_recall`` (metadata filters on HNSW / IVF-PQ against exact flat), ``milvus_parity``
(SciFact through ``--backend milvus`` against the local FAISS index). Scale-out: ``scale_cost``
(bytes, build time and query latency vs corpus size), ``cache_budget`` (hit rate of the bounded KV
cache), ``ray_build`` (``rag index --ray`` against the single-process build). Generation: ``kv_cache``
(time to first token with cached passage states), ``answer_kv_states`` (``POST /answer`` with
``kv_cache``: the KV store opened per request vs once per commit), ``block_attention_single_fact`` and
``fid_single_fact`` (learning proofs), ``lumen`` (question-time encoder cost). Answers: ``extractive``
(the extractive threshold, correctness rule and segmenter on SQuAD). Evaluation:
``ppi_simulation`` (coverage and width of the mean estimators). Helpers: ``report`` (writes one
section of the benchmarks page), ``service_http`` (the keep-alive HTTP load clients and the served index of the
service benchmarks), ``squad_corpus`` (SQuAD paragraphs as a corpus), ``squad_split``
(SQuAD dev split by article, and the held-out question sample). Speed: ``bm25_scale`` (BM25 at
1M passages against bm25s), ``bm25_paths`` (compiled and numpy MaxScore against the full scan, bit for bit), ``passage_encoding`` (index-time encoding per backend), ``startup``
(one-shot ``rag search`` start-up). SmolLM2 (real model): ``smollm2_squad`` (answer quality, full
prefill vs cached KV), ``smollm2_ttft`` (time to first token), ``smollm2_finetune`` (block-attention
LoRA fine-tuning), ``smollm2_ppi`` (a PPI report on its answers), ``hyde_scifact`` (HyDE on SciFact),
``lecture_generation`` (RAG-Sequence/Token, dynamic block selection, KV retrieval vs eviction).
The lecture's systems: ``fido`` (FiDO decoder time per answer token against plain FiD),
``lecture_retrieval`` (decoder-LLM embeddings and query2doc on SciFact).
"""
