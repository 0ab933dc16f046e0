"""Reading QA training files (JSONL, one example per line) for the generator trainers.

The FiD reader (:func:`rag.fid.train.load_qa_jsonl`) and the decoder
(:func:`rag.generation.train.load_generator_jsonl`) take different fields, but read and check them
the same way: every error names the file, the line and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from indexes.errors import InputError


def qa_rows(path: str | Path, fields: Sequence[tuple[str, type]], defaults: Mapping[str, object] | None = None,
            hints: Mapping[str, str] | None = None) -> Iterator[tuple[str, dict]]:
    """``(path:line, object)`` for each non-blank line, once ``fields`` (name, type) are checked.

    ``defaults`` fill absent keys before the check; ``hints`` are appended to a field's error.

    Raises:
        InputError: unreadable file, a line that is not JSON, a field missing or of the wrong type.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read QA file ({exc.strerror})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{path}:{n}: not a JSON object") from None
        if isinstance(row, dict):
            for key, value in (defaults or {}).items():
                row.setdefault(key, value)
        for key, kind in fields:
            if not isinstance(row.get(key) if isinstance(row, dict) else None, kind):
                raise InputError(f"{path}:{n}: field {key!r} missing or not a {kind.__name__}{(hints or {}).get(key, '')}")
        yield f"{path}:{n}", row
