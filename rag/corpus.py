"""Corpus readers: BEIR JSONL, generic JSONL, CSV/TSV and folders of ``.txt``/``.md`` files.

Every reader yields :class:`Document` objects and checks its input as it goes: a malformed JSON
line, a missing id or text field, a duplicate id or undecodable UTF-8 raises
:class:`~indexes.errors.InputError` naming the file and line, unless ``skip_bad_lines`` is set,
in which case the record is skipped and counted in :attr:`ReadReport.skipped`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from indexes.errors import InputError

CorpusFormat = Literal["auto", "beir", "jsonl", "csv", "tsv", "dir"]
_ID_FIELDS = ("_id", "id", "docid", "doc_id")
_TEXT_FIELDS = ("text", "contents", "body", "content")


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


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
    problems: list[str] = field(default_factory=list)


def detect_format(path: Path) -> CorpusFormat:
    if path.is_dir():
        return "dir"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    raise InputError(f"{path}: cannot tell the corpus format from the extension; pass --format beir|jsonl|csv|tsv|dir")


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
        records = _csv_records(path, "\t" if fmt == "tsv" else ",", report, spec)
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


def _open_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        with path.open("rb") as fh:
            yield from enumerate(fh, start=1)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def _jsonl_records(path: Path, spec: CorpusSpec, report: ReadReport) -> Iterator[tuple[str, dict]]:
    for lineno, raw in _open_lines(path):
        where = f"{path}:{lineno}"
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            _bad(f"{where}: not valid UTF-8", spec, report)
            continue
        except json.JSONDecodeError as exc:
            _bad(f"{where}: malformed JSON ({exc.msg})", spec, report)
            continue
        if not isinstance(rec, dict):
            _bad(f"{where}: expected a JSON object", spec, report)
            continue
        yield where, rec


def _csv_records(path: Path, delimiter: str, report: ReadReport, spec: CorpusSpec) -> Iterator[tuple[str, dict]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        fh = path.open(encoding="utf-8", newline="")
        reader = csv.DictReader(fh, delimiter=delimiter)
        try:
            for rec in reader:
                yield f"{path}:{reader.line_num}", rec
        except UnicodeDecodeError:
            raise InputError(f"{path}: not valid UTF-8 (after line {reader.line_num})") from None
        except csv.Error as exc:
            raise InputError(f"{path}:{reader.line_num}: {exc}") from None
        finally:
            fh.close()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def _dir_records(path: Path, report: ReadReport, spec: CorpusSpec) -> Iterator[tuple[str, dict]]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".txt", ".md"))
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            _bad(f"{f}: not valid UTF-8", spec, report)
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
    metadata = rec.get("metadata", {})
    if not isinstance(metadata, dict):
        metadata = {"metadata": metadata}
    if not rec[text_key].strip() and not (title or "").strip():
        _bad(f"{where}: empty document {rec[id_key]!r}", spec, report)
        return None
    return Document(str(rec[id_key]), str(title or ""), rec[text_key], metadata)
