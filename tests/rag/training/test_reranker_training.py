"""``rag train reranker``: rows with hard negatives that are never positives, a dev split of the
training queries, and a model that ``--rerank`` loads."""

from __future__ import annotations

import json
from pathlib import Path

from rag.cli import main
from rag.training.data import Pair
from rag.training.reranker import dev_samples, lce_groups, training_rows

FIXTURES = Path(__file__).parents[2] / "fixtures"


def test_rows_hold_every_positive_and_sampled_candidates_that_are_not_positives():
    # Given q1 judged d1, d2 and q2 judged d3; first-stage candidates that include the positives
    pairs = [Pair("q1", "Q1", "d1", "D1"), Pair("q1", "Q1", "d2", "D2"), Pair("q2", "Q2", "d3", "D3")]
    docs = {f"d{i}": f"D{i}" for i in range(1, 9)}
    candidates = {"q1": ["d1", "d5", "d2", "d6", "d7"], "q2": ["d3", "d8"]}
    # When two negatives per query are drawn
    rows = training_rows(pairs, candidates, docs, negatives=2, seed=3)
    # Then the three positives come first, q1 gets 2 of {d5, d6, d7}, q2 the only one it has (d8)
    assert rows[:3] == [("Q1", "D1", 1.0), ("Q1", "D2", 1.0), ("Q2", "D3", 1.0)]
    q1_neg = [p for q, p, y in rows[3:] if q == "Q1"]
    assert len(q1_neg) == 2 and set(q1_neg) <= {"D5", "D6", "D7"}
    assert [p for q, p, y in rows[3:] if q == "Q2"] == ["D8"]
    assert all(y == 0.0 for _, _, y in rows[3:])
    # and the draw is seeded
    assert training_rows(pairs, candidates, docs, negatives=2, seed=3) == rows


def test_dev_samples_keep_the_first_stage_order():
    pairs = [Pair("q1", "Q1", "d2", "D2")]
    samples = dev_samples(pairs, {"q1": ["d3", "d2", "d1"]}, {"d1": "D1", "d2": "D2", "d3": "D3"})
    assert samples == [{"query": "Q1", "positive": ["D2"], "documents": ["D3", "D2", "D1"]}]


def test_train_reranker_writes_a_model_that_rerank_loads(capsys, tmp_path, tiny_encoder_dir, sample_index):
    # Given the fixture corpus, its 12 judged queries and the hybrid sample index
    out = tmp_path / "reranker"
    args = ["train", "reranker", "--out", str(out), "--index", str(sample_index), "--corpus", str(FIXTURES / "corpus.jsonl"),
            "--queries", str(FIXTURES / "queries.jsonl"), "--qrels", str(FIXTURES / "qrels.tsv"),
            "--base", str(tiny_encoder_dir), "--negatives", "2", "--negative-depth", "6", "--dev-fraction", "0.25",
            "--dev-depth", "5", "--epochs", "2", "--batch-size", "8", "--max-length", "64", "--device", "cpu", "--quiet"]
    # When it trains
    assert main(args) == 0
    printed = capsys.readouterr()
    # Then it reports the best dev nDCG@10 on stdout (the summary; progress and logs never go there), and records a
    # dev split of the training queries
    assert "best dev nDCG@10" in printed.out and "best dev nDCG@10" not in printed.err
    assert printed.out.count("\n") == 1 and "eval_dev" not in printed.out + printed.err and "train_runtime" not in printed.out
    # and leaves no checkpoint folder beside OUT (the best checkpoint is OUT)
    assert not (tmp_path / "reranker.checkpoints").exists()
    record = json.loads((out / "training.json").read_text())
    assert len(record["dev_queries"]) == 3 and record["train_queries"] == 9
    assert record["rows"] == 9 + 2 * 9  # one positive per fixture query, two negatives each
    assert len(record["dev_history"]) == 2 and record["best_dev_ndcg@10"] == max(v for _, v in record["dev_history"])
    # and `rag search --rerank OUT` loads it
    assert main(["search", "--index", str(sample_index), "--rerank", str(out), "--rerank-depth", "4", "--json",
                 "--device", "cpu", "why is the sky blue"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) == 10


def test_bad_mode_and_missing_base_fail_with_one_line(capsys, tmp_path, sample_index):
    common = ["train", "reranker", "--out", str(tmp_path / "r"), "--index", str(sample_index), "--corpus",
              str(FIXTURES / "corpus.jsonl"), "--queries", str(FIXTURES / "queries.jsonl"), "--qrels", str(FIXTURES / "qrels.tsv")]
    assert main([*common, "--mode", "sparse"]) == 2  # a usage error: --mode is a choice
    assert "'sparse' is not one of 'bm25', 'dense', 'hybrid'" in capsys.readouterr().err
    assert main([*common, "--base", "/no/such/encoder"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "cannot load base model '/no/such/encoder'" in err


def test_lce_groups_hold_one_positive_and_n_negatives_that_are_never_positives():
    # Given q1 judged d1, d2 and q2 judged d3 with a pool too small for two negatives
    pairs = [Pair("q1", "Q1", "d1", "D1"), Pair("q1", "Q1", "d2", "D2"), Pair("q2", "Q2", "d3", "D3")]
    docs = {f"d{i}": f"D{i}" for i in range(1, 9)}
    candidates = {"q1": ["d1", "d5", "d2", "d6", "d7"], "q2": ["d3", "d8"]}
    # When groups of one positive and two negatives are drawn
    groups = lce_groups(pairs, candidates, docs, negatives=2, seed=3)
    # Then each of q1's positives gets its own group of two distinct non-positive candidates, q2 none
    assert [g[:2] for g in groups] == [("Q1", "D1"), ("Q1", "D2")]
    for g in groups:
        assert len(g) == 4 and len(set(g[2:])) == 2 and set(g[2:]) <= {"D5", "D6", "D7"}
    # and the draw is seeded
    assert lce_groups(pairs, candidates, docs, negatives=2, seed=3) == groups


def test_lce_training_writes_a_weight_that_search_uses(capsys, tmp_path, tiny_encoder_dir, sample_index):
    # Given the fixture corpus and an LCE run with two negatives per positive
    out = tmp_path / "reranker"
    args = ["train", "reranker", "--out", str(out), "--index", str(sample_index), "--corpus", str(FIXTURES / "corpus.jsonl"),
            "--queries", str(FIXTURES / "queries.jsonl"), "--qrels", str(FIXTURES / "qrels.tsv"),
            "--base", str(tiny_encoder_dir), "--loss", "lce", "--negatives", "2", "--negative-depth", "6",
            "--dev-fraction", "0.25", "--dev-depth", "5", "--epochs", "1", "--batch-size", "4", "--max-length", "64",
            "--device", "cpu", "--quiet"]
    # When it trains
    assert main(args) == 0
    assert "rerank weight " in capsys.readouterr().out
    # Then rerank.json holds an α of the grid and the dev curve it was chosen from, maximal at α
    weight = json.loads((out / "rerank.json").read_text())
    assert 0.0 <= weight["weight"] <= 1.0 and weight["dev_queries"] == 3 and len(weight["dev_curve"]) == 21
    assert weight["dev_ndcg@10"] == max(weight["dev_curve"].values())
    assert json.loads((out / "training.json").read_text())["config"]["loss"] == "lce"
    # and --select-weight-only recomputes the same α on the same dev split, without training
    (out / "rerank.json").unlink()
    assert main([*args, "--select-weight-only"]) == 0
    assert json.loads((out / "rerank.json").read_text())["weight"] == weight["weight"]
    # and training again into OUT is refused in one line, the model left as it was, unless --overwrite
    before = (out / "training.json").read_text()
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--overwrite" in err and (out / "training.json").read_text() == before
    assert main([*args, "--overwrite", "--keep-checkpoints", "--loss", "bce"]) == 0
    assert json.loads((out / "training.json").read_text())["config"]["loss"] == "bce"
    assert any((tmp_path / "reranker.checkpoints").glob("checkpoint-*"))  # kept when asked


def test_select_weight_only_needs_a_trained_model(capsys, tmp_path, sample_index):
    args = ["train", "reranker", "--out", str(tmp_path / "none"), "--index", str(sample_index), "--corpus",
            str(FIXTURES / "corpus.jsonl"), "--queries", str(FIXTURES / "queries.jsonl"), "--qrels",
            str(FIXTURES / "qrels.tsv"), "--select-weight-only"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "holds no trained reranker" in err


def test_lce_loss_is_the_softmax_cross_entropy_over_each_group(tiny_cross_encoder):
    # Given a cross-encoder and two groups (query, positive, two hard negatives)
    import torch

    from rag.compat.sentence_transformers import lce_loss
    from rag.models import load_cross_encoder

    model, _ = load_cross_encoder(str(tiny_cross_encoder), device="cpu")
    queries = ["why is the sky blue", "what do vaccines do"]
    columns = [["rayleigh scattering", "immune memory"], ["sunsets are red", "antibiotics"], ["ocean water", "fevers"]]
    # When the LCE loss is computed, and by hand: -log softmax(s⁺, s⁻₁, s⁻₂)[0], averaged over the groups
    model.eval()
    with torch.no_grad():
        loss = lce_loss(model)([queries, *columns], torch.zeros(2)).item()
        logits = torch.stack([torch.as_tensor(model.predict(list(zip(queries, col)), activation_fn=torch.nn.Identity(),
                                                            convert_to_numpy=True)).reshape(2) for col in columns], dim=1)
    expected = -torch.log_softmax(logits.double(), dim=1)[:, 0].mean().item()
    # Then they agree (no in-batch negatives: the other group's passages do not enter)
    assert abs(loss - expected) < 1e-5
