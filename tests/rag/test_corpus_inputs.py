"""Corpus files as Windows, Excel and broken exporters write them: BOMs, TSV quotes, unterminated
CSV quotes, bad UTF-8 and lone surrogates, each reported at its line and skippable as a record."""

from __future__ import annotations

import json

import pytest

from indexes.errors import InputError
from rag.cli import main
from rag.corpus import CorpusSpec, ReadReport, read_corpus

BOM = b"\xef\xbb\xbf"
SKIP = CorpusSpec(skip_bad_lines=True)


def read(path, spec=CorpusSpec()):
    report = ReadReport()
    return list(read_corpus(path, spec, report)), report


@pytest.mark.parametrize("name, body", [
    ("c.jsonl", b'{"_id": "d1", "text": "first"}\n{"_id": "d2", "text": "second"}\n'),
    ("c.csv", b"id,text\r\nd1,first\r\nd2,second\r\n"),
    ("c.tsv", b"id\ttext\nd1\tfirst\nd2\tsecond\n"),
])
def test_a_byte_order_mark_changes_nothing(tmp_path, name, body):
    # Given the same file with and without the BOM Windows editors and Excel write
    plain, marked = tmp_path / f"plain-{name}", tmp_path / f"bom-{name}"
    plain.write_bytes(body)
    marked.write_bytes(BOM + body)
    # When
    docs, report = read(marked, SKIP)
    # Then both records are read, none skipped, exactly as without the BOM
    assert [(d.id, d.text) for d in docs] == [("d1", "first"), ("d2", "second")]
    assert report.skipped == 0 and docs == read(plain)[0]


def test_a_byte_order_mark_in_text_and_markdown_files(tmp_path):
    (tmp_path / "a.md").write_bytes(BOM + "# Título\nbody".encode())
    (tmp_path / "b.txt").write_bytes(BOM + b"plain")
    docs = {d.id: d for d in read(tmp_path)[0]}
    assert docs["a"].title == "Título" and docs["a"].text == "# Título\nbody" and docs["b"].text == "plain"


def test_tsv_is_read_verbatim_without_quoting(tmp_path):
    # Given the issue's TSV: row 1's text starts with a quote that is never closed
    f = tmp_path / "c.tsv"
    f.write_text('id\ttitle\ttext\n'
                 't1\tInch\t"12 inch boards are sold here\n'
                 't2\tHarbor\t"Hello" said the harbor master\n'
                 't3\tC\tthird row\n'
                 't4\tD\tfourth row\n', encoding="utf-8")
    # When
    docs, _ = read(f)
    # Then four documents, every character kept
    assert [d.id for d in docs] == ["t1", "t2", "t3", "t4"]
    assert docs[0].text == '"12 inch boards are sold here'
    assert docs[1].text == '"Hello" said the harbor master'


def test_csv_with_an_unterminated_quote_names_its_line(tmp_path):
    # Given the CSV: row c2 opens a quote that nothing closes
    f = tmp_path / "c.csv"
    f.write_text('id,title,text\nc1,A,fine\nc2,B,"unterminated quote here\nc3,C,third\nc4,D,fourth\n', encoding="utf-8")
    # Then it is an error at line 3 (where c2 starts), even when skipping bad records:
    # skipping would lose c3 and c4 again
    for spec in (CorpusSpec(), SKIP):
        with pytest.raises(InputError, match=r"c\.csv:3: unterminated quoted field"):
            read(f, spec)


def test_csv_quoted_fields_may_span_lines_and_later_lines_keep_their_numbers(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text('id,text\nc1,"two\nlines, and ""quotes"""\nc2,x\nc3\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.csv:5: 1 fields where the header has 2"):
        read(f)
    docs, report = read(f, SKIP)
    assert [d.text for d in docs] == ['two\nlines, and "quotes"', "x"] and report.skipped == 1


def test_stray_quote_inside_a_csv_record_is_a_skippable_bad_record(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text('id,text\nc1,"quoted" then more\nc2,fine\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.csv:2: malformed CSV record"):
        read(f)
    docs, report = read(f, SKIP)
    assert [d.id for d in docs] == ["c2"] and report.skipped == 1


def test_a_tsv_row_with_an_extra_tab_is_not_cut_silently(tmp_path):
    f = tmp_path / "c.tsv"
    f.write_text("id\ttext\nt1\tone\ttoo many\nt2\ttwo\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.tsv:2: 3 fields where the header has 2"):
        read(f)


def test_bad_utf8_in_a_csv_is_reported_at_its_physical_line_and_skippable(tmp_path):
    # Given 5,001 good rows, one with a multi-line quoted field, and a Latin-1 byte on line 5002
    rows = [b"id,text", b'r0,"spans\ntwo lines"'] + [b"r%d,row %d" % (i, i) for i in range(1, 4999)]
    rows += [b"bad,caf\xe9", b"last,ok"]
    f = tmp_path / "c.csv"
    f.write_bytes(b"\n".join(rows) + b"\n")
    assert rows[-2] == f.read_bytes().splitlines()[5001]  # physical line 5002
    # Then the error names line 5002 and the byte; skipping keeps every other row
    with pytest.raises(InputError, match=r"c\.csv:5002: not valid UTF-8 \(byte 0xe9 at column 8\)"):
        read(f)
    docs, report = read(f, SKIP)
    assert len(docs) == 5000 and docs[-1].id == "last" and report.skipped == 1


def test_bad_utf8_in_a_two_line_tsv(tmp_path):
    f = tmp_path / "c.tsv"
    f.write_bytes(b"id\ttext\nt1\t\xff\xfe\n")
    with pytest.raises(InputError, match=r"c\.tsv:2: not valid UTF-8 \(byte 0xff at column 4\)"):
        read(f)
    docs, report = read(f, SKIP)
    assert docs == [] and report.skipped == 1


def test_a_lone_surrogate_is_a_bad_record_at_its_line(tmp_path):
    # Given a JSON escape of half a UTF-16 pair on line 2 (a whole pair, an emoji, is fine)
    f = tmp_path / "c.jsonl"
    f.write_text('{"_id": "1", "text": "smile \\ud83d\\ude00"}\n'
                 '{"_id": "2", "text": "half \\ud800 pair"}\n'
                 '{"_id": "3", "text": "ok", "metadata": {"k": "\\udfff"}}\n'
                 '{"_id": "4", "text": "fine"}\n', encoding="utf-8")
    # Then
    with pytest.raises(InputError, match=r"c\.jsonl:2: lone surrogate \\ud800"):
        read(f)
    docs, report = read(f, SKIP)
    assert [d.id for d in docs] == ["1", "4"] and docs[0].text == "smile \U0001F600" and report.skipped == 2


def test_rag_index_reports_a_surrogate_in_one_line_and_skips_it(tmp_path, capsys):
    # Given
    f = tmp_path / "c.jsonl"
    f.write_text('{"_id": "1", "text": "alpha beta"}\n{"_id": "2", "text": "\\ud800"}\n', encoding="utf-8")
    # When / Then: an error without a traceback, then a build that skips the record
    assert main(["index", str(f), "--out", str(tmp_path / "i1"), "--no-dense"]) == 1
    err = capsys.readouterr().err
    assert "c.jsonl:2: lone surrogate" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["index", str(f), "--out", str(tmp_path / "i2"), "--no-dense", "--skip-bad-lines"]) == 0
    assert "indexed 1 document as" in capsys.readouterr().out  # the summary is the result: stdout (one: singular)


def test_jsonl_bom_with_a_bad_record_skips_only_the_bad_one(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_bytes(BOM + b'{"_id": "1", "text": "a"}\n{"_id": 2, "text": "caf\xe9"}\n' + json.dumps({"_id": "3", "text": "c"}).encode())
    docs, report = read(f, SKIP)
    assert [d.id for d in docs] == ["1", "3"] and report.skipped == 1
