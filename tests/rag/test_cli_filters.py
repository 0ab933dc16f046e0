"""``--filter`` on ``rag search``, ``rag ask`` and ``rag eval retrieval``: results and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures"
DOCS = [
    {"_id": "s1", "title": "Blue sky", "text": "the sky is blue because air scatters blue light", "year": 2001, "source": "wiki"},
    {"_id": "s2", "title": "Sky colour", "text": "blue sky blue light scattering by air molecules", "year": 2012, "source": "paper"},
    {"_id": "s3", "title": "Sunsets", "text": "red sky at sunset light travels through more air", "year": 2018, "source": "paper"},
    {"_id": "o1", "title": "Oceans", "text": "the ocean is blue as water absorbs red light", "year": 2020, "source": "wiki"},
]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def meta_index(tmp_path_factory) -> Path:
    """A BM25-only index of four documents whose year and source are top-level JSONL fields."""
    work = tmp_path_factory.mktemp("meta")
    (work / "c.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    assert main(["index", str(work / "c.jsonl"), "--out", str(work / "idx"), "--no-dense"]) == 0
    return work / "idx"


def test_search_filter_keeps_only_matching_documents(capsys, meta_index):
    # Given: "blue sky" ranks s2, s1, o1, s3 unfiltered
    rc, out, _ = run_cli(capsys, "search", "--index", meta_index, "--mode", "bm25", "--json", "blue sky light")
    assert rc == 0
    everything = [h["id"] for h in json.loads(out)["hits"]]
    # When: the same search with a range and a membership condition
    f = '{"year": {"$gte": 2010}, "source": {"$in": ["paper"]}}'
    rc, out, _ = run_cli(capsys, "search", "--index", meta_index, "--mode", "bm25", "--json", "-k", "2", "--filter", f, "blue sky light")
    # Then: the first two of the unfiltered ranking that satisfy it, metadata from the JSONL fields
    hits = json.loads(out)["hits"]
    assert rc == 0
    assert [h["id"] for h in hits] == [d for d in everything if d in ("s2", "s3")][:2]
    assert hits[0]["metadata"] == {"year": 2012, "source": "paper"}


@pytest.mark.parametrize(("f", "message"), [
    ('{"yr": 2010}', "filter: unknown metadata field 'yr' (fields of this index: source, year)"),
    ('{"year": "2010"}', "filter: field 'year' holds numbers, not strings"),
    ('{"year": {"$gte": 2010', "filter: not JSON"),
    ('{"year": {"$between": [1, 2]}}', "filter.year: unknown operator '$between'"),
])
def test_search_bad_filter_is_one_line_and_exit_1(capsys, meta_index, f, message):
    # When: a filter with an unknown field, a wrong type or bad syntax
    rc, out, err = run_cli(capsys, "search", "--index", meta_index, "--mode", "bm25", "--filter", f, "sky")
    # Then: exit 1, nothing on stdout, one line naming the field
    assert rc == 1 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_batch_search_and_eval_retrieval_take_the_filter(capsys, meta_index, tmp_path):
    # Given: two judged queries whose relevant documents are s1 (2001) and o1 (2020)
    (tmp_path / "q.jsonl").write_text('{"_id": "q1", "text": "blue sky"}\n{"_id": "q2", "text": "ocean water"}\n')
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\ts1\t1\nq2\to1\t1\n")
    args = ["eval", "retrieval", "--index", meta_index, "--queries", tmp_path / "q.jsonl", "--qrels", tmp_path / "qrels.tsv",
            "--mode", "bm25", "--json"]
    rc, out, _ = run_cli(capsys, *args)
    assert rc == 0 and json.loads(out)["recall@100"] == 1.0
    # When: evaluated with a filter that excludes s1 (year 2001)
    rc, out, _ = run_cli(capsys, *args, "--filter", '{"year": {"$gt": 2005}}')
    # Then: q1 can no longer find its document, q2 still can
    body = json.loads(out)
    assert rc == 0 and body["recall@100"] == 0.5 and body["filter"] == {"year": {"$gt": 2005}}
    # And: the batch search run holds only documents that satisfy the filter
    rc, _, _ = run_cli(capsys, "search", "--index", meta_index, "--mode", "bm25", "--queries", tmp_path / "q.jsonl",
                       "--run", tmp_path / "run.trec", "--filter", '{"source": "wiki"}')
    docs = {line.split()[2] for line in (tmp_path / "run.trec").read_text().splitlines()}
    assert rc == 0 and docs <= {"s1", "o1"} and docs


def test_ask_cites_only_filtered_passages(capsys, sample_index):
    # Given: the sample index (every document has source "rag-toolkit sample")
    # When: an extractive answer with a filter every document satisfies, and one none does
    rc, out, _ = run_cli(capsys, "ask", "--index", sample_index, "--json", "--filter", '{"source": "rag-toolkit sample"}',
                         "why is the sky blue")
    assert rc == 0 and json.loads(out)["citations"]
    rc, out, _ = run_cli(capsys, "ask", "--index", sample_index, "--json", "--filter", '{"source": "elsewhere"}',
                         "why is the sky blue")
    # Then: the second finds no passage, so nothing is cited
    answer = json.loads(out)
    assert rc == 0 and answer["kind"] == "no_answer" and answer["citations"] == []
    # And: an unknown field stops before any model loads
    rc, out, err = run_cli(capsys, "ask", "--index", sample_index, "--filter", '{"lang": "en"}', "why is the sky blue")
    assert rc == 1 and "unknown metadata field 'lang'" in err
