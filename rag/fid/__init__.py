"""Fusion-in-Decoder readers (Izacard & Grave, EACL 2021) and LUMEN passage memory (de Jong et al., ICML 2023).

Modules:
    inputs: the token layout, one ``[question ; passage]`` row per passage.
    reader: the FiD reader over a T5-family encoder-decoder.
    lumen: the LUMEN encoder (memory layers precomputed, live layers at question time).
    fido: the FiDO decoder (grouped-query cross-attention in every K-th layer).
    memory: precompute LUMEN memory into an index and read it back.
    answer: answer a question from retrieved hits, optionally with stored memory.
    train: train a reader (or its LUMEN variant) on QA JSONL.
    task_tokenizer: a small tokenizer trained on the fly (digits one per token).
"""
