"""Question files for batch answering (``rag ask --questions FILE``).

A JSONL file, one question per line: ``{"id": ..., "question": ...}``; BEIR query rows
``{"_id": ..., "text": ...}`` and QA-set rows (``id``, ``question``, ``answers``) work as they
are, other fields are ignored. Every error names the file and line.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "q.jsonl"
    >>> _ = p.write_text('{"id": "q1", "question": "Why is the sky blue?"}\\n{"_id": 7, "text": "Who?"}\\n')
    >>> [(q.id, q.text) for q in read_questions(p)]
    [('q1', 'Why is the sky blue?'), ('7', 'Who?')]
"""

from __future__ import annotations

import json
from pathlib import Path

from indexes.errors import InputError
from rag.pipeline import Question


def read_questions(path: str | Path) -> list[Question]:
    """The questions of a JSONL file, in file order.

    Raises:
        InputError: unreadable file, a line that is not a JSON object, a missing or empty question,
            a missing or repeated id.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read questions ({getattr(exc, 'strerror', None) or exc})") from None
    out: list[Question] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{n}: not a JSON object; expected {{\"id\": ..., \"question\": ...}}")
        qid, text = row.get("id", row.get("_id")), row.get("question", row.get("text"))
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{path}:{n}: field 'question' missing or empty")
        if not isinstance(qid, (str, int)) or isinstance(qid, bool):
            raise InputError(f"{path}:{n}: field 'id' missing (a string or integer)")
        if str(qid) in seen:
            raise InputError(f"{path}:{n}: id {str(qid)!r} repeats an earlier line; ids must be unique")
        seen.add(str(qid))
        out.append(Question(str(qid), text))
    if not out:
        raise InputError(f"{path}: no questions")
    return out
