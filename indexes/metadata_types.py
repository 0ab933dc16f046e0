"""The types of each metadata field: recorded in the manifest, enforced on upserts.

A filter compares a field with values of one type (:mod:`indexes.filters`): ``{"year": 2020}``
selects numbers and never the string ``"2020"``. A document whose field holds another type than
the index's other documents is therefore invisible to every filter on that field, silently. So an
index records the types each metadata field holds (:attr:`indexes.manifest.Manifest.metadata_fields`)
and an upsert is checked against that record before anything is written:

- A build (``rag index``) records the types its corpus holds, as the corpus was written (a field
  may hold several, e.g. numbers and the string ``"n/a"``).
- An upsert (``rag add``, REST ``PUT /indexes/{name}/documents``) whose document gives a recorded
  field a value of a type the field does not hold is refused, naming the record and the field.
- A field an upsert brings for the first time is recorded with the types it arrives with.
- ``null`` is the absence of a value: always accepted, never recorded.
- The types are those of filters (:func:`kind_of`): ``number`` (integers and floats mix: both
  compare as float64), ``string``, ``bool`` (``true`` is not a number), ``list``, ``object``.

The record only grows (deleting the documents that hold a field keeps its types), as a search
engine's field mapping does: changing a field's type needs a rebuild. Indexes built before the record
existed get it from their live passages at their first upsert.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from indexes.errors import InputError

Kind = Literal["number", "string", "bool", "list", "object"]
FieldTypes = dict[str, tuple[Kind, ...]]  # field name -> the types it holds (sorted)

_PLURAL = {"number": "numbers", "string": "strings", "bool": "true/false values", "list": "lists", "object": "objects"}
_ARTICLE = {"number": "a number", "string": "a string", "bool": "a true/false value", "list": "a list", "object": "an object"}


def kind_of(value: Any) -> Kind | None:
    """The filter type of a metadata value (``None`` for null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object"


def field_types(metadata: Iterable[Mapping[str, Any]], start: Mapping[str, Sequence[Kind]] | None = None) -> FieldTypes:
    """The types each field of ``metadata`` holds (added to ``start``), fields and types sorted.

    Example:
        >>> field_types([{"year": 2020, "src": "a"}, {"year": 2.5, "note": None}, {"year": "n/a"}])
        {'src': ('string',), 'year': ('number', 'string')}
    """
    kinds: dict[str, set[Kind]] = {name: set(ks) for name, ks in (start or {}).items()}
    for m in metadata:
        for name, value in m.items():
            k = kind_of(value)
            if k is not None:
                kinds.setdefault(name, set()).add(k)
    return {name: tuple(sorted(ks)) for name, ks in sorted(kinds.items())}


def record_field(where: str, name: str) -> str:
    """How a field of a corpus record is named in an error: ``corpus.jsonl:3: metadata field 'year'``."""
    return f"{where}: metadata field {name!r}"


def check_field_types(known: Mapping[str, Sequence[Kind]], records: Iterable[tuple[str, Mapping[str, Any]]],
                      locate: Callable[[str, str], str] = record_field) -> None:
    """Refuse the first value of ``records`` whose type its field, as recorded in ``known``, does not hold.

    Args:
        known: the index's record (:func:`field_types`); fields absent from it are new, any type goes.
        records: ``(where, metadata)`` of each document, ``where`` naming it (``file:line``, ``documents[2]``).
        locate: ``(where, field) -> str``, the subject of the error (:func:`record_field`; REST: a JSON path).

    Raises:
        InputError: one line: the record, the field, its value and type, the types the index holds.
    """
    for where, metadata in records:
        for name, value in metadata.items():
            k = kind_of(value)
            held = known.get(name)
            if k is None or not held or k in held:
                continue
            shown = json.dumps(value, ensure_ascii=False, default=str)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            holds = " or ".join(_PLURAL[h] for h in held)
            wanted = _ARTICLE[held[0]] if len(held) == 1 else "one of those"
            raise InputError(f"{locate(where, name)} is {_ARTICLE[k]} ({shown}), but the index holds {name!r} as {holds} "
                             f"and a filter compares one type; give it {wanted}, or use another field name")
