"""The fixed value sets of ``rag`` options, as ``Literal`` types.

An option typed by one of these is a choice: ``--help`` lists its values, and a value outside the
set is a usage error (exit 2) that names the option and the choices, before any work is done.
Each set is the library's own type where its module is already loaded at CLI start-up
(``rag.types``, ``indexes.manifest``); the others are written out here, because importing their
modules would load torch or slow ``rag --help`` down, and ``tests/rag/test_cli_choices.py`` checks
that each equals the library's.
"""

from __future__ import annotations

from typing import Literal

from indexes.manifest import BM25Variant
from rag.types import SearchMode

__all__ = ["BM25Variant", "CorpusFormat", "EvictionPolicy", "Fusion", "LogLevel", "ModelDType", "NegativeSource",
           "Positions", "RerankerLoss", "SearchMode", "SequenceDecoding", "Stemmer", "Stopwords", "StoreDType", "VectorBackend"]

CorpusFormat = Literal["auto", "beir", "jsonl", "csv", "tsv", "squad", "dir"]  # rag.corpus.CorpusFormat
VectorBackend = Literal["flat", "hnsw", "ivfpq", "milvus"]  # indexes.manifest.VectorBackendSpec.kind, or Milvus
Stemmer = Literal["english", "porter", "none"]  # indexes.manifest.AnalyzerSpec.stemmer
Stopwords = Literal["english", "none"]  # indexes.manifest.AnalyzerSpec.stopwords
ModelDType = Literal["float32", "float16", "bfloat16"]  # rag.generation.generator.DType
StoreDType = Literal["float16", "bfloat16", "float32"]  # indexes.kv_store.StoreDType
Positions = Literal["rerotate", "composite"]  # rag.generation.kv_blocks.Positions
Fusion = Literal["concat", "rag-sequence", "rag-token"]  # rag.generation.rag_fusion.Fusion
SequenceDecoding = Literal["thorough", "fast"]  # rag.generation.rag_fusion.SequenceDecoding
EvictionPolicy = Literal["h2o", "snapkv"]  # rag.generation.kv_evict.Policy
NegativeSource = Literal["bm25", "dense"]  # rag.training.negatives.NegativeConfig.source
RerankerLoss = Literal["bce", "lce"]  # rag.training.reranker.RerankerTrainConfig.loss
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]  # uvicorn.config.LOG_LEVELS
