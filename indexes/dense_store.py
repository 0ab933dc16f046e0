"""Dense vectors on disk and the FAISS structure that searches them.

``vectors.npy`` (R, d) float32, L2-normalised, is the canonical, plain copy: any FAISS structure
can be rebuilt from it. Its rows are *windows* of passages: ``vector_passages.npy`` (R,) int64
gives the passage row of each vector row (non-decreasing; every passage has at least one). An
index without that file (built before windowing) has one vector per passage, row ``j`` = passage
``j``. A passage scores as the maximum over its windows (MaxP, Dai & Callan, SIGIR 2019).

``flat`` (exact inner product) is built in memory at open time; ``hnsw`` and ``ivfpq`` (for
large corpora) are trained at build time and saved with ``faiss.write_index`` as
``faiss.index`` (FAISS's own documented binary format).

Search results are passages, best first, ties broken by the lower passage row (index builds
order rows by document id, so ties do not depend on corpus order). On ``flat`` the top-k
passages are exact, ties included: the window search deepens until the k-th passage's score is
strictly above every window not fetched.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from indexes.atomic import atomic_write_bytes
from indexes.errors import IndexFormatError, InputError
from indexes.filters import RowFilter
from indexes.io_errors import reporting_storage
from indexes.manifest import FaissSpec

VECTORS_NAME = "vectors.npy"
FAISS_NAME = "faiss.index"
PASSAGES_NAME = "vector_passages.npy"
#: A filtered search on ``hnsw``/``ivfpq`` that allows at most this many vectors is exact over them
#: (a matrix product costing about as much as one graph walk): the graph walk or the probed lists
#: would hold too few allowed vectors (recall measured in docs/benchmarks.md).
EXACT_FILTER_MAX_VECTORS = 20_000


def _save_npy(path: Path, array: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def write_vectors(directory: str | Path, vectors: np.ndarray, passage_of_row: np.ndarray | None = None) -> None:
    """Save the (R, d) float32 matrix as ``vectors.npy`` and, for windows, the (R,) passage map, atomically."""
    _save_npy(Path(directory) / VECTORS_NAME, np.ascontiguousarray(vectors, dtype=np.float32))
    if passage_of_row is not None:
        _save_npy(Path(directory) / PASSAGES_NAME, np.ascontiguousarray(passage_of_row, dtype=np.int64))


def read_vectors(path: Path) -> np.ndarray:
    """Memory-map ``vectors.npy`` as an (N, d) float32 array.

    Raises:
        IndexFormatError: the file is missing, empty, truncated or not an (N, d) float32 array.
        StorageError: the file system refused the read.
    """
    if not path.is_file():
        raise IndexFormatError(f"{path}: missing dense vectors; rebuild the index with `rag index`")
    try:
        with reporting_storage(path, "read"):
            vectors = np.load(path, mmap_mode="r", allow_pickle=False)
    except (EOFError, ValueError) as exc:  # EOFError: empty file; ValueError: bad header or short data
        raise IndexFormatError(f"{path}: damaged dense vectors ({type(exc).__name__}: {exc}); rebuild the index with `rag index`") from None
    if vectors.ndim != 2 or vectors.dtype != np.float32:
        raise IndexFormatError(f"{path}: expected an (N, d) float32 array, found {vectors.dtype} {vectors.shape}; rebuild the index with `rag index`")
    return vectors


def read_passage_map(path: Path) -> np.ndarray:
    """Read ``vector_passages.npy``: the (R,) passage of each vector row.

    Raises:
        IndexFormatError: the file is missing, empty or damaged.
        StorageError: the file system refused the read.
    """
    if not path.is_file():
        raise IndexFormatError(f"{path}: missing map of vector rows onto passages; rebuild the index with `rag index`")
    try:
        with reporting_storage(path, "read"):
            return np.load(path, allow_pickle=False)
    except (EOFError, ValueError) as exc:
        raise IndexFormatError(f"{path}: damaged ({type(exc).__name__}: {exc}); rebuild the index with `rag index`") from None


def build_faiss(vectors: np.ndarray, spec: FaissSpec):
    """A FAISS inner-product index over ``vectors`` (N, d) of the kind ``spec`` names.

    Raises:
        InputError: the corpus is too small to train the requested ``ivfpq`` structure.
    """
    import faiss

    n, d = vectors.shape
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if spec.kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif spec.kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = max(40, 2 * spec.hnsw_m)
        index.hnsw.efSearch = spec.hnsw_ef_search
    else:  # ivfpq
        nlist = spec.ivf_nlist or max(1, int(4 * math.sqrt(n)))
        m = spec.pq_m or max(1, d // 4)
        if d % m:
            raise InputError(f"--pq-m {m} must divide the vector dimension {d}")
        # FAISS wants >= 39 training points per centroid (k-means) and 256 per PQ code book.
        if n < max(39 * nlist, 256):
            raise InputError(f"ivfpq needs at least {max(39 * nlist, 256)} passages for nlist={nlist}; this corpus has {n}: use --faiss flat or hnsw")
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFPQ(quantizer, d, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
        index.train(x)
        index.nprobe = spec.ivf_nprobe
    index.add(x)
    return index


def write_faiss(directory: str | Path, index) -> None:
    import faiss

    atomic_write_bytes(Path(directory) / FAISS_NAME, faiss.serialize_index(index).tobytes())


def write_dense(directory: str | Path, vectors: np.ndarray, passage_of_row: np.ndarray | None, spec: FaissSpec) -> None:
    """Write the vectors (R, d), their passage map (R,) and, for a non-flat ``spec``, its trained structure."""
    write_vectors(directory, vectors, passage_of_row)
    if spec.kind != "flat":
        write_faiss(directory, build_faiss(vectors, spec))


def read_faiss(directory: str | Path, spec: FaissSpec):
    """Load the saved structure ``faiss.index`` of ``directory``.

    Raises:
        IndexFormatError: missing or damaged (one line naming the file).
    """
    import faiss

    path = Path(directory) / FAISS_NAME
    if not path.is_file():
        raise IndexFormatError(f"{path}: missing FAISS index; rebuild the index with `rag index`")
    with reporting_storage(path, "read"):
        raw = np.fromfile(path, dtype=np.uint8)
    try:
        return faiss.deserialize_index(raw)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise IndexFormatError(f"{path}: damaged FAISS index ({first}); rebuild the index with `rag index`") from None


def _maybe_gpu(index):
    """Move ``index`` to GPU 0 when faiss was built with GPU support and a GPU exists."""
    import faiss

    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        res = faiss.StandardGpuResources()
        gpu = faiss.index_cpu_to_gpu(res, 0, index)
        gpu._rag_resources = res  # keep the resources alive as long as the index
        return gpu
    return index


class DenseStore:
    """The vectors and their FAISS index, opened read-only.

    Args:
        directory: the index directory.
        spec: the FAISS structure.
        use_gpu: move the structure to GPU 0 when FAISS has GPU support.
        windowed: the vectors are passage windows (``vector_passages.npy`` must exist).
    """

    def __init__(self, directory: str | Path, spec: FaissSpec, use_gpu: bool = True, windowed: bool = False) -> None:
        directory = Path(directory)
        vectors = read_vectors(directory / VECTORS_NAME)  # (R, d)
        owner = read_passage_map(directory / PASSAGES_NAME) if windowed else None
        index = None
        if spec.kind != "flat":
            index = read_faiss(directory, spec)
            if index.ntotal != len(vectors) or index.d != vectors.shape[1]:
                raise IndexFormatError(f"{directory / FAISS_NAME}: FAISS index holds {index.ntotal}×{index.d}, {VECTORS_NAME} {vectors.shape}; "
                                       "rebuild the index with `rag index`")
        self._setup(vectors, owner, spec, index, use_gpu, where=f"{directory}/{PASSAGES_NAME}")

    @classmethod
    def from_arrays(cls, vectors: np.ndarray, passage_of_row: np.ndarray | None, spec: FaissSpec,
                    use_gpu: bool = False) -> DenseStore:
        """A store over in-memory vectors (R, d) and their passage map (R,); a non-flat structure is built."""
        store = cls.__new__(cls)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index = build_faiss(vectors, spec) if spec.kind != "flat" and len(vectors) else None
        store._setup(vectors, passage_of_row, spec, index, use_gpu, where="vector rows")
        return store

    def _setup(self, vectors: np.ndarray, owner: np.ndarray | None, spec: FaissSpec, index, use_gpu: bool, where: str) -> None:
        import faiss

        self.vectors = vectors  # (R, d)
        R = int(self.vectors.shape[0])
        if owner is None:
            owner = np.arange(R, dtype=np.int64)
        elif owner.shape != (R,) or (R and (owner[0] != 0 or not np.all(np.isin(np.diff(owner), (0, 1))))):
            raise IndexFormatError(f"{where}: not a map of {R} vector rows onto consecutive passages; rebuild the index")
        self.passage_of_row = owner.astype(np.int64)  # (R,)
        n_passages = int(owner[-1]) + 1 if R else 0
        self.offsets = np.searchsorted(owner, np.arange(n_passages + 1))  # (P+1,) windows of p: offsets[p]:offsets[p+1]
        self.windowed = R != n_passages
        self.spec = spec
        self.exact = spec.kind == "flat"
        self.exact_filter_max_vectors = EXACT_FILTER_MAX_VECTORS  # 0: filters always go through FAISS's selector
        self.filter_fallback = True  # an approximate filtered search that finds < k passages is redone exactly
        if index is None:
            index = faiss.IndexFlatIP(self.vectors.shape[1])
            index.add(np.ascontiguousarray(self.vectors, dtype=np.float32))
        elif spec.kind == "hnsw":
            index.hnsw.efSearch = spec.hnsw_ef_search
        elif spec.kind == "ivfpq":
            index.nprobe = spec.ivf_nprobe
        self.index = _maybe_gpu(index) if use_gpu else index

    def vectors_of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The window vectors of the passages at ``rows`` (C,) → ``(vectors (W, d), passage map (W,))``,
        the map numbering the given passages ``0..C-1`` in the given order."""
        rows = np.asarray(rows, dtype=np.int64)
        lens = np.diff(self.offsets)[rows]  # (C,)
        first = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)  # (C,)
        window_rows = np.repeat(self.offsets[rows] - first, lens) + np.arange(int(lens.sum()))  # (W,)
        return np.asarray(self.vectors[window_rows], dtype=np.float32), np.repeat(np.arange(rows.size), lens)

    def add(self, vectors: np.ndarray, passage_of_row: np.ndarray | None = None) -> DenseStore:
        """A new store with the passages of ``vectors`` (R', d) (map (R',), from 0) after this one's."""
        owner = np.arange(len(vectors)) if passage_of_row is None else np.asarray(passage_of_row, dtype=np.int64)
        all_vectors = np.concatenate([np.asarray(self.vectors, dtype=np.float32), np.asarray(vectors, dtype=np.float32)])
        return DenseStore.from_arrays(all_vectors, np.concatenate([self.passage_of_row, owner + len(self)]), self.spec)

    def remove(self, rows: np.ndarray) -> DenseStore:
        """A new store without the passages at ``rows`` (later passages shift down)."""
        keep = np.setdiff1d(np.arange(len(self)), np.asarray(rows, dtype=np.int64))
        return DenseStore.from_arrays(*self.vectors_of(keep), self.spec)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        """Number of passages (not vector rows)."""
        return int(self.offsets.size - 1)

    def search(self, queries: np.ndarray, k: int, where: RowFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` passages by MaxP inner product for each row of ``queries`` (B, d) → (scores, rows), (B, k).

        Rows are passage rows, best first, ties by the lower row; ``-1`` (score ``-inf``) where
        fewer than ``k`` passages were found. With ``where``, only the passages of its mask
        compete: FAISS skips every other vector during the search (an ``IDSelectorBitmap`` in
        the search parameters), so ``flat`` stays exact. On ``hnsw``/``ivfpq`` the graph walk or
        the probed lists may hold fewer than ``k`` allowed vectors, so a filter allowing at most
        ``exact_filter_max_vectors`` vectors is searched exactly over them, and a query that
        still gets fewer than ``k`` passages (of more allowed) is searched again exactly
        (``filter_fallback``); docs/benchmarks.md measures the recall with and without.
        """
        q = np.ascontiguousarray(queries, dtype=np.float32)  # (B, d)
        B, R, P = q.shape[0], int(self.vectors.shape[0]), len(self)
        params, keep = None, None
        if where is not None:
            if where.mask.shape != (P,):
                raise InputError(f"filter mask covers {where.mask.shape[0]} passages, the vector store {P}")
            allowed = where.mask[self.passage_of_row]  # (R,) vector rows of allowed passages
            R, P = int(np.count_nonzero(allowed)), where.count
            if not self.exact and R <= self.exact_filter_max_vectors:
                return self._exact_among(q, min(k, P), np.flatnonzero(allowed))
            params, keep = self._selection(where.mask)
        k = min(k, P)
        scores = np.full((B, k), -np.inf, dtype=np.float32)  # (B, k)
        rows = np.full((B, k), -1, dtype=np.int64)  # (B, k)
        todo = np.arange(B)
        # Enough windows for k passages if the best ones' extra windows crowd in, plus one to see a tie at the cut.
        depth = min(R, k + min(R - P, k) + 1)
        while todo.size and k:
            S, I = self.index.search(q[todo], depth, params=params)  # (T, depth), (T, depth)
            again = []
            for t, s, i in zip(todo, S, I):
                p, ps = self._passages(s[i >= 0], i[i >= 0])
                seen_all = depth >= R or np.count_nonzero(i >= 0) < depth
                # Unfetched windows score <= the last fetched one: the top k are settled when the
                # k-th passage is strictly above it (exact search), or when k were found (approximate).
                settled = p.size >= k and (not self.exact or ps[k - 1] > s[i >= 0][-1])
                if seen_all or settled:
                    n = min(k, p.size)
                    rows[t, :n], scores[t, :n] = p[:n], ps[:n]
                else:
                    again.append(t)
            todo, depth = np.asarray(again, dtype=np.int64), min(R, 2 * depth)
        del keep  # the bitmap the selector reads lives until every search above is done
        if where is not None and not self.exact and self.filter_fallback and k:
            short = np.flatnonzero(rows[:, k - 1] < 0)  # fewer than k found, though P >= k are allowed
            if short.size:
                scores[short], rows[short] = self._exact_among(q[short], k, np.flatnonzero(where.mask[self.passage_of_row]))
        return scores, rows

    def _exact_among(self, q: np.ndarray, k: int, windows: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` passages (MaxP) among the vector rows ``windows`` (W,) (sorted) for queries (B, d)."""
        B = q.shape[0]
        scores = np.full((B, k), -np.inf, dtype=np.float32)  # (B, k)
        rows = np.full((B, k), -1, dtype=np.int64)  # (B, k)
        if windows.size == 0 or k == 0:
            return scores, rows
        V = np.asarray(self.vectors[windows], dtype=np.float32)  # (W, d)
        owner = self.passage_of_row[windows]  # (W,) non-decreasing
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])  # first window of each passage
        passages = owner[starts]  # (C,)
        for lo in range(0, B, chunk):
            best = np.maximum.reduceat(q[lo : lo + chunk] @ V.T, starts, axis=1)  # (b, C) MaxP
            for i, s in enumerate(best):
                top = np.lexsort((passages, -s))[:k]  # score descending, then passage row
                rows[lo + i, : top.size], scores[lo + i, : top.size] = passages[top], s[top]
        return scores, rows

    def _selection(self, mask: np.ndarray):
        """FAISS search parameters that skip the vectors of passages outside ``mask`` (P,), and the
        bitmap they point into (the caller keeps it alive while searching)."""
        import faiss

        bits = np.packbits(mask[self.passage_of_row], bitorder="little")  # bit r: vector row r allowed
        sel = faiss.IDSelectorBitmap(int(self.vectors.shape[0]), faiss.swig_ptr(bits))
        if self.spec.kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=self.spec.hnsw_ef_search)
        elif self.spec.kind == "ivfpq":
            params = faiss.SearchParametersIVF(sel=sel, nprobe=self.spec.ivf_nprobe)
        else:
            params = faiss.SearchParameters(sel=sel)
        return params, (bits, sel)

    def _passages(self, s: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Window hits ``(scores, vector rows)`` → distinct passages at their best window, best first."""
        p = self.passage_of_row[i]
        order = np.lexsort((p, -s))  # score descending, then passage row
        p, s = p[order], s[order]
        _, first = np.unique(p, return_index=True)  # each passage's first (best) window
        first.sort()
        return p[first], s[first]

    def passage_scores(self, vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact MaxP inner products of one query vector (d,) with the passages at ``rows`` (C,) → (C,)."""
        rows = np.asarray(rows, dtype=np.int64)
        if not self.windowed:
            return np.asarray(self.vectors[rows] @ vector, dtype=np.float64)  # (C,)
        if rows.size == 0:
            return np.zeros(0)
        windows, owner = self.vectors_of(rows)  # (W, d), (W,)
        s = np.asarray(windows @ vector, dtype=np.float64)  # (W,)
        first = np.searchsorted(owner, np.arange(rows.size))  # (C,)
        return np.maximum.reduceat(s, first)  # (C,)
