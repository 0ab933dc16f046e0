"""FiD reader training: input errors, the LR schedule, seeded runs, LUMEN freezing, checkpoints and the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from indexes.errors import InputError
from rag.fid.reader import FiDConfig, FiDReader
from rag.fid.train import QAExample, ReaderTrainConfig, load_qa_jsonl, train_reader
from rag.training.step_loop import lr_lambda



def _examples(tiny) -> list[QAExample]:
    return [QAExample(q, (a,), tuple(ps)) for q, a, ps in zip(tiny.questions, ["shakespeare", "1927"], tiny.passages)]
CONFIG = FiDConfig(n_passages=3, max_passage_tokens=32, max_new_tokens=4)


def _score(pred, golds):
    return float(pred in golds), float(pred in golds)


def _fresh_reader(tiny, seed: int = 0) -> FiDReader:
    torch.manual_seed(seed)
    return FiDReader(type(tiny.model)(tiny.model.config), tiny.tokenizer, CONFIG)


def test_bad_jsonl_line_names_file_line_and_field(tmp_path):
    # Given: a QA file whose second line lacks "answers"
    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": "q", "answers": ["a"], "passages": ["p"]}\n{"question": "q", "passages": ["p"]}\n')
    # When / Then: loading names the file, the line and the field
    with pytest.raises(InputError, match=r"qa\.jsonl:2: field 'answers'"):
        load_qa_jsonl(path)


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    # Given: 10 warmup steps of 110, floor 0.1
    cfg = ReaderTrainConfig(steps=110, warmup_steps=10, min_lr_ratio=0.1)
    # When / Then: 1/10 at step 0, 1 at the end of warmup, (1+0.1)/2 half way through the cosine, 0.1 at the end
    assert lr_lambda(0, cfg) == pytest.approx(0.1)
    assert lr_lambda(10, cfg) == pytest.approx(1.0)
    assert lr_lambda(60, cfg) == pytest.approx(0.55)
    assert lr_lambda(110, cfg) == pytest.approx(0.1)


def test_training_lowers_the_loss_and_is_seeded(tiny, tmp_path):
    # Given: two freshly initialised readers with the same seed and 8 steps on two examples
    cfg = ReaderTrainConfig(steps=8, batch_size=2, lr=3e-3, warmup_steps=2, eval_every=8, eval_examples=1, seed=3,
                            max_answer_tokens=4)
    # When: both are trained
    a = train_reader(_fresh_reader(tiny), _examples(tiny), _examples(tiny), cfg, tmp_path / "a", _score)
    b = train_reader(_fresh_reader(tiny), _examples(tiny), _examples(tiny), cfg, tmp_path / "b", _score)
    # Then: the loss fell, the runs are identical, and a loadable checkpoint and history were written
    assert a.history[-1]["loss"] < 0.8 * a.history[0]["loss"]
    assert [r["loss"] for r in a.history] == [r["loss"] for r in b.history]
    assert "em" in a.history[-1] and json.loads((tmp_path / "a" / "history.json").read_text())["steps"] == 8
    assert FiDReader.from_pretrained(tmp_path / "a" / "final", CONFIG).model.config.num_layers == 3


def test_lumen_training_leaves_memory_layers_untouched(tiny, tmp_path):
    # Given: a reader trained with K = 1 live layer of 3
    reader = _fresh_reader(tiny)
    before = {k: v.clone() for k, v in reader.model.get_encoder().block[1].state_dict().items()}
    cfg = ReaderTrainConfig(steps=2, batch_size=2, warmup_steps=1, eval_every=2, eval_examples=1, live_layers=1)
    # When: it trains
    train_reader(reader, _examples(tiny), _examples(tiny), cfg, tmp_path, _score)
    # Then: memory layer 1 is bit-identical
    after = reader.model.get_encoder().block[1].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_cli_trains_and_reports_bad_input(tiny, tmp_path, capsys):
    from rag.cli import main

    # Given: a tiny model directory and train/dev files
    model, tokenizer = tiny.model, tiny.tokenizer
    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    rows = "".join(json.dumps({"question": e.question, "answers": list(e.answers), "passages": list(e.passages)}) + "\n" for e in _examples(tiny))
    (tmp_path / "qa.jsonl").write_text(rows)
    args = ["train", "reader", "--model", str(tmp_path / "m"), "--dev", str(tmp_path / "qa.jsonl"), "--out", str(tmp_path / "o"),
            "--steps", "2", "--batch-size", "2", "--n-passages", "3", "--max-passage-tokens", "32", "--eval-examples", "1"]
    # When: it runs on good input and on a missing training file
    ok = main(args + ["--train", str(tmp_path / "qa.jsonl")])
    bad = main(args + ["--train", str(tmp_path / "missing.jsonl")])
    # Then: the first writes the model and curves, the second is a one-line error naming the file
    assert ok == 0 and (tmp_path / "o" / "final" / "config.json").is_file() and (tmp_path / "o" / "curves.png").is_file()
    assert bad == 1 and "missing.jsonl: cannot read QA file" in capsys.readouterr().err


def test_questions_without_passages_are_trained_on_passages_retrieved_from_an_index(tiny, tmp_path, capsys):
    from pathlib import Path

    from rag.cli import main
    from rag.fid.train import retrieve_passages
    from rag.index import open_index

    # Given: a BM25-only index over the fixture corpus, a tiny model, and QA lines with no passages
    corpus = Path(__file__).parents[2] / "fixtures" / "corpus.jsonl"
    assert main(["index", str(corpus), "--out", str(tmp_path / "idx"), "--no-dense"]) == 0
    tiny.model.save_pretrained(tmp_path / "m")
    tiny.tokenizer.save_pretrained(tmp_path / "m")
    rows = [{"question": "why is the sky blue", "answers": ["scattering"]}, {"question": "how does bread rise", "answers": ["yeast"]}]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    examples = load_qa_jsonl(tmp_path / "qa.jsonl", need_passages=False)
    # When: passages are retrieved (library), and the CLI trains with --index, and without it
    filled = retrieve_passages(examples, open_index(tmp_path / "idx").retriever("bm25"), k=2)
    args = ["train", "reader", "--model", str(tmp_path / "m"), "--train", str(tmp_path / "qa.jsonl"), "--dev", str(tmp_path / "qa.jsonl"),
            "--out", str(tmp_path / "o"), "--steps", "2", "--batch-size", "2", "--n-passages", "2", "--max-passage-tokens", "32",
            "--eval-examples", "1"]
    ok = main(args + ["--index", str(tmp_path / "idx"), "-k", "2", "--mode", "bm25"])
    bad = main(args)
    # Then: each question got its k best BM25 passages in FiD's "title: … context: …" form, the CLI
    # trained on them, and without an index the missing field is named with the way out
    assert examples[0].passages == () and [len(e.passages) for e in filled] == [2, 2]
    assert filled[0].passages[0].startswith("title: Why the sky is blue context: ")
    assert filled[1].passages[0].startswith("title: Bread rising context: ")
    assert ok == 0 and (tmp_path / "o" / "final" / "config.json").is_file()
    assert bad == 1 and "qa.jsonl:1: field 'passages' missing or not a list (or give --index" in capsys.readouterr().err
