"""query2doc (Wang et al., EMNLP 2023): the rewritten query texts by hand, each retriever searched with
its own rewrite, batched greedy pseudo-documents equal one-by-one completions, and the CLI path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from indexes.errors import InputError
from rag.generation.batch import complete_batch
from rag.generation.sampling import SamplingConfig
from rag.query2doc import Query2docConfig, dense_query, pseudo_documents, query2doc_retriever, sparse_query
from tests.rag.kv_tiny import save_tiny_generator, tiny_generator, tiny_index

PSEUDO = {"why is it blue": "Rayleigh scattering: air scatters short wavelengths, so the sky looks blue."}


def test_rewrites_by_hand():
    # Given / When / Then: BM25 gets the query n times then the pseudo-document; dense gets q [SEP] d'
    assert sparse_query("q w", "d e", repeats=3) == "q w q w q w d e"
    assert dense_query("q w", "d e", sep=" [SEP] ") == "q w [SEP] d e"


def test_bm25_searches_the_repeated_query_and_pseudo_document():
    # Given: the tiny index and a pseudo-document about Rayleigh scattering
    index = tiny_index()
    # When: BM25 searches with query2doc
    hits = query2doc_retriever(index, "bm25", PSEUDO).search("why is it blue", k=4)
    # Then: the hits are exactly BM25's for the hand-built text "q q q q q d'", and the sky passage leads
    ref = index.retriever("bm25").search(sparse_query("why is it blue", PSEUDO["why is it blue"], 5), k=4)
    assert [(h.id, h.score) for h in hits] == [(h.id, h.score) for h in ref]
    assert hits[0].doc_id == "sky"


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_a_metadata_filter_reaches_the_rewritten_search(mode):
    # Given the tiny index, query2doc's unfiltered ranking, and a filter that drops its best passage
    from indexes.filters import Condition, RowFilter

    index = tiny_index()
    q = "why is it blue"
    unfiltered = query2doc_retriever(index, mode, PSEUDO).search(q, k=len(index.store))
    ids = [p.id for p in index.store.get(list(range(len(index.store))))]
    mask = np.array([i != unfiltered[0].id for i in ids])
    # When query2doc searches with the filter
    hits = query2doc_retriever(index, mode, PSEUDO).search(q, k=3, where=RowFilter(Condition("x", "eq", 1), mask))
    # Then the dropped passage is gone: BM25 gives the full ranking's next ones (none here: only the
    # sky passage holds a query term), hybrid still ranks the others through its dense side
    assert unfiltered[0].id not in {h.id for h in hits}
    if mode == "bm25":
        assert [h.id for h in hits] == [h.id for h in unfiltered[1:4]]
    else:
        assert len(hits) == 3


def test_dense_side_reads_query_sep_document():
    # Given: the tiny index (MiniLM, whose separator is [SEP])
    index = tiny_index()
    # When: dense search with query2doc
    hits = query2doc_retriever(index, "dense", PSEUDO).search("why is it blue", k=2)
    # Then: the scores are those of the text "q [SEP] d'"
    ref = index.retriever("dense").search("why is it blue [SEP] " + PSEUDO["why is it blue"], k=2)
    assert [h.id for h in hits] == [h.id for h in ref]
    np.testing.assert_allclose([h.score for h in hits], [h.score for h in ref], atol=1e-6)


def test_hybrid_gives_each_side_its_own_rewrite():
    # Given: the hybrid query2doc retriever
    index = tiny_index()
    q, d = "why is it blue", PSEUDO["why is it blue"]
    hybrid = query2doc_retriever(index, "hybrid", PSEUDO)
    # When: its candidates are scored
    rows, sparse, dense = hybrid.candidates([q], 4)[0]
    # Then: BM25 scored the repeated text and dense the [SEP] text, exactly
    np.testing.assert_allclose(sparse, index.bm25.score_rows(sparse_query(q, d), rows), atol=1e-9)
    v = index.dense.encoder.encode_queries([dense_query(q, d, " [SEP] ")])[0]
    np.testing.assert_allclose(dense, index.dense.score_rows(v, rows), atol=1e-6)


def test_missing_pseudo_document_and_bad_repeats_are_user_errors():
    with pytest.raises(InputError, match="no pseudo-document"):
        query2doc_retriever(tiny_index(), "bm25", PSEUDO).search("another query", k=1)
    with pytest.raises(InputError, match="repeats"):
        Query2docConfig(repeats=0)


def test_batched_greedy_completions_equal_one_by_one():
    # Given: the tiny random Llama and prompts of different lengths (left padding in the batch)
    gen = tiny_generator("llama", 0)
    users = ["why", "write a passage that answers the query about honey bees and their dance", "blue sky"]
    config = SamplingConfig(max_new_tokens=6)
    # When: they are completed in one batch and one at a time
    batch = complete_batch(gen, users, config)
    alone = [gen.complete(u, config) for u in users]
    # Then: the same texts
    assert batch == alone


def test_pseudo_documents_are_greedy_and_deduplicated():
    # Given: three queries, one repeated, in batches of two
    gen = tiny_generator("llama", 0)
    config = Query2docConfig(max_new_tokens=5, batch_size=2)
    # When
    docs = pseudo_documents(["a", "b", "a"], gen, config)
    # Then: one document per distinct query, each the greedy completion of the prompt
    assert sorted(docs) == ["a", "b"]
    for q, d in docs.items():
        assert d == gen.complete(config.prompt.format(question=q), SamplingConfig(max_new_tokens=5))


def test_search_expand_query2doc_cli(capsys, tmp_path, sample_index):
    from rag.cli import main

    # Given: a tiny random generator on disk
    model_dir = save_tiny_generator(tmp_path / "tiny-llama")
    # When: a BM25 search expands the query with its pseudo-document
    rc = main(["search", "--index", str(sample_index), "--mode", "bm25", "--expand", "query2doc", "-g", str(model_dir),
               "-k", "3", "--json", "why is the sky blue"])
    out = capsys.readouterr()
    # Then: three hits, best first; and without a generator the option says what it needs
    assert rc == 0, out.err
    scores = [h["score"] for h in json.loads(out.out)["hits"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert main(["search", "--index", str(sample_index), "--expand", "query2doc", "why"]) == 1
    assert "--expand query2doc needs --generator" in capsys.readouterr().err
