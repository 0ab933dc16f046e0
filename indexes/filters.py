"""Metadata filters: a small backend-neutral expression over document metadata, and its row mask.

A filter is written as a JSON object in the style of MongoDB's query documents (also the style of
Chroma's and Qdrant's ``where`` clauses)::

    {"year": 2010}                              equality (a number, a string, or true/false)
    {"year": {"$eq": 2010}}                     the same, spelled out
    {"source": {"$in": ["pubmed", "arxiv"]}}    membership in a non-empty list
    {"year": {"$gte": 2010, "$lt": 2020}}       numeric range ($gt, $gte, $lt, $lte)
    {"date": {"$gte": "2019-01", "$lt": "2020"}} string range (Unicode code point order, as Python's str)
    {"$and": [F, ...]}  {"$or": [F, ...]}        conjunction / disjunction of filters
    {"year": 2010, "source": "pubmed"}          several keys in one object: all must hold

A field is a top-level key of a passage's ``metadata`` object (the JSONL fields other than the
id, title and text, see :mod:`rag.corpus`). A row whose field is missing, null, or of another type
than the compared value never matches. Numbers compare as float64 (integers up to 2**53 exactly);
``true`` is not ``1``. ``$and``/``$or`` nest at most 16 levels.

Parsing gives a tree of frozen dataclasses (:class:`Condition`, :class:`And`, :class:`Or`) that
any backend can translate (e.g. into a Milvus boolean expression); :class:`MetadataColumns`
evaluates it over the rows of a local passage store into a boolean mask, checking it first
against the fields the rows hold (unknown field, wrong type: :class:`InputError` naming the field).
:class:`RowFilter` carries both to a :class:`~indexes.vector_store.VectorStore`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from indexes.errors import InputError
from indexes.metadata_types import FieldTypes, Kind, field_types, kind_of

Op = Literal["eq", "in", "gt", "gte", "lt", "lte"]
Scalar = Union[str, int, float, bool]
OPERATORS = ("$eq", "$in", "$gt", "$gte", "$lt", "$lte")


@dataclass(frozen=True, eq=False)
class Condition:
    """``metadata[field] <op> value``; for ``in``, ``value`` is a tuple of scalars.

    Two conditions are equal (and hash alike) when they select the same rows: ``1`` equals ``1.0``,
    but ``true`` never equals ``1`` (Python's ``True == 1`` would let a cache keyed by filters
    answer one with the other's rows).
    """

    field: str
    op: Op
    value: Scalar | tuple[Scalar, ...]

    def _key(self) -> tuple:
        values = self.value if self.op == "in" else (self.value,)
        return self.field, self.op, tuple((isinstance(v, bool), v) for v in values)  # type: ignore[union-attr]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@dataclass(frozen=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Filter, ...]


Filter = Union[Condition, And, Or]

_Any = Union[StrictBool, StrictInt, StrictFloat, StrictStr]  # bool first: true stays a bool
_Ordered = Union[StrictInt, StrictFloat, StrictStr]


class _Operators(BaseModel):
    """The operator object of one field, e.g. ``{"$gte": 2010, "$lt": 2020}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    eq: _Any | None = Field(None, alias="$eq")
    in_: list[_Any] | None = Field(None, alias="$in", min_length=1)
    gt: _Ordered | None = Field(None, alias="$gt")
    gte: _Ordered | None = Field(None, alias="$gte")
    lt: _Ordered | None = Field(None, alias="$lt")
    lte: _Ordered | None = Field(None, alias="$lte")


_EXPECTED = {"$eq": "a number, a string or true/false", "$in": "a non-empty list of numbers, strings or true/false",
             **dict.fromkeys(("$gt", "$gte", "$lt", "$lte"), "a number or a string")}


def parse_filter(spec: str | Mapping[str, Any]) -> Filter:
    """Parse a filter from its JSON text or its decoded object (see the module docstring).

    Raises:
        InputError: not JSON, not an object, an unknown operator or a value of the wrong type
            (one line starting with ``filter`` and naming the field).
    """
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise InputError(f"filter: not JSON ({exc.msg} at character {exc.pos}); write e.g. "
                             '\'{"year": {"$gte": 2010}}\'') from None
    return _parse(spec, "filter")


MAX_DEPTH = 16  # nesting of $and/$or; deeper filters are refused before any recursion limit is near


def _parse(obj: Any, where: str, depth: int = 0) -> Filter:
    if depth > MAX_DEPTH:
        raise InputError(f"{where}: filters nest at most {MAX_DEPTH} levels of $and/$or")
    if not isinstance(obj, Mapping) or not obj:
        raise InputError(f"{where}: expected a non-empty JSON object such as {{\"field\": value}}")
    parts: list[Filter] = []
    for key, value in obj.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise InputError(f"{where}.{key}: expected a non-empty list of filters")
            items = tuple(_parse(v, f"{where}.{key}[{i}]", depth + 1) for i, v in enumerate(value))
            parts.append(And(items) if key == "$and" else Or(items))
        elif not isinstance(key, str) or not key or key.startswith("$"):
            raise InputError(f"{where}: unknown operator {key!r} at the top of a filter; use $and, $or or a field name")
        elif isinstance(value, Mapping):
            parts.extend(_conditions(key, value, f"{where}.{key}"))
        else:
            parts.extend(_conditions(key, {"$eq": value}, f"{where}.{key}"))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _conditions(name: str, ops: Mapping[str, Any], where: str) -> list[Condition]:
    unknown = [k for k in ops if k not in OPERATORS]
    if unknown or not ops:
        raise InputError(f"{where}: unknown operator {unknown[0]!r}; use {', '.join(OPERATORS)}" if unknown
                         else f"{where}: empty operator object; use {', '.join(OPERATORS)}")
    try:
        parsed = _Operators.model_validate(dict(ops))
    except ValidationError as exc:
        op = str(exc.errors()[0]["loc"][0])
        raise InputError(f"{where}.{op}: expected {_EXPECTED[op]}, got {json.dumps(ops.get(op), default=str)[:60]}") from None
    out = []
    for op in ("eq", "in_", "gt", "gte", "lt", "lte"):
        value = getattr(parsed, op)
        for v in (value if op == "in_" else [value]) if value is not None else ():
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**53:  # beyond exact float64
                raise InputError(f"{where}.${op.rstrip('_')}: {v} is too large; numbers compare as float64 (|x| <= 2**53)")
        if value is not None:
            out.append(Condition(name, op.rstrip("_"), tuple(value) if op == "in_" else value))  # type: ignore[arg-type]
    if not out:
        raise InputError(f"{where}: null matches nothing; compare with a number, a string or true/false")
    return out


def to_json(f: Filter) -> dict[str, Any]:
    """The canonical JSON object of a parsed filter (``parse_filter(to_json(f)) == f``)."""
    if isinstance(f, Condition):
        return {f.field: {f"${f.op}": list(f.value) if f.op == "in" else f.value}}
    return {"$and" if isinstance(f, And) else "$or": [to_json(i) for i in f.items]}


def fields_of(f: Filter) -> list[Condition]:
    """Every condition of ``f``, depth first."""
    return [f] if isinstance(f, Condition) else [c for i in f.items for c in fields_of(i)]


@dataclass(frozen=True)
class RowFilter:
    """A filter resolved against one commit's rows: what a retriever or vector store receives.

    Attributes:
        expr: the parsed expression (for backends that evaluate filters themselves).
        mask: (N,) bool, ``True`` for the passage rows that satisfy it (for backends that select rows).
    """

    expr: Filter
    mask: np.ndarray

    @property
    def count(self) -> int:
        return int(np.count_nonzero(self.mask))


class MetadataColumns:
    """The metadata of N passage rows as typed columns, built per field on first use.

    Args:
        metadata: one metadata object per passage row, in row order.
        recorded: the index's record of each field's types (the manifest's ``metadata_fields``),
            which only grows: a field whose last document was deleted still filters (matching
            nothing) instead of becoming unknown, as ``rag add`` still holds it to its type.
    """

    def __init__(self, metadata: Sequence[Mapping[str, Any]],
                 recorded: Mapping[str, Sequence[Kind]] | None = None) -> None:
        self.metadata = metadata
        self.kinds: FieldTypes = field_types(metadata, recorded)
        self._columns: dict[tuple[str, Kind], tuple[np.ndarray, np.ndarray]] = {}

    def check(self, f: Filter) -> None:
        """Raise :class:`InputError` naming the first field ``f`` cannot be evaluated on."""
        for c in fields_of(f):
            kinds = self.kinds.get(c.field)
            if kinds is None:
                known = ", ".join(sorted(self.kinds)[:20]) or "none"
                raise InputError(f"filter: unknown metadata field {c.field!r} (fields of this index: {known})")
            for v in (c.value if c.op == "in" else (c.value,)):  # type: ignore[union-attr]
                k = kind_of(v)
                if k not in kinds:
                    held = " and ".join(sorted(f"{x}s" for x in kinds))
                    raise InputError(f"filter: field {c.field!r} holds {held}, not {k}s: compare it with a value of its type")

    def _column(self, name: str, kind: Kind) -> tuple[np.ndarray, np.ndarray]:
        """``(values (N,), present (N,) bool)`` of the rows whose ``name`` is of ``kind``."""
        key = (name, kind)
        if key not in self._columns:
            raw = [m.get(name) for m in self.metadata]
            present = np.fromiter((kind_of(v) == kind for v in raw), dtype=bool, count=len(raw))
            if kind == "number":
                values = np.array([float(v) if p else np.nan for v, p in zip(raw, present)], dtype=np.float64)
            elif kind == "string":
                values = np.array([v if p else "" for v, p in zip(raw, present)], dtype=str)
            else:
                values = np.array([bool(v) if p else False for v, p in zip(raw, present)], dtype=bool)
            self._columns[key] = (values, present)
        return self._columns[key]

    def mask(self, f: Filter) -> np.ndarray:
        """(N,) bool: rows that satisfy ``f`` (call :meth:`check` first for a clear error)."""
        if isinstance(f, And):
            out = np.ones(len(self.metadata), dtype=bool)
            for i in f.items:
                out &= self.mask(i)
            return out
        if isinstance(f, Or):
            out = np.zeros(len(self.metadata), dtype=bool)
            for i in f.items:
                out |= self.mask(i)
            return out
        if f.op == "in":
            out = np.zeros(len(self.metadata), dtype=bool)
            for v in f.value:  # type: ignore[union-attr]
                out |= self.mask(Condition(f.field, "eq", v))
            return out
        kind = kind_of(f.value)
        if kind not in self.kinds.get(f.field, ()):
            return np.zeros(len(self.metadata), dtype=bool)
        values, present = self._column(f.field, kind)  # type: ignore[arg-type]
        v = f.value
        with np.errstate(invalid="ignore"):
            hit = {"eq": values == v, "gt": values > v, "gte": values >= v, "lt": values < v, "lte": values <= v}[f.op]
        return np.asarray(hit, dtype=bool) & present

    def resolve(self, f: Filter) -> RowFilter:
        """Check ``f`` and evaluate it: the :class:`RowFilter` a retriever takes."""
        self.check(f)
        return RowFilter(f, self.mask(f))
