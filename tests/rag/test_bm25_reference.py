"""BM25 variants checked independently: robertson and atire by hand, lucene/robertson/atire against bm25s.

bm25s (Lù, 2024) implements the variants of Kamphuis et al. (ECIR 2020) separately from this
toolkit; both score the same analyzed tokens, so the scores of every passage must agree. One
documented difference: bm25s floors a negative Robertson idf (``df > N/2``) at 0, while
``robertson`` here keeps the formula of Kamphuis et al.'s table (the hand-worked test covers a
negative idf); the parity tests state that no query term has ``df > N/2``.
"""

from __future__ import annotations

import json
from pathlib import Path

import bm25s
import numpy as np
import pytest

from indexes.bm25_store import BM25Data
from indexes.manifest import AnalyzerSpec, BM25Spec
from rag.analyzer import Analyzer
from rag.bm25 import BM25Scorer

DOCS = [["cat", "sat", "mat"], ["dog", "sat", "log", "dog"], ["cat", "dog"]]
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def test_robertson_three_documents_by_hand():
    """k1=1.2, b=0.75; N=3, avgdl=3; lengths 3, 4, 2 → norm = .25+.75·dl/3 = 1, 1.25, 0.75.

    "mat": df=1 → idf = ln((3-1+.5)/(1+.5)) = ln(5/3) = 0.510826;
           doc 0: tf=1, norm=1 → tfc = 1/(1+1.2) = 0.454545 → 0.232194.
    "cat": df=2 → idf = ln((3-2+.5)/(2+.5)) = ln(0.6) = -0.510826 (negative: df > N/2);
           doc 0: tfc = 0.454545 → -0.232194; doc 2: tf=1, norm=.75 → tfc = 1/(1+.9) = 0.526316 → -0.268856.
    """
    # Given
    scorer = BM25Scorer(BM25Data.from_token_lists(DOCS), BM25Spec(variant="robertson", k1=1.2, b=0.75))
    # When
    mat = scorer.scores(scorer.lookup(["mat"]))
    cat = scorer.scores(scorer.lookup(["cat"]))
    # Then
    assert mat.tolist() == pytest.approx([0.232194, 0.0, 0.0], abs=1e-6)
    assert cat.tolist() == pytest.approx([-0.232194, 0.0, -0.268856], abs=1e-6)


def test_atire_three_documents_by_hand():
    """k1=1.2, b=0.75; "dog": df=2 → idf = ln(N/df) = ln(1.5) = 0.405465.

    doc 1: tf=2, norm=1.25 → tfc = 2·2.2/(2+1.5) = 1.257143 → 0.509727.
    doc 2: tf=1, norm=0.75 → tfc = 1·2.2/(1+0.9) = 1.157895 → 0.469486.
    """
    # Given
    scorer = BM25Scorer(BM25Data.from_token_lists(DOCS), BM25Spec(variant="atire", k1=1.2, b=0.75))
    # When
    scores = scorer.scores(scorer.lookup(["dog"]))
    # Then
    assert scores.tolist() == pytest.approx([0.0, 0.509727, 0.469486], abs=1e-6)


def analyzed_corpus(corpus: Path, queries: Path, n_queries: int | None = None) -> tuple[list[list[str]], list[list[str]]]:
    """Passages (title + text) and queries of a BEIR folder, through the default analyzer."""
    analyzer = Analyzer(AnalyzerSpec())
    with corpus.open(encoding="utf-8") as f:
        docs = [analyzer(f"{r['title']} {r['text']}") for r in map(json.loads, f)]
    with queries.open(encoding="utf-8") as f:
        qs = [analyzer(r["text"]) for r in map(json.loads, f)]
    return docs, qs[:n_queries]


def assert_parity_with_bm25s(docs: list[list[str]], queries: list[list[str]], variant: str, k1: float, b: float) -> int:
    """Compare every passage's score for every query; returns how many queries were compared."""
    ours = BM25Scorer(BM25Data.from_token_lists(docs), BM25Spec(variant=variant, k1=k1, b=b))
    reference = bm25s.BM25(k1=k1, b=b, method=variant)
    reference.index(docs, show_progress=False)
    df: dict[str, int] = {}
    for d in docs:
        for t in set(d):
            df[t] = df.get(t, 0) + 1
    compared = 0
    for query in queries:
        terms = [t for t in query if t in df]  # bm25s scores only indexed terms
        if not terms:
            continue
        assert max(df[t] for t in terms) <= len(docs) / 2  # see the module docstring (robertson)
        np.testing.assert_allclose(ours.scores(ours.lookup(terms)), reference.get_scores(terms), rtol=1e-5, atol=1e-5)
        compared += 1
    return compared


@pytest.mark.parametrize("variant", ["lucene", "robertson", "atire"])
def test_variants_equal_bm25s_on_the_fixture_corpus(variant):
    # Given the 20-passage fixture corpus and its queries, analyzed once for both implementations
    docs, queries = analyzed_corpus(FIXTURES / "corpus.jsonl", FIXTURES / "queries.jsonl")
    # When / Then: Anserini's lucene defaults and Robertson's classic parameters
    for k1, b in ((0.9, 0.4), (1.2, 0.75)):
        assert assert_parity_with_bm25s(docs, queries, variant, k1, b) >= 5


def _scifact() -> Path | None:
    for base in (ROOT.parent / "shared", ROOT.parents[1] / "shared"):
        if (base / "data" / "scifact" / "corpus.jsonl").is_file():
            return base / "data" / "scifact"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["lucene", "robertson", "atire"])
def test_variants_equal_bm25s_on_scifact(variant):
    # Given SciFact's 5,183 abstracts and its first 100 queries (skipped where the data is absent)
    data = _scifact()
    if data is None:
        pytest.skip("SciFact not found beside the checkout (../shared/data/scifact)")
    docs, queries = analyzed_corpus(data / "corpus.jsonl", data / "queries.jsonl", n_queries=100)
    # When / Then
    assert assert_parity_with_bm25s(docs, queries, variant, k1=0.9, b=0.4) >= 90
