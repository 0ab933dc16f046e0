"""Metadata filters: parsing, hand-worked masks and one-line errors naming the field."""

from __future__ import annotations

import json

import pytest

from indexes.errors import InputError
from indexes.filters import And, Condition, MetadataColumns, Or, parse_filter, to_json

ROWS = [
    {"year": 2010, "source": "pubmed", "open": True},
    {"year": 2015, "source": "arxiv", "open": False},
    {"year": 2020.5, "source": "pubmed"},
    {"year": "unknown", "source": None},
    {},
]


def _mask(spec) -> list[int]:
    return [i for i, m in enumerate(MetadataColumns(ROWS).resolve(parse_filter(spec)).mask) if m]


def test_parse_gives_the_backend_neutral_tree_and_round_trips():
    # Given: a filter with a range, a membership and an $or
    text = '{"year": {"$gte": 2010, "$lt": 2020}, "$or": [{"source": {"$in": ["a", "b"]}}, {"open": true}]}'
    # When: it is parsed
    f = parse_filter(text)
    # Then: a conjunction of conditions in key order, and to_json gives an equivalent filter back
    assert f == And((Condition("year", "gte", 2010), Condition("year", "lt", 2020),
                     Or((Condition("source", "in", ("a", "b")), Condition("open", "eq", True)))))
    assert parse_filter(to_json(f)) == f


def test_true_and_1_are_different_filters_and_1_and_1_0_the_same():
    # Given filters that Python's True == 1 would conflate / When parsed / Then equal only when they select alike
    t, one, one_f = parse_filter({"y": True}), parse_filter({"y": 1}), parse_filter({"y": 1.0})
    assert t != one and one == one_f and hash(one) == hash(one_f)
    assert parse_filter({"y": {"$in": [False, 2]}}) != parse_filter({"y": {"$in": [0, 2]}})
    assert And((t,)) != And((one,)) and len({t, one, one_f}) == 2  # a cache keyed by filters keeps both
    assert _mask({"open": True}) == [0] and _mask({"year": 2010}) == [0]


@pytest.mark.parametrize(("spec", "rows"), [
    ({"source": "pubmed"}, [0, 2]),  # equality; null and missing never match
    ({"year": 2010}, [0]),  # 2010 == 2010.0; the string "unknown" is not compared
    ({"year": {"$gt": 2010, "$lte": 2020.5}}, [1, 2]),  # numeric range, both ends
    ({"year": {"$gte": "a"}}, [3]),  # string range on the string value only ("unknown" >= "a")
    ({"source": {"$lt": "b"}}, [1]),  # "arxiv" < "b" < "pubmed" (code point order)
    ({"source": {"$in": ["arxiv", "none"]}}, [1]),
    ({"open": False}, [1]),  # a bool is not the number 0
    ({"$or": [{"open": True}, {"year": {"$gte": 2020}}]}, [0, 2]),
    ({"$and": [{"source": "pubmed"}, {"year": {"$lt": 2015}}]}, [0]),
    ({"source": "pubmed", "year": {"$gt": 2015}}, [2]),  # two keys: both must hold
])
def test_hand_worked_masks(spec, rows):
    # Given the five rows above / When the filter is evaluated / Then exactly these rows match
    assert _mask(spec) == rows


@pytest.mark.parametrize(("spec", "message"), [
    ('{"year": ', "filter: not JSON"),
    ("[1, 2]", "filter: expected a non-empty JSON object"),
    ({}, "filter: expected a non-empty JSON object"),
    ({"year": {"$ne": 1}}, r"filter.year: unknown operator '\$ne'"),
    ({"$not": {"year": 1}}, r"unknown operator '\$not'"),
    ({"year": {"$gt": [1]}}, r"filter.year.\$gt: expected a number or a string, got \[1\]"),
    ({"year": {"$gt": True}}, r"filter.year.\$gt: expected a number or a string"),
    ({"year": {"$in": []}}, r"filter.year.\$in: expected a non-empty list"),
    ({"year": None}, "filter.year: null matches nothing"),
    ({"$or": []}, r"filter.\$or: expected a non-empty list of filters"),
    ({"$and": [{"a": 1}, 3]}, r"filter.\$and\[1\]: expected a non-empty JSON object"),
    ({"year": {"$lt": 10**400}}, r"filter.year.\$lt: 1000\d+ is too large"),
    (json.loads('{"$or": [' * 40 + '{"a": 1}' + ']}' * 40),
     "filters nest at most 16 levels"),
])
def test_bad_syntax_is_one_line_naming_the_field(spec, message):
    # Given a malformed filter / When it is parsed / Then one line names where it is wrong
    with pytest.raises(InputError, match=message) as err:
        parse_filter(spec)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("spec", "message"), [
    ({"yaer": 2010}, "unknown metadata field 'yaer' (fields of this index: open, source, year)"),
    ({"source": {"$gte": 3}}, "field 'source' holds strings, not numbers"),
    ({"open": "yes"}, "field 'open' holds bools, not strings"),
    ({"year": {"$in": [2010, True]}}, "field 'year' holds numbers and strings, not bools"),
    ({"$or": [{"source": "x"}, {"nope": 1}]}, "unknown metadata field 'nope'"),
])
def test_unknown_fields_and_wrong_types_are_refused(spec, message):
    # Given the rows above / When a filter names a missing field or a value of a type the field never holds
    # Then a one-line error names the field
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MetadataColumns(ROWS).resolve(parse_filter(spec))
