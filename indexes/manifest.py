"""``manifest.json``: what an index directory holds and exactly how each part was made.

The manifest is the contract between the offline builder and every reader. It records the
format version, the corpus hash and counts, the analyzer and BM25 parameters, the dense encoder
(id, revision, dimension, prefixes) and FAISS structure, and any cached generator states. A
reader refuses an index whose ``format_version`` it does not know instead of guessing.

The spec models here are also the typed configuration objects used by ``rag/`` (one definition,
immutable after construction), so what is written is exactly what was used.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from indexes.atomic import atomic_write_text, build_lock
from indexes.errors import IndexFormatError, IndexNotFoundError

#: Bumped whenever a reader of the previous version could misread a new index.
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AnalyzerSpec(_Spec):
    """Text → terms for BM25. Each step can be switched off."""

    normalize: Literal["NFKC", "NFC", "none"] = "NFKC"  # NFKC folds ligatures/full-width forms
    lowercase: bool = True
    stopwords: Literal["english", "none"] = "english"
    stemmer: Literal["english", "porter", "none"] = "english"  # Snowball English (Porter2)
    # Tokens of >=2 word characters, as scikit-learn and bm25s do; single letters carry no signal.
    token_pattern: str = r"(?u)\b\w\w+\b"


BM25Variant = Literal["lucene", "robertson", "atire", "bm25l", "bm25+", "okapi"]


class BM25Spec(_Spec):
    """BM25 scoring parameters (Kamphuis et al., ECIR 2020, for the variants)."""

    variant: BM25Variant = "lucene"
    k1: float = Field(0.9, gt=0)  # Anserini/Pyserini BEIR default
    b: float = Field(0.4, ge=0, le=1)  # Anserini/Pyserini BEIR default
    delta: float = Field(0.5, ge=0)  # BM25L's δ (0.5) ; BM25+ uses δ=1 by convention, set explicitly
    epsilon: float = Field(0.25, ge=0)  # rank-bm25 BM25Okapi's floor for negative idf


class ChunkingSpec(_Spec):
    """How documents become passages: windows of whitespace tokens with overlap."""

    max_words: int = Field(512, gt=0)  # SciFact: 99.3% of abstracts stay whole
    overlap_words: int = Field(64, ge=0)


class EncoderSpec(_Spec):
    """The bi-encoder that produced the vectors; queries must be encoded the same way."""

    model: str  # "embedded:all-MiniLM-L6-v2", an HF model id, or a local path
    revision: str | None = None  # commit hash or weights sha256 when known
    dim: int
    query_prefix: str = ""
    passage_prefix: str = ""
    max_seq_length: int | None = None
    normalize: bool = True


class FaissSpec(_Spec):
    """FAISS structure over the normalised vectors (inner product = cosine)."""

    kind: Literal["flat", "hnsw", "ivfpq"] = "flat"
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    ivf_nlist: int | None = None  # default: ~4·sqrt(n) lists
    pq_m: int | None = None  # default: dim/4 sub-quantizers (dim must be divisible)
    ivf_nprobe: int = 16


class CorpusInfo(_Spec):
    source: str
    sha256: str
    documents: int
    passages: int
    chunking: ChunkingSpec


class BM25Info(_Spec):
    analyzer: AnalyzerSpec
    params: BM25Spec
    vocabulary: int
    avgdl: float


class DenseInfo(_Spec):
    encoder: EncoderSpec
    faiss: FaissSpec
    vectors: int


class CacheInfo(_Spec):
    """A store of precomputed generator states (KV blocks, LUMEN memory) inside the index."""

    kind: Literal["kv", "lumen"]
    path: str  # relative to the index directory
    model: str
    revision: str | None = None
    key: str  # hash of everything the states depend on (template, live layers, dtype, ...)
    dtype: str
    passages: int


class Manifest(_Spec):
    format_version: int = FORMAT_VERSION
    created_at: str = Field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    corpus: CorpusInfo
    bm25: BM25Info | None = None
    dense: DenseInfo | None = None
    caches: tuple[CacheInfo, ...] = ()

    def write(self, directory: str | Path) -> None:
        """Write ``manifest.json`` into ``directory`` atomically."""
        atomic_write_text(Path(directory) / MANIFEST_NAME, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def read(cls, directory: str | Path) -> Manifest:
        """Read and validate ``directory/manifest.json``.

        Raises:
            IndexNotFoundError: the directory or its manifest does not exist.
            IndexFormatError: the manifest is damaged or of an unknown format version.
        """
        path = Path(directory) / MANIFEST_NAME
        if not Path(directory).is_dir():
            raise IndexNotFoundError(f"index directory not found: {directory}")
        if not path.is_file():
            raise IndexNotFoundError(f"{directory} is not an index (no {MANIFEST_NAME}); build one with `rag index`")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexFormatError(f"{path}: unreadable manifest ({exc})") from None
        version = raw.get("format_version") if isinstance(raw, dict) else None
        if version != FORMAT_VERSION:
            raise IndexFormatError(
                f"{path}: index format version {version!r}, this program reads version {FORMAT_VERSION}; rebuild the index with `rag index`"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise IndexFormatError(f"{path}: invalid manifest field {where!r}: {first['msg']}") from None


def record_cache(index_dir: str | Path, info: CacheInfo) -> CacheInfo:
    """Add ``info`` to the index's ``caches`` (replacing the entry with the same key), under the
    index's build lock, so concurrent cache builds and index builds never lose each other's writes.

    Raises:
        IndexFormatError: the store ``info.path`` is not in the index (it was rebuilt meanwhile).
    """
    index_dir = Path(index_dir)
    with build_lock(index_dir, wait=True):  # held only for this read-modify-write
        if not (index_dir / info.path).exists():
            raise IndexFormatError(f"{index_dir / info.path}: the cache store is gone (the index was rebuilt while "
                                   "it was built); build the cache again")
        manifest = Manifest.read(index_dir)
        caches = tuple(c for c in manifest.caches if c.key != info.key) + (info,)
        manifest.model_copy(update={"caches": caches}).write(index_dir)
    return info
