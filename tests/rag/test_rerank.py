"""The reranking stage: it only reorders the first stage's top N, deterministically, ties by row."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.cli import main
from rag.rerank import CrossEncoderReranker, RerankConfig, RerankingRetriever, rerank_ranking

FIXTURES = Path(__file__).parents[1] / "fixtures"


class HashModel:
    """A stand-in cross-encoder: a pseudo-random but fixed logit per (query, passage), with ties."""

    def __init__(self, levels: int = 4) -> None:
        self.levels = levels
        self.calls = 0

    def predict(self, pairs, **kwargs):
        self.calls += 1
        return np.array([int(hashlib.sha256(f"{q}\x00{p}".encode()).hexdigest(), 16) % self.levels
                         for q, p in pairs], dtype=np.float32)


def hash_reranker(depth: int, levels: int = 4) -> CrossEncoderReranker:
    return CrossEncoderReranker(HashModel(levels), RerankConfig("hash", depth=depth))


@pytest.fixture(scope="module")
def index(sample_index):
    from rag.index import open_index

    idx = open_index(sample_index)
    yield idx
    idx.close()


def test_hand_worked_rerank_breaks_ties_by_row_and_shifts_the_tail_below():
    # Given rows [5, 2, 9, 7] with first-stage scores 4 > 3 > 2 > 1, and new scores for the top 3
    ranking = (np.array([5, 2, 9, 7]), np.array([4.0, 3.0, 2.0, 1.0]))
    # When rows 5 and 9 tie at 0.5 and row 2 scores 2.0
    rows, scores = rerank_ranking(ranking, np.array([0.5, 2.0, 0.5]))
    # Then 2 first, the tie in row order (5 before 9), and row 7 below at 1 - 1 + 0.5 - 1 = -0.5
    assert rows.tolist() == [2, 5, 9, 7]
    assert scores.tolist() == [2.0, 0.5, 0.5, -0.5]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_reranking_keeps_the_top_n_set_the_tail_order_and_monotone_scores(data):
    # Given a random first-stage ranking and random (often tied) new scores for its top m
    n = data.draw(st.integers(1, 40))
    rows = np.array(data.draw(st.permutations(list(range(100))))[:n])
    scores = np.sort(np.array(data.draw(st.lists(st.floats(-5, 5), min_size=n, max_size=n))))[::-1]
    m = data.draw(st.integers(0, n))
    head = np.array(data.draw(st.lists(st.sampled_from([-1.0, 0.0, 0.5, 3.0]), min_size=m, max_size=m)))
    relevant = set(data.draw(st.lists(st.integers(0, 99), max_size=10)))
    # When
    new_rows, new_scores = rerank_ranking((rows, scores), head)
    # Then the same rows are in the top m (recall@m unchanged for any judgments), the tail is untouched,
    assert sorted(new_rows[:m].tolist()) == sorted(rows[:m].tolist())
    assert len(relevant & set(new_rows[:m].tolist())) == len(relevant & set(rows[:m].tolist()))
    assert new_rows[m:].tolist() == rows[m:].tolist()
    # scores never increase down the list, and equal new scores are in row order
    assert np.all(np.diff(new_scores) <= 0)
    for i in range(m - 1):
        if new_scores[i] == new_scores[i + 1]:
            assert new_rows[i] < new_rows[i + 1]


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
@pytest.mark.parametrize("depth", [1, 3, 7, 20])
def test_reranking_retriever_reorders_only_the_first_stage_top_n(index, mode, depth):
    # Given a first stage and a stand-in cross-encoder over its top `depth`
    base = index.retriever(mode)
    reranked = RerankingRetriever(base, hash_reranker(depth))
    query = "why is the sky blue"
    k = 15
    # When
    (base_rows, _), = base.rank_batch([query], max(k, depth))
    (rows, scores), = reranked.rank_batch([query], k)
    # Then the top `depth` passages are the first stage's (k of them when depth > k), the rest in its order
    n = min(depth, len(base_rows))
    if n <= k:
        assert sorted(rows[:n].tolist()) == sorted(base_rows[:n].tolist())
        assert rows[n:].tolist() == base_rows[n:k].tolist()
    else:
        assert set(rows.tolist()) <= set(base_rows[:n].tolist()) and len(rows) == k
    n = min(n, k)
    # ordered by the stand-in's score, ties by row
    texts = {p.id: p for p in index.store.get(rows[:n].tolist())}
    expected = HashModel().predict([(query, f"{p.title} {p.text}" if p.title else p.text)
                                    for p in index.store.get(rows[:n].tolist())])
    assert scores[:n].tolist() == expected.astype(np.float64).tolist()
    assert sorted(zip(-scores[:n], rows[:n].tolist())) == list(zip(-scores[:n], rows[:n].tolist()))
    assert len(texts) == n


def test_document_recall_at_depth_is_the_first_stages(index):
    # Given the 12 judged fixture queries, hybrid first stage, a stand-in reranker at depth 3
    from eval.retrieval import evaluate
    from rag.batch import search_run
    from rag.index import open_index
    from rag.queries import load_qrels, load_queries

    queries, qrels = load_queries(FIXTURES / "queries.jsonl"), load_qrels(FIXTURES / "qrels.tsv")
    reranked_index = open_index(index.path, reranker=hash_reranker(3, levels=50))
    try:
        # When both runs are evaluated
        base = search_run(index, queries, "hybrid", k=10)
        rerun = search_run(reranked_index, queries, "hybrid", k=10)
    finally:
        reranked_index.close()
    # Then every query's top 3 documents are the same set, and the rest of the top 10 is identical
    for q in queries:
        assert set(list(rerun[q])[:3]) == set(list(base[q])[:3])
        assert list(rerun[q])[3:] == list(base[q])[3:]
    assert list(rerun.values()) != list(base.values())  # the stand-in did reorder something
    # so recall@3 is unchanged
    base_r = {q: len(set(list(base[q])[:3]) & set(qrels[q])) for q in qrels}
    rerun_r = {q: len(set(list(rerun[q])[:3]) & set(qrels[q])) for q in qrels}
    assert base_r == rerun_r
    assert evaluate(rerun, qrels)[0]["recall@100"] == evaluate(base, qrels)[0]["recall@100"]


def test_a_real_cross_encoder_scores_deterministically_and_independently_of_the_batch(tiny_cross_encoder):
    # Given the tiny cross-encoder loaded twice
    a = CrossEncoderReranker.load(RerankConfig(str(tiny_cross_encoder), batch_size=2), device="cpu")
    b = CrossEncoderReranker.load(RerankConfig(str(tiny_cross_encoder), batch_size=8), device="cpu")
    passages = ["the sky is blue because of rayleigh scattering", "vaccines train the immune system",
                "sunsets are red", "a much longer passage " * 10]
    # When the same pairs are scored with different batch sizes and in another order
    sa = a.score("why is the sky blue", passages)
    sb = b.score("why is the sky blue", passages[::-1])[::-1]
    # Then the logits agree (raw logits: not squashed by a sigmoid) to float32 padding noise
    assert sa.dtype == np.float64 and sa.shape == (4,)
    np.testing.assert_allclose(sa, sb, atol=1e-5)
    np.testing.assert_array_equal(sa, a.score("why is the sky blue", passages))


def test_missing_model_and_a_bi_encoder_are_refused_with_one_line(capsys, sample_index):
    from rag.models import EMBEDDED_MODEL

    # When --rerank names a folder that does not exist
    rc = main(["search", "--index", str(sample_index), "--rerank", "/nonexistent/reranker", "sky"])
    err = capsys.readouterr().err.strip()
    # Then one line says which model and that nothing is downloaded
    assert rc == 1 and "\n" not in err
    assert err.startswith("rag: error: cannot load cross-encoder '/nonexistent/reranker'") and "never downloads" in err
    # When it names the embedded bi-encoder (no relevance head)
    rc = main(["search", "--index", str(sample_index), "--rerank", EMBEDDED_MODEL, "sky"])
    err = capsys.readouterr().err.strip()
    # Then it is refused, pointing at `rag train reranker`
    assert rc == 1 and "\n" not in err and "not a cross-encoder" in err and "rag train reranker" in err


def test_cli_search_and_eval_rerank_with_a_real_cross_encoder(capsys, sample_index, tiny_cross_encoder):
    # Given the same query with and without reranking of the top 5
    def search(*extra):
        assert main(["search", "--index", str(sample_index), "--mode", "hybrid", "-k", "8", "--json", *extra,
                     "why is the sky blue"]) == 0
        return json.loads(capsys.readouterr().out)["hits"]

    plain = search()
    reranked = search("--rerank", str(tiny_cross_encoder), "--rerank-depth", "5", "--device", "cpu")
    again = search("--rerank", str(tiny_cross_encoder), "--rerank-depth", "5", "--device", "cpu")
    # Then the top 5 are the same passages, the rest keeps the first stage's order, and a rerun is identical
    assert {h["id"] for h in reranked[:5]} == {h["id"] for h in plain[:5]}
    assert [h["id"] for h in reranked[5:]] == [h["id"] for h in plain[5:]]
    assert reranked == again
    assert [h["score"] for h in reranked] == sorted((h["score"] for h in reranked), reverse=True)
    # When `rag eval retrieval` reranks the top 100 (all 20 documents)
    assert main(["eval", "retrieval", "--index", str(sample_index), "--queries", str(FIXTURES / "queries.jsonl"),
                 "--qrels", str(FIXTURES / "qrels.tsv"), "--rerank", str(tiny_cross_encoder), "--device", "cpu",
                 "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    # Then it reports the reranker and recall@100 stays the first stage's (1.0 on the fixtures)
    assert metrics["rerank"] == str(tiny_cross_encoder) and metrics["rerank_depth"] == 100
    assert metrics["recall@100"] == 1.0


def test_rerank_with_hyde_is_refused(capsys, sample_index, tiny_cross_encoder):
    rc = main(["search", "--index", str(sample_index), "--rerank", str(tiny_cross_encoder), "--hyde",
               "--generator", "x", "sky"])
    assert rc == 1 and "not --hyde" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_a_metadata_filter_reaches_the_first_stage(index, mode):
    # Given a filter selecting every other passage row (a mask, as Index.where resolves one)
    from indexes.filters import Condition, RowFilter

    where = RowFilter(Condition("source", "eq", "rag-toolkit sample"), np.arange(len(index.store)) % 2 == 0)
    base = index.retriever(mode)
    reranked = RerankingRetriever(base, hash_reranker(3))
    # When the reranking retriever ranks with the filter
    (base_rows, _), = base.rank_batch(["why is the sky blue"], 10, where)
    (rows, _), = reranked.rank_batch(["why is the sky blue"], 10, where)
    # Then it reorders the filtered first stage's passages only (none outside the filter)
    assert base_rows.size and set(rows.tolist()) == set(base_rows.tolist())
    assert all(r % 2 == 0 for r in rows.tolist())
    assert [h.id for h in reranked.search("why is the sky blue", 10, where)] == [p.id for p in index.store.get(rows.tolist())]
