"""Counts in summary lines agree with their nouns (:func:`rag.wording.counted`)."""

from __future__ import annotations

import pytest

from rag.wording import counted


@pytest.mark.parametrize(("n", "noun", "plural", "want"), [
    (0, "commit", None, "0 commits"),  # English: zero takes the plural
    (1, "commit", None, "1 commit"),
    (2, "commit", None, "2 commits"),
    (1, "query", "queries", "1 query"),
    (3, "query", "queries", "3 queries"),
])
def test_counted_uses_the_singular_for_exactly_one(n, noun, plural, want):
    # Given a count and a noun / When it is worded / Then the noun agrees with the number
    assert counted(n, noun, plural) == want


def test_counted_formats_the_number_as_asked():
    # Given a large count and a thousands separator / When worded / Then both apply
    assert counted(12345, "passage", fmt=",") == "12,345 passages"
