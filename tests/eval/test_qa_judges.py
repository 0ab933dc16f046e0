"""Judges: F1 threshold by hand, embedding judge with a toy encoder, LLM judge parsing."""

from __future__ import annotations

import numpy as np
import pytest

from eval.judges import EmbeddingJudge, F1ThresholdJudge, JudgeInput, LLMJudge

VOCAB = ["paris", "france", "london", "capital", "river"]


def toy_encode(texts: list[str]) -> np.ndarray:
    """Bag-of-words over VOCAB plus one out-of-vocabulary slot, L2-normalised."""
    X = np.array([[t.lower().split().count(w) for w in VOCAB] + [sum(x not in VOCAB for x in t.lower().split())]
                  for t in texts], dtype=float)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


ITEMS = [
    JudgeInput("a", "paris capital", "paris", golds=("london", "Paris")),
    JudgeInput("b", "river in london", "france", golds=("thames",)),
]


def test_f1_threshold_judge():
    # Given: item a matches a gold exactly (F1 1); item b shares no token (F1 0)
    # When
    scores = F1ThresholdJudge(threshold=0.5).score(ITEMS)
    # Then
    assert scores.tolist() == [1.0, 0.0]


def test_embedding_judge_against_gold_takes_best_gold():
    # Given
    judge = EmbeddingJudge(toy_encode, reference="gold")
    # When
    scores = judge.score(ITEMS)
    # Then: "paris" vs best of ("london", "paris") = 1; "france" vs "thames" (out of vocabulary) = 0
    assert judge.uses_gold
    np.testing.assert_allclose(scores, [1.0, 0.0], atol=1e-6)


def test_embedding_judge_reference_free_uses_question_only():
    # Given: golds changed to garbage must not change a reference-free score
    judge = EmbeddingJudge(toy_encode, reference="question")
    other = [JudgeInput(i.id, i.question, i.answer, golds=("zzz",)) for i in ITEMS]
    # When
    scores, scores_other = judge.score(ITEMS), judge.score(other)
    # Then: cos("paris", "paris capital") = 1/sqrt(2); cos("france", "river in london") = 0
    assert not judge.uses_gold
    np.testing.assert_allclose(scores, [2**-0.5, 0.0], atol=1e-9)
    np.testing.assert_allclose(scores_other, scores)


@pytest.mark.parametrize("reply, expected", [("Yes.", 1.0), (" no, it is wrong", 0.0), ("**Yes**", 1.0),
                                             ("maybe", 0.5), ("", 0.5), (0.83, 0.83), (1.7, 1.0)])
def test_llm_judge_parses_replies(reply, expected):
    # Given
    judge = LLMJudge(lambda prompt: reply)
    # When
    score = judge.score([ITEMS[0]])
    # Then
    assert score.tolist() == [expected]


def test_llm_judge_prompt_never_shows_gold():
    # Given
    seen = []
    judge = LLMJudge(lambda prompt: seen.append(prompt) or "yes")
    item = JudgeInput("x", "Who wrote it?", "Ada", passages=("p1", "p2", "p3", "p4"), golds=("SECRET-GOLD",))
    # When
    judge.score([item])
    # Then
    assert "SECRET-GOLD" not in seen[0] and "[3] p3" in seen[0] and "p4" not in seen[0]
