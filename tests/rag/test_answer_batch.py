"""Batch answering: ``rag ask --questions FILE --out answers.jsonl`` answers as ``rag ask`` does, once loaded."""

from __future__ import annotations

import json

import pytest
from tests.rag.kv_tiny import tiny_index

from indexes.errors import InputError
from rag.cli import main
from rag.pipeline import EXTRACTIVE_LABEL
from rag.questions import read_questions

QUESTIONS = [{"id": "q1", "question": "why is the sky blue?"}, {"_id": 2, "text": "how do vaccines work?"},
             {"id": "q3", "question": "What is the capital of France?"}]


def _drop_timings(row: dict) -> dict:
    """The row without timings and citation scores (batched query encoding moves scores by ~1e-7)."""
    return {k: v for k, v in row.items() if k != "timings"} | {
        "citations": [{f: x for f, x in c.items() if f != "score"} for c in row["citations"]]}


def test_batch_rows_equal_single_question_answers(tmp_path, capsys):
    # Given three questions, one of them off-topic
    index = str(tiny_index().path)
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    # When answered as a batch, and one by one with --json
    assert main(["ask", "--questions", str(qfile), "--out", str(tmp_path / "answers.jsonl"), "-i", index, "-k", "2"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "answers.jsonl").open()]
    single = []
    for q in ("why is the sky blue?", "how do vaccines work?", "What is the capital of France?"):
        assert main(["ask", q, "-i", index, "-k", "2", "--json"]) == 0
        single.append(json.loads(capsys.readouterr().out))
    # Then each row is the single answer plus its id; only the timings differ
    assert [r["id"] for r in rows] == ["q1", "2", "q3"]
    assert [_drop_timings(r) for r in rows] == [{"id": i, **_drop_timings(s)} for i, s in zip(["q1", "2", "q3"], single)]
    for r, s in zip(rows, single):
        assert [c["score"] for c in r["citations"]] == pytest.approx([c["score"] for c in s["citations"]], rel=1e-5)
    assert {"id", "question", "answer", "kind", "citations", "timings"} <= set(rows[0])
    assert [r["kind"] for r in rows] == ["extractive", "extractive", "no_answer"]
    assert all(set(r["timings"]) == {"retrieval_ms", "extract_ms"} for r in rows)


def test_batch_to_stdout_writes_no_file_named_dash(tmp_path, monkeypatch, capsys):
    # Given
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.jsonl").write_text(json.dumps(QUESTIONS[0]) + "\n")
    # When
    assert main(["ask", "--questions", "q.jsonl", "--out", "-", "-i", str(tiny_index().path), "-k", "1"]) == 0
    # Then the JSONL goes to stdout
    out = capsys.readouterr().out
    assert json.loads(out)["id"] == "q1" and not (tmp_path / "-").exists()


def test_human_output_keeps_the_extractive_heading(capsys):
    # When asked without --json, a person still reads what kind of answer this is
    assert main(["ask", "why is the sky blue?", "-i", str(tiny_index().path), "-k", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(EXTRACTIVE_LABEL + " ") and "[1]" in captured.out
    assert "sentence ranking" in captured.err and "first token" not in captured.err


@pytest.mark.parametrize(("content", "message"), [
    ('{"id": "a", "question": "ok"}\nnot json\n', r"q.jsonl:2: not a JSON object"),
    ('{"id": "a", "question": "  "}\n', r"q.jsonl:1: field 'question' missing or empty"),
    ('{"question": "why?"}\n', r"q.jsonl:1: field 'id' missing"),
    ('{"id": "a", "question": "x"}\n{"id": "a", "question": "y"}\n', r"q.jsonl:2: id 'a' repeats"),
    ("\n", r"q.jsonl: no questions"),
])
def test_bad_question_files_name_file_and_line(tmp_path, content, message):
    (tmp_path / "q.jsonl").write_text(content)
    with pytest.raises(InputError, match=message):
        read_questions(tmp_path / "q.jsonl")


def test_question_file_with_bom_reads(tmp_path):
    (tmp_path / "q.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps(QUESTIONS[0]).encode() + b"\n")
    assert [q.id for q in read_questions(tmp_path / "q.jsonl")] == ["q1"]


def test_question_and_questions_file_are_exclusive(tmp_path, capsys):
    assert main(["ask", "why?", "--questions", str(tmp_path / "q.jsonl"), "--out", "-"]) == 1
    assert main(["ask", "--questions", str(tmp_path / "q.jsonl")]) == 1
    assert "--out" in capsys.readouterr().err
