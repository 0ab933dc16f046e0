"""Dense vectors on disk and the FAISS structure that searches them.

``vectors.npy`` (N, d) float32, L2-normalised, row ``j`` = passage row ``j``, is the canonical,
plain copy: any FAISS structure can be rebuilt from it. ``flat`` (exact inner product) is built
in memory at open time; ``hnsw`` and ``ivfpq`` (for large corpora) are trained at build time and
saved with ``faiss.write_index`` as ``faiss.index`` (FAISS's own documented binary format).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from indexes.atomic import atomic_write_bytes
from indexes.errors import IndexFormatError, InputError
from indexes.io_errors import reporting_storage
from indexes.manifest import FaissSpec

VECTORS_NAME = "vectors.npy"
FAISS_NAME = "faiss.index"


def write_vectors(directory: str | Path, vectors: np.ndarray) -> None:
    """Save the (N, d) float32 matrix as ``vectors.npy`` atomically."""
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    atomic_write_bytes(Path(directory) / VECTORS_NAME, buf.getvalue())


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
    """The vectors and their FAISS index, opened read-only."""

    def __init__(self, directory: str | Path, spec: FaissSpec, use_gpu: bool = True) -> None:
        import faiss

        directory = Path(directory)
        self.vectors = read_vectors(directory / VECTORS_NAME)
        self.spec = spec
        if spec.kind == "flat":
            index = faiss.IndexFlatIP(self.vectors.shape[1])
            index.add(np.ascontiguousarray(self.vectors, dtype=np.float32))
        else:
            path = directory / FAISS_NAME
            if not path.is_file():
                raise IndexFormatError(f"{path}: missing FAISS index; rebuild the index with `rag index`")
            with reporting_storage(path, "read"):
                raw = np.fromfile(path, dtype=np.uint8)
            try:
                index = faiss.deserialize_index(raw)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                raise IndexFormatError(f"{path}: damaged FAISS index ({first}); rebuild the index with `rag index`") from None
            if index.ntotal != len(self.vectors) or index.d != self.vectors.shape[1]:
                raise IndexFormatError(f"{path}: FAISS index holds {index.ntotal}×{index.d}, {VECTORS_NAME} {self.vectors.shape}; "
                                       "rebuild the index with `rag index`")
            if spec.kind == "hnsw":
                index.hnsw.efSearch = spec.hnsw_ef_search
            else:
                index.nprobe = spec.ivf_nprobe
        self.index = _maybe_gpu(index) if use_gpu else index

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner products for each row of ``queries`` (B, d) → (scores, rows), (B, k).

        Rows are ``-1`` where fewer than ``k`` passages exist.
        """
        q = np.ascontiguousarray(queries, dtype=np.float32)  # (B, d)
        k = min(k, len(self))
        return self.index.search(q, k)
