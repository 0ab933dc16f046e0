"""The types of metadata fields, as filters see them: recorded from documents, checked on upserts."""

from __future__ import annotations

import pytest

from indexes.errors import InputError
from indexes.metadata_types import check_field_types, field_types


def test_field_types_are_the_filter_types_ints_and_floats_one_bool_another():
    # Given documents with ints, floats, bools, strings, lists, objects and nulls
    docs = [{"year": 2020, "open": True, "tags": ["a"], "n": None}, {"year": 2.5, "open": False, "extra": {"k": 1}},
            {"year": "n/a"}]
    # When / Then (by hand): year holds numbers and strings; open only bools; null is no type
    assert field_types(docs) == {"extra": ("object",), "open": ("bool",), "tags": ("list",),
                                 "year": ("number", "string")}
    # ... and a record grows by what new documents bring
    assert field_types([{"open": 1, "doi": "x"}], {"open": ("bool",)}) == {"doi": ("string",), "open": ("bool", "number")}


@pytest.mark.parametrize("metadata", [{"year": 2021}, {"year": 2021.5}, {"year": None}, {"new": "x"}, {"open": False},
                                      {"both": "s"}, {"both": 3}])
def test_values_of_a_held_type_or_new_fields_or_null_pass(metadata):
    known = {"year": ("number",), "open": ("bool",), "both": ("number", "string")}
    check_field_types(known, [("c.jsonl:1", metadata)])  # no error


@pytest.mark.parametrize("metadata, message", [
    ({"year": "2021"}, "c.jsonl:4: metadata field 'year' is a string (\"2021\"), but the index holds 'year' as numbers "
                       "and a filter compares one type; give it a number, or use another field name"),
    ({"year": True}, "c.jsonl:4: metadata field 'year' is a true/false value (true), but the index holds 'year' as numbers"),
    ({"open": 0}, "c.jsonl:4: metadata field 'open' is a number (0), but the index holds 'open' as true/false values"),
    ({"both": False}, "c.jsonl:4: metadata field 'both' is a true/false value (false), but the index holds 'both' as "
                      "numbers or strings and a filter compares one type; give it one of those, or use another field name"),
    ({"year": "x" * 80}, f"c.jsonl:4: metadata field 'year' is a string (\"{'x' * 36}...), but"),
])
def test_a_value_of_another_type_is_refused_naming_record_and_field(metadata, message):
    known = {"year": ("number",), "open": ("bool",), "both": ("number", "string")}
    with pytest.raises(InputError) as exc:
        check_field_types(known, [("c.jsonl:3", {"year": 1}), ("c.jsonl:4", metadata)])
    assert str(exc.value).startswith(message)


def test_the_subject_of_the_error_can_be_a_json_path():
    with pytest.raises(InputError, match=r"^documents\[1\]\.metadata\.year is a string"):
        check_field_types({"year": ("number",)}, [("documents[0]", {}), ("documents[1]", {"year": "1"})],
                          locate=lambda where, name: f"{where}.metadata.{name}")
