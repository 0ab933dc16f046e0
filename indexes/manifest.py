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
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from indexes.atomic import atomic_write_text, build_lock
from indexes.errors import IndexFormatError, IndexNotFoundError
from indexes.io_errors import storage_error
from indexes.metadata_types import Kind

#: Bumped whenever a reader of the previous version could misread a new index. 2: the data
#: files live in segments listed by the manifest (``indexes.commits``); 1: one set at the root.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST_NAME = "manifest.json"


class _Spec(BaseModel):
    # defer_build: a schema is built on first use, not at import (~0.4 s for all models on a 2-core VM)
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


#: Analyzer versions. 1: ``token_pattern`` matches (Python ``re``) of ``str.lower()`` text, as
#: built before versions were recorded (a manifest without one is version 1). 2: Unicode word
#: segmentation (UAX #29) and full case folding; see ``rag.analyzer``.
ANALYZER_VERSION = 2
V1_TOKEN_PATTERN = r"(?u)\b\w\w+\b"


class AnalyzerSpec(_Spec):
    """Text → terms for BM25. Each step can be switched off.

    ``version`` fixes what the steps mean (see ``rag.analyzer``), so an index is always queried
    with the analysis it was built with: one built before versions existed reads as version 1.
    """

    version: Literal[1, 2] = ANALYZER_VERSION
    normalize: Literal["NFKC", "NFC", "none"] = "NFKC"  # NFKC folds ligatures/full-width forms
    lowercase: bool = True  # version 2: Unicode case folding (ß → ss); version 1: str.lower()
    stopwords: Literal["english", "none"] = "english"
    stemmer: Literal["english", "porter", "none"] = "english"  # Snowball English (Porter2)
    # None: Unicode word segmentation (version 2). A pattern: its matches are the tokens; version 1
    # used r"(?u)\b\w\w+\b" (>=2 word characters, as scikit-learn and bm25s do).
    token_pattern: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _v1_pattern(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("version") == 1 and data.get("token_pattern") is None:
            data = {**data, "token_pattern": V1_TOKEN_PATTERN}  # version 1 always had a pattern
        return data

    @field_validator("token_pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return pattern


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
    pooling: Literal["prompteol", "echo", "mean"] | None = None  # a causal LM's pooling (model "llm:…"); None otherwise


class VectorBackendSpec(_Spec):
    """The vector search structure over the normalised vectors (inner product = cosine).

    ``library`` names the implementation of :class:`indexes.vector_store.VectorStore`: ``faiss``
    (files in the segments) or ``milvus`` (a Milvus collection named by :attr:`Manifest.engine`;
    exact ``FLAT`` search, so ``kind`` is ``flat``). ``kind``: ``flat`` (exact), ``hnsw`` or
    ``ivfpq`` (approximate, FAISS only).
    """

    library: Literal["faiss", "milvus"] = "faiss"
    kind: Literal["flat", "hnsw", "ivfpq"] = "flat"
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    ivf_nlist: int | None = None  # default: ~4·sqrt(n) lists
    pq_m: int | None = None  # default: dim/4 sub-quantizers (dim must be divisible)
    ivf_nprobe: int = 16


#: Deprecated alias of :class:`VectorBackendSpec` (the backend spec was called ``faiss`` before).
FaissSpec = VectorBackendSpec


class MilvusSpec(_Spec):
    """Where the engine part of a ``--backend milvus`` index lives (``indexes.milvus_store``).

    The token of a server is never recorded: it is read from ``RAG_MILVUS_TOKEN`` when connecting.
    """

    uri: str  # a Milvus Lite file (``/path/x.db``) or a server address (``http://host:19530``)
    collection: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")  # dense rows; BM25 rows in ``<collection>_bm25``
    # Commit whose BM25 weights the ``_bm25`` rows hold (they are rewritten when N, df or avgdl
    # change); a reader of an older commit gets an error asking it to reopen, never stale scores.
    bm25_epoch: int = 0


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

    @model_validator(mode="before")
    @classmethod
    def _unversioned_analyzer_is_v1(cls, data: Any) -> Any:
        # Indexes built before the analyzer recorded its version were analyzed by version 1;
        # they keep it, so their queries are analyzed as their passages were.
        analyzer = data.get("analyzer") if isinstance(data, dict) else None
        if isinstance(analyzer, dict) and "version" not in analyzer:
            data = {**data, "analyzer": {**analyzer, "version": 1}}
        return data


class WindowSpec(_Spec):
    """How passages longer than the encoder's input were encoded: token windows, scored by MaxP.

    ``vectors.npy`` then holds one row per window and ``vector_passages.npy`` the passage row of
    each (non-decreasing); a passage scores as its best window (Dai & Callan, SIGIR 2019).
    """

    max_tokens: int  # the encoder's max_seq_length: every window fits it, prefix and special tokens included
    overlap_tokens: int = Field(64, ge=0)  # a sentence of <= 64 pieces cut by a boundary is whole in one window
    pooling: Literal["max"] = "max"


class DenseInfo(_Spec):
    encoder: EncoderSpec
    backend: VectorBackendSpec
    vectors: int  # rows of vectors.npy: passages, or windows when ``windows`` is set
    windows: WindowSpec | None = None  # None: one vector per passage (indexes built before windowing)
    # How the passages were run through the encoder (same model, same vectors to ~1e-6 for onnx,
    # int8-quantised for onnx-int8). None: not recorded (indexes built before; torch).
    passage_backend: Literal["torch", "onnx", "onnx-int8"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _faiss_is_backend(cls, data: Any) -> Any:
        # Manifests (and callers) from before the backend spec name the field ``faiss``.
        if isinstance(data, dict) and "faiss" in data and "backend" not in data:
            data = {k: v for k, v in data.items() if k != "faiss"} | {"backend": data["faiss"]}
        return data

    @property
    def faiss(self) -> VectorBackendSpec:
        """Deprecated alias of :attr:`backend`."""
        return self.backend


class SegmentInfo(_Spec):
    """One immutable segment of a commit (``indexes.commits``): its folder, counts, deletions, checksums.

    ``name`` is the folder relative to the index (``"."``: the files at the root, as format 1
    wrote them). ``deleted`` is the ``.npy`` of its deleted passage rows as of this commit.
    """

    name: str
    passages: int  # rows, deleted ones included
    vectors: int = 0  # dense rows (windows)
    deleted: str | None = None
    n_deleted: int = 0
    files: dict[str, str] = Field(default_factory=dict)  # file name -> sha256 (hex)


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
    generation: int = 0  # commit number; 0: a format-1 index (one unnumbered commit)
    segments: tuple[SegmentInfo, ...] = ()  # empty: format 1, the files are at the root
    engine: MilvusSpec | None = None  # None: every part is in the segments' files
    # The types each metadata field holds, checked on every upsert (``indexes.metadata_types``).
    # None: not recorded (indexes built before the record; derived from the passages at the first upsert).
    metadata_fields: dict[str, tuple[Kind, ...]] | None = None

    def write(self, directory: str | Path) -> None:
        """Write ``manifest.json`` into ``directory`` atomically."""
        atomic_write_text(Path(directory) / MANIFEST_NAME, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def read(cls, directory: str | Path) -> Manifest:
        """Read and validate ``directory/manifest.json``.

        Raises:
            IndexNotFoundError: the directory or its manifest does not exist.
            IndexFormatError: the manifest is damaged or of an unknown format version.
            StorageError: the file system refused the read (permissions).
        """
        path = Path(directory) / MANIFEST_NAME
        if not Path(directory).is_dir():
            raise IndexNotFoundError(f"index directory not found: {directory}")
        if not path.is_file():
            raise IndexNotFoundError(f"{directory} is not an index (no {MANIFEST_NAME}); build one with `rag index`")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise storage_error(path, exc, "read") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexFormatError(f"{path}: damaged manifest ({exc}); rebuild the index with `rag index`") from None
        version = raw.get("format_version") if isinstance(raw, dict) else None
        if version not in READABLE_VERSIONS:
            raise IndexFormatError(
                f"{path}: index format version {version!r}, this program reads versions {READABLE_VERSIONS}; rebuild the index with `rag index`"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise IndexFormatError(f"{path}: invalid manifest field {where!r}: {first['msg']}; restore it or rebuild the index "
                                   "with `rag index`") from None


def record_cache(index_dir: str | Path, info: CacheInfo) -> CacheInfo:
    """Add ``info`` to the index's ``caches`` (replacing the entry with the same key), under the
    index's build lock, so concurrent cache builds and index builds never lose each other's writes.
    An entry the manifest already holds as it is writes nothing (no new commit for a no-op, e.g. a
    ``rag cache build`` that found every passage stored).

    Raises:
        IndexFormatError: the store ``info.path`` is not in the index (it was rebuilt meanwhile).
    """
    index_dir = Path(index_dir)
    with build_lock(index_dir, wait=True):  # held only for this read-modify-write
        if not (index_dir / info.path).exists():
            raise IndexFormatError(f"{index_dir / info.path}: the cache store is gone (the index was rebuilt while "
                                   "it was built); build the cache again")
        manifest = Manifest.read(index_dir)
        if info in manifest.caches:
            return info
        caches = tuple(c for c in manifest.caches if c.key != info.key) + (info,)
        if not manifest.segments:  # format 1: one unnumbered commit
            manifest.model_copy(update={"caches": caches}).write(index_dir)
            return info
        from indexes.commits import collect_garbage, publish  # format 2: a new commit; readers keep theirs

        current = manifest.model_copy(update={"caches": caches, "generation": manifest.generation + 1})
        publish(index_dir, current)
        collect_garbage(index_dir, current)
    return info
