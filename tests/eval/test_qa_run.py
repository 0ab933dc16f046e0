"""The pipeline path of ``rag eval qa``: a tiny end-to-end run (slow: loads MiniLM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import main


@pytest.mark.slow
def test_eval_qa_runs_the_extractive_pipeline(tmp_path):
    # Given: the sample corpus, indexed, and two questions answerable from it
    root = Path(__file__).resolve().parents[2]
    assert main(["index", str(root / "data/sample/corpus.jsonl"), "--out", str(tmp_path / "index")]) == 0
    qa = [{"id": f"q{i}", "question": q, "answers": [a]} for i, (q, a) in enumerate(
        [("What do B cells produce?", "antibodies"), ("What breaks chains of transmission?", "immune")] * 20)]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qa))
    # When evaluated with the default correctness rule
    rc = main(["eval", "qa", "--dataset", str(tmp_path / "qa.jsonl"), "--index", str(tmp_path / "index"),
               "--report", str(tmp_path / "out"), "--gold-labels", "30", "-k", "3"])
    # Then
    assert rc == 0
    preds = [json.loads(l) for l in (tmp_path / "out/predictions.jsonl").open()]
    assert len(preds) == 40 and all(len(p["passages"]) == 3 and p["latency_ms"] > 0 for p in preds)
    assert "antibodies" in preds[0]["answer"] and "[1]" not in preds[0]["answer"]
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert report["judge"]["uses_gold"] is False
    assert report["config"]["correctness"] == "contains"  # the default for extractive answers
    assert report["gold_metrics"]["overall"]["answer_recall@3"] == 1.0


@pytest.mark.parametrize("questions, gold_labels, expected", [
    (5, 300, "5 question(s) and --gold-labels 300 gives 5 label(s), but an interval needs at least 30"),
    (30, 300, "--gold-labels 300 gives a label for all 30 question(s), leaving none for the judge"),
    (40, 40, "--gold-labels 40 gives a label for all 40 question(s)"),
])
def test_a_label_budget_that_cannot_give_a_report_is_refused_before_any_question_is_answered(
        sample_index, tmp_path, capsys, questions, gold_labels, expected):
    # Given a QA set of n questions and a number of gold-derived labels that leaves fewer than 30
    # labels, or no unlabelled item for the judge (both found by a new user only after every
    # question had been answered)
    qa = [{"id": f"q{i}", "question": "What do B cells produce?", "answers": ["antibodies"]} for i in range(questions)]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qa))
    # When evaluated over the index
    rc = main(["eval", "qa", "--dataset", str(tmp_path / "qa.jsonl"), "--index", str(sample_index),
               "--report", str(tmp_path / "out"), "--gold-labels", str(gold_labels)])
    # Then it stops with one line naming the counts, before answering anything
    err = capsys.readouterr().err
    assert rc == 1 and expected in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()
