"""QA datasets and prediction files: SQuAD-format JSON or JSONL of ``{id, question, answers}``.

Example:
    >>> item = QAItem(id="q1", question="Who?", answers=("Ada Lovelace",))
    >>> item.answers[0]
    'Ada Lovelace'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from eval.labels import read_rows
from indexes.errors import InputError
from rag.squad import read_squad


@dataclass(frozen=True)
class QAItem:
    """One question with its gold answers.

    Attributes:
        id: question id.
        question: question text.
        answers: gold answer strings (any match counts).
        stratum: optional group for stratified estimates (e.g. the article title or a question type).
    """

    id: str
    question: str
    answers: tuple[str, ...]
    stratum: str = ""


@dataclass(frozen=True)
class Prediction:
    """A system's answer to one question.

    Attributes:
        id: question id.
        answer: predicted answer text.
        passages: texts of the retrieved passages, best first (for answer recall).
        latency_ms: time to answer, when measured.
        kind: ``generated``, ``extractive`` or ``no_answer`` when known (``rag ask`` writes it);
            it chooses the default correctness rule of ``rag eval qa``.
    """

    id: str
    answer: str
    passages: tuple[str, ...] = field(default_factory=tuple)
    latency_ms: float | None = None
    kind: str | None = None


def load_qa(path: str | Path) -> list[QAItem]:
    """Read a SQuAD v1.1/v2.0 JSON file (``data → paragraphs → qas``) or a JSONL of QA rows.

    JSONL rows need ``id``, ``question`` and ``answers`` (a list of strings or of
    ``{"text": ...}``); an optional ``stratum`` (or ``type``) field groups items.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() == ".json":
        _, questions = read_squad(path)
        return [QAItem(q.id, q.question, q.answers, q.article) for q in questions]
    items = []
    for row in read_rows(path):
        for key in ("id", "question", "answers"):
            if key not in row:
                raise InputError(f"{path}:{row['_line']}: missing field '{key}'")
        answers = tuple(a["text"] if isinstance(a, dict) else str(a) for a in row["answers"])
        items.append(QAItem(str(row["id"]), str(row["question"]), answers, str(row.get("stratum", row.get("type", "")))))
    return items


def load_squad_paragraphs(path: str | Path) -> list[dict]:
    """The paragraphs of a SQuAD file as corpus rows ``{_id, title, text}`` (ids ``<title>/p<n>``).

    The same documents ``rag index FILE.json`` reads from the file directly (:mod:`rag.squad`).
    """
    return [{"_id": p.id, "title": p.title, "text": p.text} for p in read_squad(path)[0]]


_KINDS = ("generated", "extractive", "no_answer")


def load_predictions(path: str | Path) -> dict[str, Prediction]:
    """Read a predictions JSONL: ``{id, answer | prediction, [passages], [latency_ms], [kind]}`` per line.

    The answers JSONL of ``rag ask --questions`` reads as it is: ``[n]`` citation markers are
    removed from answers that carry ``citations``, a ``no_answer`` answer reads as "", and
    ``timings`` (milliseconds) sum to the latency.
    """
    out: dict[str, Prediction] = {}
    for row in read_rows(path):
        where = f"{path}:{row['_line']}"
        if "id" not in row:
            raise InputError(f"{where}: missing field 'id'")
        answer = row.get("answer", row.get("prediction"))
        if answer is None:
            raise InputError(f"{where}: missing field 'answer' (or 'prediction') for id {row['id']!r}")
        passages = row.get("passages") or ()
        passages = tuple(p["text"] if isinstance(p, dict) else str(p) for p in passages)
        latency = row.get("latency_ms")
        if latency in (None, "") and isinstance(row.get("timings"), dict):
            latency = sum(float(v) for v in row["timings"].values())
        kind = row.get("kind") or None
        if kind is not None and kind not in _KINDS:
            raise InputError(f"{where}: field 'kind' must be one of {', '.join(_KINDS)}; got {kind!r}")
        answer = "" if kind == "no_answer" else str(answer)
        if "citations" in row:
            answer = re.sub(r"\s*\[\d+\]", "", answer).strip()
        out[str(row["id"])] = Prediction(str(row["id"]), answer, passages,
                                         None if latency in (None, "") else float(latency), kind)
    return out
