"""BM25 sufficient statistics on disk: raw term frequencies, document lengths, vocabulary.

Why raw counts and not precomputed BM25 weights (as bm25s stores): every corpus-level quantity
BM25 uses — ``N``, ``df``, ``avgdl`` — is derived from these arrays when the index is opened.
Adding or deleting passages therefore only appends or drops columns, and the scores afterwards
are *exactly* those of a full rebuild (:meth:`BM25Data.append`, :meth:`BM25Data.drop`). Turning
counts into weights is one vectorised pass at load time (milliseconds for SciFact).

Files (all plain numpy / JSON):
    ``bm25_postings.npz``: term-major CSR — ``indptr`` (V+1,), ``indices`` (nnz,) passage rows,
    ``tf`` (nnz,) counts; ``doc_lengths`` (N,) analyzed tokens per passage.
    ``bm25_vocab.json``: the terms, in term-id order.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from indexes.atomic import atomic_write_bytes, atomic_write_text
from indexes.errors import IndexFormatError, StorageError
from indexes.io_errors import reporting_storage

if TYPE_CHECKING:  # scipy costs ~0.5 s to import; searching needs only the plain arrays (BM25Postings)
    import scipy.sparse as sp

POSTINGS_NAME = "bm25_postings.npz"
VOCAB_NAME = "bm25_vocab.json"


@dataclass(frozen=True)
class BM25Postings:
    """The stored arrays as they are, for searching: no scipy, nothing copied.

    Attributes:
        vocab: term strings; ``vocab[t]`` is term id ``t``.
        indptr: (V+1,) int64 start of each term's postings.
        indices: (nnz,) passage rows, ascending within each term.
        tf: (nnz,) raw counts.
        doc_lengths: (N,) analyzed tokens per passage.
    """

    vocab: tuple[str, ...]
    indptr: np.ndarray
    indices: np.ndarray
    tf: np.ndarray
    doc_lengths: np.ndarray

    @property
    def n_docs(self) -> int:
        return int(self.doc_lengths.shape[0])

    def term_index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.vocab)}

    @classmethod
    def read(cls, directory: str | Path) -> BM25Postings:
        """Read the two files written by :meth:`BM25Data.write`.

        Raises:
            IndexFormatError: a file is missing, empty, truncated or damaged, or the two disagree
                (the message names the file and says to rebuild).
            StorageError: the file system refused the read (permissions).
        """
        directory = Path(directory)
        postings, vocab_path = directory / POSTINGS_NAME, directory / VOCAB_NAME
        try:
            with reporting_storage(postings, "read"), np.load(postings, allow_pickle=False) as z:
                indptr, indices, tf, lengths = z["indptr"], z["indices"], z["tf"], z["doc_lengths"]
        except StorageError as exc:
            if not postings.is_file():
                raise IndexFormatError(f"{postings}: missing BM25 postings; rebuild the index with `rag index`") from None
            raise exc
        # np.load: EOFError for an empty file, BadZipFile/zlib.error for a damaged one, KeyError
        # for a missing array, ValueError for a bad header.
        except (EOFError, zipfile.BadZipFile, zlib.error, KeyError, ValueError) as exc:
            raise IndexFormatError(f"{postings}: damaged BM25 postings ({type(exc).__name__}: {exc}); rebuild the index with `rag index`") from None
        try:
            with reporting_storage(vocab_path, "read"):
                vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
        except StorageError:
            if not vocab_path.is_file():
                raise IndexFormatError(f"{vocab_path}: missing BM25 vocabulary; rebuild the index with `rag index`") from None
            raise
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise IndexFormatError(f"{vocab_path}: damaged BM25 vocabulary ({exc}); rebuild the index with `rag index`") from None
        if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
            raise IndexFormatError(f"{vocab_path}: not a JSON list of terms; rebuild the index with `rag index`")
        n_terms, nnz = len(vocab), indices.shape[0] if indices.ndim == 1 else -1
        if (indptr.ndim != 1 or indptr.shape[0] != n_terms + 1 or tf.shape != indices.shape or lengths.ndim != 1
                or nnz < 0 or (n_terms and (indptr[0] != 0 or indptr[-1] != nnz or np.any(np.diff(indptr) < 0)))
                or (nnz and (indices.min() < 0 or indices.max() >= lengths.shape[0]))):
            raise IndexFormatError(f"{directory}: BM25 vocabulary and postings disagree ({POSTINGS_NAME}, {VOCAB_NAME}); rebuild the index with `rag index`")
        return cls(tuple(vocab), indptr, indices, tf, lengths)

    def write(self, directory: str | Path) -> None:
        """Write the two files into ``directory`` (each atomically), as :meth:`BM25Data.write` does."""
        _write(directory, self.vocab, self.indptr, self.indices, self.tf, self.doc_lengths)

    @classmethod
    def merge(cls, parts: Sequence[BM25Postings], rows: Sequence[np.ndarray], n_rows: int) -> BM25Postings:
        """Several corpora's passages as one corpus, in a new row order, without the dropped ones.

        The result equals ``BM25Data.append`` of the parts followed by ``select`` of the kept
        columns (same vocabulary order: first seen over the parts in order, terms left without a
        passage removed; rows ascending within each term), in one pass over the postings and
        without scipy: the merge costs O(nnz) plus a sort of the postings by (term, row), which
        is a merge of already sorted runs when each part's kept rows keep their relative order
        (segments of one commit do).

        Args:
            parts: the corpora.
            rows: for each part, the (N_s,) row of each of its passages in the result, -1 to drop it.
            n_rows: passages of the result (every row ``0..n_rows-1`` is the target of exactly one passage).
        """
        term_ids: dict[str, int] = {}
        terms, cols, counts = [], [], []
        lengths = np.zeros(n_rows, np.int64)  # (G,)
        for part, target in zip(parts, rows):
            target = np.asarray(target, dtype=np.int64)  # (N_s,)
            ids = np.fromiter((term_ids.setdefault(t, len(term_ids)) for t in part.vocab), np.int64, len(part.vocab))  # (V_s,)
            col = target[part.indices]  # (nnz_s,) row in the result of each posting
            keep = col >= 0
            terms.append(np.repeat(ids, np.diff(part.indptr))[keep])
            cols.append(col[keep])
            counts.append(part.tf[keep])
            alive = target >= 0
            lengths[target[alive]] = part.doc_lengths[alive]
        term = np.concatenate(terms) if terms else np.zeros(0, np.int64)
        col = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        order = np.argsort(term * max(n_rows, 1) + col, kind="stable")  # (nnz,) by term, then row; timsort merges sorted runs
        term, col, tf = term[order], col[order], np.concatenate(counts)[order] if counts else np.zeros(0, np.int32)
        df = np.bincount(term, minlength=len(term_ids))  # (V,) passages of each term
        live = df > 0
        vocab = tuple(t for t, alive in zip(term_ids, live.tolist()) if alive)
        indptr = np.concatenate([[0], np.cumsum(df[live])]).astype(np.int64)  # (V'+1,)
        index_dtype = np.int32 if n_rows < 2**31 else np.int64
        return cls(vocab, indptr, col.astype(index_dtype), tf.astype(np.int32), lengths)


def _write(directory: str | Path, vocab: Sequence[str], indptr: np.ndarray, indices: np.ndarray, tf: np.ndarray,
           doc_lengths: np.ndarray) -> None:
    """The two files of a corpus's term-major counts, each written atomically."""
    buf = io.BytesIO()
    np.savez(buf, indptr=np.asarray(indptr, dtype=np.int64), indices=np.asarray(indices, dtype=np.int32),
             tf=np.asarray(tf, dtype=np.int32), doc_lengths=np.asarray(doc_lengths, dtype=np.int64))
    atomic_write_bytes(Path(directory) / POSTINGS_NAME, buf.getvalue())
    atomic_write_text(Path(directory) / VOCAB_NAME, json.dumps(list(vocab), ensure_ascii=False))


@dataclass(frozen=True)
class BM25Data:
    """Term frequencies of a corpus as a term × passage sparse matrix.

    Attributes:
        vocab: term strings; ``vocab[t]`` is term id ``t``.
        tf: (V, N) CSR matrix of raw counts (int32).
        doc_lengths: (N,) number of analyzed tokens per passage.
    """

    vocab: tuple[str, ...]
    tf: sp.csr_matrix
    doc_lengths: np.ndarray

    @property
    def n_docs(self) -> int:
        return int(self.doc_lengths.shape[0])

    @classmethod
    def from_token_lists(cls, docs: Iterable[Sequence[str]]) -> BM25Data:
        """Count terms of already-analyzed passages (one token list per passage, in row order)."""
        import scipy.sparse as sp

        term_ids: dict[str, int] = {}
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        lengths: list[int] = []
        for j, tokens in enumerate(docs):
            ids = np.fromiter((term_ids.setdefault(t, len(term_ids)) for t in tokens), dtype=np.int64, count=len(tokens))
            lengths.append(len(tokens))
            if ids.size:
                rows.append(ids)
                cols.append(np.full(ids.size, j, dtype=np.int64))
        n = len(lengths)
        v = len(term_ids)
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        # COO -> CSR sums duplicate (term, passage) pairs: that sum is the term frequency.
        tf = sp.coo_matrix((np.ones(r.size, np.int32), (r, c)), shape=(v, n)).tocsr()
        tf.sum_duplicates()
        vocab = tuple(sorted(term_ids, key=term_ids.__getitem__))
        return cls(vocab, tf.astype(np.int32), np.asarray(lengths, dtype=np.int64))

    def term_index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.vocab)}

    def append(self, other: BM25Data) -> BM25Data:
        """This corpus followed by ``other``'s passages (rows ``N..N+M-1``); vocabularies merge."""
        import scipy.sparse as sp

        index = self.term_index()
        extra = [t for t in other.vocab if t not in index]
        vocab = self.vocab + tuple(extra)
        index.update({t: len(self.vocab) + i for i, t in enumerate(extra)})
        remap = np.fromiter((index[t] for t in other.vocab), dtype=np.int64, count=len(other.vocab))
        o = other.tf.tocoo()
        moved = sp.coo_matrix((o.data, (remap[o.row], o.col)), shape=(len(vocab), other.n_docs))
        indptr = np.concatenate([self.tf.indptr, np.full(len(extra), self.tf.indptr[-1])])  # new terms: empty rows
        grown = sp.csr_matrix((self.tf.data, self.tf.indices, indptr), shape=(len(vocab), self.n_docs))
        tf = sp.hstack([grown, moved], format="csr", dtype=np.int32)
        return BM25Data(vocab, tf, np.concatenate([self.doc_lengths, other.doc_lengths]))

    def drop(self, rows: Sequence[int]) -> BM25Data:
        """This corpus without the passages at ``rows`` (later rows shift down); unused terms go."""
        keep = np.ones(self.n_docs, dtype=bool)
        keep[np.asarray(rows, dtype=np.int64)] = False
        return self.select(np.flatnonzero(keep))

    def select(self, columns: np.ndarray) -> BM25Data:
        """The passages at ``columns`` (M,), in that order, as a corpus of their own; unused terms go."""
        columns = np.asarray(columns, dtype=np.int64)
        tf = self.tf[:, columns].tocsr()
        tf.sort_indices()
        live = np.diff(tf.indptr) > 0
        tf = tf[live].tocsr()
        vocab = tuple(t for t, alive in zip(self.vocab, live) if alive)
        return BM25Data(vocab, tf.astype(np.int32), self.doc_lengths[columns])

    def write(self, directory: str | Path) -> None:
        """Write the two files into ``directory`` (each atomically)."""
        _write(directory, self.vocab, self.tf.indptr, self.tf.indices, self.tf.data, self.doc_lengths)

    @classmethod
    def read(cls, directory: str | Path) -> BM25Data:
        import scipy.sparse as sp

        p = BM25Postings.read(directory)
        matrix = sp.csr_matrix((p.tf, p.indices, p.indptr), shape=(len(p.vocab), p.n_docs))
        return cls(p.vocab, matrix, p.doc_lengths)
