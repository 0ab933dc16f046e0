"""Retrieval evaluation: queries, qrels and runs in standard formats, metrics via pytrec_eval.

Metrics follow BEIR's conventions: nDCG@10 (``ndcg_cut_10``), Recall@100 (``recall_100``),
MAP@100 (``map_cut_100``) and MRR@10 (``recip_rank`` on the run cut to its top 10), averaged over
the queries that have relevance judgments. Queries are read as ``_id`` and ``text`` only; any
``metadata`` (SciFact keeps relevance evidence there) is never read.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path

from indexes.errors import InputError

Run = dict[str, dict[str, float]]  # query id -> doc id -> score
Qrels = dict[str, dict[str, int]]  # query id -> doc id -> relevance grade

#: Our metric names → (pytrec_eval measure, cut applied to the run before evaluating).
METRICS: dict[str, tuple[str, int | None]] = {
    "ndcg@10": ("ndcg_cut_10", None),
    "recall@100": ("recall_100", None),
    "mrr@10": ("recip_rank", 10),
    "map@100": ("map_cut_100", None),
}


def load_queries(path: str | Path) -> dict[str, str]:
    """``{id: text}`` from a BEIR-style JSONL (``_id``/``id`` and ``text``) or a TSV of id, text."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"queries file not found: {path}")
    out: dict[str, str] = {}
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{where}: not valid UTF-8") from None
            if path.suffix.lower() in (".tsv", ".txt"):
                qid, _, text = line.rstrip("\r\n").partition("\t")
            else:
                try:
                    rec = json.loads(line)
                    qid, text = str(rec.get("_id", rec.get("id", ""))), rec.get("text", "")
                except (json.JSONDecodeError, AttributeError):
                    raise InputError(f"{where}: expected a JSON object with _id and text") from None
            if not qid or not isinstance(text, str) or not text.strip():
                raise InputError(f"{where}: query needs a non-empty id and text")
            if qid in out:
                raise InputError(f"{where}: duplicate query id {qid!r}")
            out[qid] = text
    if not out:
        raise InputError(f"{path}: no queries")
    return out


def load_qrels(path: str | Path) -> Qrels:
    """Qrels from a BEIR TSV (``query-id corpus-id score`` with header) or a TREC qrels file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"qrels file not found: {path}")
    qrels: Qrels = {}
    with path.open(encoding="utf-8", newline="") as fh:  # csv handles BEIR's CRLF line endings
        for lineno, row in enumerate(csv.reader(fh, delimiter="\t" if path.suffix == ".tsv" else " "), start=1):
            row = [c for c in row if c != ""]
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


def evaluate(run: Run, qrels: Qrels, metrics: tuple[str, ...] = tuple(METRICS)) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean and per-query metrics of ``run`` over the queries in ``qrels``.

    A judged query missing from the run scores 0 on every metric (it is not dropped).

    Returns:
        (means, per_query) with ``per_query[qid][metric]``.
    """
    import pytrec_eval

    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise InputError(f"unknown metric(s) {unknown}; choose from {sorted(METRICS)}")
    per_query: dict[str, dict[str, float]] = {q: {} for q in qrels}
    for name in metrics:
        measure, cut = METRICS[name]
        cut_run = {q: rank_scores(ranking(run.get(q, {}))[:cut]) for q in qrels}
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, {measure})
        results = evaluator.evaluate({q: d for q, d in cut_run.items() if d})
        for q in qrels:
            per_query[q][name] = float(results.get(q, {}).get(measure, 0.0))
    means = {m: sum(per_query[q][m] for q in qrels) / len(qrels) for m in metrics}
    return means, per_query


def ranking(docs: Mapping[str, float]) -> list[str]:
    """Document ids best first: by descending score, ties in the order given (the order returned).

    Retrieval results and run files are built best first, so equal scores keep the rank they were
    returned at (every retriever here breaks ties by index row, i.e. by document id).
    """
    return [d for d, _ in sorted(docs.items(), key=lambda kv: -kv[1])]  # sorted() is stable


def rank_scores(ranked: list[str]) -> dict[str, float]:
    """Scores that encode the ranks of ``ranked`` (n, n-1, …, 1), so that pytrec_eval evaluates
    exactly this order: trec_eval sorts by score and breaks ties by document id, which would
    re-order tied documents (Anserini likewise breaks ties before writing a run)."""
    n = len(ranked)
    return {d: float(n - i) for i, d in enumerate(ranked)}


def write_trec_run(path: str | Path, run: Run, tag: str = "rag") -> None:
    """Write ``qid Q0 docid rank score tag`` lines, best first (atomic)."""
    from indexes.atomic import atomic_write_text

    lines = []
    for qid, docs in run.items():
        for rank, did in enumerate(ranking(docs), start=1):
            lines.append(f"{qid} Q0 {did} {rank} {docs[did]:.6f} {tag}")
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_trec_run(path: str | Path) -> Run:
    """A TREC run file as ``{qid: {docid: score}}``, each query's documents in the file's rank order."""
    rows: dict[str, list[tuple[int, int, str, float]]] = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise InputError(f"{path}:{lineno}: expected 'qid Q0 docid rank score tag'")
        try:
            rank, score = int(parts[3]), float(parts[4])
        except ValueError:
            raise InputError(f"{path}:{lineno}: rank must be an integer and score a number") from None
        rows.setdefault(parts[0], []).append((rank, lineno, parts[2], score))
    return {q: {d: s for _, _, d, s in sorted(r)} for q, r in rows.items()}
