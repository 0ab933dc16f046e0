"""``rag eval qa``'s correctness rule follows the answer kind: checked against hand labels.

The fixture holds 14 SQuAD dev questions, each with the one sentence of its gold paragraph that
``rag.extractive`` quotes, and a label given by a person reading question and sentence (1 when
the sentence answers the question): 10 of 14 are right.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.qa_data import Prediction, load_predictions, load_qa
from eval.qa_eval import QAEvalConfig, score_items
from eval.qa_choices import Correctness
from eval.qa_run import resolve_correctness
from indexes.errors import InputError

HAND = Path(__file__).resolve().parents[1] / "fixtures" / "qa_extractive_hand_labelled.jsonl"


def _correct(rule: Correctness, notes: list[str]) -> dict[str, float]:
    """Gold-derived correctness of the fixture's answers, as ``rag eval qa`` computes it."""
    items, preds = load_qa(HAND), load_predictions(HAND)
    resolved = resolve_correctness(rule, preds, {i.id: i.answers for i in items}, notes.append)
    return {r.id: r.correct for r in score_items(items, preds, QAEvalConfig(correctness=resolved))}


def test_default_correctness_of_extractive_answers_agrees_with_hand_labels():
    # Given sentence answers marked extractive, and a person's labels for them (10 of 14 right)
    hand = {r["id"]: r["hand_label"] for r in map(json.loads, HAND.open())}
    notes: list[str] = []
    # When scored with the default rule, and with token F1 forced
    auto = _correct(Correctness.AUTO, notes)
    assert notes == []
    forced = _correct(Correctness.F1, notes)
    # Then the default ("contains") agrees with every hand label: accuracy 10/14, as the person said
    assert auto == hand and sum(auto.values()) == 10
    # whereas token F1 >= 0.5 against short gold spans calls all 14 sentences wrong, and a note says why
    assert sum(forced.values()) == 0
    assert len(notes) == 1 and "--correct f1 on extractive sentence answers" in notes[0]


def _preds(*kinds, answer="the Broncos"):
    return {f"q{i}": Prediction(f"q{i}", answer, kind=k) for i, k in enumerate(kinds)}


@pytest.mark.parametrize(("kinds", "rule"), [(("extractive", "no_answer"), "contains"), (("generated",) * 2, "f1")])
def test_auto_correctness_follows_the_answer_kind(kinds, rule):
    assert resolve_correctness(Correctness.AUTO, _preds(*kinds), {}) == rule


def test_auto_correctness_refuses_mixed_kinds():
    with pytest.raises(InputError, match="mix answer kinds.*--correct contains"):
        resolve_correctness(Correctness.AUTO, _preds("extractive", "generated"), {})


def test_predictions_without_kind_get_f1_and_a_note_when_answers_are_sentences():
    # Given answers of 12 words against 2-word gold answers, from a file that does not say their kind
    notes = []
    long = _preds(None, None, answer="Denver won the game by beating the Panthers in the final quarter")
    # When
    rule = resolve_correctness(Correctness.AUTO, long, {"q0": ("Denver Broncos",), "q1": ("Broncos",)}, notes.append)
    # Then F1 stays the rule (SQuAD's), with a note naming the mismatch and the remedy
    assert rule == "f1" and len(notes) == 1 and "12 words" in notes[0] and "--correct contains" in notes[0]
    notes.clear()
    assert resolve_correctness(Correctness.AUTO, _preds(None), {"q0": ("Denver Broncos",)}, notes.append) == "f1"
    assert notes == []


def test_rag_ask_answers_jsonl_reads_as_predictions(tmp_path):
    # Given two rows as `rag ask --questions ... --out` writes them
    rows = [{"id": "q1", "question": "Who?", "answer": "Ada Lovelace wrote it. [1] She was first. [2]",
             "kind": "extractive", "citations": [{"n": 1}, {"n": 2}], "timings": {"retrieval_ms": 2.0, "extract_ms": 3.5}},
            {"id": "q2", "question": "What?", "answer": "No answer found in the retrieved passages.", "kind": "no_answer",
             "citations": [], "timings": {"retrieval_ms": 1.0, "extract_ms": 1.0}}]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # When
    preds = load_predictions(tmp_path / "a.jsonl")
    # Then citation markers are gone, "no answer" scores as the empty answer, timings sum to the latency
    assert preds["q1"] == Prediction("q1", "Ada Lovelace wrote it. She was first.", (), 5.5, "extractive")
    assert preds["q2"] == Prediction("q2", "", (), 2.0, "no_answer")


def test_unknown_kind_is_an_error_naming_the_line(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"id": "q1", "answer": "x", "kind": "abstractive"}\n')
    with pytest.raises(InputError, match=r"p.jsonl:1: field 'kind' must be one of generated, extractive, no_answer"):
        load_predictions(tmp_path / "p.jsonl")
