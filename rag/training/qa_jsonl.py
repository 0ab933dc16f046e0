"""Reading QA training files (JSONL, one example per line) for the generator trainers.

The FiD reader (:func:`rag.fid.train.load_qa_jsonl`) and the decoder
(:func:`rag.generation.train.load_generator_jsonl`) take different fields, but read and check them
the same way: every error names the file, the line and the field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from indexes.errors import InputError
from rag.textfile import parse_json_line, read_lines


def qa_rows(path: str | Path, fields: Sequence[tuple[str, type]], defaults: Mapping[str, object] | None = None,
            hints: Mapping[str, str] | None = None) -> Iterator[tuple[str, dict]]:
    """``(path:line, object)`` for each non-blank line, once ``fields`` (name, type) are checked.

    ``defaults`` fill absent keys before the check; ``hints`` are appended to a field's error.

    Raises:
        InputError: unreadable file, a line that is not JSON, a field missing or of the wrong type.
    """
    for n, line in read_lines(path, "QA file"):
        if not line.strip():
            continue
        row = parse_json_line(line, f"{path}:{n}", malformed="not a JSON object")
        if isinstance(row, dict):
            for key, value in (defaults or {}).items():
                row.setdefault(key, value)
        for key, kind in fields:
            if not isinstance(row.get(key) if isinstance(row, dict) else None, kind):
                raise InputError(f"{path}:{n}: field {key!r} missing or not a {kind.__name__}{(hints or {}).get(key, '')}")
        yield f"{path}:{n}", row
