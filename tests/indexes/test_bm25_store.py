"""BM25 statistics on disk: updates equal a rebuild (scores through rag's scorer), disk round trip."""

from __future__ import annotations

import numpy as np

from indexes.bm25_store import BM25Data
from indexes.manifest import BM25Spec
from rag.bm25 import BM25Scorer
from tests.rag.test_bm25 import random_corpus


def test_append_and_drop_equal_a_full_rebuild():
    # Given a corpus built in two parts, and one with passages deleted
    corpus = random_corpus(3, n_docs=80)
    whole = BM25Data.from_token_lists(corpus)
    grown = BM25Data.from_token_lists(corpus[:50]).append(BM25Data.from_token_lists(corpus[50:]))
    dropped = whole.drop([5, 17, 60])
    rebuilt = BM25Data.from_token_lists([d for j, d in enumerate(corpus) if j not in (5, 17, 60)])
    spec = BM25Spec(variant="okapi")
    for query in (["w0", "w5"], ["w2"], ["w30", "w1", "w1"]):
        # When / Then: identical scores (corpus statistics are derived, never stored)
        a, b = BM25Scorer(whole, spec), BM25Scorer(grown, spec)
        np.testing.assert_array_equal(a.scores(a.lookup(query)), b.scores(b.lookup(query)))
        c, d = BM25Scorer(dropped, spec), BM25Scorer(rebuilt, spec)
        np.testing.assert_array_equal(c.scores(c.lookup(query)), d.scores(d.lookup(query)))


def test_round_trip_through_disk(tmp_path):
    data = BM25Data.from_token_lists(random_corpus(4))
    data.write(tmp_path)
    back = BM25Data.read(tmp_path)
    assert back.vocab == data.vocab
    assert (back.tf != data.tf).nnz == 0
    np.testing.assert_array_equal(back.doc_lengths, data.doc_lengths)
