"""``rag eval ppi`` and ``rag eval label`` end to end on tiny files, including every bad-input error."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from eval.ppi import classical_mean_ci, ppipp_mean_ci
from rag.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """100 items judged by a 90%-accurate binary judge; the first 60 carry human labels."""
    root = tmp_path_factory.mktemp("ppi")
    rng = np.random.default_rng(0)
    Y = (rng.random(100) < 0.7).astype(int)
    score = np.where(rng.random(100) < 0.9, Y, 1 - Y)
    labels, judge = root / "labels.jsonl", root / "judge.jsonl"
    labels.write_text("".join(json.dumps({"id": f"q{i}", "label": int(Y[i])}) + "\n" for i in range(60)))
    judge.write_text("".join(json.dumps({"id": f"q{i}", "score": float(score[i])}) + "\n" for i in range(100)))
    return root, labels, judge, Y.astype(float), score.astype(float)


def test_json_has_every_method_with_estimate_and_interval(files, capsys):
    # Given
    _, labels, judge, Y, score = files
    # When
    rc = main(["eval", "ppi", "--labels", str(labels), "--judge", str(judge), "--json"])
    out = json.loads(capsys.readouterr().out)
    # Then
    assert rc == 0
    assert list(out) == ["classical", "ppi", "ppi++", "bayes-diff", "bayes-chain"]
    assert all(set(v) == {"estimate", "lower", "upper"} and v["lower"] < v["upper"] for v in out.values())
    np.testing.assert_allclose([out["classical"]["lower"], out["classical"]["upper"]], classical_mean_ci(Y[:60]))
    np.testing.assert_allclose([out["ppi++"]["lower"], out["ppi++"]["upper"]],
                               ppipp_mean_ci(Y[:60], score[:60], score[60:]))


def test_single_method_and_alpha(files, capsys):
    # Given
    _, labels, judge, _, _ = files
    # When
    rc = main(["eval", "ppi", "--labels", str(labels), "--judge", str(judge), "--method", "bayes-chain",
               "--alpha", "0.05", "--json"])
    # Then
    assert rc == 0
    assert list(json.loads(capsys.readouterr().out)) == ["bayes-chain"]


def test_csv_labels_are_accepted(files, capsys):
    # Given
    root, _, judge, Y, _ = files
    path = root / "labels.csv"
    path.write_text("id,label\n" + "".join(f"q{i},{int(Y[i])}\n" for i in range(60)))
    # When
    rc = main(["eval", "ppi", "--labels", str(path), "--judge", str(judge), "--method", "classical", "--json"])
    # Then
    assert rc == 0
    np.testing.assert_allclose(json.loads(capsys.readouterr().out)["classical"]["lower"], classical_mean_ci(Y[:60])[0])


def _error(args, capsys) -> str:
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 1
    assert "Traceback" not in err and err.count("\n") == 1
    return err


def test_label_ids_missing_from_judge_file(files, capsys):
    # Given
    root, labels, _, _, _ = files
    judge = root / "judge_short.jsonl"
    judge.write_text("".join(json.dumps({"id": f"q{i}", "score": 1.0}) + "\n" for i in range(50, 100)))
    # When
    err = _error(["eval", "ppi", "--labels", str(labels), "--judge", str(judge)], capsys)
    # Then
    assert "50 labelled id(s) are not in" in err and "'q0'" in err


def test_non_binary_labels_for_bayesian_method(files, capsys):
    # Given
    root, _, judge, _, _ = files
    labels = root / "graded.jsonl"
    labels.write_text("".join(json.dumps({"id": f"q{i}", "label": 0.5}) + "\n" for i in range(40)))
    # When
    err = _error(["eval", "ppi", "--labels", str(labels), "--judge", str(judge), "--method", "bayes-diff"], capsys)
    # Then
    assert "not 0 or 1" in err and "--method classical|ppi|ppi++" in err


def test_too_few_labels_says_how_many_are_needed(files, capsys):
    # Given
    root, _, judge, _, _ = files
    labels = root / "few.jsonl"
    labels.write_text("".join(json.dumps({"id": f"q{i}", "label": 1}) + "\n" for i in range(7)))
    # When
    err = _error(["eval", "ppi", "--labels", str(labels), "--judge", str(judge)], capsys)
    # Then
    assert "7 human label(s)" in err and "at least 30" in err and "23 more" in err


def test_bad_row_names_file_line_and_field(files, capsys):
    # Given
    root, _, judge, _, _ = files
    labels = root / "bad.jsonl"
    labels.write_text('{"id": "q0", "label": 1}\n{"id": "q1", "label": "yes"}\n')
    # When
    err = _error(["eval", "ppi", "--labels", str(labels), "--judge", str(judge)], capsys)
    # Then
    assert "bad.jsonl:2" in err and "'label'" in err


def test_judge_file_without_unlabelled_items(files, capsys):
    # Given
    root, labels, _, _, _ = files
    judge = root / "judge_labelled_only.jsonl"
    judge.write_text("".join(json.dumps({"id": f"q{i}", "score": 1.0}) + "\n" for i in range(60)))
    # When
    err = _error(["eval", "ppi", "--labels", str(labels), "--judge", str(judge)], capsys)
    # Then
    assert "every item has a human label" in err


def test_label_command_writes_seeded_template(tmp_path, capsys):
    # Given
    dataset = tmp_path / "qa.jsonl"
    dataset.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Q{i}?", "answers": ["a"]}) + "\n"
                               for i in range(50)))
    # When
    outs = []
    for name in ("a.csv", "b.csv"):
        assert main(["eval", "label", "--dataset", str(dataset), "--out", str(tmp_path / name), "--size", "10",
                     "--seed", "3"]) == 0
        outs.append(list(csv.DictReader((tmp_path / name).open())))
    # Then
    assert outs[0] == outs[1] and len(outs[0]) == 10
    assert set(outs[0][0]) == {"id", "question", "answer", "label"} and outs[0][0]["label"] == ""


def test_unknown_method_lists_the_choices(files, capsys):
    # Given
    _, labels, judge, _, _ = files
    # When
    rc = main(["eval", "ppi", "--labels", str(labels), "--judge", str(judge), "--method", "bootstrap"])
    err = capsys.readouterr().err
    # Then a usage error (exit 2: --method is a choice) that lists the estimators
    assert rc == 2 and "Traceback" not in err
    assert "Invalid value for '--method'" in err
    assert "'bootstrap' is not one of 'classical', 'ppi', 'ppi++', 'bayes-diff', 'bayes-chain'" in " ".join(err.split())
