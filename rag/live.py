"""Changing an index without a rebuild: upsert and delete documents, compact segments.

Each operation is one commit (:mod:`indexes.commits`): new documents go into a new segment
(passages, BM25 raw counts, vectors), the passages of replaced or deleted documents become
tombstones, and the next numbered manifest is published by one atomic rename. Readers that
opened an earlier commit keep it. Because BM25 is stored as raw counts and every collection
statistic (``N``, ``df``, ``avgdl``) is recomputed over live passages when a commit is opened,
scores after any sequence of operations equal those of a fresh ``rag index`` of the resulting
corpus; :func:`compact_index` (merge segments, purge tombstones) is never needed for that.

An upsert replaces a document whole: all passages of an existing document with the same id go;
a document identical to the stored one (same passages: ids, titles, texts, metadata) is counted
``unchanged`` and not rewritten (as Elasticsearch's ``detect_noop``). A change that changes nothing
writes no commit and leaves the index folder byte-identical.
Its documents' metadata must keep the types the index records for each field
(:mod:`indexes.metadata_types`): a ``"2020"`` where the index holds ``year`` as numbers is refused
before anything is written, since no filter on ``year`` would ever find that document.
Cached generator states (``rag cache build``/``rag cache lumen``) follow the documents into each
commit (:mod:`rag.live_caches`): deleted passages' states are dropped, the others kept, and added
passages' states computed when the models are given (``fillers``).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from indexes.atomic import atomic_write_bytes, build_lock
from indexes.commits import DELETES_DIR, collect_garbage, fault_point, new_segment, publish, segment_checksums, segments_of
from indexes.errors import InputError
from indexes.manifest import BM25Info, CorpusInfo, Manifest, SegmentInfo, VectorBackendSpec
from indexes.metadata_types import FieldTypes, check_field_types, field_types, record_field
from indexes.milvus_store import MilvusCollections, segment_number
from indexes.passage_store import Passage, PassageStore, write_passages
from indexes.segmented import CommitView
from indexes.vector_store import write_vector_store
from rag.chunking import split_corpus
from rag.corpus import CorpusSpec, Document, ReadReport, read_corpus
from rag.encoder import Encoder, EncoderConfig
from rag.indexer import BuildStats, write_segment
from rag.live_caches import Filler, carry_caches
from rag.live_report import UpdateReport
from rag.wording import counted


def _folder_bytes(directory: Path) -> int:
    """Bytes of every file under ``directory``."""
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


def _base(seg: SegmentInfo) -> str:
    return "root" if seg.name == "." else Path(seg.name).name


def _doc_rows(directory: Path, seg: SegmentInfo, dead: np.ndarray, doc_ids: Iterable[str]) -> dict[str, list[int]]:
    """Live rows of each of ``doc_ids`` found in segment ``seg``."""
    store = PassageStore(directory / seg.name)
    try:
        found = store.rows_of_documents(list(doc_ids))
    finally:
        store.close()
    dead_set = set(dead.tolist())
    return {d: [r for r in rows if r not in dead_set] for d, rows in found.items() if any(r not in dead_set for r in rows)}


def _tombstone(directory: Path, current: Manifest, generation: int, doc_ids: Iterable[str],
               view: CommitView) -> tuple[list[SegmentInfo], set[str], int]:
    """Segments with the live passages of ``doc_ids`` marked deleted → (segments, ids found, passages)."""
    wanted = list(dict.fromkeys(doc_ids))
    out, found, n = [], set(), 0
    for seg, dead in zip(view.segments, view.dead):
        rows = _doc_rows(directory, seg, dead, wanted) if wanted else {}
        if not rows:
            out.append(seg)
            continue
        found.update(rows)
        new = np.union1d(dead, np.asarray([r for rs in rows.values() for r in rs], dtype=np.int64))
        n += new.size - dead.size
        if new.size == seg.passages:
            continue  # nothing live left: the segment leaves the commit
        rel = f"{DELETES_DIR}/{_base(seg)}-{generation:06d}.npy"
        buf = io.BytesIO()
        np.save(buf, new, allow_pickle=False)
        fault_point("tombstones-before-write")
        (directory / DELETES_DIR).mkdir(exist_ok=True)  # only now: a change that deletes nothing leaves no trace
        atomic_write_bytes(directory / rel, buf.getvalue())
        out.append(seg.model_copy(update={"deleted": rel, "n_deleted": int(new.size)}))
    return out, found, n


def _finish(directory: Path, current: Manifest, generation: int, segments: list[SegmentInfo], note: str,
            report: UpdateReport, added: set[str] = frozenset(), fillers: Sequence[Filler] = (),
            metadata_fields: FieldTypes | None = None) -> Manifest:
    """Compute the live statistics of the new commit, carry its caches (``added``: ids of passages
    with new text), publish it, and remove what no reader holds. ``metadata_fields``: the new
    commit's record of field types (``None``: the current one's)."""
    if not segments:
        raise InputError(f"{directory}: this change would leave the index empty; delete the folder instead")
    fields = current.metadata_fields if metadata_fields is None else metadata_fields
    draft = current.model_copy(update={"generation": generation, "segments": tuple(segments), "caches": (),
                                       "format_version": 2, "metadata_fields": fields})
    view = CommitView(directory, draft, verify=False)  # files just written and checksummed
    caches: tuple = ()
    try:
        if current.caches:
            passages = list(view.store.iter_all())
            doc_ids = [p.doc_id for p in passages]
            old = CommitView(directory, current, verify=False)
            try:
                old_ids = old.store.ids()
            finally:
                old.close()
            if doc_ids:
                caches, report.notes = carry_caches(directory, current.caches, generation, old_ids, passages, set(added), fillers)
        else:
            doc_ids = [p.doc_id for p in view.store.iter_all()] if not view.simple else view.store.doc_ids()
        if not doc_ids:
            raise InputError(f"{directory}: this change would leave the index empty; delete the folder instead")
        c = current.corpus
        sha = hashlib.sha256(f"{c.sha256}\n{note}".encode()).hexdigest()
        corpus = CorpusInfo(source=c.source, sha256=sha, documents=len(set(doc_ids)), passages=len(doc_ids), chunking=c.chunking)
        bm25 = dense = None
        engine = current.engine
        if current.bm25 is not None:
            data = view.bm25()
            bm25 = BM25Info(analyzer=current.bm25.analyzer, params=current.bm25.params, vocabulary=len(data.vocab),
                            avgdl=float(data.doc_lengths.mean()))
            if engine is not None:  # N, df and avgdl changed: every live passage's weights are rewritten
                from rag.milvus_bm25 import sync_bm25

                sync_bm25(view, current.bm25.params, generation)
                engine = engine.model_copy(update={"bm25_epoch": generation})
        if current.dense is not None:
            n_vectors = segments[0].vectors if view.simple else view.live_vectors()
            dense = current.dense.model_copy(update={"vectors": n_vectors})
    finally:
        view.close()
    manifest = draft.model_copy(update={"corpus": corpus, "bm25": bm25, "dense": dense, "caches": caches,
                                        "engine": engine})
    manifest = Manifest.model_validate(manifest.model_dump())
    publish(directory, manifest)
    collect_garbage(directory, manifest, current)
    report.generation, report.segments, report.committed = generation, len(segments), True
    return manifest


def add_documents(index: str | Path, corpus: str | Path, spec: CorpusSpec = CorpusSpec(), *,
                  encoder: Encoder | None = None, device: str | None = None, progress: bool = True,
                  fillers: Sequence[Filler] = ()) -> UpdateReport:
    """Upsert the documents of ``corpus`` (any ``rag index`` input) into the index at ``index``.

    See :func:`upsert_documents`; the report also counts the records ``spec.skip_bad_lines`` skipped.

    Raises:
        InputError: bad corpus records (as ``rag index``), and what :func:`upsert_documents` refuses.
        BuildInProgressError: another process is changing the index.
    """
    corpus = Path(corpus)
    read = ReadReport()
    report = upsert_documents(index, read_corpus(corpus, spec, read), where=str(corpus), encoder=encoder, device=device,
                              progress=progress, fillers=fillers)
    report.skipped, report.first_skipped = read.skipped, (read.problems[0] if read.problems else None)
    return report


def upsert_documents(index: str | Path, documents: Iterable[Document], *, where: str = "documents",
                     locate: Callable[[str, str], str] = record_field, encoder: Encoder | None = None,
                     device: str | None = None, progress: bool = True, fillers: Sequence[Filler] = ()) -> UpdateReport:
    """Upsert ``documents`` into the index at ``index`` in one commit (read under the index's build lock).

    Each document's metadata is checked against the types the index records for its fields
    (:mod:`indexes.metadata_types`) before anything is written: a value of a type its field does not
    hold refuses the whole change, naming the document (``Document.where``) and the field.

    Args:
        index: the index directory.
        documents: the documents; an existing document with the same id is replaced whole.
        where: what the documents are, in errors (the corpus file; ``documents`` for a request).
        locate: ``(document's where, field) -> subject`` of a metadata type error
            (:func:`indexes.metadata_types.record_field`; REST names a JSON path).
        encoder: the index's passage encoder (default: loaded from its manifest).
        device: where to load that encoder.
        progress: show encoding progress on stderr.
        fillers: loaded models that compute the added passages' cached states (KV blocks, LUMEN
            memory) for the index's caches of their key (:mod:`rag.live_caches`).

    Raises:
        InputError: no documents, a metadata value of a type its field does not hold, an index
            whose dense part predates windows (rebuild it).
        BuildInProgressError: another process is changing the index.
    """
    t0, index = time.perf_counter(), Path(index)
    report = UpdateReport()
    with build_lock(index):
        current = Manifest.read(index)
        docs = list(documents)
        passages = sorted(split_corpus(docs, current.corpus.chunking), key=lambda p: p.doc_id)
        if not passages:
            raise InputError(f"{where}: empty corpus (no documents with text)")
        dense = current.dense
        if dense is not None and dense.windows is None:
            raise InputError(f"{index}: its dense part predates encoder windows; rebuild it with `rag index` to add documents")
        generation = current.generation + 1
        view = CommitView(index, current)
        try:
            known = current.metadata_fields
            if known is None:  # an index built before the record: the types its live passages hold
                known = field_types(view.store.metadata())
            check_field_types(known, ((d.where or where, d.metadata) for d in docs), locate)  # before any write
            same = _identical_documents(index, view, passages)
            passages = [p for p in passages if p.doc_id not in same]
            report.unchanged = len(same)
            if not passages:  # every document is already stored as given: nothing to write
                report.generation, report.segments = current.generation, len(view.segments)
                report.no_change = f"{where}: nothing to change, {counted(len(same), 'document')} unchanged"
                report.seconds = time.perf_counter() - t0
                return report
            if dense is not None and encoder is None:
                encoder = Encoder(EncoderConfig.from_dense(dense, index_name=str(index), device=device))  # the index's backend
            ids = list(dict.fromkeys(p.doc_id for p in passages))
            segments, found, n_dead = _tombstone(index, current, generation, ids, view)
        finally:
            view.close()
        fields = field_types((d.metadata for d in docs), known)
        del docs
        name = f"s{generation:06d}"
        stats = BuildStats()
        engine = MilvusCollections(current.engine) if current.engine is not None and dense is not None else None
        with new_segment(index, name) as folder:
            write_segment(folder, passages, current.bm25.analyzer if current.bm25 else None, encoder,
                          dense.windows.overlap_tokens if dense else 0, VectorBackendSpec(kind="flat"), progress,
                          stats, where=where, engine=engine)
        vectors = stats.windows if dense is not None else 0
        segments.append(SegmentInfo(name=f"segments/{name}", passages=len(passages), vectors=int(vectors),
                                    files=segment_checksums(index / "segments" / name)))
        report.added, report.replaced = len(ids) - len(found), len(found)
        report.passages_added, report.passages_deleted = len(passages), n_dead
        _finish(index, current, generation, segments, f"add {_content_sha256(passages)}", report,
                added={p.id for p in passages}, fillers=fillers, metadata_fields=fields)
    report.seconds = time.perf_counter() - t0
    return report


def _passage_key(p: Passage) -> str:
    """A passage's id, title, text and metadata as canonical JSON (``true`` and ``1``, ``1`` and ``1.0``
    stay apart, as the index's metadata types keep them)."""
    return json.dumps([p.id, p.title, p.text, p.metadata], ensure_ascii=False, sort_keys=True, default=str)


def _identical_documents(directory: Path, view: CommitView, passages: Sequence[Passage]) -> set[str]:
    """Ids of the documents whose new ``passages`` equal their live stored passages exactly (same
    passage ids, titles, texts and metadata): upserting them would change nothing (as
    Elasticsearch's ``detect_noop``). Their vectors would be the same too: the index's encoder is fixed."""
    new: dict[str, list[str]] = {}
    for p in passages:
        new.setdefault(p.doc_id, []).append(_passage_key(p))
    stored: dict[str, list[str]] = {}
    for seg, dead in zip(view.segments, view.dead):
        rows = _doc_rows(directory, seg, dead, new)
        if not rows:
            continue
        store = PassageStore(directory / seg.name)
        try:
            for doc_id, doc_rows in rows.items():
                stored.setdefault(doc_id, []).extend(_passage_key(p) for p in store.get(doc_rows))
        finally:
            store.close()
    return {d for d, keys in new.items() if d in stored and sorted(stored[d]) == sorted(keys)}


def _content_sha256(passages: Sequence[Passage]) -> str:
    """SHA-256 of the passages' ids, titles, texts and metadata (what an upsert changed)."""
    h = hashlib.sha256()
    for p in passages:
        h.update(json.dumps([p.id, p.title, p.text, p.metadata], ensure_ascii=False, sort_keys=True, default=str)
                 .encode("utf-8", "surrogatepass") + b"\n")
    return h.hexdigest()


def delete_documents(index: str | Path, doc_ids: Iterable[str]) -> UpdateReport:
    """Delete the documents ``doc_ids`` (all their passages); unknown ids are reported, not an error.

    Raises:
        InputError: no ids given, or the deletion would leave the index empty.
    """
    t0, index = time.perf_counter(), Path(index)
    ids = [d for d in dict.fromkeys(doc_ids) if d]
    if not ids:
        raise InputError("no document ids to delete")
    report = UpdateReport()
    with build_lock(index):
        current = Manifest.read(index)
        generation = current.generation + 1
        view = CommitView(index, current)
        try:
            segments, found, n_dead = _tombstone(index, current, generation, ids, view)
        finally:
            view.close()
        report.deleted, report.passages_deleted = len(found), n_dead
        report.not_found = [d for d in ids if d not in found]
        if found:
            _finish(index, current, generation, segments, "delete " + "\n".join(sorted(found)), report)
        else:
            report.generation, report.segments = current.generation, len(segments_of(current))
            report.no_change = f"{index}: nothing to delete"
    report.seconds = time.perf_counter() - t0
    return report


def compact_index(index: str | Path) -> UpdateReport:
    """Merge every segment into one and purge tombstones (results are unchanged; opening gets faster)."""
    t0, index = time.perf_counter(), Path(index)
    report = UpdateReport()
    with build_lock(index):
        current = Manifest.read(index)
        view = CommitView(index, current)
        try:
            if view.simple:  # one segment, no tombstones: it is already what compacting would write
                report.generation, report.segments = current.generation, 1
                report.no_change = f"{index}: nothing to compact (one segment, no deleted passages)"
                report.seconds = time.perf_counter() - t0
                return report
            generation = current.generation + 1
            report.bytes_before = _folder_bytes(index)
            report.segments_merged = len(view.segments)
            report.passages_purged = int(sum(d.size for d in view.dead))
            name = f"s{generation:06d}"
            with new_segment(index, name) as folder:
                passages: list[Passage] = list(view.store.iter_all())
                write_passages(folder, passages)
                if current.bm25 is not None:
                    view.bm25().write(folder)
                n_vectors = 0
                if current.dense is not None:
                    vectors, owner = view.vector_arrays()
                    if current.dense.backend.library == "milvus":
                        view.engine().insert_vectors(segment_number(folder.name), vectors, owner, [p.metadata for p in passages])
                    else:
                        write_vector_store(folder, vectors, owner, current.dense.backend)
                    n_vectors = int(vectors.shape[0])
        finally:
            view.close()
        segment = SegmentInfo(name=f"segments/{name}", passages=len(passages), vectors=n_vectors,
                              files=segment_checksums(index / "segments" / name))
        _finish(index, current, generation, [segment], "compact", report)
        report.vectors_purged = sum(seg.vectors for seg in view.segments) - n_vectors if current.dense is not None else 0
        report.bytes_after = _folder_bytes(index)
    report.seconds = time.perf_counter() - t0
    return report
