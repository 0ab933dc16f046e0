"""CSV and TSV files with a header row, read record by record with exact line numbers.

* **TSV has no quoting.** A tab-separated file is split on tabs, one record per line, and every
  field is kept verbatim: ``"Hello" said the harbor master`` keeps its quotes, and a field that
  starts with ``"`` cannot swallow the lines after it (as it does when TSV is read with CSV's
  quoting rules, the default of Python's ``csv`` and of pandas).
* **CSV follows RFC 4180**, strictly: a quoted field may span lines, but a quote that is never
  closed is an error naming the line where the record began, instead of a last record holding
  the rest of the file; stray quotes inside a record are bad records.
* Each line is decoded on its own (:mod:`rag.textfile`): bad UTF-8 is reported at its physical
  line and only the record holding it is bad. A record with more or fewer fields than the header
  is bad, so no text is silently cut at an unexpected delimiter.

Bad records go to ``on_bad`` (a callback that may raise or count and continue); without one they
raise :class:`~indexes.errors.InputError`. An unterminated quote always raises: nothing after
it can be parsed.

Example:
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = pathlib.Path(tmp) / "c.tsv"
    ...     _ = f.write_text('id\\ttext\\n1\\t"Hello" she said\\n', encoding="utf-8")
    ...     rows = [row for _, row in read_table(f, "\\t")]
    >>> rows
    [{'id': '1', 'text': '"Hello" she said'}]
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from indexes.errors import InputError
from rag.textfile import read_lines, utf8_problem

Delimiter = Literal[",", "\t"]


def _raise(message: str) -> None:
    raise InputError(message)


def read_table(path: str | Path, delimiter: Delimiter, on_bad: Callable[[str], None] | None = None,
               what: str = "file") -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, {column: value})`` for each record after the header, in file order.

    ``line`` is the 1-based line where the record starts (a quoted CSV field may span lines).

    Args:
        path: the CSV (``delimiter=","``) or TSV (``"\\t"``) file.
        delimiter: field separator; a tab means no quoting at all.
        on_bad: called with the message of each bad record; default: raise it.
        what: what the file is, for the "cannot read" message.

    Raises:
        InputError: unreadable file, no header, an unterminated quote, or (without ``on_bad``)
            a bad record.
    """
    on_bad = on_bad or _raise
    records = _tsv_records(path, what) if delimiter == "\t" else _csv_records(path, what)
    header: list[str] | None = None
    for lineno, fields, problem in records:
        where = f"{path}:{lineno}"
        if header is None:
            if problem:
                raise InputError(f"{where}: {problem} (in the header)")
            if fields and any(f.strip() for f in fields):
                header = [f.strip() for f in fields]
            continue
        if problem:
            on_bad(f"{where}: {problem}")
        elif fields and fields != [""]:
            if len(fields) != len(header):
                on_bad(f"{where}: {len(fields)} fields where the header has {len(header)}")
            else:
                yield lineno, dict(zip(header, fields))
    if header is None:
        raise InputError(f"{path}: empty file (expected a header row naming the columns)")


def _tsv_records(path: str | Path, what: str) -> Iterator[tuple[int, list[str], str | None]]:
    for lineno, raw in read_lines(path, what):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield lineno, [], utf8_problem(raw, exc)
            continue
        yield lineno, line.rstrip("\r\n").split("\t"), None


class _DecodedLines:
    """Lines for ``csv.reader``: undecodable ones are remembered (and replaced) by line number."""

    def __init__(self, path: str | Path, what: str) -> None:
        self._lines = read_lines(path, what)
        self.lineno = 0
        self.exhausted = False
        self.bad: dict[int, str] = {}

    def __iter__(self) -> _DecodedLines:
        return self

    def __next__(self) -> str:
        try:
            self.lineno, raw = next(self._lines)
        except StopIteration:
            self.exhausted = True
            raise
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.bad[self.lineno] = utf8_problem(raw, exc)
            return raw.decode("utf-8", errors="replace")


def _csv_records(path: str | Path, what: str) -> Iterator[tuple[int, list[str], str | None]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long documents are single fields
    lines = _DecodedLines(path, what)
    reader = csv.reader(lines, delimiter=",", strict=True)
    while True:
        start = lines.lineno + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if lines.exhausted:
                raise InputError(f"{path}:{start}: unterminated quoted field (its opening quote is never closed, "
                                 "so every later line would become part of it); close or remove the quote") from None
            yield start, [], f"malformed CSV record ({exc}); quote fields that hold '\"' or ','"
            continue
        bad = [n for n in range(start, lines.lineno + 1) if n in lines.bad]
        if bad:
            yield bad[0], [], lines.bad[bad[0]]
        else:
            yield start, fields, None
