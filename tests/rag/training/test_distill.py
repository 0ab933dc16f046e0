"""``rag train query-encoder``: a fewer-layer student of the index's encoder, usable only with that index."""

from __future__ import annotations

import json
import shutil

import pytest

from indexes.errors import InputError
from indexes.manifest import Manifest
from rag.cli import main
from rag.encoder import QUERY_ENCODER_RECORD, Encoder, EncoderConfig, check_query_encoder
from rag.training.distill import corpus_texts, keep_layers


@pytest.mark.parametrize(("n_teacher", "n", "kept"), [(6, 1, [0]), (6, 2, [0, 5]), (6, 3, [0, 2, 5]),
                                                      (6, 4, [0, 2, 3, 5]), (6, 6, [0, 1, 2, 3, 4, 5]), (12, 4, [0, 4, 7, 11])])
def test_kept_layers_are_the_first_the_last_and_evenly_spread_between(n_teacher, n, kept):
    assert keep_layers(n_teacher, n) == kept


@pytest.mark.parametrize("n", [0, 7])
def test_more_layers_than_the_teacher_has_or_none_is_refused(n):
    with pytest.raises(InputError, match="choose 1 to 6"):
        keep_layers(6, n)


def test_training_texts_are_the_indexed_sentences_and_titles(sample_index):
    texts = corpus_texts(sample_index)
    assert texts == sorted(set(texts)) and len(texts) > 40
    assert all(len(t.split()) <= 60 for t in texts)


def test_the_student_has_fewer_layers_moves_towards_the_teacher_and_records_it(query_encoder, sample_index):
    # Given the distilled model of the session fixture (2 of MiniLM's 6 layers, 4 epochs)
    record = json.loads((query_encoder / QUERY_ENCODER_RECORD).read_text())
    config = json.loads((query_encoder / "config.json").read_text())

    # Then it keeps layers 0 and 5, names its teacher, and its held-out error went down
    assert config["num_hidden_layers"] == 2 and record["kept_layers"] == [0, 5]
    assert record["teacher"] == Manifest.read(sample_index).dense.encoder.model_dump()
    assert record["mse_after"] < 0.8 * record["mse_before"]
    assert record["losses"] and record["texts"] + record["held_out"] == len(corpus_texts(sample_index))


def test_student_vectors_point_where_the_teacher_s_do(query_encoder, encoder):
    student = Encoder(EncoderConfig(model=str(query_encoder), device="cpu"))
    queries = ["rotating storage for search engines", "why is the sky blue", "vaccines and antibodies"]
    cos = (student.encode_queries(queries) * encoder.encode_queries(queries)).sum(1)  # (3,)
    assert cos.min() > 0.5


def test_search_with_the_query_encoder_uses_it_and_finds_passages(query_encoder, sample_index, capsys):
    # When
    rc = main(["search", "--index", str(sample_index), "--mode", "dense", "-k", "3", "--json",
               "--query-encoder", str(query_encoder), "vaccines and antibodies"])
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert main(["search", "--index", str(sample_index), "--mode", "dense", "-k", "3", "--json",
                 "vaccines and antibodies"]) == 0
    teacher_hits = json.loads(capsys.readouterr().out)["hits"]

    # Then: three hits, scored with other query vectors than the teacher's
    assert rc == 0 and len(hits) == 3
    assert [h["score"] for h in hits] != [h["score"] for h in teacher_hits]


def test_a_model_without_a_distillation_record_is_refused(sample_index, query_encoder, tmp_path, capsys):
    plain = tmp_path / "plain"
    shutil.copytree(query_encoder, plain)
    (plain / QUERY_ENCODER_RECORD).unlink()
    rc = main(["search", "--index", str(sample_index), "--mode", "dense", "--query-encoder", str(plain), "anything"])
    assert rc == 1 and "no query_encoder.json" in capsys.readouterr().err


def test_a_query_encoder_of_another_teacher_is_refused(sample_index, query_encoder, tmp_path):
    # Given a student whose record names another teacher
    other = tmp_path / "other"
    shutil.copytree(query_encoder, other)
    record = json.loads((other / QUERY_ENCODER_RECORD).read_text())
    record["teacher"]["model"] = "intfloat/e5-small-v2"
    (other / QUERY_ENCODER_RECORD).write_text(json.dumps(record))

    # Then it cannot encode queries for the MiniLM index, and the error names both models
    with pytest.raises(InputError, match="distilled from 'intfloat/e5-small-v2'.*encoded with 'embedded:all-MiniLM-L6-v2'"):
        check_query_encoder(other, Manifest.read(sample_index).dense.encoder)


def test_distilling_needs_a_dense_index(bm25_index, tmp_path, capsys):
    rc = main(["train", "query-encoder", "--index", str(bm25_index.path), "--out", str(tmp_path / "q")])
    assert rc == 1 and "has no dense index" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()


def test_quiet_training_prints_only_its_summary_on_stdout(sample_index, tmp_path, capsys):
    # Given a one-layer student trained quietly
    rc = main(["train", "query-encoder", "--index", str(sample_index), "--out", str(tmp_path / "q1"), "--layers", "1",
               "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--quiet"])
    printed = capsys.readouterr()
    # Then stdout holds the one summary line, and no trainer metric dict ({'train_runtime': …}) anywhere
    assert rc == 0 and printed.out.startswith(f"wrote {tmp_path / 'q1'}") and printed.out.count("\n") == 1
    assert "train_runtime" not in printed.out + printed.err
