"""``rag train reranker --select-weight-only`` refuses what it cannot honour, ``rerank.json`` records the
first stage it was tuned for, and ``--alpha`` (an interval's level) is not mistaken for the rerank weight."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rag.cli import main
from rag.rerank_interpolation import read_weight

FIXTURES = Path(__file__).parents[2] / "fixtures"


def _trained(tmp_path: Path, tiny_cross_encoder: Path, record: dict | None) -> Path:
    """A copy of the tiny cross-encoder as if `rag train reranker` had written it with ``record``."""
    out = tmp_path / "reranker"
    shutil.copytree(tiny_cross_encoder, out)
    if record is not None:
        (out / "training.json").write_text(json.dumps(record), encoding="utf-8")
    return out


def _select(out: Path, sample_index: Path, *extra: str) -> list[str]:
    return ["train", "reranker", "--out", str(out), "--index", str(sample_index), "--corpus", str(FIXTURES / "corpus.jsonl"),
            "--queries", str(FIXTURES / "queries.jsonl"), "--qrels", str(FIXTURES / "qrels.tsv"), "--device", "cpu",
            "--select-weight-only", *extra]


RECORD = {"config": {"mode": "hybrid", "dev_depth": 5, "dev_fraction": 0.25, "seed": 13}, "dev_queries": ["q1", "q5", "q9"]}


def test_select_weight_only_refuses_options_that_contradict_the_training_record(capsys, tmp_path, tiny_cross_encoder,
                                                                                  sample_index):
    # Given a reranker whose training.json records hybrid, dev depth 5
    out = _trained(tmp_path, tiny_cross_encoder, RECORD)
    # When the weight is chosen with --mode bm25 (and with --dev-depth 20)
    for extra, named in ((["--mode", "bm25"], "--mode bm25"), (["--dev-depth", "20"], "--dev-depth 20")):
        rc = main(_select(out, sample_index, *extra))
        # Then it is refused in one line naming the option and the record, and nothing is written
        err = capsys.readouterr().err.strip()
        assert rc == 1 and "\n" not in err and named in err and "training.json" in err
        assert not (out / "rerank.json").exists()


def test_select_weight_only_without_a_recorded_dev_split_is_refused(capsys, tmp_path, tiny_cross_encoder, sample_index):
    # Given a cross-encoder with no training.json (its dev split is unknown)
    out = _trained(tmp_path, tiny_cross_encoder, None)
    # When a weight is asked for
    rc = main(_select(out, sample_index))
    # Then it is refused, saying why, rather than tuned on a fresh split that may hold training queries
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "\n" not in err and "dev split" in err
    assert not (out / "rerank.json").exists()


def test_rerank_json_records_the_mode_and_depth_and_search_notes_another_mode(capsys, tmp_path, tiny_cross_encoder,
                                                                               sample_index):
    # Given a reranker trained for hybrid at dev depth 5 on q1, q5, q9; options that agree with the record
    out = _trained(tmp_path, tiny_cross_encoder, RECORD)
    # When the weight is chosen
    assert main(_select(out, sample_index, "--mode", "hybrid", "--dev-depth", "5")) == 0
    summary = capsys.readouterr().out
    # Then rerank.json says which first stage and depth it was tuned for, on the 3 recorded dev queries
    weight = json.loads((out / "rerank.json").read_text())
    assert weight["mode"] == "hybrid" and weight["dev_depth"] == 5 and weight["dev_queries"] == 3
    assert 0.0 <= weight["weight"] <= 1.0 and "alpha" not in weight and "--mode hybrid" in summary
    # and a search with another mode uses the weight but says, once on stderr, that it was tuned for hybrid
    assert main(["search", "--index", str(sample_index), "--rerank", str(out), "--mode", "bm25", "--rerank-depth", "4",
                 "--json", "--device", "cpu", "why is the sky blue"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "tuned" in line]
    assert len(notes) == 1 and "hybrid" in notes[0] and "bm25" in notes[0]
    # and the same mode says nothing
    assert main(["search", "--index", str(sample_index), "--rerank", str(out), "--mode", "hybrid", "--rerank-depth", "4",
                 "--json", "--device", "cpu", "why is the sky blue"]) == 0
    assert "tuned" not in capsys.readouterr().err


def test_an_old_rerank_json_with_an_alpha_key_is_still_read(tmp_path):
    # Given a rerank.json written before the key was renamed
    (tmp_path / "rerank.json").write_text(json.dumps({"alpha": 0.45, "normalisation": "min-max"}))
    # When / Then its weight is read
    assert read_weight(tmp_path) == 0.45


def test_alpha_next_to_rerank_warns_that_it_is_not_the_rerank_weight(capsys, tmp_path, tiny_cross_encoder, sample_index):
    # Given eval retrieval with --rerank and --alpha 0.45 (meant as a weight: it would make 55% intervals)
    args = ["eval", "retrieval", "--index", str(sample_index), "--queries", str(FIXTURES / "queries.jsonl"),
            "--qrels", str(FIXTURES / "qrels.tsv"), "--rerank", str(tiny_cross_encoder), "--rerank-depth", "4",
            "--json", "--device", "cpu"]
    # When it runs
    assert main([*args, "--alpha", "0.45"]) == 0
    # Then one warning line points at --rerank-weight
    warned = [line for line in capsys.readouterr().err.splitlines() if "--rerank-weight" in line]
    assert len(warned) == 1 and "55%" in warned[0]
    # and the usual --alpha 0.1 says nothing
    assert main([*args, "--alpha", "0.1"]) == 0
    assert "--rerank-weight" not in capsys.readouterr().err


def test_help_calls_the_rerank_weight_weight_and_alpha_the_significance_level(capsys):
    # When the help of eval retrieval is printed
    assert main(["eval", "retrieval", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    # Then --rerank-weight takes a WEIGHT and --alpha says it is the intervals' level, not the weight
    assert "--rerank-weight WEIGHT" in text and "ALPHA" not in text.replace("--alpha", "")
    assert "Significance level of the intervals" in text and "the rerank weight is --rerank-weight" in text
