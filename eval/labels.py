"""Human labels and judge scores on disk: reading, validating, aligning, and labelling samples.

Both files hold one row per item, as JSONL (``{"id": "q1", "label": 1}``) or CSV with a header
(``id,label``); the judge file uses ``score`` instead of ``label``. The judge file covers every
item, the labels file a subset; :func:`align` pairs them into ppi_py's ``Y, Yhat,
Yhat_unlabeled``. Every problem is an :class:`~indexes.errors.InputError` naming the file, line
and field and what to do about it.

Example:
    >>> rows = [{"id": "a", "label": 1}, {"id": "b", "label": 0}]
    >>> values_by_id(rows, "label", "labels.jsonl")
    {'a': 1.0, 'b': 0.0}
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexes.errors import InputError
from rag.tabular import read_table
from rag.textfile import parse_json_line, read_lines

#: Fewest human labels for a normal-approximation interval worth reporting: below ~30 the CLT
#: interval of a proportion undercovers noticeably (see docs/ppi.md).
MIN_LABELS = 30


def read_rows(path: str | Path) -> list[dict]:
    """Rows of a ``.jsonl`` or ``.csv`` file, each with its 1-based ``_line`` number.

    Raises:
        InputError: missing file, or a bad line (not UTF-8, not a JSON object, a CSV row with the
            wrong number of fields, an unterminated quote) named by its number.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        return [{**row, "_line": i} for i, row in read_table(path, ",")]
    rows: list[dict] = []
    for i, raw in read_lines(path):
        if not raw.strip():
            continue
        row = parse_json_line(raw, f"{path}:{i}", "; write one JSON object per line", malformed="not valid JSON")
        if not isinstance(row, dict):
            raise InputError(f"{path}:{i}: expected a JSON object like {{\"id\": ..., ...}}")
        rows.append({**row, "_line": i})
    return rows


def values_by_id(rows: Iterable[dict], field: str, source: str | Path) -> dict[str, float]:
    """``{id: float(row[field])}``, rejecting missing ids or values, non-numbers and duplicates."""
    out: dict[str, float] = {}
    for row in rows:
        where = f"{source}:{row.get('_line', '?')}"
        if row.get("id") in (None, ""):
            raise InputError(f"{where}: missing field 'id'")
        if row.get(field) in (None, ""):
            raise InputError(f"{where}: missing field '{field}' for id {row['id']!r}")
        try:
            value = float(row[field])
        except (TypeError, ValueError):
            raise InputError(f"{where}: field '{field}' must be a number, got {row[field]!r}") from None
        if not math.isfinite(value):
            raise InputError(f"{where}: field '{field}' must be finite, got {row[field]!r}")
        key = str(row["id"])
        if key in out:
            raise InputError(f"{where}: duplicate id {key!r}; keep one row per item")
        out[key] = value
    return out


@dataclass(frozen=True)
class Aligned:
    """Human labels and judge scores paired up in ppi_py's layout.

    Attributes:
        ids: ids of the labelled items, in the order of ``Y``.
        Y: human labels, shape (n,).
        Yhat: judge scores on the labelled items, shape (n,).
        ids_unlabeled: ids of the judge-only items.
        Yhat_unlabeled: judge scores on them, shape (N,).
    """

    ids: tuple[str, ...]
    Y: np.ndarray
    Yhat: np.ndarray
    ids_unlabeled: tuple[str, ...]
    Yhat_unlabeled: np.ndarray


def align(
    labels: dict[str, float],
    scores: dict[str, float],
    labels_path: str | Path = "labels",
    judge_path: str | Path = "judge",
    binary: bool = False,
    min_labels: int = MIN_LABELS,
) -> Aligned:
    """Pair human labels with judge scores; items without a label form the unlabelled set.

    Args:
        labels: ``{id: label}`` for the human-labelled subset.
        scores: ``{id: score}`` for every item.
        labels_path: file name used in error messages.
        judge_path: file name used in error messages.
        binary: require labels in {0, 1} (the Bayesian estimators).
        min_labels: fewest labels accepted.

    Raises:
        InputError: ids of the labels file missing from the judge file, non-binary labels when
            ``binary``, fewer than ``min_labels`` labels, or no unlabelled items.
    """
    missing = [i for i in labels if i not in scores]
    if missing:
        raise InputError(
            f"{labels_path}: {len(missing)} labelled id(s) are not in {judge_path} (first: {missing[0]!r}); "
            "the judge file must score every item, labelled ones included — check that both files come from "
            "the same dataset")
    if binary:
        bad = [(i, v) for i, v in labels.items() if v not in (0.0, 1.0)]
        if bad:
            raise InputError(
                f"{labels_path}: label {bad[0][1]:g} of id {bad[0][0]!r} is not 0 or 1 ({len(bad)} such rows); "
                "the Bayesian estimators need binary labels — use --method classical|ppi|ppi++ for graded labels")
    if len(labels) < min_labels:
        raise InputError(
            f"{labels_path}: {len(labels)} human label(s), but an interval needs at least {min_labels}; "
            f"label {min_labels - len(labels)} more item(s) (`rag eval label` draws a sample to label)")
    ids = tuple(labels)
    ids_unlabeled = tuple(i for i in scores if i not in labels)
    if not ids_unlabeled:
        raise InputError(
            f"{judge_path}: every item has a human label, so there is nothing for the judge to add; "
            "score the items that have no human label too (or use --method classical)")
    return Aligned(
        ids=ids,
        Y=np.array([labels[i] for i in ids], dtype=float),
        Yhat=np.array([scores[i] for i in ids], dtype=float),
        ids_unlabeled=ids_unlabeled,
        Yhat_unlabeled=np.array([scores[i] for i in ids_unlabeled], dtype=float),
    )


def load_aligned(labels_path: str | Path, judge_path: str | Path, binary: bool = False) -> Aligned:
    """Read a ``{id, label}`` file and a ``{id, score}`` file and :func:`align` them."""
    labels = values_by_id(read_rows(labels_path), "label", labels_path)
    scores = values_by_id(read_rows(judge_path), "score", judge_path)
    if not scores:
        raise InputError(f"{judge_path}: no rows; expected one {{\"id\", \"score\"}} row per item")
    return align(labels, scores, labels_path, judge_path, binary=binary)


def sample_for_labelling(ids: Sequence[str], size: int, seed: int = 0) -> list[str]:
    """A seeded uniform random sample of ``size`` ids (all of them if fewer), in file order."""
    if size <= 0:
        raise InputError(f"--size must be positive, got {size}")
    chosen = set(random.Random(seed).sample(list(ids), min(size, len(ids))))
    return [i for i in ids if i in chosen]


def write_label_template(path: str | Path, rows: Sequence[dict], columns: Sequence[str]) -> Path:
    """Write a CSV to fill in: the given context ``columns`` and an empty ``label`` column."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*columns, "label"], extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**{c: row.get(c, "") for c in columns}, "label": ""})
    return path
