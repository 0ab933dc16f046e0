"""Highlight spans: the words of a passage that the index's analyzer turns into a query term."""

from __future__ import annotations

from indexes.manifest import AnalyzerSpec
from rag.analyzer import Analyzer
from rag.highlight import match_spans

ENGLISH = Analyzer(AnalyzerSpec())


def _words(query: str, text: str, analyzer=ENGLISH) -> list[str]:
    return [text[s:e] for s, e in match_spans(analyzer, query, text)]


def test_stemmed_forms_match_and_stopwords_never_do():
    # Given the default analyzer (lowercase, Lucene stopwords, Snowball English):
    # "running" -> run, "runs" -> run, "Dogs" -> dog, "the" -> (stopword, no term)
    text = "The dogs were Running; the dog runs at the park."
    # When the query "the run of dogs" is matched (terms: run, dog)
    spans = match_spans(ENGLISH, "the run of dogs", text)
    # Then exactly the four content words are marked, with their offsets in the original text
    assert spans == [(4, 8), (14, 21), (27, 30), (31, 35)]
    assert [text[s:e] for s, e in spans] == ["dogs", "Running", "dog", "runs"]


def test_normalisation_is_the_analyzers_own():
    # Given NFKC in the analyzer: the ligature "ﬁ" (U+FB01) folds to "fi", full-width letters to ASCII
    text = "ﬁshing boats; ＦＩＳＨ market; fisher"
    # When / Then: both forms are found at their original offsets ("fisher" stems to "fisher", not "fish")
    assert _words("fish", text) == ["ﬁshing", "ＦＩＳＨ"]


def test_offsets_are_code_points_after_astral_characters():
    # Given a character outside the BMP before the match (2 UTF-16 units, 1 code point)
    text = "𝔸 blue sky"
    # Then offsets count it once, as Python (and JavaScript's Array.from) index the text
    assert match_spans(ENGLISH, "sky", text) == [(7, 10)]


def test_each_ideograph_is_a_candidate_word():
    # Given an analyzer that emits one term per ideograph (as Lucene's standard tokenizer, UAX #29)
    def per_ideograph(s: str) -> list[str]:
        return [c for c in s if "\u4e00" <= c <= "\u9fff"]

    text = "果园里的苹果秋天成熟"
    # When the query 苹果 (terms 苹, 果) is matched
    spans = match_spans(per_ideograph, "苹果", text)
    # Then each matching ideograph is its own span, not the whole run
    assert spans == [(0, 1), (4, 5), (5, 6)]


def test_no_query_terms_means_no_spans():
    # Given a query made of stopwords only
    assert match_spans(ENGLISH, "the of and", "the end of the road") == []
    assert match_spans(ENGLISH, "road", "") == []
