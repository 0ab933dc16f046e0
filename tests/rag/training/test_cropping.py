"""Independent random cropping: spans inside the document, with the configured length ratios."""

from __future__ import annotations

import random

import pytest

from indexes.errors import InputError
from rag.training.cropping import CropConfig, crop_span, crop_view, cropped_pairs


@pytest.mark.parametrize("n_words", [8, 37, 250])
def test_spans_lie_inside_the_document_with_the_configured_ratio(n_words):
    # Given
    config, rng = CropConfig(min_ratio=0.1, max_ratio=0.5), random.Random(0)

    # When
    spans = [crop_span(n_words, rng, config) for _ in range(2000)]

    # Then: 0 ≤ start < end ≤ n and round(0.1·n) ≤ length ≤ round(0.5·n) (at least one word)
    lo, hi = max(1, round(0.1 * n_words)), round(0.5 * n_words)
    assert all(0 <= s < e <= n_words for s, e in spans)
    assert all(lo <= e - s <= hi for s, e in spans)
    lengths = {e - s for s, e in spans}
    assert min(lengths) == lo and max(lengths) == hi  # the whole ratio range is used


def test_views_are_contiguous_spans_and_deletion_keeps_a_subsequence():
    # Given: a document of distinct words, so a view identifies its positions
    words = [f"w{i}" for i in range(200)]
    rng = random.Random(1)

    # When
    plain = [crop_view(words, rng, CropConfig()).split() for _ in range(300)]
    deleted = [crop_view(words, rng, CropConfig(deletion=0.1)).split() for _ in range(300)]

    # Then: without deletion a view is words[s:e]; with it, an ordered subset of ~90 % of a span
    for view in plain:
        start = words.index(view[0])
        assert view == words[start : start + len(view)]
    positions = [[words.index(w) for w in view] for view in deleted]
    assert all(p == sorted(p) for p in positions)
    kept = sum(len(p) for p in positions) / sum(p[-1] - p[0] + 1 for p in positions)
    assert 0.85 < kept < 0.95


def test_cropped_pairs_are_seeded_and_skip_short_documents():
    # Given
    docs = {"a": " ".join(f"a{i}" for i in range(40)), "b": " ".join(f"b{i}" for i in range(60)), "c": "too short"}

    # When
    first, again = cropped_pairs(docs, views=2, seed=3), cropped_pairs(docs, views=2, seed=3)

    # Then: two views × two long documents, both views from the same document, reproducible
    assert first == again
    assert sorted(p.query_id for p in first) == ["a", "a", "b", "b"]
    assert all(p.query.split()[0][0] == p.positive.split()[0][0] == p.query_id for p in first)


def test_invalid_ratios_are_input_errors():
    with pytest.raises(InputError, match="crop ratios"):
        CropConfig(min_ratio=0.6, max_ratio=0.5)
