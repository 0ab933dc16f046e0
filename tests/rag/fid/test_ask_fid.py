"""`rag ask --fid [--live-layers K]`: the CLI's answer is the FiD reader's answer on the retrieved hits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import main
from rag.fid.answer import FiDAnswerer
from rag.fid.reader import FiDConfig
from rag.index import open_index

CORPUS = Path(__file__).parents[2] / "fixtures" / "corpus.jsonl"


@pytest.mark.parametrize("live_layers", [None, 1])
def test_ask_fid_answers_with_citations(tiny, tmp_path, capsys, live_layers):
    # Given a BM25 index of the fixture corpus and a tiny random T5 on disk (+ LUMEN memory for K=1)
    tiny.model.save_pretrained(tmp_path / "m")
    tiny.tokenizer.save_pretrained(tmp_path / "m")
    assert main(["index", str(CORPUS), "--out", str(tmp_path / "idx"), "--no-dense"]) == 0
    extra = []
    if live_layers:
        assert main(["cache", "lumen", "-g", str(tmp_path / "m"), "-K", "1", "-i", str(tmp_path / "idx")]) == 0
        extra = ["--live-layers", "1"]
    capsys.readouterr()
    # When
    rc = main(["ask", "why is the sky blue", "--index", str(tmp_path / "idx"), "--fid", "--generator", str(tmp_path / "m"),
               "--mode", "bm25", "-k", "3", "--max-new-tokens", "5", "--json", *extra])
    out = capsys.readouterr()
    # Then: generated, three numbered citations in retrieval order, and the library reader's exact answer
    assert rc == 0, out.err
    answer = json.loads(out.out)
    assert answer["kind"] == "generated" and [c["n"] for c in answer["citations"]] == [1, 2, 3]
    hits = open_index(tmp_path / "idx").retriever("bm25").search("why is the sky blue", 3)
    assert [c["id"] for c in answer["citations"]] == [h.id for h in hits]
    reader = FiDAnswerer.load(tmp_path / "m", tmp_path / "idx", FiDConfig(n_passages=3, max_new_tokens=5), live_layers=live_layers)
    assert answer["answer"] == reader.answer("why is the sky blue", hits)
    assert set(answer["timings"]) == {"retrieval_ms", "ttft_ms", "decode_ms"}


@pytest.mark.parametrize("args, message", [(["--fid"], "--fid needs --generator"),
                                           (["--live-layers", "2"], "--live-layers is a FiD option")])
def test_ask_fid_option_errors(tmp_path, capsys, args, message):
    assert main(["index", str(CORPUS), "--out", str(tmp_path / "idx"), "--no-dense"]) == 0
    rc = main(["ask", "q?", "--index", str(tmp_path / "idx"), *args])
    assert rc == 1 and message in capsys.readouterr().err


def test_ask_fid_batch_equals_single_answers(tiny, tmp_path, capsys):
    # Given the tiny T5 and a BM25 index, and two questions in a file
    tiny.model.save_pretrained(tmp_path / "m")
    tiny.tokenizer.save_pretrained(tmp_path / "m")
    assert main(["index", str(CORPUS), "--out", str(tmp_path / "idx"), "--no-dense"]) == 0
    questions = ["why is the sky blue", "how do vaccines work"]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "question": q}) + "\n"
                                              for i, q in enumerate(questions)))
    common = ["--index", str(tmp_path / "idx"), "--fid", "--generator", str(tmp_path / "m"), "--mode", "bm25", "-k", "3",
              "--max-new-tokens", "5"]
    capsys.readouterr()
    # When answered as a batch (the reader loaded once) and one by one
    assert main(["ask", "--questions", str(tmp_path / "q.jsonl"), "--out", str(tmp_path / "a.jsonl"), *common]) == 0
    rows = [json.loads(line) for line in (tmp_path / "a.jsonl").open()]
    single = []
    for q in questions:
        assert main(["ask", q, *common, "--json"]) == 0
        single.append(json.loads(capsys.readouterr().out))
    # Then the rows are the single answers with their ids (timings aside)
    strip = lambda r: {k: v for k, v in r.items() if k not in ("id", "timings")}  # noqa: E731
    assert [r["id"] for r in rows] == ["q0", "q1"] and [strip(r) for r in rows] == [strip(s) for s in single]
    assert all(r["kind"] == "generated" for r in rows)
