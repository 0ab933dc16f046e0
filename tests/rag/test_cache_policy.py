"""The bounded KV cache: the most retrieved passages within a disk budget, and its hit rate."""

from __future__ import annotations

import pytest

from rag.cli import main
from rag.generation.cache_policy import HitRate, hit_rate, retrieval_counts, select_within_budget


def test_greedy_takes_the_most_retrieved_first_breaks_ties_by_row_and_skips_what_no_longer_fits():
    # Given counts a:3, b:2, c:2, d:1, e:0 (rows a..e = 0..4) and sizes 40, 70, 30, 20, 1 bytes
    counts = {"a": 3, "b": 2, "c": 2, "d": 1, "e": 0}
    sizes = {"a": 40, "b": 70, "c": 30, "d": 20, "e": 1}
    order = {pid: i for i, pid in enumerate("abcde")}
    # When the budget is 100 bytes
    sel = select_within_budget(counts, sizes, 100, order)
    # Then a (40), b would make 110 > 100: skipped; c (tie with b, later row) makes 70; d makes 90;
    # e is never retrieved, so never cached although 1 byte would fit
    assert sel.ids == ("a", "c", "d") and sel.bytes == 90 and sel.candidates == 4


def test_hit_rate_counts_passages_and_whole_queries():
    # Given a cache {a, b} and a run of three queries (top-2, top-2, top-1)
    run = {"q1": {"a": 1.0, "b": 0.5}, "q2": {"a": 1.0, "c": 0.5}, "q3": {"d": 1.0}}
    # When / Then 3 of 5 retrieved passages are cached; only q1 needs no passage prefill
    assert hit_rate({"a", "b"}, run) == HitRate(passages=3 / 5, queries=1 / 3)
    assert retrieval_counts(run) == {"a": 2, "b": 1, "c": 1, "d": 1}


def test_cache_build_with_a_budget_stores_only_the_logged_favourites(tmp_path):
    from indexes.kv_store import KVStore
    from rag.generation.passage_cache import CacheConfig
    from rag.generation.prompt import PromptBuilder
    from tests.rag.kv_tiny import CORPUS, build_tiny_index, save_tiny_generator, tiny_generator

    # Given the tiny index and a log that asks twice about the sky and once about disks (BM25, top-1)
    index = build_tiny_index(tmp_path / "index")
    model = save_tiny_generator(tmp_path / "gen")
    log = tmp_path / "log.tsv"
    log.write_text("q1\twhy is the sky blue\nq2\tblue sky scattering\nq3\trotating magnetic platters hard disk\n",
                   encoding="utf-8")
    # and each passage's stored size: block tokens x (2 K/V x 2 layers x 2 heads x 16 dims x 2 bytes = 256 bytes)
    builder = PromptBuilder(tiny_generator(), CacheConfig().template)
    size = {d["_id"]: 256 * len(builder.block_ids(d["title"], d["text"])) for d in CORPUS}
    # When the budget fits the sky passage and the disk passage but one byte less than both
    build = ["cache", "build", "--index", str(index), "--generator", str(model), "--device", "cpu",
             "--queries", str(log), "--mode", "bm25", "-k", "1"]
    assert main([*build, "--budget-bytes", str(size["sky"] + size["disk"] - 1)]) == 0
    store = KVStore(next((index / "kv").iterdir()))
    # Then only the most retrieved passage is stored
    assert set(store.ids()) == {"sky"}
    # When the budget fits both, the build resumes and adds the disk passage, nothing never retrieved
    assert main([*build, "--budget-bytes", str(size["sky"] + size["disk"])]) == 0
    assert set(KVStore(next((index / "kv").iterdir())).ids()) == {"sky", "disk"}


@pytest.mark.parametrize("args", [["--budget-bytes", "100"], ["--queries", "log.tsv"]])
def test_budget_and_query_log_go_together(tmp_path, args, capsys):
    # Given / When one of the two options alone
    rc = main(["cache", "build", "--index", str(tmp_path), "--generator", "x", *args])
    # Then one line names both, before any model is loaded
    assert rc == 1 and "--budget-bytes and --queries FILE go together" in capsys.readouterr().err
