"""Reading the user's text files: one place that decodes bytes, so every reader agrees.

Every text input the project reads (corpora, queries, qrels, runs, labels, QA and training files)
goes through these helpers, which apply the same rules:

* **UTF-8, strictly.** A byte sequence that is not UTF-8 is an error that names the file, the
  line and the column (``corpus.csv:5002: not valid UTF-8 (byte 0xe9 at column 12) ...``), found
  by decoding each line on its own, so the line number is always the physical line.
* **A byte-order mark is accepted.** Windows editors and Excel start UTF-8 files with the BOM
  ``EF BB BF``; it is dropped from the start of the file and nowhere else. A UTF-16 file (Excel's
  "Unicode Text") is recognised by its own BOM and refused with a message saying so.
* **Lone surrogates are refused.** JSON can spell a UTF-16 surrogate half (``"\\ud800"``) that
  is no Unicode character: Python parses it into a string that cannot be written as UTF-8 (to
  SQLite, to a run file, to a tokenizer), so it is reported here, at its line, instead of
  failing later with a traceback.

Errors are :class:`~indexes.errors.InputError`; readers that can skip bad records (``rag index
--skip-bad-lines``) catch them per record.

Example:
    >>> parse_json_line(b'\\xef\\xbb\\xbf{"_id": "1"}', "c.jsonl:1")
    {'_id': '1'}
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from indexes.errors import InputError

BOM = codecs.BOM_UTF8  # b"\xef\xbb\xbf"
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # Excel's "Unicode Text", Notepad's "Unicode"
_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON escape of a surrogate half: the only way one can enter a parsed string (strict UTF-8
# decoding refuses encoded ones), so only lines holding such an escape are searched.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def read_lines(path: str | Path, what: str = "file") -> Iterator[tuple[int, bytes]]:
    """``(line number, bytes)`` for every line of ``path``, 1-based, BOM removed from line 1.

    Lines keep their terminator (``\\n`` or ``\\r\\n``); decode them with :func:`decode_line`.

    Raises:
        InputError: the file cannot be opened or read.
    """
    try:
        with Path(path).open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if lineno == 1:
                    raw = _strip_bom(raw, path)
                yield lineno, raw
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None


def decode_line(raw: bytes, where: str) -> str:
    """``raw`` decoded as UTF-8.

    Raises:
        InputError: ``where: not valid UTF-8 (byte 0x.. at column c)`` with the 1-based column.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: {utf8_problem(raw, exc)}") from None


def parse_json_line(raw: bytes | str, where: str, hint: str = "", malformed: str = "malformed JSON") -> Any:
    """One JSON value from one line of a JSONL file (BOM tolerated), checked for lone surrogates.

    Malformed JSON is reported as ``where: {malformed} (parser message at column c){hint}``.

    Raises:
        InputError: not UTF-8, malformed JSON, or a string holding a lone surrogate.
    """
    if isinstance(raw, bytes):
        text = decode_line(raw[len(BOM):] if raw.startswith(BOM) else raw, where)
        escaped = _SURROGATE_ESCAPE.search(raw) is not None
    else:
        text = raw.removeprefix("\ufeff")
        escaped = "\\u" in text
    try:
        # without its line break, a record cut short is reported at the end of its own line
        # (with it, the parser points at "line 2, column 1" of the text: a column the user cannot find)
        value = json.loads(text.rstrip("\r\n"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: {malformed} ({exc.msg} at column {exc.colno}){hint}") from None
    if escaped:
        check_unicode(value, where)
    return value


def check_unicode(value: Any, where: str) -> None:
    """Refuse a lone surrogate in any string (key or value) of a parsed JSON ``value``.

    Raises:
        InputError: names ``where`` and the offending code point.
    """
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            m = _SURROGATE.search(v)
            if m:
                raise InputError(f"{where}: lone surrogate \\u{ord(m.group()):04x} in a JSON string; it is no "
                                 "Unicode character (a UTF-16 pair cut in half?): fix or drop this record")
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def read_text(path: str | Path, what: str = "file") -> str:
    """The whole of ``path`` as text (BOM removed).

    Raises:
        InputError: unreadable file, or bytes that are not UTF-8 (with their line and column).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    data = _strip_bom(data, path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        lineno = data.count(b"\n", 0, exc.start) + 1
        line_end = data.find(b"\n", exc.start)
        line = data[line_start: len(data) if line_end < 0 else line_end]
        exc2 = UnicodeDecodeError("utf-8", line, exc.start - line_start, exc.end - line_start, exc.reason)
        raise InputError(f"{path}:{lineno}: {utf8_problem(line, exc2)}") from None


def read_json(path: str | Path, what: str = "file") -> Any:
    """The JSON document ``path`` holds (BOM tolerated), checked for lone surrogates.

    Raises:
        InputError: unreadable, not UTF-8, malformed (with line and column), or a lone surrogate.
    """
    text = read_text(path, what)
    try:
        # without its line break, a record cut short is reported at the end of its own line
        # (with it, the parser points at "line 2, column 1" of the text: a column the user cannot find)
        value = json.loads(text.rstrip("\r\n"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
    if "\\u" in text:
        check_unicode(value, str(path))
    return value


def _strip_bom(first: bytes, path: str | Path) -> bytes:
    """``first`` (the file's first bytes) without a UTF-8 BOM; a UTF-16 file is refused by name."""
    if first.startswith(_UTF16_BOMS):
        raise InputError(f"{path}: the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8")
    return first[len(BOM):] if first.startswith(BOM) else first


def utf8_problem(raw: bytes, exc: UnicodeDecodeError) -> str:
    """What is wrong with ``raw`` (one line), for an error message: the byte and its 1-based column."""
    column = len(raw[: exc.start].decode("utf-8", errors="replace")) + 1
    return (f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {column}); "
            "save the file as UTF-8")
