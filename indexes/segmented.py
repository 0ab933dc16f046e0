"""One commit's segments seen as one index: the live passages in the order a fresh build has.

A fresh build orders passage rows by document id (windows of a document in order). Here the
live rows of every segment are put in that same order (*global rows*), and each part is merged
in it: the BM25 counts (so ``N``, ``df`` and ``avgdl`` are over live passages only and every
score equals a fresh build's), the dense vectors (a flat search is the fresh build's search),
and the passage store. A commit of one segment without deletions is opened as it lies on disk.

The merged BM25 arrays and vectors are exactly those :func:`rag.live.compact_index` writes, so a
search over unmerged segments runs the compacted index's code on the same arrays. What segments
cost is opening time (one pass over every segment's postings and vectors, numpy only) and one
passage-store read per segment that a result list touches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from indexes.bm25_store import BM25Postings
from indexes.commits import open_commit, segments_of, sha256_file
from indexes.dense_store import FAISS_NAME, PASSAGES_NAME, VECTORS_NAME, read_passage_map, read_vectors
from indexes.errors import IndexFormatError
from indexes.manifest import Manifest, SegmentInfo
from indexes.passage_store import Passage, PassageStore
from indexes.vector_store import VectorStore, open_vector_store, vector_store_from_arrays


def verify_segment(directory: Path, seg: SegmentInfo, names: Iterable[str] | None = None) -> None:
    """Compare files of ``seg`` with their recorded sha256.

    Raises:
        IndexFormatError: a file is missing or differs (one line naming it and saying which).
    """
    folder = directory / seg.name
    for name, digest in seg.files.items():
        if names is not None and name not in names:
            continue
        path = folder / name
        if not path.is_file():
            raise IndexFormatError(f"{path}: missing (the commit lists it, but the file was deleted or moved); "
                                   "restore it from a backup or rebuild the index")
        if sha256_file(path) != digest:
            raise IndexFormatError(f"{path}: checksum mismatch (the file is damaged or was changed); rebuild the index")


def tombstones(directory: Path, seg: SegmentInfo) -> np.ndarray:
    """Deleted rows (sorted int64) of ``seg`` in this commit."""
    if not seg.deleted:
        return np.zeros(0, np.int64)
    if not (directory / seg.deleted).is_file():
        raise IndexFormatError(f"{directory / seg.deleted}: missing (the commit lists these deletions, but the file was "
                               "deleted or moved); restore it from a backup or rebuild the index")
    try:
        return np.load(directory / seg.deleted, allow_pickle=False).astype(np.int64)
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"{directory / seg.deleted}: unreadable deletions ({exc}); rebuild the index") from None


class SegmentedPassageStore:
    """The passage store interface over several segments' stores, addressed by global row.

    Args:
        stores: the segments' stores.
        seg_of: (G,) segment of each global row.
        local: (G,) row of each global row in its segment's store.
    """

    def __init__(self, stores: Sequence[PassageStore], seg_of: np.ndarray, local: np.ndarray) -> None:
        self.stores, self.seg_of, self.local = list(stores), seg_of, local  # (G,), (G,)
        self._global = global_rows(seg_of, local, [len(s) for s in self.stores])  # per segment: local row -> global row

    def __len__(self) -> int:
        return int(self.seg_of.size)

    def get(self, rows: Sequence[int]) -> list[Passage]:
        """Passages at the given global rows, in the same order: one read per segment they lie in."""
        rows = np.asarray(rows, dtype=np.int64)  # (C,)
        local = self.local[rows].tolist()
        by_segment: dict[int, list[int]] = {}  # segment -> positions in ``rows``
        for i, s in enumerate(self.seg_of[rows].tolist()):
            by_segment.setdefault(s, []).append(i)
        out: list[Passage | None] = [None] * rows.size
        for s, at in by_segment.items():
            for i, p in zip(at, self.stores[s].get([local[i] for i in at])):
                out[i] = p
        return out  # type: ignore[return-value]

    def _per_row(self, per_segment: Sequence[list]) -> list:
        return [per_segment[s][r] for s, r in zip(self.seg_of.tolist(), self.local.tolist())]

    def ids(self) -> list[str]:
        return self._per_row([s.ids() for s in self.stores])

    def doc_ids(self) -> list[str]:
        return self._per_row([s.doc_ids() for s in self.stores])

    def metadata(self) -> list[dict]:
        return self._per_row([s.metadata() for s in self.stores])

    def rows_of(self, ids: Sequence[str]) -> list[int | None]:
        out: list[int | None] = [None] * len(ids)
        for s, store in enumerate(self.stores):
            for i, r in enumerate(store.rows_of(ids)):
                if r is not None and self._global[s][r] >= 0:
                    out[i] = int(self._global[s][r])
        return out

    def iter_all(self, batch: int = 1024) -> Iterable[Passage]:
        for start in range(0, len(self), batch):
            yield from self.get(range(start, min(len(self), start + batch)))

    def close(self) -> None:
        for s in self.stores:
            s.close()


def global_rows(seg_of: np.ndarray, local: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """For each segment of ``sizes`` rows, the (N_s,) global row of each of its rows (-1: deleted),
    from the (G,) segment and local row of each global row."""
    out = [np.full(n, -1, np.int64) for n in sizes]
    for s, target in enumerate(out):
        at = np.flatnonzero(seg_of == s)  # (G_s,)
        target[local[at]] = at
    return out


class CommitView:
    """The parts of one commit of the index at ``directory``, merged in global row order.

    Args:
        directory: the index directory.
        manifest: the commit (held open by the caller, see :func:`indexes.commits.open_commit`).
        verify: check the sha256 of every file before use (cost: one read of each file).
    """

    def __init__(self, directory: str | Path, manifest: Manifest, verify: bool = True) -> None:
        self.directory, self.manifest = Path(directory), manifest
        self.segments = segments_of(manifest)
        if verify:
            for seg in self.segments:
                verify_segment(self.directory, seg)
        self.folders = [self.directory / s.name for s in self.segments]
        self.dead = [tombstones(self.directory, s) for s in self.segments]
        self.simple = len(self.segments) == 1 and self.dead[0].size == 0
        raw = [PassageStore(f) for f in self.folders]
        if self.simple:
            self.store: PassageStore | SegmentedPassageStore = raw[0]
            return
        keys: list[str] = []
        seg_of: list[np.ndarray] = []
        local: list[np.ndarray] = []
        for s, (store, dead) in enumerate(zip(raw, self.dead)):
            alive = np.setdiff1d(np.arange(len(store)), dead)
            doc_ids = store.doc_ids()
            keys.extend(doc_ids[r] for r in alive)
            seg_of.append(np.full(alive.size, s, np.int64))
            local.append(alive)
        order = np.asarray(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)  # stable: windows stay in order
        self.seg_of = np.concatenate(seg_of)[order]  # (G,)
        self.local = np.concatenate(local)[order]  # (G,)
        self.store = SegmentedPassageStore(raw, self.seg_of, self.local)

    def bm25(self) -> BM25Postings:
        """The live passages' counts, columns in global row order (one segment without deletions:
        the stored arrays as they are). Read and merged with numpy alone, in one pass
        (:meth:`BM25Postings.merge`), so scores equal those of the compacted index."""
        if self.simple:
            return BM25Postings.read(self.folders[0])
        parts = [BM25Postings.read(f) for f in self.folders]
        return BM25Postings.merge(parts, global_rows(self.seg_of, self.local, [p.n_docs for p in parts]), int(self.seg_of.size))

    def engine_rows(self):
        """The commit's rows as the engine names them (:class:`indexes.milvus_search.CommitRows`)."""
        from indexes.milvus_search import CommitRows
        from indexes.milvus_store import segment_number

        n = len(self.store)
        seg_of, local = (np.zeros(n, np.int64), np.arange(n)) if self.simple else (self.seg_of, self.local)
        return CommitRows([segment_number(s.name) for s in self.segments], seg_of, local, [s.passages for s in self.segments])

    def engine(self):
        """The Milvus collections of this index (:class:`indexes.milvus_store.MilvusCollections`)."""
        from indexes.milvus_store import MilvusCollections

        assert self.manifest.engine is not None
        if getattr(self, "_engine", None) is None:
            self._engine = MilvusCollections(self.manifest.engine)  # one client per view
        return self._engine

    def _milvus(self) -> bool:
        return self.manifest.engine is not None and self.manifest.dense is not None and self.manifest.dense.backend.library == "milvus"

    def _window_rows(self, owners: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the live passages' windows in the segments' vectors stacked in order (R,), and
        the windows of each live passage (G,), from each segment's (R_s,) passage map."""
        offsets = [np.searchsorted(o, np.arange(int(o[-1]) + 2 if o.size else 1)) for o in owners]  # (P_s+1,) each
        base = np.concatenate([[0], np.cumsum([o.size for o in owners])[:-1]]).astype(np.int64)  # (S,) first vector row
        at = np.concatenate([[0], np.cumsum([o.size for o in offsets])[:-1]]).astype(np.int64)  # (S,) into flat
        flat = np.concatenate(offsets).astype(np.int64)
        first = flat[at[self.seg_of] + self.local]  # (G,) first window of each live passage in its segment
        lens = flat[at[self.seg_of] + self.local + 1] - first  # (G,)
        starts = base[self.seg_of] + first  # (G,)
        before = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)  # (G,) windows ahead in the result
        return np.repeat(starts - before, lens) + np.arange(int(lens.sum())), lens

    def _owners(self, vectors: Sequence[np.ndarray]) -> list[np.ndarray]:
        windowed = self.manifest.dense is not None and self.manifest.dense.windows is not None
        return [read_passage_map(f / PASSAGES_NAME) if windowed else np.arange(len(v))
                for f, v in zip(self.folders, vectors)]

    def vector_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The live passages' vectors (R, d) and passage map (R,), in global row order."""
        if self._milvus():
            store = self.vector_store()
            return store.vectors_of(np.arange(len(store)))  # type: ignore[attr-defined]
        parts = [read_vectors(f / VECTORS_NAME) for f in self.folders]  # (R_s, d) each, memory-mapped
        rows, lens = self._window_rows(self._owners(parts))
        allv = np.concatenate([np.asarray(p, dtype=np.float32) for p in parts]) if len(parts) > 1 else np.asarray(parts[0])
        return np.ascontiguousarray(allv[rows], dtype=np.float32), np.repeat(np.arange(lens.size), lens)

    def live_vectors(self) -> int:
        """Vector rows (windows) of the live passages."""
        if not self._milvus():
            parts = [read_vectors(f / VECTORS_NAME) for f in self.folders]
            return int(self._window_rows(self._owners(parts))[1].sum())
        total = 0
        for seg, dead in zip(self.segments, self.dead):
            from indexes.milvus_store import segment_number

            _, prow, _ = self.engine().windows(segment_number(seg.name), vectors=False)
            total += int(np.count_nonzero(~np.isin(prow, dead)))
        return total

    def vector_store(self, use_gpu: bool = True) -> VectorStore:
        """The dense search over live passages (a non-flat structure over several segments is rebuilt in memory)."""
        info = self.manifest.dense
        assert info is not None
        if self._milvus():
            from indexes.milvus_search import MilvusVectorStore

            return MilvusVectorStore(self.engine(), self.engine_rows(), info.vectors, info.encoder.dim)
        if self.simple and (info.backend.kind == "flat" or (self.folders[0] / FAISS_NAME).is_file()):
            return open_vector_store(self.folders[0], info.backend, windowed=info.windows is not None, use_gpu=use_gpu)
        return vector_store_from_arrays(*self.vector_arrays(), info.backend)

    def close(self) -> None:
        self.store.close()



def check_index(directory: str | Path) -> tuple[int, int]:
    """Verify every file of every commit still present (the current one and those readers hold).

    Returns:
        ``(files verified, commits)``.

    Raises:
        IndexFormatError: a damaged file or commit (one line naming it).
        IndexNotFoundError: no index at ``directory``.
    """
    from indexes.commits import COMMITS_DIR

    directory = Path(directory)
    commits = [Manifest.read(directory)]
    for path in sorted((directory / COMMITS_DIR).glob("*.json")):
        try:
            commits.append(Manifest.model_validate_json(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise IndexFormatError(f"{path}: damaged commit ({str(exc).splitlines()[0]})") from None
    seen: set[tuple[str, str]] = set()
    for m in commits:
        for seg in segments_of(m):
            todo = [n for n in seg.files if (seg.name, n) not in seen]
            verify_segment(directory, seg, todo)
            seen.update((seg.name, n) for n in todo)
            tombstones(directory, seg)
    return len(seen), len(commits) - 1 if len(commits) > 1 else 1


def open_passage_store(directory: str | Path) -> PassageStore | SegmentedPassageStore:
    """The passages of the index's current commit, addressed by its global rows (the commit is held
    as long as the store lives)."""
    manifest, lease = open_commit(directory)
    store = CommitView(directory, manifest, verify=False).store
    store.lease = lease  # type: ignore[union-attr]  # released with the store
    return store
