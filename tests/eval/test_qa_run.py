"""The pipeline path of ``rag eval qa``: the caching encoder, and a tiny end-to-end run (slow: loads MiniLM)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eval.qa_run import CachingEncoder
from rag.cli import main


class CountingEncoder:
    """Deterministic toy encoder that records every text it is asked to encode."""

    dim = 3

    def __init__(self):
        self.seen: list[str] = []

    def _vec(self, texts):
        self.seen += list(texts)
        X = np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=float).reshape(-1, 3)
        return X / np.linalg.norm(X, axis=1, keepdims=True)

    encode_queries = encode_passages = _vec


def test_caching_encoder_returns_same_vectors_and_encodes_each_text_once():
    # Given
    inner = CountingEncoder()
    enc = CachingEncoder(inner)
    # When
    enc.warm_queries(["q1", "q2"])
    first = enc.encode_passages(["aa b", "c", "aa b"])
    second = enc.encode_passages(["c", "dd"])
    q = enc.encode_queries(["q2"])
    # Then: fast path (cached) equals slow path (direct), and no text was encoded twice per kind
    np.testing.assert_array_equal(first, CountingEncoder()._vec(["aa b", "c", "aa b"]))
    np.testing.assert_array_equal(second, CountingEncoder()._vec(["c", "dd"]))
    np.testing.assert_array_equal(q, CountingEncoder()._vec(["q2"]))
    assert inner.seen == ["q1", "q2", "aa b", "c", "dd"]
    assert enc.dim == 3


@pytest.mark.slow
def test_eval_qa_runs_the_extractive_pipeline(tmp_path):
    # Given: the sample corpus, indexed, and two questions answerable from it
    root = Path(__file__).resolve().parents[2]
    assert main(["index", str(root / "data/sample/corpus.jsonl"), "--out", str(tmp_path / "index")]) == 0
    qa = [{"id": f"q{i}", "question": q, "answers": [a]} for i, (q, a) in enumerate(
        [("What do B cells produce?", "antibodies"), ("What breaks chains of transmission?", "immune")] * 20)]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qa))
    # When
    rc = main(["eval", "qa", "--dataset", str(tmp_path / "qa.jsonl"), "--index", str(tmp_path / "index"),
               "--report", str(tmp_path / "out"), "--correct", "contains", "--gold-labels", "30", "-k", "3"])
    # Then
    assert rc == 0
    preds = [json.loads(l) for l in (tmp_path / "out/predictions.jsonl").open()]
    assert len(preds) == 40 and all(len(p["passages"]) == 3 and p["latency_ms"] > 0 for p in preds)
    assert "antibodies" in preds[0]["answer"] and "[1]" not in preds[0]["answer"]
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert report["judge"]["uses_gold"] is False
    assert report["gold_metrics"]["overall"]["answer_recall@3"] == 1.0
