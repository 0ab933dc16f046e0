"""SQuAD v1.1 / v2.0 JSON: paragraphs as corpus documents, questions as queries, qrels and QA items.

A SQuAD file is one JSON object ``{"version"?, "data": [article, ...]}``; an article is
``{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers": [{"text",
"answer_start"}], "is_impossible"?}]}]}`` (Rajpurkar et al., EMNLP 2016; v2.0 adds unanswerable
questions, ACL 2018).

Paragraph ids are ``<title>/p<n>``, ``n`` counting the paragraphs of that title from 0 in file
order, so they are stable for a given file and readable (``Super_Bowl_50/p3``). They end in
``/p<digits>`` and so can never be taken for a passage window ``DOC#n`` of another document, nor
equal one. Each question points to the paragraph it was written on; unanswerable v2.0 questions
keep ``answers=()`` and are not relevance judgments.

Example:
    >>> doc = {"data": [{"title": "Bm25", "paragraphs": [
    ...     {"context": "BM25 ranks documents.", "qas": [
    ...         {"id": "q1", "question": "What ranks documents?", "answers": [{"text": "BM25"}]}]}]}]}
    >>> paragraphs, questions = parse_squad(doc, "toy.json")
    >>> paragraphs[0].id, questions[0].paragraph_id, questions[0].answers
    ('Bm25/p0', 'Bm25/p0', ('BM25',))
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexes.errors import InputError
from rag.textfile import check_unicode, read_json, read_text


@dataclass(frozen=True)
class SquadParagraph:
    """One context paragraph: ``id`` as in the module docstring, ``title`` with spaces for ``_``."""

    id: str
    title: str
    text: str


@dataclass(frozen=True)
class SquadQuestion:
    """One question, its gold answers (empty when unanswerable) and the paragraph it belongs to.

    ``article`` is the article's title as the file writes it (``""`` when it has none).
    """

    id: str
    question: str
    answers: tuple[str, ...]
    paragraph_id: str
    article: str = ""
    impossible: bool = False


def looks_like_squad(value: Any) -> bool:
    """Whether a parsed JSON value has SQuAD's shape (an object with a ``data`` list)."""
    return isinstance(value, dict) and isinstance(value.get("data"), list)


def maybe_squad(path: str | Path) -> tuple[list[SquadParagraph], list[SquadQuestion]] | None:
    """:func:`read_squad` of ``path`` if it is a ``.json`` file in SQuAD's shape, else ``None``.

    A ``.json`` file that is not one JSON document (JSON Lines named ``.json``), or not UTF-8,
    gives ``None``: it is left to the line-by-line readers, which report bad lines precisely.

    Raises:
        InputError: a SQuAD-shaped file with a malformed article, paragraph or question.
    """
    if Path(path).suffix.lower() != ".json":
        return None
    try:
        doc = json.loads(read_text(path))
    except (InputError, json.JSONDecodeError):
        return None
    if not looks_like_squad(doc):
        return None
    check_unicode(doc, str(path))
    return parse_squad(doc, str(path))


def read_squad(path: str | Path) -> tuple[list[SquadParagraph], list[SquadQuestion]]:
    """Paragraphs and questions of a SQuAD file, in file order.

    Raises:
        InputError: unreadable or malformed file, or a field of the wrong type (named by path).
    """
    return parse_squad(read_json(path, "SQuAD file"), str(path))


def parse_squad(doc: Any, source: str) -> tuple[list[SquadParagraph], list[SquadQuestion]]:
    """:func:`read_squad` on an already parsed JSON value; ``source`` names it in errors."""
    if not looks_like_squad(doc):
        raise InputError(f"{source}: expected SQuAD format, an object with a 'data' list of articles")
    paragraphs: list[SquadParagraph] = []
    questions: list[SquadQuestion] = []
    per_title: Counter[str] = Counter()
    for a, article in enumerate(doc["data"]):
        where = f"{source}: data[{a}]"
        _expect(article, dict, where)
        raw_title = article.get("title") or f"article-{a}"
        _expect(raw_title, str, f"{where}.title")
        _expect(article.get("paragraphs"), list, f"{where}.paragraphs")
        title = raw_title.replace("_", " ")
        for p, para in enumerate(article["paragraphs"]):
            at = f"{where}.paragraphs[{p}]"
            _expect(para, dict, at)
            _expect(para.get("context"), str, f"{at}.context")
            pid = f"{raw_title}/p{per_title[raw_title]}"
            per_title[raw_title] += 1
            paragraphs.append(SquadParagraph(pid, title, para["context"]))
            _expect(para.get("qas", []), list, f"{at}.qas")
            for q, qa in enumerate(para.get("qas", [])):
                _expect(qa, dict, f"{at}.qas[{q}]")
                if not isinstance(qa.get("question"), str) or qa.get("id") in (None, ""):
                    raise InputError(f"{at}.qas[{q}]: a question needs an 'id' and a 'question' string")
                answers = qa.get("answers", [])
                _expect(answers, list, f"{at}.qas[{q}].answers")
                if not all(isinstance(x, dict) and isinstance(x.get("text"), str) for x in answers):
                    raise InputError(f"{at}.qas[{q}].answers: each answer must be an object with a 'text' string")
                texts = tuple(x["text"] for x in answers)
                questions.append(SquadQuestion(str(qa["id"]), qa["question"], texts, pid, article.get("title") or "",
                                               bool(qa.get("is_impossible", False))))
    return paragraphs, questions


def _expect(value: Any, kind: type, where: str) -> None:
    if not isinstance(value, kind):
        raise InputError(f"{where}: expected a {'JSON object' if kind is dict else kind.__name__}, "
                         f"got {type(value).__name__}; is this a SQuAD v1.1/v2.0 file?")
