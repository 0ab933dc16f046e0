"""Evaluation inputs saved by Excel or Windows tools: BOMs, and a labels CSV that lost a quote."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eval.labels import read_rows
from eval.ppi import classical_mean_ci
from eval.qa_data import load_predictions, load_qa
from indexes.errors import InputError
from rag.cli import main

BOM = b"\xef\xbb\xbf"


def test_rag_eval_ppi_reads_a_labels_csv_saved_by_excel(tmp_path, capsys):
    # Given a labels CSV with Excel's BOM and CRLF line ends, and a judge file covering 40 items
    Y = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1] * 3, dtype=float)
    labels, judge = tmp_path / "labels.csv", tmp_path / "judge.jsonl"
    labels.write_bytes(BOM + b"id,label\r\n" + b"".join(b"q%d,%d\r\n" % (i, Y[i]) for i in range(30)))
    judge.write_text("".join(json.dumps({"id": f"q{i}", "score": 0.5}) + "\n" for i in range(40)))
    # When
    rc = main(["eval", "ppi", "--labels", str(labels), "--judge", str(judge), "--method", "classical", "--json"])
    # Then all 30 labels are read (the first row's id is "q0", not "\ufeffid")
    assert rc == 0
    out = json.loads(capsys.readouterr().out)["classical"]
    np.testing.assert_allclose([out["lower"], out["upper"]], classical_mean_ci(Y))


def test_labels_csv_with_an_unterminated_quote_names_its_line(tmp_path):
    f = tmp_path / "labels.csv"
    f.write_text('id,label\nq1,1\nq2,"1\nq3,0\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"labels\.csv:3: unterminated quoted field"):
        read_rows(f)


def test_qa_files_with_a_bom(tmp_path):
    # Given a QA JSONL, a predictions JSONL and a SQuAD JSON file, each with a BOM
    qa, preds, squad = tmp_path / "qa.jsonl", tmp_path / "p.jsonl", tmp_path / "dev.json"
    qa.write_bytes(BOM + b'{"id": "a", "question": "Who?", "answers": ["Ada"]}\n')
    preds.write_bytes(BOM + b'{"id": "a", "answer": "Ada"}\n')
    squad.write_bytes(BOM + json.dumps({"data": [{"title": "Ada_Lovelace", "paragraphs": [
        {"context": "Ada wrote it.", "qas": [{"id": "a", "question": "Who?", "answers": [{"text": "Ada"}]}]}]}]}).encode())
    # Then
    assert [(i.id, i.answers) for i in load_qa(qa)] == [("a", ("Ada",))]
    assert load_predictions(preds)["a"].answer == "Ada"
    assert [(i.id, i.question, i.answers, i.stratum) for i in load_qa(squad)] == [("a", "Who?", ("Ada",), "Ada_Lovelace")]
