"""Corpus readers: BEIR JSONL, generic JSONL, CSV/TSV, SQuAD JSON and folders of ``.txt``/``.md``.

Every reader yields :class:`Document` objects whose ``metadata`` holds every field of the
record other than its id, title and text (the keys of a JSON ``metadata`` object, and any other
JSONL field or CSV/TSV column), which is what metadata filters select on (:mod:`indexes.filters`).
Every reader checks its input as it goes: a malformed JSON
line, a lone surrogate in a JSON string, a missing id or text field, a duplicate id, a CSV/TSV
row with the wrong number of fields or undecodable UTF-8 raises
:class:`~indexes.errors.InputError` naming the file and line, unless ``skip_bad_lines`` is set,
in which case the record is skipped and counted in :attr:`ReadReport.skipped`. A CSV quote that
is never closed is always an error (everything after it would be one field).

Bytes are decoded by :mod:`rag.textfile` (UTF-8, BOM accepted), CSV/TSV rows by
:mod:`rag.tabular` (TSV verbatim, no quoting), SQuAD files by :mod:`rag.squad` (one document per
paragraph, ids ``<title>/p<n>``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from indexes.errors import InputError
from rag.squad import maybe_squad, read_squad
from rag.tabular import read_table
from rag.textfile import parse_json_line, read_lines, read_text
from rag.wording import counted

CorpusFormat = Literal["auto", "beir", "jsonl", "csv", "tsv", "squad", "dir"]
_ID_FIELDS = ("_id", "id", "docid", "doc_id")
_TEXT_FIELDS = ("text", "contents", "body", "content")


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    where: str = field(default="", compare=False)  # the record, for errors: "corpus.jsonl:3" (REST: "documents[2]")


class CorpusSpec(BaseModel):
    """How to read a corpus. Field names default to the first of the usual names present."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: CorpusFormat = "auto"
    id_field: str | None = None
    title_field: str | None = "title"
    text_field: str | None = None
    skip_bad_lines: bool = False


@dataclass
class ReadReport:
    """Counts filled in while a reader runs."""

    documents: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)  # the first 20 skipped records' messages (file:line: why)


def skipped_note(skipped: int, first: str | None) -> str:
    """The part of a summary that says how many bad records ``--skip-bad-lines`` skipped, and the first."""
    if not skipped:
        return ""
    return f", {counted(skipped, 'bad record')} skipped" + (f" (first: {first})" if first else "")


def detect_format(path: Path) -> CorpusFormat:
    """The corpus format implied by ``path``: its extension, or ``dir`` for a folder.

    A ``.json`` file is ``squad`` when it is one JSON object with a ``data`` list, else JSON Lines.
    """
    if path.is_dir():
        return "dir"
    suffix = path.suffix.lower()
    if suffix == ".json" and maybe_squad(path) is not None:
        return "squad"
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    raise InputError(f"{path}: cannot tell the corpus format from the extension; pass --format beir|jsonl|csv|tsv|squad|dir")


def read_corpus(path: str | Path, spec: CorpusSpec = CorpusSpec(), report: ReadReport | None = None) -> Iterator[Document]:
    """Yield the documents of ``path`` in file order.

    Raises:
        InputError: missing/unreadable file, bad record (with its line number), duplicate id.
    """
    path = Path(path)
    report = report if report is not None else ReadReport()
    if not path.exists():
        raise InputError(f"corpus not found: {path}")
    fmt = detect_format(path) if spec.format == "auto" else spec.format
    if fmt in ("beir", "jsonl"):
        records = _jsonl_records(path, spec, report)
    elif fmt in ("csv", "tsv"):
        rows = read_table(path, "\t" if fmt == "tsv" else ",", lambda m: _bad(m, spec, report), "corpus")
        records = ((f"{path}:{lineno}", row) for lineno, row in rows)
    elif fmt == "squad":
        records = _squad_records(path)
        spec = spec.model_copy(update={"id_field": "_id", "text_field": "text", "title_field": "title"})
    else:
        records = _dir_records(path, report, spec)
    seen: set[str] = set()
    for where, rec in records:
        doc = _to_document(rec, spec, where, report)
        if doc is None:
            continue
        if doc.id in seen:
            _bad(f"{where}: duplicate document id {doc.id!r}", spec, report)
            continue
        seen.add(doc.id)
        report.documents += 1
        yield doc


def corpus_sha256(path: str | Path) -> str:
    """SHA-256 of the corpus bytes (for a folder: of every file's relative path and bytes)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _bad(message: str, spec: CorpusSpec, report: ReadReport) -> None:
    if not spec.skip_bad_lines:
        raise InputError(message + " (use --skip-bad-lines to skip such records)")
    report.skipped += 1
    if len(report.problems) < 20:
        report.problems.append(message)


def _jsonl_records(path: Path, spec: CorpusSpec, report: ReadReport) -> Iterator[tuple[str, dict]]:
    for lineno, raw in read_lines(path, "corpus"):
        where = f"{path}:{lineno}"
        if not raw.strip():
            continue
        try:
            rec = parse_json_line(raw, where)
        except InputError as exc:
            _bad(str(exc), spec, report)
            continue
        if not isinstance(rec, dict):
            _bad(f"{where}: expected a JSON object", spec, report)
            continue
        yield where, rec


def _squad_records(path: Path) -> Iterator[tuple[str, dict]]:
    for p in read_squad(path)[0]:
        yield f"{path}: paragraph {p.id!r}", {"_id": p.id, "title": p.title, "text": p.text}


def _dir_records(path: Path, report: ReadReport, spec: CorpusSpec) -> Iterator[tuple[str, dict]]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".txt", ".md"))
    for f in files:
        try:
            text = read_text(f, "corpus file")
        except InputError as exc:
            _bad(str(exc), spec, report)
            continue
        title = f.stem
        lines = text.lstrip().splitlines()
        if f.suffix.lower() == ".md" and lines and lines[0].startswith("#"):
            title = lines[0].lstrip("#").strip()
        yield str(f), {"id": str(f.relative_to(path).with_suffix("")), "title": title, "text": text}


def _pick(rec: dict, explicit: str | None, candidates: tuple[str, ...]) -> str | None:
    if explicit is not None:
        return explicit if explicit in rec else None
    return next((c for c in candidates if c in rec), None)


def _to_document(rec: dict, spec: CorpusSpec, where: str, report: ReadReport) -> Document | None:
    id_key = _pick(rec, spec.id_field, _ID_FIELDS)
    text_key = _pick(rec, spec.text_field, _TEXT_FIELDS)
    if id_key is None or rec[id_key] in (None, ""):
        _bad(f"{where}: no document id (field {spec.id_field or ' or '.join(_ID_FIELDS)})", spec, report)
        return None
    if text_key is None or not isinstance(rec[text_key], str):
        _bad(f"{where}: no text (field {spec.text_field or ' or '.join(_TEXT_FIELDS)})", spec, report)
        return None
    title = rec.get(spec.title_field, "") if spec.title_field else ""
    nested = rec.get("metadata", {})
    if not isinstance(nested, dict):
        nested = {"metadata": nested}
    # Every other field of the record is metadata too (filterable); the "metadata" object's keys win.
    used = {id_key, text_key, spec.title_field, "metadata"}
    metadata = {key: value for key, value in rec.items() if key not in used} | nested
    if not rec[text_key].strip() and not (title or "").strip():
        _bad(f"{where}: empty document {rec[id_key]!r}", spec, report)
        return None
    return Document(str(rec[id_key]), str(title or ""), rec[text_key], metadata, where)
