"""Queries, relevance judgments (qrels) and TREC run files: the formats of a retrieval experiment.

Read by ``rag search --queries`` and ``rag train retriever`` as well as by the evaluation
harness (``eval.retrieval`` scores runs against qrels), so they live here, beside the corpus
readers (:mod:`rag.corpus`), and ``eval`` imports them.

* Queries: BEIR JSONL (``_id``/``id`` and ``text``; any ``metadata`` is never read), a TSV or
  ``.txt`` of ``id<TAB>text`` lines, or a SQuAD v1.1/v2.0 ``.json`` file (its questions).
* Qrels: BEIR TSV ``query-id corpus-id score`` (header optional), TREC ``qid 0 docid rel``, or a
  SQuAD ``.json`` file (each answerable question judges its own paragraph relevant, grade 1,
  with the paragraph ids :mod:`rag.squad` gives the corpus).
* Runs: TREC ``qid Q0 docid rank score tag`` lines.

All of them accept a UTF-8 BOM and name the file and line of any bad record (:mod:`rag.textfile`).

Example:
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "run.trec"
    ...     write_trec_run(path, {"q1": {"d2": 0.5, "d1": 1.0}})
    ...     lines = path.read_text().splitlines()
    >>> lines
    ['q1 Q0 d1 1 1.000000 rag', 'q1 Q0 d2 2 0.500000 rag']
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from indexes.errors import InputError
from rag.squad import maybe_squad
from rag.textfile import decode_line, parse_json_line, read_lines

Run = dict[str, dict[str, float]]  # query id -> doc id -> score
Qrels = dict[str, dict[str, int]]  # query id -> doc id -> relevance grade


def load_queries(path: str | Path) -> dict[str, str]:
    """``{id: text}`` from a BEIR-style JSONL, a TSV/``.txt`` of id, text, or a SQuAD JSON file.

    Raises:
        InputError: missing file, a line that is not a query (with its number), a duplicate id,
            or no queries at all.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"queries file not found: {path}")
    squad = maybe_squad(path)
    if squad is not None:
        return {q.id: q.question for q in squad[1]} or _no_queries(path)
    out: dict[str, str] = {}
    tabular = path.suffix.lower() in (".tsv", ".txt")
    for lineno, raw in read_lines(path, "queries file"):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        if tabular:
            qid, _, text = decode_line(raw, where).rstrip("\r\n").partition("\t")
        else:
            rec = parse_json_line(raw, where, "; expected a JSON object with _id and text")
            if not isinstance(rec, dict):
                raise InputError(f"{where}: expected a JSON object with _id and text")
            qid, text = str(rec.get("_id", rec.get("id", ""))), rec.get("text", "")
        if not qid or not isinstance(text, str) or not text.strip():
            raise InputError(f"{where}: query needs a non-empty id and text")
        if qid in out:
            raise InputError(f"{where}: duplicate query id {qid!r}")
        out[qid] = text
    return out or _no_queries(path)


def _no_queries(path: Path) -> dict[str, str]:
    raise InputError(f"{path}: no queries")


def load_qrels(path: str | Path) -> Qrels:
    """Qrels from a BEIR TSV (``query-id corpus-id score``), a TREC qrels file or a SQuAD JSON file.

    TSV fields are split on tabs only (ids are read verbatim, quotes included); other files on
    any whitespace. A first line whose last field is not an integer is a header.

    Raises:
        InputError: missing file, a malformed line (with its number), or no judgments.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"qrels file not found: {path}")
    qrels: Qrels = {}
    squad = maybe_squad(path)
    if squad is not None:
        for q in squad[1]:
            if q.answers and not q.impossible:
                qrels.setdefault(q.id, {})[q.paragraph_id] = 1
    else:
        tsv = path.suffix.lower() == ".tsv"
        for lineno, raw in read_lines(path, "qrels file"):
            line = decode_line(raw, f"{path}:{lineno}").rstrip("\r\n")
            row = [c.strip() for c in line.split("\t")] if tsv else line.split()
            row = [c for c in row if c]
            if not row or (lineno == 1 and not row[-1].lstrip("-").isdigit()):
                continue  # blank line or header
            if len(row) == 3:
                qid, did, grade = row
            elif len(row) == 4:
                qid, _, did, grade = row
            else:
                raise InputError(f"{path}:{lineno}: expected 'query-id corpus-id score' or TREC 'qid 0 docid rel'")
            try:
                qrels.setdefault(qid, {})[did] = int(grade)
            except ValueError:
                raise InputError(f"{path}:{lineno}: relevance {grade!r} is not an integer") from None
    if not qrels:
        raise InputError(f"{path}: no relevance judgments")
    return qrels


def ranking(docs: Mapping[str, float]) -> list[str]:
    """Document ids best first: by descending score, ties in the order given (the order returned).

    Retrieval results and run files are built best first, so equal scores keep the rank they were
    returned at (every retriever here breaks ties by index row, i.e. by document id).
    """
    return [d for d, _ in sorted(docs.items(), key=lambda kv: -kv[1])]  # sorted() is stable


def write_trec_run(path: str | Path, run: Run, tag: str = "rag") -> None:
    """Write ``qid Q0 docid rank score tag`` lines, best first (atomic)."""
    from indexes.atomic import atomic_write_text

    lines = []
    for qid, docs in run.items():
        for rank, did in enumerate(ranking(docs), start=1):
            lines.append(f"{qid} Q0 {did} {rank} {docs[did]:.6f} {tag}")
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_trec_run(path: str | Path) -> Run:
    """``{qid: {docid: score}}`` from a TREC run file, each query's documents in the file's rank order.

    Raises:
        InputError: unreadable file or a line without the six fields.
    """
    rows: dict[str, list[tuple[int, int, str, float]]] = {}
    for lineno, raw in read_lines(path, "run file"):
        parts = decode_line(raw, f"{path}:{lineno}").split()
        if not parts:
            continue
        if len(parts) != 6:
            raise InputError(f"{path}:{lineno}: expected 'qid Q0 docid rank score tag'")
        try:
            rank = int(parts[3])
        except ValueError:
            raise InputError(f"{path}:{lineno}: rank {parts[3]!r} is not an integer") from None
        try:
            score = float(parts[4])
        except ValueError:
            raise InputError(f"{path}:{lineno}: score {parts[4]!r} is not a number") from None
        rows.setdefault(parts[0], []).append((rank, lineno, parts[2], score))
    # each query's documents in the file's rank order, so that tied scores keep their ranks
    return {q: {d: s for _, _, d, s in sorted(r)} for q, r in rows.items()}
