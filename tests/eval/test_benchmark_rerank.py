"""The reranking benchmark's depth shortcut equals the served path (``--rerank-depth d``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from eval.benchmarks import rerank_scifact
from rag.index import open_index
from rag.rerank import CrossEncoderReranker, RerankConfig, RerankingRetriever, rerank_interpolated

FIXTURES = Path(__file__).parents[1] / "fixtures"


def test_scores_of_the_deepest_head_rank_every_depth_as_the_served_path(sample_index, tiny_cross_encoder):
    # Given the fixture queries' hybrid rankings and cross-encoder scores of their top 8 passages
    from rag.queries import load_queries

    queries = load_queries(FIXTURES / "queries.jsonl")
    reranker = CrossEncoderReranker.load(RerankConfig(str(tiny_cross_encoder)), device="cpu")
    index = open_index(sample_index)
    try:
        rankings = rerank_scifact.first_stage(index, queries, 20)
        scores, rate = rerank_scifact.head_scores(reranker, index, queries, rankings, 8)
        for depth, alpha in ((3, 1.0), (8, 1.0), (3, 0.45), (8, 0.45)):
            served = RerankingRetriever(index.retriever("hybrid", rerank=False),
                                        reranker.with_depth(depth).with_weight(alpha))
            for qid, text in queries.items():
                # When depth d reorders the top d by the deepest scores (at weight α), and when the served path reranks
                rows, _ = rerank_interpolated(rankings[qid], scores[qid][:depth], alpha)
                (served_rows, _), = served.rank_batch([text], 10)
                # Then both give the same top 10
                assert rows[:10].tolist() == served_rows.tolist()
    finally:
        index.close()
    assert rate > 0


def test_the_script_writes_its_table(tmp_path, sample_index, tiny_cross_encoder, capsys):
    # Given the fixture queries laid out as a BEIR folder
    data = tmp_path / "data"
    (data / "qrels").mkdir(parents=True)
    shutil.copy(FIXTURES / "queries.jsonl", data / "queries.jsonl")
    shutil.copy(FIXTURES / "qrels.tsv", data / "qrels" / "test.tsv")
    # When the benchmark runs at depths 3 and 5
    rerank_scifact.main(["--index", str(sample_index), "--reranker", str(tiny_cross_encoder), "--data", str(data),
                         "--depths", "3", "5", "--latency-queries", "2"])
    out = capsys.readouterr().out
    # Then it prints one row per system
    assert "| hybrid |" in out and "| hybrid + rerank top-3 |" in out and "| hybrid + rerank top-5 |" in out
    # and with a weight below 1, a CE-only row and an interpolated row per depth
    rerank_scifact.main(["--index", str(sample_index), "--reranker", str(tiny_cross_encoder), "--data", str(data),
                         "--depths", "3", "--weight", "0.3", "--latency-queries", "2"])
    out = capsys.readouterr().out
    assert "| hybrid + rerank top-3 (CE only) |" in out and "| hybrid + rerank top-3, α = 0.30 |" in out
