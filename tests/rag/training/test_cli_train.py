"""``rag train retriever``: bad input fails with a one-line error before training; triples train."""

from __future__ import annotations

import json

from rag.cli import main

FIXTURES_ARGS = ["--corpus", "tests/fixtures/corpus.jsonl", "--queries", "tests/fixtures/queries.jsonl"]


def test_qrels_naming_an_unknown_document_fails_before_training(tmp_path, capsys):
    # Given
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\r\nq1\tnot-a-doc\t1\r\n")

    # When
    rc = main(["train", "retriever", "--out", str(tmp_path / "m"), *FIXTURES_ARGS, "--qrels", str(qrels)])

    # Then
    assert rc == 1
    err = capsys.readouterr().err
    assert "document ids are not in the corpus" in err and "'not-a-doc'" in err
    assert not (tmp_path / "m").exists()


def test_a_base_model_missing_offline_is_a_clear_error(tmp_path, capsys):
    # When
    rc = main(["train", "retriever", "--out", str(tmp_path / "m"), *FIXTURES_ARGS,
               "--qrels", "tests/fixtures/qrels.tsv", "--base", str(tmp_path / "no-such-model")])

    # Then
    assert rc == 1
    assert "never downloads models" in capsys.readouterr().err


def test_triples_file_trains_a_loadable_model(tmp_path, tiny_encoder_dir):
    # Given: three (query, positive, negative) triples
    triples = tmp_path / "triples.jsonl"
    rows = [("sky colour", "the sky is blue", "bread recipe"), ("vaccine", "vaccines train immunity", "stars shine"),
            ("sunset red", "sunsets look red", "tax law")]
    triples.write_text("".join(json.dumps({"query": q, "positive": p, "negative": n}) + "\n" for q, p, n in rows))

    # When
    rc = main(["train", "retriever", "--out", str(tmp_path / "m"), "--pairs", str(triples), "--base",
               str(tiny_encoder_dir), "--batch-size", "3", "--max-seq-length", "32", "--quiet", "--device", "cpu"])

    # Then
    assert rc == 0
    record = json.loads((tmp_path / "m" / "training.json").read_text())
    assert record["negatives_per_pair"] == 1 and record["pairs"] == 3
    assert (tmp_path / "m" / "model.safetensors").is_file()
