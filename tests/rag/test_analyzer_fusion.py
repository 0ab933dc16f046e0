"""Analyzer steps and fusion functions on hand-worked inputs."""

from __future__ import annotations

import numpy as np
import pytest

from indexes.manifest import AnalyzerSpec
from rag.analyzer import Analyzer
from rag.fusion import convex, min_max, ranks_of, rrf, z_score


def test_default_chain_normalises_lowercases_drops_stopwords_and_stems():
    assert Analyzer(AnalyzerSpec())("The Running Dogs are in the ＰＡＲＫ") == ["run", "dog", "park"]


def test_each_step_can_be_switched_off():
    spec = AnalyzerSpec(normalize="none", lowercase=False, stopwords="none", stemmer="none")
    assert Analyzer(spec)("The Running Dogs") == ["The", "Running", "Dogs"]


def test_single_characters_are_not_terms():
    assert Analyzer(AnalyzerSpec())("a b vitamin c d3") == ["vitamin", "d3"]


def test_rrf_by_hand():
    # Given doc A ranked 1st and 3rd, doc B 2nd and absent
    a, b = rrf([np.array([1.0, 2.0]), np.array([3.0, np.inf])], k=60)
    # Then 1/61 + 1/63 and 1/62 + 0
    assert a == pytest.approx(1 / 61 + 1 / 63)
    assert b == pytest.approx(1 / 62)


def test_convex_combination_by_hand():
    sparse, dense = np.array([10.0, 5.0, 0.0]), np.array([0.2, 0.4, 0.3])
    # min-max: sparse → [1, .5, 0], dense → [0, 1, .5]
    np.testing.assert_allclose(convex(sparse, dense, 0.25, "minmax"), [0.75, 0.625, 0.125])


def test_normalisers_handle_constant_lists():
    assert min_max(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]
    assert z_score(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]


def test_ranks_break_ties_by_position():
    assert ranks_of(np.array([0.5, 0.9, 0.5])).tolist() == [2.0, 1.0, 3.0]
