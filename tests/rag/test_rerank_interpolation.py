"""Interpolating the cross-encoder with the first stage: hand-worked, α = 0 is the first stage,
α = 1 is the plain reranker, recall is never lowered, and the weight file / option / errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.cli import main
from rag.rerank import CrossEncoderReranker, RerankConfig, RerankingRetriever, rerank_interpolated, rerank_ranking
from rag.rerank_interpolation import WEIGHT_FILE, interpolate, minmax, read_weight, select_weight

from tests.rag.test_rerank import HashModel, hash_reranker


def test_hand_worked_interpolation():
    # Given rows [5, 2, 9, 7] with first-stage scores 0.9 > 0.5 > 0.5 > 0.1 (a first-stage tie at 2 and 9)
    # and cross-encoder logits 1, 3, -1 for the top 3
    ranking = (np.array([5, 2, 9, 7]), np.array([0.9, 0.5, 0.5, 0.1]))
    ce = np.array([1.0, 3.0, -1.0])
    # When α = 0.25: mm(CE) = [0.5, 1, 0], mm(S1 head) = [1, 0, 0]
    #   s = 0.25·[0.5, 1, 0] + 0.75·[1, 0, 0] = [0.875, 0.25, 0]
    rows, scores = rerank_interpolated(ranking, ce, 0.25)
    # Then 5, 2, 9, and row 7 below the head at 0.1 - 0.1 + 0 - 1 = -1
    assert rows.tolist() == [5, 2, 9, 7]
    assert scores.tolist() == [0.875, 0.25, 0.0, -1.0]
    # When α = 0.75: s = 0.75·[0.5, 1, 0] + 0.25·[1, 0, 0] = [0.625, 0.75, 0]
    rows, scores = rerank_interpolated(ranking, ce, 0.75)
    # Then row 2 moves to the top
    assert rows.tolist() == [2, 5, 9, 7] and scores.tolist() == [0.75, 0.625, 0.0, -1.0]


def test_minmax_of_a_constant_list_is_zero_and_a_constant_first_stage_leaves_the_cross_encoder_order():
    assert minmax(np.array([2.0, 2.0])).tolist() == [0.0, 0.0] and minmax(np.array([])).size == 0
    # α·mm(CE) alone decides when the first stage scores are all equal
    assert interpolate(np.array([0.0, 4.0]), np.array([1.0, 1.0]), 0.5).tolist() == [0.0, 0.5]


rankings = st.integers(1, 30).flatmap(lambda n: st.tuples(
    st.permutations(list(range(100))).map(lambda p: np.array(p[:n])),
    st.lists(st.sampled_from([-2.0, 0.0, 0.3, 0.3, 1.0, 5.0]), min_size=n, max_size=n).map(lambda s: np.sort(s)[::-1]),
    st.integers(0, n),
    st.lists(st.floats(-10, 10, allow_nan=False), min_size=n, max_size=n).map(np.array)))


@settings(max_examples=200, deadline=None)
@given(rankings, st.floats(0, 1))
def test_any_weight_keeps_the_top_n_set_and_the_tail(data, alpha):
    # Given a first-stage ranking (with ties) and cross-encoder scores for its top m
    rows, scores, m, ce = data
    # When the head is reordered at any α
    new_rows, new_scores = rerank_interpolated((rows, scores), ce[:m], alpha)
    # Then the top m is the same set (recall@m unchanged), the tail untouched, scores non-increasing
    assert sorted(new_rows[:m].tolist()) == sorted(rows[:m].tolist())
    assert new_rows[m:].tolist() == rows[m:].tolist()
    assert np.all(np.diff(new_scores) <= 0)


@settings(max_examples=200, deadline=None)
@given(rankings)
def test_weight_zero_is_exactly_the_first_stage_order(data):
    # Given a first-stage ranking whose scores tie, in an order that is not row order
    rows, scores, m, ce = data
    # When α = 0
    new_rows, _ = rerank_interpolated((rows, scores), ce[:m], 0.0)
    # Then the order is the first stage's, ties included
    assert new_rows.tolist() == rows.tolist()


@settings(max_examples=200, deadline=None)
@given(rankings)
def test_weight_one_is_the_cross_encoder_alone(data):
    rows, scores, m, ce = data
    new_rows, new_scores = rerank_interpolated((rows, scores), ce[:m], 1.0)
    plain_rows, plain_scores = rerank_ranking((rows, scores), ce[:m])
    assert new_rows.tolist() == plain_rows.tolist() and new_scores.tolist() == plain_scores.tolist()


@pytest.fixture(scope="module")
def index(sample_index):
    from rag.index import open_index

    idx = open_index(sample_index)
    yield idx
    idx.close()


def test_retriever_at_weight_zero_returns_the_first_stage_without_scoring(index):
    # Given a stand-in cross-encoder at α = 0 over the top 7
    model = HashModel()
    base = index.retriever("hybrid")
    reranked = RerankingRetriever(base, CrossEncoderReranker(model, RerankConfig("hash", depth=7, weight=0.0)))
    # When it ranks
    (rows, scores), = reranked.rank_batch(["why is the sky blue"], 10)
    (base_rows, base_scores), = base.rank_batch(["why is the sky blue"], 10)
    # Then it is the first stage, and the cross-encoder never ran
    assert rows.tolist() == base_rows.tolist() and scores.tolist() == base_scores.tolist()
    assert model.calls == 0


def test_retriever_at_weight_one_equals_the_plain_reranker(index):
    plain = RerankingRetriever(index.retriever("hybrid"), hash_reranker(7, levels=50))
    weighted = RerankingRetriever(index.retriever("hybrid"), hash_reranker(7, levels=50).with_weight(1.0))
    for q in ("why is the sky blue", "vaccines"):
        (a, sa), = plain.rank_batch([q], 10)
        (b, sb), = weighted.rank_batch([q], 10)
        assert a.tolist() == b.tolist() and sa.tolist() == sb.tolist()


def test_select_weight_on_a_hand_worked_dev_split():
    # Given one query whose relevant document d2 the first stage ranks 2nd and the cross-encoder 3rd
    # of 3, and another whose relevant d1 the first stage ranks last and the cross-encoder first
    lists = [(["d1", "d2", "d3"], np.array([3.0, 2.0, 1.0]), np.array([1.0, 0.0, 2.0])),
             (["d1", "d2", "d3"], np.array([1.0, 0.5, 0.0]), np.array([0.0, 0.0, 5.0]))]
    qrels = [{"d2": 1}, {"d3": 1}]
    # When α is chosen on the grid {0, 0.5, 1}
    alpha, curve = select_weight(lists, qrels, grid=(0.0, 0.5, 1.0))
    # Then: α=0 ranks d2 2nd (1/log2 3) and d3 3rd (1/2); α=1 ranks d2 3rd (1/2) and d3 1st (1);
    # α=0.5: q1 [0.5·(0.5)+0.5·1, 0.5·0+0.5·0.5, 0.5·1+0] = [0.75, 0.25, 0.5] → d2 3rd (1/2);
    #        q2 [0+0.5, 0+0.25, 0.5+0] → d1, then d3 (tie 0.5, first-stage order) 2nd: 1/log2 3
    inv = 1 / np.log2(3)
    assert curve[0.0] == pytest.approx((inv + 0.5) / 2) and curve[1.0] == pytest.approx((0.5 + 1.0) / 2)
    assert curve[0.5] == pytest.approx((0.5 + inv) / 2)
    assert alpha == 1.0
    # and a tie (α = 0 and 0.5 score the same) goes to the smaller weight
    assert select_weight(lists, qrels, grid=(0.5, 0.0))[0] == 0.0


def test_the_saved_weight_is_loaded_and_the_option_overrides_it(tmp_path, tiny_cross_encoder):
    # Given a cross-encoder folder without rerank.json, and a copy with α = 0.3
    plain = CrossEncoderReranker.load(RerankConfig(str(tiny_cross_encoder)), device="cpu")
    model = tmp_path / "ce"
    shutil.copytree(tiny_cross_encoder, model)
    (model / WEIGHT_FILE).write_text(json.dumps({"alpha": 0.3}))
    # Then the first runs the cross-encoder alone, the copy at 0.3, and an explicit weight wins
    assert plain.alpha == 1.0 and read_weight(tiny_cross_encoder) is None
    assert CrossEncoderReranker.load(RerankConfig(str(model)), device="cpu").alpha == 0.3
    assert CrossEncoderReranker.load(RerankConfig(str(model), weight=0.8), device="cpu").alpha == 0.8
    assert plain.with_weight(0.0).alpha == 0.0 and plain.with_weight(None) is plain


def test_bad_weights_fail_with_one_line(capsys, tmp_path, sample_index, tiny_cross_encoder):
    search = ["search", "--index", str(sample_index), "--device", "cpu", "why is the sky blue"]
    # When --rerank-weight is out of [0, 1]
    for bad in ("1.5", "-0.1"):
        assert main([*search, "--rerank", str(tiny_cross_encoder), "--rerank-weight", bad]) == 2
        err = capsys.readouterr().err
        # Then the usage error (as for every out-of-range option) names the option in its one Error line
        errors = [line for line in err.splitlines() if line.startswith("Error")]
        assert len(errors) == 1 and "Invalid value for '--rerank-weight'" in errors[0]
    # When it comes without --rerank: a usage error too (exit 2), as --rerank-depth without --rerank
    assert main([*search, "--rerank-weight", "0.5"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "'--rerank-weight'" in errors[0] and "give --rerank MODEL too" in errors[0]
    # When a model's rerank.json is broken or out of range
    model = tmp_path / "ce"
    shutil.copytree(tiny_cross_encoder, model)
    for content in ("{not json", json.dumps({"alpha": 3})):
        (model / WEIGHT_FILE).write_text(content)
        assert main([*search, "--rerank", str(model)]) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and str(model / WEIGHT_FILE) in err
    # And RerankConfig refuses it too
    with pytest.raises(Exception, match=r"in \[0, 1\]"):
        RerankConfig("x", weight=1.01)


def test_cli_weight_zero_gives_the_first_stage_hits_and_eval_records_the_weight(capsys, sample_index, tiny_cross_encoder):
    def search(*extra):
        assert main(["search", "--index", str(sample_index), "-k", "8", "--json", "--device", "cpu", *extra,
                     "why is the sky blue"]) == 0
        return json.loads(capsys.readouterr().out)["hits"]

    plain = search()
    zero = search("--rerank", str(tiny_cross_encoder), "--rerank-depth", "5", "--rerank-weight", "0")
    assert [h["id"] for h in zero] == [h["id"] for h in plain]
    assert main(["eval", "retrieval", "--index", str(sample_index), "--queries", "tests/fixtures/queries.jsonl",
                 "--qrels", "tests/fixtures/qrels.tsv", "--rerank", str(tiny_cross_encoder), "--rerank-weight", "0.4",
                 "--device", "cpu", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["rerank_weight"] == 0.4 and metrics["recall@100"] == 1.0
