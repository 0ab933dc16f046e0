"""`rag search --hyde` end to end: a tiny random Llama writes the hypothetical documents."""

from __future__ import annotations

import json

import numpy as np

from rag.cli import main
from tests.rag.kv_tiny import save_tiny_generator


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


def test_index_with_kv_cache_records_the_store_in_the_manifest(capsys, tmp_path):
    # Given a tiny random generator on disk and the fixture corpus
    from pathlib import Path

    from indexes.manifest import Manifest

    model_dir = save_tiny_generator(tmp_path / "tiny-llama")
    corpus = Path(__file__).parents[1] / "fixtures" / "corpus.jsonl"
    # When
    rc = main(["index", str(corpus), "--out", str(tmp_path / "idx"), "--no-dense", "--kv-cache", "--generator", str(model_dir)])
    out = capsys.readouterr()
    # Then every passage has stored states, recorded in the manifest
    assert rc == 0, out.err
    (cache,) = Manifest.read(tmp_path / "idx").caches
    assert cache.kind == "kv" and cache.passages == 20 and "cached KV states of 20 passages" in out.out  # result: stdout


def test_kv_cache_needs_a_generator(capsys, tmp_path):
    rc = main(["index", "x.jsonl", "--out", str(tmp_path / "i"), "--kv-cache"])
    assert rc == 1 and "--kv-cache and --generator MODEL go together" in capsys.readouterr().err
