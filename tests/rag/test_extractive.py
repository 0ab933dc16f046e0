"""Extractive answers: sentence segmentation, the score threshold, and what ``ask`` returns."""

from __future__ import annotations

import numpy as np
import pytest
from tests.rag.kv_tiny import tiny_index

from rag.extractive import ExtractiveConfig, extract, split_sentences
from rag.pipeline import NO_ANSWER, AskConfig, ask
from rag.types import Hit


@pytest.mark.parametrize(("text", "expected"), [
    # abbreviations, initials and "c." (circa) end no sentence
    ("Dr. Smith met D. Jones in c. 1850. He left.", ["Dr. Smith met D. Jones in c. 1850.", "He left."]),
    # a sentence ending inside closing quotes ends there, quotes kept with it
    ('He said "It is done." Then he left.', ['He said "It is done."', "Then he left."]),
    ("It was 3.5 km from the U.S. border. See Fig. 2 for more.", ["It was 3.5 km from the U.S. border.",
                                                                  "See Fig. 2 for more."]),
    # sentences are verbatim slices: contractions and spacing are not rewritten
    ("I don't  know. It isn't here!", ["I don't  know.", "It isn't here!"]),
])
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


class AxisEncoder:
    """Hand-made unit vectors: a text's vector is the axis of the first keyword it contains."""

    KEYWORDS = ("sky", "bee", "rain")

    def _vec(self, texts):
        X = np.zeros((len(texts), 4))
        for i, t in enumerate(texts):
            hit = [j for j, w in enumerate(self.KEYWORDS) if w in t.lower()]
            X[i, hit[0] if hit else 3] = 1.0
        return X

    encode_queries = encode_passages = _vec


HITS = [Hit(id="a", doc_id="a", score=2.0, title="", text="Bees make honey. The sky is blue."),
        Hit(id="b", doc_id="b", score=1.0, title="", text="Rain falls. Sky light scatters.")]


def test_extract_quotes_the_best_sentences_in_score_order_with_passage_numbers():
    # When: "sky" sentences have cosine 1, the others 0
    got = extract("why is the sky blue", HITS, AxisEncoder(), ExtractiveConfig(sentences=2))
    # Then both sky sentences, in passage order among ties (stable sort), each citing its passage
    assert got.text == "The sky is blue. [1] Sky light scatters. [2]"
    assert got.passages == (0, 1) and got.best_score == 1.0 and got.found


def test_extract_refuses_when_no_sentence_reaches_the_threshold():
    # When the question's axis is shared by no sentence: best cosine 0 < 0.3
    got = extract("what about snow", HITS, AxisEncoder(), ExtractiveConfig(min_score=0.3))
    # Then nothing is quoted
    assert (got.text, got.passages, got.best_score, got.found) == ("", (), 0.0, False)
    # and a threshold of -1 quotes anyway
    assert extract("what about snow", HITS, AxisEncoder(), ExtractiveConfig(min_score=-1.0)).found


def test_off_topic_question_gets_no_answer_not_quoted_noise():
    # Given the tiny index (sky, bees, vaccines, ...) and a question about none of it
    # When
    answer = ask("What is the capital of France?", tiny_index(), None, AskConfig(k=3))
    # Then
    assert answer.kind == "no_answer" and answer.answer == NO_ANSWER and answer.citations == ()
    assert set(answer.timings) == {"retrieval_ms", "extract_ms"}
    assert answer.to_dict()["kind"] == "no_answer"
