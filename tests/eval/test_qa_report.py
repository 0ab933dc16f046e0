"""``rag eval qa --predictions``: metrics, estimates and the three report files on a toy QA set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eval.qa_eval import clean_answer
from rag.cli import main


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """400 questions; answers right ~70% of the time; retrieved passages contain the gold 80% of the time."""
    root = tmp_path_factory.mktemp("qa")
    rng = np.random.default_rng(0)
    qa, preds = [], []
    for i in range(400):
        gold = f"answer{i}"
        qa.append({"id": f"q{i}", "question": f"{['What', 'Who', 'When'][i % 3]} is item {i}?", "answers": [gold]})
        answer = gold if rng.random() < 0.7 else f"wrong{i}"
        passage = f"text about {gold} here" if rng.random() < 0.8 else "unrelated text"
        preds.append({"id": f"q{i}", "answer": answer, "passages": [passage], "latency_ms": 10.0 + i % 7})
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qa))
    (root / "preds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in preds))
    return root


def test_report_from_predictions(toy):
    # Given
    out = toy / "report"
    # When
    rc = main(["eval", "qa", "--dataset", str(toy / "qa.jsonl"), "--predictions", str(toy / "preds.jsonl"),
               "--report", str(out), "--judge", "f1", "--gold-labels", "100"])
    report = json.loads((out / "report.json").read_text())
    # Then: the f1 judge equals the gold-derived label, so PPI's rectifier vanishes and its estimate is
    # the judge's mean on the 300 unlabelled items
    assert rc == 0
    assert report["gold_metrics"]["overall"]["answer_recall@5"] == pytest.approx(
        np.mean([("here" in json.loads(l)["passages"][0]) for l in (toy / "preds.jsonl").open()]))
    labelled = {json.loads(l)["id"] for l in (out / "labels.jsonl").open()}
    items = [json.loads(l) for l in (out / "items.jsonl").open()]
    unlabelled_mean = np.mean([r["correct"] for r in items if r["id"] not in labelled])
    assert len(labelled) == 100
    assert report["estimates"]["ppi"]["estimate"] == pytest.approx(unlabelled_mean)
    # a perfect judge with N = 3n: PPI++ width / classical width -> sqrt(n / (n + N)) = 0.5
    assert report["estimates"]["ppi++"]["width"] < 0.65 * report["estimates"]["classical"]["width"]
    assert report["agreement"]["fp"] == report["agreement"]["fn"] == 0
    assert set(report["strata"]) >= {"what", "who", "when"}
    assert report["width_vs_n"]["n"][-1] == 100
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "<script" not in html
    assert "![intervals](intervals.png)" in (out / "report.md").read_text()
    assert (out / "intervals.png").read_bytes()[:4] == b"\x89PNG"


def test_report_files_reproduce_with_eval_ppi(toy, capsys):
    # Given: the report directory written by the previous test's run
    out = toy / "report2"
    main(["eval", "qa", "--dataset", str(toy / "qa.jsonl"), "--predictions", str(toy / "preds.jsonl"),
          "--report", str(out), "--judge", "f1", "--gold-labels", "60", "--correct", "contains"])
    capsys.readouterr()
    # When
    rc = main(["eval", "ppi", "--labels", str(out / "labels.jsonl"), "--judge", str(out / "judge.jsonl"), "--json"])
    # Then
    assert rc == 0
    again = json.loads(capsys.readouterr().out)
    report = json.loads((out / "report.json").read_text())
    for method in again:
        assert again[method]["lower"] == pytest.approx(report["estimates"][method]["lower"])


def test_prediction_for_unknown_question_is_an_error(toy, capsys):
    # Given
    bad = toy / "bad_preds.jsonl"
    bad.write_text(json.dumps({"id": "nope", "answer": "x"}) + "\n")
    # When
    rc = main(["eval", "qa", "--dataset", str(toy / "qa.jsonl"), "--predictions", str(bad), "--report",
               str(toy / "r3"), "--judge", "f1"])
    # Then
    assert rc == 1
    assert "1 id(s) are not in the dataset" in capsys.readouterr().err


def test_clean_answer_strips_label_and_citations():
    # Given / When / Then
    assert clean_answer("Label: Paris is big [1]. It rains [2]", "Label:") == "Paris is big. It rains"


def test_label_ids_outside_dataset_fail_before_judging(toy, capsys):
    # Given
    labels = toy / "stray_labels.jsonl"
    labels.write_text(json.dumps({"id": "zzz", "label": 1}) + "\n")
    # When
    rc = main(["eval", "qa", "--dataset", str(toy / "qa.jsonl"), "--predictions", str(toy / "preds.jsonl"),
               "--report", str(toy / "r4"), "--labels", str(labels)])
    # Then: the (model-loading) embedding judge never ran, and no report directory was made
    err = capsys.readouterr().err
    assert rc == 1
    assert "1 labelled id(s) are not in" in err and "(first: 'zzz')" in err
    assert not (toy / "r4").exists()


def test_intervals_figure_draws_an_estimate_outside_its_interval():
    # Given: every answer wrong, where Bayes-chain's posterior mean (piled up at 0, long right tail)
    # lies above its 90% central credible interval
    import numpy as np

    from eval.estimators import Method, estimate_all
    from eval.plots import intervals_png

    est = estimate_all(np.zeros(30), np.zeros(30), np.zeros(2), 0.1, tuple(Method))
    chain = est[Method.BAYES_CHAIN]
    assert chain.estimate > chain.upper  # the case error bars cannot draw
    # When / Then: the figure is a PNG, not a matplotlib error
    png = intervals_png({m.value: {"estimate": e.estimate, "lower": e.lower, "upper": e.upper} for m, e in est.items()})
    assert png.startswith(b"\x89PNG")
