"""The SmolLM2 SQuAD benchmark's article split and scoring (no model needed)."""

from __future__ import annotations

import pytest

from eval.benchmarks.smollm2_squad import score
from eval.benchmarks.squad_split import is_held_out, split
from eval.qa_data import QAItem


def test_split_is_by_article_hash_and_never_shares_an_article():
    # Given: sha256("Warsaw")[0] = 45 < 128, sha256("Super_Bowl_50")[0] = 145, sha256("Normans")[0] = 226
    items = [QAItem(f"q{i}", "?", ("a",), title) for i, title in
             enumerate(["Warsaw", "Super_Bowl_50", "Normans", "Warsaw", "Normans"])]
    # When
    train, held = split(items)
    # Then: Warsaw held out; the other two train; no article on both sides, nothing lost
    assert is_held_out("Warsaw") and not is_held_out("Super_Bowl_50") and not is_held_out("Normans")
    assert [q.id for q in held] == ["q0", "q3"]
    assert [q.id for q in train] == ["q1", "q2", "q4"]
    assert not {q.stratum for q in train} & {q.stratum for q in held}


def _row(answers, preds, passages):
    row = {"answers": answers}
    for k in (3, 5):
        for way in ("extractive", "full", "cached-rerotate", "cached-composite"):
            row[f"{way}@{k}"] = {"answer": preds[way], "ttft_ms": 10.0, "passages": passages if way == "full" else None}
    return row


def test_score_hand_worked_metrics_and_paired_gap():
    # Given: question 1: full says "Denver Broncos" (EM 1, F1 1), cached says "the Broncos won [1]"
    #   → cleaned "the Broncos won": tokens {broncos, won} vs {denver, broncos}: P = R = 1/2, F1 = 0.5, EM 0,
    #   not contained. Question 2: every way says "Paris" for gold "Paris" (all 1).
    rows = [
        _row(["Denver Broncos"], {"extractive": "x", "full": "Denver Broncos", "cached-rerotate": "the Broncos won [1]",
                                  "cached-composite": "Denver Broncos"}, ["The Denver Broncos won.", "y", "z"]),
        _row(["Paris"], {"extractive": "Paris", "full": "Paris", "cached-rerotate": "Paris",
                         "cached-composite": "Paris"}, ["no", "no", "no", "no", "It is Paris."]),
    ]
    # When
    res = score(rows)
    # Then: means in %, recall@3 = 1/2 (Paris is the 5th passage), recall@5 = 1
    assert res["n"] == 2
    assert res["ways"]["full@5"]["em"][0] == pytest.approx(100.0)
    assert res["ways"]["cached-rerotate@5"]["f1"][0] == pytest.approx(75.0)
    assert res["ways"]["cached-rerotate@5"]["em"][0] == pytest.approx(50.0)
    assert res["ways"]["cached-rerotate@5"]["contained"][0] == pytest.approx(50.0)
    assert res["ways"]["extractive@3"]["contained"][0] == pytest.approx(50.0)
    assert res["recall"]["3"][0] == pytest.approx(50.0) and res["recall"]["5"][0] == pytest.approx(100.0)
    assert res["gaps"]["cached-rerotate@5"]["f1"][0] == pytest.approx(-25.0)
    assert res["gaps"]["cached-composite@5"]["f1"][0] == pytest.approx(0.0)


def test_ppi_coverage_line_states_the_full_sample_value_and_which_intervals_cover_it(tmp_path):
    # Given: four answers, three judged correct by the gold-derived rule (truth 0.75), and two intervals
    from eval.benchmarks.smollm2_ppi import coverage_line

    items = tmp_path / "items.jsonl"
    items.write_text("".join(f'{{"id": "{i}", "correct": {c}}}\n' for i, c in enumerate([1.0, 1.0, 0.0, 1.0])))
    estimates = {"classical": {"lower": 0.5, "upper": 0.8}, "ppi": {"lower": 0.76, "upper": 0.9}}

    # When
    line = coverage_line(items, estimates)

    # Then: 0.75 lies in [0.5, 0.8] only
    assert "0.750 (the rule over all 4 answers)" in line
    assert "Covered by: classical; missed by: ppi." in line
