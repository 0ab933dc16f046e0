"""Metadata filters (:mod:`indexes.filters`) pushed down to Milvus as boolean expressions.

A ``--backend milvus`` index keeps, in the JSON field ``meta`` of every engine row (dense windows
and BM25 rows), a *typed projection* of the same passage metadata the local passage store holds
(:func:`engine_meta`): numbers as float64 under ``meta["num"]``, strings under ``meta["str"]``,
booleans under ``meta["bool"]``; nulls, lists and objects are left out (no filter matches them).
:func:`to_milvus` translates the canonical :data:`indexes.filters.Filter` tree into an expression
over that projection, so the engine selects exactly the rows of the local mask
(:meth:`indexes.filters.MetadataColumns.mask`):

* missing, null or other-type values never match: a condition reads only the section of its
  value's type;
* numbers compare as float64 (stored and written as floats, so ``2**53 + 1`` rounds on both sides);
* ``true`` is not ``1``: Milvus itself compares JSON booleans as numbers (on Milvus Lite 3.2
  ``meta["y"] == 1`` matches ``true`` and ``meta["y"] == false`` matches ``0``), which the
  separate ``bool`` section avoids;
* strings compare by code point (Milvus compares UTF-8 bytes, the same order).

Why a projection and not the raw object: the engine has no type test on JSON values, so
``{"y": true}`` and ``{"y": 1}`` could not be told apart in an expression. Each of these rules is
tested against the local mask in tests/indexes/test_milvus_filter.py.

Example:
    >>> from indexes.filters import parse_filter
    >>> to_milvus(parse_filter({"lang": "en", "year": {"$gte": 2000, "$lt": 2010}}))
    '(meta["str"]["lang"] == "en") and (meta["num"]["year"] >= 2000.0) and (meta["num"]["year"] < 2010.0)'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from indexes.filters import And, Condition, Filter, Or, Scalar, kind_of

#: JSON field of every engine row that holds :func:`engine_meta`.
META_FIELD = "meta"
_SECTION = {"number": "num", "string": "str", "bool": "bool"}
_OPS = {"eq": "==", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# Milvus' string literals know these escapes (\u and \x are refused); other control characters go raw.
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})


def engine_meta(metadata: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The typed projection of one passage's metadata that Milvus rows carry (see the module docstring).

    Example:
        >>> engine_meta({"year": 2010, "lang": "en", "open": True, "tags": ["a"], "x": None})
        {'num': {'year': 2010.0}, 'str': {'lang': 'en'}, 'bool': {'open': True}}
    """
    out: dict[str, dict[str, Any]] = {}
    for name, value in (metadata or {}).items():
        kind = kind_of(value)
        if kind not in _SECTION:
            continue
        if kind == "number":
            try:
                value = float(value)
            except OverflowError:  # an integer beyond float64: no filter value can equal it
                continue
            if not math.isfinite(value):
                continue
        out.setdefault(_SECTION[kind], {})[name] = value
    return out


def _string(s: str) -> str:
    return '"' + s.translate(_ESCAPES) + '"'


def _literal(v: Scalar) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        x = float(v)
        if not math.isfinite(x):
            raise ValueError(f"filter value {v!r} is not a finite number")
        return repr(x)  # a float literal: the engine compares the stored floats as float64
    if isinstance(v, str):
        return _string(v)
    raise ValueError(f"filter value {v!r}: use a string, number or boolean")


def _path(field: str, value: Scalar) -> str:
    if not isinstance(field, str) or not field:
        raise ValueError("filter field must be a non-empty string")
    kind = kind_of(value)
    if kind not in _SECTION:
        raise ValueError(f"filter value {value!r}: use a string, number or boolean")
    return f'{META_FIELD}["{_SECTION[kind]}"][{_string(field)}]'


def to_milvus(f: Filter) -> str:
    """The Milvus boolean expression of ``f`` over :data:`META_FIELD` (rows written with :func:`engine_meta`).

    Raises:
        ValueError: an empty ``in``/``And``/``Or``, or a value that is not a string, finite number or
            boolean (:func:`indexes.filters.parse_filter` never produces these).
    """
    if isinstance(f, Condition):
        if f.op == "in":
            values = tuple(f.value)  # type: ignore[arg-type]
            if not values:
                raise ValueError(f"filter on {f.field!r}: '$in' needs at least one value")
            # a disjunction of equalities: Milvus Lite refuses `in` on a JSON path (the server accepts both)
            return "(" + " or ".join(f"{_path(f.field, v)} == {_literal(v)}" for v in values) + ")"
        return f"{_path(f.field, f.value)} {_OPS[f.op]} {_literal(f.value)}"  # type: ignore[arg-type]
    if isinstance(f, (And, Or)):
        if not f.items:
            raise ValueError("filter: $and/$or needs at least one part")
        joiner = " and " if isinstance(f, And) else " or "
        return joiner.join(f"({to_milvus(p)})" for p in f.items)
    raise ValueError(f"not a filter: {f!r}")
