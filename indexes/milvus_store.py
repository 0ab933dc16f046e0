"""An index's vectors and BM25 weights in Milvus (``rag index --backend milvus --uri URI``).

The same ``pymilvus`` client talks to Milvus Lite (a local ``.db`` file, one process at a time)
and to a Milvus server or cluster (``http://host:19530``; the token comes from the environment
variable ``RAG_MILVUS_TOKEN`` and is never written anywhere). Two collections per index:

``<collection>``       one row per encoder window: ``pk``, ``seg`` (segment number), ``prow`` (passage
                       row in the segment), ``vector`` (d,) float32, ``meta`` (the passage's metadata,
                       typed for filters: :func:`indexes.milvus_filter.engine_meta`); a ``FLAT`` index with inner product
                       (exact, as FAISS flat). Rows of a segment are written once and deleted when no
                       commit references the segment (:func:`indexes.commits.collect_garbage`).
``<collection>_bm25``  one row per live passage: ``pk`` = ``seg·2^40 + prow``, ``epoch`` (the commit that
                       wrote the weights), ``meta`` (as above), ``sparse``: the passage's exact BM25 weight of each term
                       (term id → ``idf(t)·tfc(tf, dl)``); a query is the sparse vector of its term
                       counts, so the inner product is our BM25 score (float32).

The index folder keeps everything else: manifest, commits, passages, BM25 term counts (the
source of ``N``, ``df``, ``avgdl`` and the term ids) and tombstones. A search names the live
segments of the reader's commit and drops tombstoned rows, so a reader keeps the dense results
of the commit it opened, as with files.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from indexes.errors import IndexFormatError, InputError, StorageError
from indexes.manifest import MilvusSpec
from indexes.milvus_filter import META_FIELD, engine_meta

TOKEN_ENV = "RAG_MILVUS_TOKEN"
SEG_SHIFT = 40  # pk = seg·2^40 + row: 2^40 rows per segment, 2^23 segments
MAX_LIMIT = 16384  # Milvus' largest top-k (and query window)
BATCH = 2000  # rows per insert/upsert call (well under the 64 MB gRPC message limit at d ≤ 4096)
_SEGMENT = re.compile(r"s(\d+)$")


def segment_number(name: str) -> int:
    """``segments/s000007`` (or its temporary ``.tmp-<pid>-s000007``) → 7."""
    match = _SEGMENT.search(str(name).rstrip("/"))
    if match is None:
        raise IndexFormatError(f"{name}: not a segment of a format-2 index; a Milvus index has numbered segments")
    return int(match.group(1))


def pack(seg: np.ndarray | int, row: np.ndarray | int) -> np.ndarray:
    """Primary keys of (segment, row) pairs."""
    return (np.asarray(seg, dtype=np.int64) << SEG_SHIFT) | np.asarray(row, dtype=np.int64)


def _one_line(exc: BaseException) -> str:
    msg = getattr(exc, "message", None) or str(exc)
    return " ".join(str(msg).split())[:300]


class _LiteStartFailure(logging.Filter):
    """While active (``with``), holds back what the libraries log when a client cannot open its URI,
    which :class:`MilvusCollections` reports in one line instead: the record Milvus Lite logs when it
    cannot start its server for a file (``logger.exception``: a library traceback on stderr wherever
    logging is not configured), whose exception is kept, and pymilvus's own "Failed to create new
    connection" error line (pymilvus < 3 logs it through a handler of its own). Other records pass."""

    LOGGERS = ("milvus_lite.server_manager", "pymilvus.milvus_client._utils")

    def __init__(self) -> None:
        super().__init__()
        self.exc: BaseException | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            self.exc = record.exc_info[1]
            return False
        return not (record.levelno >= logging.ERROR and record.getMessage().startswith("Failed to create new connection"))

    @property
    def locked(self) -> bool:
        """The failure was the file's lock, held by another process."""
        return self.exc is not None and (type(self.exc).__name__ == "DataDirLockedError" or "holds the lock" in str(self.exc))

    def __enter__(self) -> _LiteStartFailure:
        for name in self.LOGGERS:
            logging.getLogger(name).addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeFilter(self)


class MilvusCollections:
    """The two collections of one index at one Milvus, with every engine error turned into one line.

    Args:
        spec: URI and collection name (from the manifest or ``rag index --uri/--collection``).
        timeout: seconds to wait for a server before giving up.

    Raises:
        StorageError: the URI is malformed, the server unreachable, or a Lite file in use.
    """

    def __init__(self, spec: MilvusSpec, timeout: float = 10.0) -> None:
        self.spec, self.dense_name, self.bm25_name = spec, spec.collection, f"{spec.collection}_bm25"
        self._ready: set[str] = set()
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise InputError("--backend milvus needs pymilvus and milvus-lite: pip install 'rag-toolkit[scale]'") from None
        held = _LiteStartFailure()
        try:
            # Milvus Lite's in-process gRPC server allows a keep-alive ping only every 5 min and answers
            # the client's default (every 10 s, even idle) with GOAWAY "too_many_pings", after which
            # calls stall in retries: ping a local file only while calls are in flight.
            lite = {"grpc_options": {"grpc.keepalive_permit_without_calls": 0, "grpc.keepalive_time_ms": 300_000}} \
                if spec.uri.endswith(".db") else {}
            with held:
                self.client = MilvusClient(uri=spec.uri, token=os.environ.get(TOKEN_ENV, ""), timeout=timeout, **lite)
        except Exception as exc:  # pymilvus raises MilvusException subclasses, grpc and OS errors
            if held.locked:
                raise StorageError(f"{spec.uri}: cannot open Milvus: the Milvus Lite file is locked by another process "
                                   "(Lite opens a file in one process at a time; a running `rag serve`?): stop that "
                                   "process, or keep the index in a Milvus server") from None
            text = _one_line(held.exc or exc)
            raise StorageError(f"{spec.uri}: cannot open Milvus ({text}); check --uri (a .db file in an existing "
                               f"folder, or http://host:19530) and {TOKEN_ENV}") from None

    def _call(self, what: str, fn: Callable[..., Any], *args, **kwargs) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise StorageError(f"{self.spec.uri} ({self.dense_name}): Milvus {what} failed: {_one_line(exc)}") from None

    def _loaded(self, name: str) -> str:
        """``name``, loaded for search (a collection reopened by a new process starts released)."""
        if name not in self._ready:
            self._call("load", self.client.load_collection, name)
            self._ready.add(name)
        return name

    # -- collections -------------------------------------------------------------------------

    def ensure(self, dim: int | None, bm25: bool, owner: str, fresh: bool) -> None:
        """Create the collections (``dim=None``: no dense part). ``fresh`` (a new index folder):
        an existing collection is replaced if ``owner`` made it, refused otherwise."""
        from pymilvus import DataType

        c = self.client
        description = f"rag-toolkit index {owner}"
        for name, wanted in ((self.dense_name, dim is not None), (self.bm25_name, bm25)):
            exists = self._call("list", c.has_collection, name)
            if exists and fresh:
                found = self._call("describe", c.describe_collection, name).get("description", "")
                if found != description:
                    raise InputError(f"{self.spec.uri}: collection {name!r} exists and belongs to another index "
                                     f"({found or 'not made by rag-toolkit'}); choose another --collection")
                self._call("drop", c.drop_collection, name)
                exists = False
            if exists or not wanted:
                continue
            schema = c.create_schema(auto_id=False, description=description)
            schema.add_field("pk", DataType.INT64, is_primary=True)
            schema.add_field(META_FIELD, DataType.JSON)  # the passage's metadata, typed for filters (indexes.milvus_filter)
            params = c.prepare_index_params()
            if name == self.dense_name:
                schema.add_field("seg", DataType.INT64)
                schema.add_field("prow", DataType.INT64)
                schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
                params.add_index("vector", index_type="FLAT", metric_type="IP")
            else:
                schema.add_field("epoch", DataType.INT64)
                schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
                params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
            self._call("create collection", c.create_collection, name, schema=schema, index_params=params)

    # -- dense rows ----------------------------------------------------------------------------

    def insert_vectors(self, seg: int, vectors: np.ndarray, passage_of_row: np.ndarray, metadata: Sequence[dict]) -> None:
        """Write segment ``seg``'s window vectors (R, d), passage map (R,) and each passage's ``metadata``
        (replacing rows a crashed writer left for ``seg``)."""
        self.delete_segments([seg])
        vectors = np.asarray(vectors, dtype=np.float32)
        for start in range(0, len(vectors), BATCH):
            stop = min(len(vectors), start + BATCH)
            rows = [{"pk": int(pk), "seg": seg, "prow": int(p), "vector": v, META_FIELD: engine_meta(metadata[int(p)])}
                    for pk, p, v in zip(pack(seg, np.arange(start, stop)), passage_of_row[start:stop], vectors[start:stop])]
            self._call("insert", self.client.insert, self.dense_name, rows)

    def delete_segments(self, segs: Sequence[int]) -> None:
        """Remove every dense row of the segments ``segs``."""
        if len(segs) and self._call("list", self.client.has_collection, self.dense_name):
            self._call("delete", self.client.delete, self.dense_name, filter=f"seg in {[int(s) for s in segs]}")

    def windows(self, seg: int, prows: Sequence[int] | None = None, vectors: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Window rows of segment ``seg`` (of passages ``prows``, default all), in window order →
        ``(window index (W,), passage row (W,), vectors (W, d) or empty)``."""
        fields = ["pk", "prow"] + (["vector"] if vectors else [])
        found: list[dict] = []
        if prows is None:  # windows are numbered 0..R-1: pages of consecutive keys
            lo = int(pack(seg, 0))
            while True:
                page = self._call("query", self.client.query, self._loaded(self.dense_name), filter=f"pk >= {lo} and pk < {lo + MAX_LIMIT}",
                                  output_fields=fields, limit=MAX_LIMIT)
                found.extend(page)
                if len(page) < MAX_LIMIT:
                    break
                lo += MAX_LIMIT
        else:  # 256 passages a page: far fewer than MAX_LIMIT windows
            prows = [int(p) for p in prows]
            for start in range(0, len(prows), 256):
                page = self._call("query", self.client.query, self._loaded(self.dense_name),
                                  filter=f"seg == {int(seg)} and prow in {prows[start:start + 256]}", output_fields=fields,
                                  limit=MAX_LIMIT)
                if len(page) == MAX_LIMIT:
                    raise IndexFormatError(f"{self.spec.uri} ({self.dense_name}): more than {MAX_LIMIT} windows for 256 "
                                           "passages; rebuild with a larger --passage-words ratio")
                found.extend(page)
        found.sort(key=lambda r: r["pk"])
        pk = np.fromiter((r["pk"] for r in found), np.int64, len(found))
        prow = np.fromiter((r["prow"] for r in found), np.int64, len(found))
        vec = np.asarray([r["vector"] for r in found], dtype=np.float32) if vectors and found else np.zeros((0, 0), np.float32)
        return pk & ((1 << SEG_SHIFT) - 1), prow, vec

    def search_vectors(self, queries: np.ndarray, limit: int, segs: Sequence[int],
                       where: str | None = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Top-``limit`` windows of each query (B, d) among segments ``segs`` (and rows matching the
        expression ``where``) → per query ``(scores, seg, prow)``."""
        data = [q.tolist() for q in np.asarray(queries, dtype=np.float32)]
        res = self._call("search", self.client.search, self._loaded(self.dense_name), data=data, anns_field="vector", limit=limit,
                         filter=f"seg in {[int(s) for s in segs]}" + (f" and ({where})" if where else ""), output_fields=["seg", "prow"],
                         search_params={"metric_type": "IP"})
        out = []
        for hits in res:
            s = np.fromiter((h["distance"] for h in hits), np.float64, len(hits))
            seg = np.fromiter((h["entity"]["seg"] for h in hits), np.int64, len(hits))
            prow = np.fromiter((h["entity"]["prow"] for h in hits), np.int64, len(hits))
            out.append((s, seg, prow))
        return out

    # -- BM25 rows -----------------------------------------------------------------------------

    def write_bm25(self, pks: np.ndarray, indptr: np.ndarray, terms: np.ndarray, weights: np.ndarray, epoch: int,
                   metadata: Sequence[dict]) -> None:
        """Upsert one row per passage (CSR ``indptr`` (G+1,), ``terms``/``weights`` (nnz,), ``metadata``) stamped
        ``epoch``, then delete rows of other epochs (passages no longer live). Passages without a
        term are not stored (they never match)."""
        if weights.size and (not np.all(np.isfinite(weights)) or weights.min() < 0):
            raise InputError("Milvus stores non-negative BM25 weights only: use --bm25-variant lucene or atire")
        rows = []
        for g, pk in enumerate(pks):
            a, b = int(indptr[g]), int(indptr[g + 1])
            if b > a:
                rows.append({"pk": int(pk), "epoch": epoch, META_FIELD: engine_meta(metadata[g]),
                             "sparse": dict(zip(terms[a:b].tolist(), weights[a:b].tolist()))})
            if len(rows) == BATCH or (g == len(pks) - 1 and rows):
                self._call("upsert", self.client.upsert, self.bm25_name, rows)
                rows = []
        self._call("delete", self.client.delete, self.bm25_name, filter=f"epoch != {int(epoch)}")

    def search_bm25(self, queries: Sequence[dict[int, float]], limit: int, epoch: int,
                    pks: np.ndarray | None = None, where: str | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top-``limit`` passages of each sparse query among rows of ``epoch`` (and ``pks``, and rows
        matching ``where``) → ``(scores, pks)``."""
        expr = (f"epoch == {int(epoch)}" + (f" and pk in {[int(p) for p in pks]}" if pks is not None else "")
                + (f" and ({where})" if where else ""))
        res = self._call("search", self.client.search, self._loaded(self.bm25_name), data=list(queries), anns_field="sparse", limit=limit,
                         filter=expr, output_fields=["pk"], search_params={"metric_type": "IP"})
        return [(np.fromiter((h["distance"] for h in hits), np.float64, len(hits)),
                 np.fromiter((h["pk"] for h in hits), np.int64, len(hits))) for hits in res]

    def check_epoch(self, epoch: int) -> None:
        """Raise if the BM25 rows were rewritten by a later commit than the reader's ``epoch``."""
        later = self._call("query", self.client.query, self._loaded(self.bm25_name), filter=f"epoch != {int(epoch)}", output_fields=["pk"], limit=1)
        if later:
            raise IndexFormatError(f"{self.spec.uri} ({self.bm25_name}): the index changed since it was opened "
                                   f"(commit {epoch}); open it again")
