"""The `rag index / search / eval retrieval` contract, end to end on the fixture corpus."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from rag.cli import main
from pathlib import Path

FIXTURES = Path(__file__).parents[1] / "fixtures"


def run_cli(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_search_json_has_the_hit_fields(capsys, sample_index, mode):
    # When
    rc, out, _ = run_cli(capsys, "search", "--index", sample_index, "--mode", mode, "-k", "3", "--json", "why is the sky blue")
    # Then
    assert rc == 0
    hits = json.loads(out)["hits"]
    assert len(hits) == 3 and hits[0]["id"] == "sky1"
    assert set(hits[0]) == {"id", "doc_id", "score", "title", "text", "metadata"}
    assert hits[0]["metadata"] == {"source": "rag-toolkit sample"}
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_eval_retrieval_json(capsys, sample_index):
    rc, out, _ = run_cli(capsys, "eval", "retrieval", "--index", sample_index, "--queries", FIXTURES / "queries.jsonl",
                         "--qrels", FIXTURES / "qrels.tsv", "--mode", "hybrid", "--json")
    assert rc == 0
    metrics = json.loads(out)
    assert {"ndcg@10", "recall@100", "mrr@10", "map@100"} <= set(metrics)
    assert metrics["recall@100"] == 1.0 and metrics["ndcg@10"] > 0.8  # 12 easy queries, 20 documents


def test_batch_search_writes_a_trec_run(capsys, sample_index, tmp_path):
    run = tmp_path / "out.trec"
    rc, _, _ = run_cli(capsys, "search", "--index", sample_index, "--mode", "bm25", "-k", "5",
                       "--queries", FIXTURES / "queries.jsonl", "--run", run)
    lines = run.read_text().splitlines()
    assert rc == 0 and lines[0].split()[:4] == ["q1", "Q0", "vax1", "1"]
    assert len({line.split()[0] for line in lines}) == 12


def test_index_twice_replaces_atomically(capsys, tmp_path, encoder):
    out = tmp_path / "idx"
    for _ in range(2):
        rc, stdout, _ = run_cli(capsys, "index", FIXTURES / "corpus.jsonl", "--out", out, "--no-dense")
        assert rc == 0 and "indexed 20 documents" in stdout  # the summary is the result: stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [".idx.lock", "idx"]


@pytest.mark.parametrize(
    "args, message",
    [(["index", "missing.jsonl", "--out", "{tmp}/x"], "corpus not found"),
     (["index", "{bad}", "--out", "{tmp}/x", "--no-dense"], "bad.jsonl:2: malformed JSON"),
     (["index", "{empty}", "--out", "{tmp}/x", "--no-dense"], "empty corpus"),
     (["index", "{bad}", "--out", "{tmp}", "--no-dense"], "not an index; refusing to overwrite"),
     (["search", "--index", "{tmp}/nope", "hello"], "index directory not found"),
     (["search", "--index", "{index}", "   "], "empty query"),
     (["eval", "retrieval", "--index", "{index}", "--queries", "{fx}/queries.jsonl", "--qrels", "{tmp}/none.tsv"], "qrels file not found")],
)
def test_bad_input_is_one_line_and_non_zero(capsys, tmp_path, sample_index, args, message):
    # Given
    (tmp_path / "bad.jsonl").write_text('{"_id": "1", "text": "ok"}\n{oops\n')
    (tmp_path / "empty.jsonl").write_text("\n")
    fill = dict(tmp=tmp_path, bad=tmp_path / "bad.jsonl", empty=tmp_path / "empty.jsonl", index=sample_index, fx=FIXTURES)
    # When
    rc, _, err = run_cli(capsys, *[a.format(**fill) for a in args])
    # Then
    assert rc == 1
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert (tmp_path / "bad.jsonl").exists()


def test_skip_bad_lines(capsys, tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"_id": "1", "text": "ok fine"}\n{oops\n')
    rc, stdout, _ = run_cli(capsys, "index", tmp_path / "bad.jsonl", "--out", tmp_path / "i", "--no-dense", "--skip-bad-lines")
    assert rc == 0 and "1 bad record skipped" in stdout  # the summary is the result: stdout


def test_console_script_exit_code(tmp_path):
    # The installed entry point really exits non-zero (not just returns a code in-process).
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "search", "--index", str(tmp_path / "nope"), "q"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("rag: error: index directory not found")


# click words the unknown option "No such option: --bogus" (typer's bundled click) or "No such
# option '--bogus'." (click >= 8.2 with an older typer); either is the one-line usage error.
@pytest.mark.parametrize("args, message", [(["search", "-k", "0", "q"], r"Invalid value for '-k'"),
                                           (["search", "--bogus", "q"], r"No such option:? '?--bogus")])
def test_usage_errors_are_one_line_not_tracebacks(capsys, args, message):
    rc, _, err = run_cli(capsys, *args)
    assert rc == 2 and re.search(message, err) and "Traceback" not in err


def test_eval_retrieval_report(capsys, sample_index, tmp_path):
    # When
    rc, _, _ = run_cli(capsys, "eval", "retrieval", "--index", sample_index, "--queries", FIXTURES / "queries.jsonl",
                       "--qrels", FIXTURES / "qrels.tsv", "--mode", "bm25", "--report", tmp_path / "r", "--json")
    # Then: the JSON mean equals the per-query average, inside its interval, and the HTML is self-contained
    assert rc == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    ndcg = report["metrics"]["ndcg@10"]
    per_query = [v["ndcg@10"] for v in report["per_query"].values()]
    assert ndcg["mean"] == pytest.approx(sum(per_query) / 12) and ndcg["lower"] <= ndcg["mean"] <= ndcg["upper"]
    assert report["worst"][0]["ndcg@10"] == min(per_query)
    html = (tmp_path / "r" / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html
    assert (tmp_path / "r" / "report.md").read_text().startswith("# Retrieval evaluation")


def test_eval_retrieval_counts_one_judged_query_in_the_singular(capsys, tmp_path):
    # Given a BM25 index of the fixture corpus and qrels judging one query
    assert main(["index", str(FIXTURES / "corpus.jsonl"), "--out", str(tmp_path / "idx"), "--no-dense"]) == 0
    qrels = tmp_path / "one.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq2\tsky1\t1\n", encoding="utf-8")
    capsys.readouterr()
    # When it is evaluated
    rc, out, _ = run_cli(capsys, "eval", "retrieval", "--index", tmp_path / "idx", "--queries", FIXTURES / "queries.jsonl",
                         "--qrels", qrels, "--mode", "bm25")
    # Then the summary says "1 judged query"
    assert rc == 0 and out.splitlines()[0] == "bm25 on 1 judged query"


def test_an_unknown_search_mode_is_a_usage_error_listing_the_modes(capsys, sample_index):
    # When / Then: --mode is a choice (tests/rag/test_cli_choices.py): click's usage error, exit 2
    rc, _, err = run_cli(capsys, "search", "--index", sample_index, "--mode", "sparse", "x")
    assert rc == 2 and "'sparse' is not one of 'bm25', 'dense', 'hybrid'" in " ".join(err.split()) and "Traceback" not in err
