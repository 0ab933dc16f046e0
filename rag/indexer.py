"""Building an index directory from a corpus: passages, BM25 statistics, dense vectors, manifest.

The build happens in a temporary sibling of the output directory, which replaces the output
only when everything succeeded (:func:`indexes.atomic.atomic_directory`): a failed or
interrupted build leaves the previous index intact and no half-written one. A rebuild replaces
only an index: an output folder that also holds files the index did not create (a user's notes,
a sub-folder) is refused before any work, never emptied (:mod:`indexes.layout`).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from indexes.atomic import atomic_directory, refuse_foreign
from indexes.bm25_store import BM25Data
from indexes.dense_store import build_faiss, write_faiss, write_vectors
from indexes.errors import InputError
from indexes.layout import index_owner
from indexes.manifest import MANIFEST_NAME, AnalyzerSpec, BM25Info, BM25Spec, ChunkingSpec, CorpusInfo, DenseInfo, FaissSpec, Manifest, WindowSpec
from indexes.passage_store import write_passages
from rag.analyzer import Analyzer
from rag.chunking import split_corpus
from rag.corpus import CorpusSpec, ReadReport, corpus_sha256, read_corpus
from rag.encoder import Encoder, EncoderConfig, passage_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexOptions:
    """Everything that decides what ``rag index`` writes. ``encoder=None`` builds no dense part."""

    corpus: CorpusSpec = CorpusSpec()
    chunking: ChunkingSpec = ChunkingSpec()
    analyzer: AnalyzerSpec = AnalyzerSpec()
    bm25: BM25Spec | None = BM25Spec()
    encoder: EncoderConfig | None = field(default_factory=EncoderConfig)
    faiss: FaissSpec = FaissSpec()
    window_overlap: int = 64  # tokens shared by consecutive encoder windows of a long passage (WindowSpec)
    progress: bool = True


@dataclass
class BuildStats:
    """Timings (seconds) and counts of one build, for logs and benchmarks."""

    documents: int = 0
    passages: int = 0
    windows: int = 0  # dense vectors (encoder windows); more than passages when some exceed the encoder's input
    skipped: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def _check_target(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_NAME).is_file())):
        raise InputError(f"{out} exists and is not an index; refusing to overwrite it (choose another --out)")
    refuse_foreign(out, index_owner(out))  # before the work: a rebuild never deletes a user's files


def build_index(corpus: str | Path, out: str | Path, options: IndexOptions = IndexOptions(),
                encoder: Encoder | None = None) -> tuple[Manifest, BuildStats]:
    """Index ``corpus`` into the directory ``out`` (replacing an existing index there).

    Args:
        corpus: corpus file or folder.
        out: index directory to create or replace.
        options: what to build.
        encoder: an already loaded encoder (default: load ``options.encoder``).

    Raises:
        InputError: unreadable or empty corpus, bad records, an ``out`` that is not an index.
    """
    corpus, out = Path(corpus), Path(out)
    if options.bm25 is None and options.encoder is None:
        raise InputError("nothing to build: --no-bm25 and --no-dense together leave an empty index")
    _check_target(out)
    stats = BuildStats()
    t0 = time.perf_counter()
    report = ReadReport()
    passages = list(split_corpus(read_corpus(corpus, options.corpus, report), options.chunking))
    # Rows in document-id order (windows of a document in order): row order is the tie-break of
    # every ranking, so ties, and the whole index, do not depend on the order of the corpus file.
    passages.sort(key=lambda p: p.doc_id)
    stats.documents, stats.passages, stats.skipped = report.documents, len(passages), report.skipped
    if not passages:
        raise InputError(f"{corpus}: empty corpus (no documents with text)")
    stats.seconds["read"] = time.perf_counter() - t0
    if options.encoder is not None and encoder is None:
        encoder = Encoder(options.encoder)
    texts = [passage_text(p.title, p.text) for p in passages]
    with atomic_directory(out, owned=index_owner(out)) as tmp:
        t = time.perf_counter()
        try:
            write_passages(tmp, passages)
        except sqlite3.IntegrityError:
            raise InputError(f"{corpus}: two passages share an id (a document id looks like a window id 'DOC#n')") from None
        stats.seconds["store"] = time.perf_counter() - t
        bm25_info = dense_info = None
        if options.bm25 is not None:
            t = time.perf_counter()
            analyze = Analyzer(options.analyzer)
            data = BM25Data.from_token_lists(analyze(x) for x in texts)
            data.write(tmp)
            bm25_info = BM25Info(analyzer=options.analyzer, params=options.bm25, vocabulary=len(data.vocab),
                                 avgdl=float(data.doc_lengths.mean()))
            stats.seconds["bm25"] = time.perf_counter() - t
        if encoder is not None:
            t = time.perf_counter()
            # Every passage is read whole: one vector per window of the encoder's input length (MaxP).
            windows = WindowSpec(max_tokens=encoder.spec().max_seq_length, overlap_tokens=options.window_overlap)
            vectors, passage_of_row = encoder.encode_passage_windows(texts, windows.overlap_tokens,
                                                                     progress=options.progress)  # (R, d), (R,)
            stats.windows = int(vectors.shape[0])
            stats.seconds["encode"] = time.perf_counter() - t
            t = time.perf_counter()
            write_vectors(tmp, vectors, passage_of_row)
            if options.faiss.kind != "flat":
                write_faiss(tmp, build_faiss(vectors, options.faiss))
            dense_info = DenseInfo(encoder=encoder.spec(), faiss=options.faiss, vectors=int(vectors.shape[0]),
                                   windows=windows, passage_backend=encoder.config.backend)
            stats.seconds["faiss"] = time.perf_counter() - t
        manifest = Manifest(
            corpus=CorpusInfo(source=str(corpus), sha256=corpus_sha256(corpus), documents=stats.documents,
                              passages=stats.passages, chunking=options.chunking),
            bm25=bm25_info, dense=dense_info)
        manifest.write(tmp)
    stats.seconds["total"] = time.perf_counter() - t0
    return manifest, stats
