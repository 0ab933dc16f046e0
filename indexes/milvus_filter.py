"""Metadata filters pushed down to Milvus as boolean expressions.

A small backend-neutral filter over a passage's ``metadata`` (the corpus record's ``metadata``
object) — equality, membership, ranges, and their conjunctions and disjunctions — and its one
translation into a Milvus expression over the JSON field ``meta`` that every row of a
``--backend milvus`` index carries. The engine applies it inside the search (pre-filtering),
so a filtered top-k is the top-k of the matching passages, not a post-filtered shorter list.

Example:
    >>> to_milvus(And((Eq("lang", "en"), Range("year", ge=2000, lt=2010))))
    '(meta["lang"] == "en") and (meta["year"] >= 2000 and meta["year"] < 2010)'
    >>> to_milvus(Or((In("journal", ("Nature", "Cell")), Eq("open_access", True))))
    '((meta["journal"] == "Nature" or meta["journal"] == "Cell")) or (meta["open_access"] == true)'
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Union

Scalar = Union[str, int, float, bool]


@dataclass(frozen=True)
class Eq:
    """``metadata[field] == value``."""

    field: str
    value: Scalar


@dataclass(frozen=True)
class In:
    """``metadata[field]`` is one of ``values``."""

    field: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Range:
    """``metadata[field]`` within the given bounds (each optional; at least one)."""

    field: str
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None


@dataclass(frozen=True)
class And:
    """Every one of ``parts`` holds."""

    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    """At least one of ``parts`` holds."""

    parts: tuple[Filter, ...]


Filter = Union[Eq, In, Range, And, Or]


def _value(v: Scalar) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"filter value {v!r} is not a finite number")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # double quotes, backslash escapes: Milvus' string literal
    raise ValueError(f"filter value {v!r}: use a string, number or boolean")


def _field(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("filter field must be a non-empty string")
    return f"meta[{json.dumps(name, ensure_ascii=False)}]"


def to_milvus(f: Filter) -> str:
    """The Milvus boolean expression of ``f`` over the JSON field ``meta``.

    Raises:
        ValueError: an empty ``In``/``And``/``Or``, a ``Range`` without bounds, a value that is
            not a string, finite number or boolean.
    """
    if isinstance(f, Eq):
        return f"{_field(f.field)} == {_value(f.value)}"
    if isinstance(f, In):
        if not f.values:
            raise ValueError(f"filter on {f.field!r}: 'in' needs at least one value")
        # a disjunction of equalities: Milvus Lite refuses `in` on a JSON path (the server accepts both)
        return "(" + " or ".join(f"{_field(f.field)} == {_value(v)}" for v in f.values) + ")"
    if isinstance(f, Range):
        ops = [(op, v) for op, v in ((">", f.gt), (">=", f.ge), ("<", f.lt), ("<=", f.le)) if v is not None]
        if not ops:
            raise ValueError(f"filter on {f.field!r}: a range needs a bound")
        return " and ".join(f"{_field(f.field)} {op} {_value(v)}" for op, v in ops)
    if isinstance(f, (And, Or)):
        if not f.parts:
            raise ValueError("filter: 'and'/'or' needs at least one part")
        joiner = " and " if isinstance(f, And) else " or "
        return joiner.join(f"({to_milvus(p)})" for p in f.parts)
    raise ValueError(f"not a filter: {f!r}")


def _same(x: object, v: Scalar) -> bool:
    """JSON equality: booleans equal only booleans, numbers compare by value (1 == 1.0)."""
    if isinstance(x, bool) or isinstance(v, bool):
        return isinstance(x, bool) and isinstance(v, bool) and x == v
    if isinstance(v, (int, float)):
        return isinstance(x, (int, float)) and x == v
    return x == v


def matches(f: Filter, metadata: dict) -> bool:
    """Whether a passage's ``metadata`` satisfies ``f`` (the reference the engine is tested against)."""
    if isinstance(f, Eq):
        return f.field in metadata and _same(metadata[f.field], f.value)
    if isinstance(f, In):
        return f.field in metadata and any(_same(metadata[f.field], v) for v in f.values)
    if isinstance(f, Range):
        x = metadata.get(f.field)
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            return False
        return ((f.gt is None or x > f.gt) and (f.ge is None or x >= f.ge) and (f.lt is None or x < f.lt)
                and (f.le is None or x <= f.le))
    if isinstance(f, And):
        return all(matches(p, metadata) for p in f.parts)
    if isinstance(f, Or):
        return any(matches(p, metadata) for p in f.parts)
    raise ValueError(f"not a filter: {f!r}")
