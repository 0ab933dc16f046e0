"""Benchmark scripts: each prints its figures and writes its own section of docs/benchmarks.md.

Retrieval: ``retrieval`` (SciFact quality and speed), ``tune_hybrid`` (the fusion default, on
train queries), ``train_retriever`` (trained vs embedded encoder), ``query_backends`` (torch vs
ONNX query encoding), ``service_load`` (REST requests/s and latency), ``slow_clients`` (hostile clients: slow
headers, huge headers), ``analyzer`` (BM25 analyzer version 2 against version 1), ``live_updates`` (upserts against a
rebuild, unmerged segments against a compacted index, checksum cost). Generation: ``kv_cache``
(time to first token with cached passage states), ``block_attention_single_fact`` and
``fid_single_fact`` (learning proofs), ``lumen`` (question-time encoder cost). Answers: ``extractive``
(the extractive threshold, correctness rule and segmenter on SQuAD). Evaluation:
``ppi_simulation`` (coverage and width of the mean estimators). Helpers: ``report`` (writes one
section of the benchmarks page), ``squad_corpus`` (SQuAD paragraphs as a corpus).
"""
