"""Building an index directory from a corpus: passages, BM25 statistics, dense vectors, manifest.

A new index is built in a temporary sibling of the output directory, renamed into place only
when everything succeeded (:func:`indexes.atomic.atomic_directory`). Over an existing index the
build writes one new segment and publishes it as the next commit (:mod:`indexes.commits`): the
folder holds a complete index at every instant, and readers keep the commit they opened.
A rebuild replaces only an index: an output folder that also holds files the index did not create
(a user's notes, a sub-folder) is refused before any work, never emptied (:mod:`indexes.layout`).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from indexes.atomic import atomic_directory, refuse_foreign, build_lock
from indexes.bm25_store import BM25Data
from indexes.commits import collect_garbage, new_segment, publish, segment_checksums
from indexes.errors import IndexFormatError, InputError
from indexes.layout import index_owner
from indexes.manifest import (MANIFEST_NAME, AnalyzerSpec, BM25Info, BM25Spec, ChunkingSpec, CorpusInfo, DenseInfo, Manifest,
                              MilvusSpec, SegmentInfo, VectorBackendSpec, WindowSpec)
from indexes.metadata_types import field_types
from indexes.passage_store import Passage, write_passages
from indexes.vector_store import write_vector_store
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
    backend: VectorBackendSpec = VectorBackendSpec()  # the vector search structure (was ``faiss``)
    engine: MilvusSpec | None = None  # --backend milvus: where the vectors and BM25 weights go
    window_overlap: int = 64  # tokens shared by consecutive encoder windows of a long passage (WindowSpec)
    progress: bool = True


@dataclass
class BuildStats:
    """Timings (seconds) and counts of one build, for logs and benchmarks."""

    documents: int = 0
    passages: int = 0
    windows: int = 0  # dense vectors (encoder windows); more than passages when some exceed the encoder's input
    skipped: int = 0
    first_skipped: str | None = None  # the first skipped record: "file:line: why"
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
    stats.first_skipped = report.problems[0] if report.problems else None
    if not passages:
        raise InputError(f"{corpus}: empty corpus (no documents with text)")
    stats.seconds["read"] = time.perf_counter() - t0
    engine = _engine(options, out)
    if options.encoder is not None and encoder is None:
        encoder = Encoder(options.encoder)

    def write(folder: Path, generation: int) -> Manifest:
        name = f"s{generation:06d}"
        if engine is not None:  # a full build starts from empty collections (its own, or new ones)
            engine.ensure(encoder.dim if encoder is not None else None, options.bm25 is not None, str(out.resolve()), fresh=True)
        with new_segment(folder, name) as seg:
            data, dense_info = write_segment(seg, passages, options.analyzer if options.bm25 else None, encoder,
                                             options.window_overlap, options.backend, options.progress, stats,
                                             where=str(corpus), engine=engine)
        segment = SegmentInfo(name=f"segments/{name}", passages=len(passages), vectors=stats.windows,
                              files=segment_checksums(folder / "segments" / name))
        bm25_info = None if data is None or options.bm25 is None else BM25Info(
            analyzer=options.analyzer, params=options.bm25, vocabulary=len(data.vocab), avgdl=float(data.doc_lengths.mean()))
        manifest = Manifest(
            corpus=CorpusInfo(source=str(corpus), sha256=corpus_sha256(corpus), documents=stats.documents,
                              passages=stats.passages, chunking=options.chunking),
            bm25=bm25_info, dense=dense_info, generation=generation, segments=(segment,),
            metadata_fields=field_types(p.metadata for p in passages),
            engine=options.engine.model_copy(update={"bm25_epoch": generation}) if options.engine else None)
        if engine is not None and bm25_info is not None:
            from indexes.segmented import CommitView
            from rag.milvus_bm25 import sync_bm25

            view = CommitView(folder, manifest, verify=False)
            view._engine = engine
            try:
                sync_bm25(view, options.bm25, generation)
            finally:
                view.close()
        publish(folder, manifest)
        return manifest

    previous = _current(out)
    if previous is None:
        with atomic_directory(out, owned=index_owner(out)) as tmp:
            manifest = write(tmp, 1)
    else:
        with build_lock(out):
            previous = _current(out) or previous
            manifest = write(out, previous.generation + 1)
            collect_garbage(out, manifest, previous, sweep=True)
    stats.seconds["total"] = time.perf_counter() - t0
    return manifest, stats


def _engine(options: IndexOptions, out: Path):
    """The Milvus collections of a ``--backend milvus`` build (``None`` for files), checked before any work."""
    if (options.backend.library == "milvus") != (options.engine is not None):
        raise InputError("--backend milvus and --uri go together")
    if options.engine is None:
        return None
    from indexes.milvus_store import MilvusCollections

    if options.bm25 is not None:
        from rag.milvus_bm25 import check_variant

        check_variant(options.bm25)
    return MilvusCollections(options.engine)


def _current(out: Path) -> Manifest | None:
    """The index at ``out`` to publish over, or ``None`` to build a new folder (none, or a damaged one)."""
    if not (out / MANIFEST_NAME).is_file():
        return None
    try:
        return Manifest.read(out)
    except IndexFormatError:
        return None  # replaced whole, as before commits existed


def write_segment(folder: Path, passages: list[Passage], analyzer: AnalyzerSpec | None, encoder: Encoder | None,
                  window_overlap: int, backend: VectorBackendSpec, progress: bool, stats: BuildStats,
                  where: str = "corpus", engine=None) -> tuple[BM25Data | None, DenseInfo | None]:
    """Write the passages (in row order), their BM25 counts and vectors into a segment ``folder``
    (the vectors into ``engine``, a :class:`indexes.milvus_store.MilvusCollections`, when given).

    Returns:
        The BM25 counts (``None`` without an analyzer) and the dense part's manifest record.

    Raises:
        InputError: two passages share an id.
    """
    texts = [passage_text(p.title, p.text) for p in passages]
    t = time.perf_counter()
    try:
        write_passages(folder, passages)
    except sqlite3.IntegrityError:
        raise InputError(f"{where}: two passages share an id (a document id looks like a window id 'DOC#n')") from None
    stats.seconds["store"] = time.perf_counter() - t
    data = dense_info = None
    if analyzer is not None:
        t = time.perf_counter()
        analyze = Analyzer(analyzer)
        data = BM25Data.from_token_lists(analyze(x) for x in texts)
        data.write(folder)
        stats.seconds["bm25"] = time.perf_counter() - t
    if encoder is not None:
        t = time.perf_counter()
        # Every passage is read whole: one vector per window of the encoder's input length (MaxP).
        windows = WindowSpec(max_tokens=encoder.spec().max_seq_length, overlap_tokens=window_overlap)
        vectors, passage_of_row = encoder.encode_passage_windows(texts, windows.overlap_tokens, progress=progress)  # (R, d), (R,)
        stats.windows = int(vectors.shape[0])
        stats.seconds["encode"] = time.perf_counter() - t
        t = time.perf_counter()
        if engine is not None:
            from indexes.milvus_store import segment_number

            engine.insert_vectors(segment_number(folder.name), vectors, passage_of_row, [p.metadata for p in passages])
        else:
            write_vector_store(folder, vectors, passage_of_row, backend)
        dense_info = DenseInfo(encoder=encoder.spec(), backend=backend, vectors=int(vectors.shape[0]), windows=windows,
                               passage_backend=getattr(getattr(encoder, "config", None), "backend", None))  # None: not an Encoder
        stats.seconds["faiss"] = time.perf_counter() - t
    return data, dense_info
