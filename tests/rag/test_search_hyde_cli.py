"""`rag search --hyde` end to end: a tiny random Llama writes the hypothetical documents."""

from __future__ import annotations

import json

import numpy as np

from kv_tiny import save_tiny_generator
from rag.cli import main


def test_search_hyde_runs_and_scores_are_cosines_with_the_hyde_vector(capsys, tmp_path, sample_index):
    # Given a tiny random generator on disk
    model_dir = save_tiny_generator(tmp_path / "tiny-llama")
    # When
    rc = main(["search", "--index", str(sample_index), "--hyde", "--generator", str(model_dir), "--hyde-n", "2",
               "--seed", "0", "-k", "3", "--json", "why is the sky blue"])
    out = capsys.readouterr()
    # Then: three hits, each score a cosine (|s| <= 1), best first
    assert rc == 0, out.err
    hits = json.loads(out.out)["hits"]
    scores = [h["score"] for h in hits]
    assert len(hits) == 3 and scores == sorted(scores, reverse=True)
    assert np.all(np.abs(scores) <= 1.0 + 1e-6)


def test_search_hyde_without_generator_is_a_clear_error(capsys, sample_index):
    rc = main(["search", "--index", str(sample_index), "--hyde", "why"])
    assert rc == 1 and "--hyde needs --generator" in capsys.readouterr().err
