"""Query, qrels and TREC run files (rag/queries.py): the formats of a retrieval experiment."""

from __future__ import annotations

import pytest

from indexes.errors import InputError
from rag.queries import load_qrels, load_queries, read_trec_run, write_trec_run


def test_beir_qrels_with_crlf_and_header(tmp_path):
    f = tmp_path / "qrels.tsv"
    f.write_bytes(b"query-id\tcorpus-id\tscore\r\n1\t10\t1\r\n1\t11\t1\r\n2\t12\t1\r\n")
    assert load_qrels(f) == {"1": {"10": 1, "11": 1}, "2": {"12": 1}}


def test_queries_never_read_metadata(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text('{"_id": "1", "text": "claim", "metadata": {"10": [{"label": "SUPPORT"}]}}\n')
    assert load_queries(f) == {"1": "claim"}


@pytest.mark.parametrize("content, message", [('{"_id": "1", "text": ""}\n', "non-empty"),
                                              ('{"_id": "1", "text": "a"}\n{"_id": "1", "text": "b"}\n', "duplicate query id"),
                                              ("not json\n", "expected a JSON object")])
def test_bad_queries(tmp_path, content, message):
    f = tmp_path / "q.jsonl"
    f.write_text(content)
    with pytest.raises(InputError, match=message):
        load_queries(f)


def test_trec_run_round_trip(tmp_path):
    run = {"q1": {"a": 2.5, "b": 1.25}, "q2": {"c": 0.5}}
    write_trec_run(tmp_path / "r.trec", run)
    assert (tmp_path / "r.trec").read_text().splitlines()[0] == "q1 Q0 a 1 2.500000 rag"
    assert read_trec_run(tmp_path / "r.trec") == run
