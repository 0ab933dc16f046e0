"""SQuAD EM/F1 by hand and answer recall."""

from __future__ import annotations

import pytest

from eval.qa_metrics import answer_recall, exact_match, f1_score, normalize_answer


def test_normalisation_drops_case_punctuation_articles():
    # Given / When / Then
    assert normalize_answer("  The  Eiffel-Tower, in Paris. ") == "eiffeltower in paris"


def test_exact_match_takes_any_gold():
    # Given / When / Then
    assert exact_match("an apple", ["Pear", "Apple"]) == 1.0
    assert exact_match("apples", ["apple"]) == 0.0


def test_f1_by_hand():
    # Given: pred tokens {denver, broncos, team}, gold {denver, broncos}: P = 2/3, R = 1
    # When
    f1 = f1_score("the Denver Broncos team", ["Denver Broncos", "Broncos"])
    # Then: 2 * (2/3) * 1 / (2/3 + 1) = 0.8 (best of the two golds; vs "Broncos": P=1/3, R=1 -> 0.5)
    assert f1 == pytest.approx(0.8)


def test_f1_counts_repeated_tokens_as_a_multiset():
    # Given: pred "a b b" vs gold "b": common = 1, P = 1/3 (articles: 'a' is dropped -> pred "b b", P = 1/2)
    # When
    f1 = f1_score("a b b", ["b"])
    # Then: P = 1/2, R = 1 -> 2/3
    assert f1 == pytest.approx(2 / 3)


def test_answer_recall_respects_k_and_word_boundaries():
    # Given
    passages = ["Paris is the capital of France.", "The Seine flows through Paris."]
    # When / Then
    assert answer_recall(passages, ["the Seine"], k=1) == 0.0
    assert answer_recall(passages, ["the Seine"], k=2) == 1.0
    assert answer_recall(["Parisian food"], ["Paris"]) == 0.0
