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
