"""Corpus readers and chunking: every format, and every bad input named precisely."""

from __future__ import annotations

import json

import pytest

from indexes.errors import InputError
from indexes.manifest import ChunkingSpec
from rag.chunking import split_corpus, split_document
from rag.corpus import CorpusSpec, Document, ReadReport, read_corpus


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_beir_jsonl(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", [{"_id": "1", "title": "T", "text": "body", "metadata": {"y": 1}}])
    assert list(read_corpus(f)) == [Document("1", "T", "body", {"y": 1})]


def test_generic_jsonl_with_configured_fields(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", [{"pid": 7, "passage": "hello"}])
    docs = list(read_corpus(f, CorpusSpec(id_field="pid", text_field="passage", title_field=None)))
    assert docs == [Document("7", "", "hello")]


def test_csv_and_tsv(tmp_path):
    (tmp_path / "c.csv").write_text('id,title,text\n1,A,"x, y"\n2,B,z\n', encoding="utf-8")
    (tmp_path / "c.tsv").write_text("id\ttext\n1\tx y\n", encoding="utf-8")
    assert [d.text for d in read_corpus(tmp_path / "c.csv")] == ["x, y", "z"]
    assert [d.id for d in read_corpus(tmp_path / "c.tsv")] == ["1"]


def test_folder_of_text_and_markdown(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("plain text", encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text("# Heading\nbody", encoding="utf-8")
    (tmp_path / "ignored.bin").write_bytes(b"\x00")
    docs = {d.id: d for d in read_corpus(tmp_path)}
    assert set(docs) == {"a", "sub/b"} and docs["sub/b"].title == "Heading"


def test_malformed_line_is_reported_with_its_number(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text('{"_id": "1", "text": "ok"}\n{"_id": "2", "text": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.jsonl:2: malformed JSON"):
        list(read_corpus(f))


def test_skip_bad_lines_counts_what_it_skipped(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_bytes(b'{"_id": "1", "text": "ok"}\nnot json\n{"_id": "3", "text": "caf\xe9"}\n{"_id": "1", "text": "dup"}\n')
    report = ReadReport()
    docs = list(read_corpus(f, CorpusSpec(skip_bad_lines=True), report))
    assert [d.id for d in docs] == ["1"] and report.skipped == 3


@pytest.mark.parametrize(
    "content, message",
    [(b'{"_id": "1", "text": "a"}\n{"_id": "1", "text": "b"}\n', "duplicate document id '1'"),
     (b'{"_id": "1", "text": "caf\xe9"}\n', "not valid UTF-8"),
     (b'{"text": "no id"}\n', "no document id"),
     (b'{"_id": "1"}\n', "no text"),
     (b'[1, 2]\n', "expected a JSON object")],
)
def test_bad_records_raise(tmp_path, content, message):
    f = tmp_path / "c.jsonl"
    f.write_bytes(content)
    with pytest.raises(InputError, match=message):
        list(read_corpus(f))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="corpus not found"):
        list(read_corpus(tmp_path / "nope.jsonl"))


def test_windows_cover_the_document_with_overlap():
    # Given 10 words, windows of 4 with overlap 1 → starts 0, 3, 6
    doc = Document("d", "T", " ".join(f"w{i}" for i in range(10)))
    passages = split_document(doc, ChunkingSpec(max_words=4, overlap_words=1))
    assert [p.id for p in passages] == ["d#0", "d#1", "d#2"]
    assert [p.text for p in passages] == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]
    assert {p.doc_id for p in passages} == {"d"} and {p.title for p in passages} == {"T"}


def test_short_documents_stay_whole_and_keep_their_spacing():
    doc = Document("d", "", "line one\n\nline  two")
    (p,) = split_document(doc, ChunkingSpec(max_words=10, overlap_words=2))
    assert p.id == "d" and p.text == doc.text


def test_overlap_must_be_smaller_than_window():
    with pytest.raises(InputError, match="overlap"):
        list(split_corpus([Document("d", "", "a b c")], ChunkingSpec(max_words=2, overlap_words=2)))
