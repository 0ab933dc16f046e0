"""The passage store: one SQLite table of passages, addressed by their row number.

Row numbers (``0 .. n-1``) are the shared coordinate of every index part: column ``j`` of the
BM25 matrix, row ``j`` of the dense vectors and row ``j`` here are the same passage. SQLite is
plain, inspectable with any client, and reads single rows without loading the corpus.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexes.errors import IndexFormatError
from indexes.io_errors import sqlite_error

STORE_NAME = "passages.sqlite"

_SCHEMA = """
CREATE TABLE passages (
    row INTEGER PRIMARY KEY,      -- 0-based, shared with the BM25 and dense parts
    id TEXT NOT NULL UNIQUE,      -- passage id: the doc id, or "docid#n" for the n-th window
    doc_id TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL        -- JSON object
);
CREATE INDEX passages_doc ON passages(doc_id);
"""


@dataclass(frozen=True)
class Passage:
    """A retrievable unit of text and the document it came from."""

    id: str
    doc_id: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def write_passages(directory: str | Path, passages: Iterable[Passage]) -> int:
    """Create ``directory/passages.sqlite`` from ``passages`` (in row order); return the count.

    Raises:
        sqlite3.IntegrityError: two passages share an id (the caller knows which input).
        StorageError: the disk is full or refuses the write.
    """
    path = Path(directory) / STORE_NAME
    try:
        con = sqlite3.connect(path)
        try:
            con.executescript(_SCHEMA)
            rows = (
                (i, p.id, p.doc_id, p.title, p.text, json.dumps(p.metadata, ensure_ascii=False))
                for i, p in enumerate(passages)
            )
            con.executemany("INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?)", rows)
            con.commit()
            (count,) = con.execute("SELECT COUNT(*) FROM passages").fetchone()
        finally:
            con.close()
    except sqlite3.IntegrityError:
        raise
    except sqlite3.Error as exc:
        raise sqlite_error(path, exc, "write") from None
    return int(count)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """SQLite errors while reading ``path`` → a damaged-index or storage error naming it."""
    try:
        yield
    except sqlite3.Error as exc:
        raise sqlite_error(path, exc, "read") from None


class PassageStore:
    """Read-only access to ``passages.sqlite``; safe to share between threads."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / STORE_NAME
        if not self.path.is_file():
            raise IndexFormatError(f"{self.path}: missing passage store; rebuild the index with `rag index`")
        with _reading(self.path):
            # check_same_thread=False + read-only URI: the service reads from worker threads.
            self._con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            (self._count,) = self._con.execute("SELECT COUNT(*) FROM passages").fetchone()

    def __len__(self) -> int:
        return int(self._count)

    def _select_in(self, columns: str, key: str, values: Sequence, order: str | None = None) -> Iterator[tuple]:
        """``SELECT columns FROM passages WHERE key IN values [ORDER BY order]``, in chunks of 900 values
        (under SQLite's bound-parameter limit; ``order`` holds within each chunk)."""
        for start in range(0, len(values), 900):
            chunk = values[start : start + 900]
            marks = ",".join("?" * len(chunk))
            tail = f" ORDER BY {order}" if order else ""
            yield from self._con.execute(f"SELECT {columns} FROM passages WHERE {key} IN ({marks}){tail}", chunk)

    def get(self, rows: Sequence[int]) -> list[Passage]:
        """Passages at the given row numbers, in the same order."""
        if not rows:
            return []
        wanted = [int(r) for r in rows]
        found: dict[int, Passage] = {}
        with _reading(self.path):
            for row, pid, doc_id, title, text, meta in self._select_in("row, id, doc_id, title, text, metadata", "row", wanted):
                found[row] = Passage(pid, doc_id, title, text, json.loads(meta))
        missing = [r for r in wanted if r not in found]
        if missing:
            raise IndexFormatError(f"{self.path}: passage row {missing[0]} is missing; the index parts disagree, rebuild it with `rag index`")
        return [found[r] for r in wanted]

    def ids(self) -> list[str]:
        """All passage ids in row order."""
        with _reading(self.path):
            return [pid for (pid,) in self._con.execute("SELECT id FROM passages ORDER BY row")]

    def doc_ids(self) -> list[str]:
        """The document id of every passage, in row order."""
        with _reading(self.path):
            return [d for (d,) in self._con.execute("SELECT doc_id FROM passages ORDER BY row")]

    def metadata(self) -> list[dict[str, Any]]:
        """The metadata object of every passage, in row order (what filters are evaluated on)."""
        with _reading(self.path):
            return [json.loads(m) for (m,) in self._con.execute("SELECT metadata FROM passages ORDER BY row")]

    def rows_of(self, ids: Sequence[str]) -> list[int | None]:
        """Row numbers of the given passage ids (``None`` where unknown)."""
        wanted = [str(pid) for pid in ids]
        found: dict[str, int] = {}
        with _reading(self.path):
            found.update(self._select_in("id, row", "id", wanted))
        return [None if (r := found.get(pid)) is None else int(r) for pid in wanted]

    def rows_of_documents(self, doc_ids: Sequence[str]) -> dict[str, list[int]]:
        """Rows of every passage of each given document id that is stored (ids not stored are absent)."""
        out: dict[str, list[int]] = {}
        wanted = list(doc_ids)
        for row, doc in self._select_in("row, doc_id", "doc_id", wanted, order="row"):  # a document's rows in one chunk
            out.setdefault(doc, []).append(int(row))
        return out

    def iter_all(self, batch: int = 1024) -> Iterable[Passage]:
        """Every passage in row order, streamed."""
        with _reading(self.path):
            cur = self._con.execute("SELECT id, doc_id, title, text, metadata FROM passages ORDER BY row")
            chunk = cur.fetchmany(batch)
        while chunk:
            for pid, doc_id, title, text, meta in chunk:
                yield Passage(pid, doc_id, title, text, json.loads(meta))
            with _reading(self.path):
                chunk = cur.fetchmany(batch)

    def close(self) -> None:
        self._con.close()
