"""The shared text-file rules (UTF-8, BOM, surrogates, line numbers) in every reader of ``rag``."""

from __future__ import annotations

import pytest

from indexes.errors import InputError
from rag.queries import load_qrels, load_queries, read_trec_run
from rag.textfile import parse_json_line, read_json, read_text
from rag.training.data import read_jsonl_pairs
from rag.training.qa_jsonl import qa_rows

BOM = b"\xef\xbb\xbf"

READERS = [
    ("q.jsonl", b'{"_id": "q1", "text": "first query"}\n', load_queries, {"q1": "first query"}),
    ("q.tsv", b"q1\tfirst query\r\n", load_queries, {"q1": "first query"}),
    ("qrels.tsv", b"query-id\tcorpus-id\tscore\nq1\td1\t1\n", load_qrels, {"q1": {"d1": 1}}),
    ("qrels.txt", b"q1 0 d1 2\n", load_qrels, {"q1": {"d1": 2}}),
    ("run.trec", b"q1 Q0 d1 1 2.5 tag\n", read_trec_run, {"q1": {"d1": 2.5}}),
    ("pairs.jsonl", b'{"query": "q", "positive": "p"}\n',
     lambda p: [(x.query, x.positive) for x in read_jsonl_pairs(p)], [("q", "p")]),
    ("qa.jsonl", b'{"question": "who?", "answer": "me"}\n',
     lambda p: [row["question"] for _, row in qa_rows(p, (("question", str),))], ["who?"]),
]


@pytest.mark.parametrize("name, body, reader, expected", READERS, ids=[r[0] for r in READERS])
def test_every_reader_accepts_a_byte_order_mark(tmp_path, name, body, reader, expected):
    # Given the file as Windows Notepad or Excel saves it
    f = tmp_path / name
    f.write_bytes(BOM + body)
    # Then it reads as without the BOM
    assert reader(f) == expected


def test_bom_is_dropped_only_at_the_start_of_the_file(tmp_path):
    f = tmp_path / "q.tsv"
    f.write_bytes(BOM + b"q1\ta\nq2\t" + BOM + b"b\n")
    assert load_queries(f) == {"q1": "a", "q2": "\ufeffb"}


def test_a_utf16_file_is_named_as_such(tmp_path):
    # Given a TSV saved as Excel's "Unicode Text" (UTF-16 little-endian with its BOM)
    f = tmp_path / "q.tsv"
    f.write_bytes("q1\tfirst query\r\n".encode("utf-16"))
    # Then the error says what the file is and what to do, not which byte is wrong
    with pytest.raises(InputError, match=r"q\.tsv: the file is UTF-16 .*save it as UTF-8"):
        load_queries(f)
    with pytest.raises(InputError, match="UTF-16"):
        read_text(f)


def test_tsv_qrels_are_split_on_tabs_only(tmp_path):
    f = tmp_path / "qrels.tsv"
    f.write_text('q1\t"doc one"\t1\n', encoding="utf-8")
    assert load_qrels(f) == {"q1": {'"doc one"': 1}}


def test_bad_utf8_names_line_and_column(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_bytes(b'{"_id": "1", "text": "a"}\n{"_id": "2", "text": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"q\.jsonl:2: not valid UTF-8 \(byte 0xe9 at column 26\)"):
        load_queries(f)
    with pytest.raises(InputError, match=r"q\.jsonl:2: not valid UTF-8"):
        read_text(f)


def test_lone_surrogates_are_refused_anywhere_in_a_record():
    # Given escapes of half a UTF-16 pair in a value, a nested value and a key
    for line in (b'{"t": "\\ud800"}', b'{"m": {"k": ["x", "\\uDC00"]}}', b'{"\\udbff": 1}'):
        with pytest.raises(InputError, match=r"f:3: lone surrogate"):
            parse_json_line(line, "f:3")
    # A whole pair and a BMP escape are characters
    assert parse_json_line(b'{"t": "\\ud83d\\ude00 \\u00e9"}', "f:1") == {"t": "\U0001F600 é"}


def test_a_query_with_a_lone_surrogate_names_its_line(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text('{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "\\ud800"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"q\.jsonl:2: lone surrogate"):
        load_queries(f)


def test_whole_json_documents_report_the_line_of_a_syntax_error(tmp_path):
    f = tmp_path / "d.json"
    f.write_bytes(BOM + b'{"data": [\n  1,\n  oops\n]}')
    with pytest.raises(InputError, match=r"d\.json:3: malformed JSON"):
        read_json(f)


@pytest.mark.parametrize("line", [b'{"_id": "bad", "title": "x", "text":\n', b'{"_id": "bad", "title": "x", "text":\r\n',
                                  b'{"_id": "bad", "title": "x", "text":'])
def test_a_record_cut_short_is_reported_at_the_end_of_its_own_line(line):
    # Given a JSONL record that stops after its last key (36 characters), with or without its line break
    # When it is parsed / Then the column is 37, where the value is missing (the parser alone says column 1
    # of the next line when the line break is kept)
    with pytest.raises(InputError, match=r"^c\.jsonl:2: malformed JSON \(Expecting value at column 37\)$"):
        parse_json_line(line, "c.jsonl:2")
