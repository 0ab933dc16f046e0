"""Bad option values are usage errors (exit 2, one ``Error`` line naming the option) before any work is done."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from rag.cli import _register, main
from rag.cli.apps import app

FIXTURES = Path(__file__).parents[1] / "fixtures"


def _numeric_options():
    """(command words, option flag, int or float) for every numeric option of every leaf command."""
    _register()

    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, cmd

    for path, cmd in walk(typer.main.get_command(app), []):
        for p in cmd.params:
            kind = getattr(getattr(p, "type_descriptor", None), "annotation", None)
            if kind in (int, float) and p.opts[0].startswith("-"):
                yield path, p, kind


def _usage_error(capsys, *args: str) -> str:
    rc = main(list(args))
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("Error")]
    assert rc == 2 and len(errors) == 1 and "Traceback" not in err, (args, rc, err)
    return errors[0]


def test_every_numeric_option_declares_its_range():
    # Given every int/float option of every command
    options = list(_numeric_options())
    assert len(options) > 60  # the walk reached them all
    # Then each one has a bound that --help shows (seeds included: numpy refuses negative ones)
    unbounded = [(" ".join(path), p.opts[0]) for path, p, _ in options if p.min is None and p.max is None]
    assert unbounded == []


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_no_float_option_takes_a_value_that_is_not_a_finite_number(capsys, value):
    # Given every float option (nan compares false with every bound, inf passes a lower one)
    floats = [(path, p) for path, p, kind in _numeric_options() if kind is float]
    assert len(floats) > 20
    for path, p in floats:
        # When it is given nan or an infinity
        line = _usage_error(capsys, *path, f"{p.opts[0]}={value}")
        # Then the usage error names the option and says the value is not a number in its interval
        assert line.startswith(f"Error: Invalid value for '{p.opts[0]}': {value} is not a number in "), line


@pytest.mark.parametrize(("args", "expected"), [
    # rag index: a batch size of 0/-1 crashed in sentence-transformers (torch) or was silently accepted (onnx)
    (["index", "C", "--encoder-backend", "torch", "--batch-size", "0"], "'--batch-size': 0 is not a number in [1, inf)"),
    (["index", "C", "--encoder-backend", "onnx", "--batch-size", "-1"], "'--batch-size': -1 is not a number in [1, inf)"),
    (["index", "C", "--passage-words", "0"], "'--passage-words': 0 is not a number in [1, inf)"),
    (["index", "C", "--overlap", "-1"], "'--overlap': -1 is not a number in [0, inf)"),
    (["index", "C", "--k1", "-0.5"], "'--k1': -0.5 is not a number in [0, inf)"),
    (["index", "C", "--b", "1.5"], "'--b': 1.5 is not a number in [0, 1]"),
    # rag train reranker --warmup-ratio 2 printed a 48-line traceback after 7 s
    (["train", "reranker", "--warmup-ratio", "2"], "'--warmup-ratio': 2 is not a number in [0, 1]"),
    (["train", "reranker", "--dev-fraction", "1"], "'--dev-fraction': 1 is not a number in (0, 1)"),
    (["train", "reranker", "--dev-fraction", "0"], "'--dev-fraction': 0 is not a number in (0, 1)"),
    (["train", "reranker", "--epochs", "0"], "'--epochs': 0 is not a number in (0, inf)"),
    (["train", "retriever", "--dev-fraction", "1"], "'--dev-fraction': 1 is not a number in [0, 1)"),
    (["train", "retriever", "--temperature", "0"], "'--temperature': 0 is not a number in (0, inf)"),
    (["train", "retriever", "--batch-size", "0"], "'--batch-size': 0 is not a number in [1, inf)"),
    (["train", "retriever", "--deletion", "1"], "'--deletion': 1 is not a number in [0, 1)"),
    (["train", "retriever", "--unsupervised", "--crop-min", "0.6", "--crop-max", "0.5"],
     "'--crop-max': 0.5 is below --crop-min 0.6"),
    (["eval", "qa", "--alpha", "0"], "'--alpha': 0 is not a number in (0, 1)"),
    (["eval", "ppi", "--alpha", "1"], "'--alpha': 1 is not a number in (0, 1)"),
    (["ask", "q", "--fusion-temperature", "0"], "'--fusion-temperature': 0 is not a number in (0, inf)"),
    # rag search --snippet 0 printed only "…" per hit
    (["search", "q", "--snippet", "0"], "'--snippet': 0 is not a number in [1, inf)"),
    (["search", "q", "--rerank", "M", "--rerank-weight", "nan"], "'--rerank-weight': nan is not a number in [0, 1]"),
    (["eval", "label", "--seed", "-1"], "'--seed': -1 is not a number in [0, inf)"),
])
def test_an_out_of_range_value_is_a_usage_error_naming_the_option_and_its_range(capsys, tmp_path, args, expected):
    # Given a command line with one value outside its option's range, and an output folder
    out = tmp_path / "out"
    args = [str(FIXTURES / "corpus.jsonl") if a == "C" else a for a in args]
    extra = ["--out", str(out)] if args[0] in ("index", "train") else []
    # When it runs
    line = _usage_error(capsys, *args, *extra)
    # Then one usage error names the option (never an internal field) with the interval, and nothing was written
    assert line == f"Error: Invalid value for {expected}"
    assert "Value error" not in line and "max_words" not in line and "dev fraction" not in line
    assert not out.exists()


@pytest.mark.parametrize("command", [["search", "q"], ["ask", "q"],
                                     ["eval", "retrieval", "--index", "I", "--queries", "Q", "--qrels", "R"],
                                     ["serve", "--index", "I"]])
@pytest.mark.parametrize(("flag", "value"), [("--rerank-depth", "5"), ("--rerank-weight", "0.5")])
def test_rerank_depth_and_weight_without_rerank_are_the_same_usage_error(capsys, command, flag, value):
    # Given a cross-encoder setting without --rerank (--rerank-depth was silently ignored, --rerank-weight exit 1)
    # When / Then: both are one usage error, exit 2, that names the option and what it needs
    line = _usage_error(capsys, *command, flag, value)
    assert line == f"Error: Invalid value for '{flag}': it only applies to a cross-encoder: give --rerank MODEL too"


def test_delete_without_ids_is_a_usage_error(capsys, tmp_path):
    # Given / When: rag delete with an index but no ids and no --ids-file
    line = _usage_error(capsys, "delete", "--index", str(tmp_path))
    # Then
    assert line == "Error: Invalid value for 'IDS...': no document ids to delete: give IDS or --ids-file FILE"


def test_a_choice_error_has_no_pydantic_prefix(capsys):
    # Given / When: a value outside a choice
    line = _usage_error(capsys, "ask", "q", "--fusion", "foo")
    # Then: the choices, without pydantic's "Value error, "
    assert line == "Error: Invalid value for '--fusion': 'foo' is not one of 'concat', 'rag-sequence', 'rag-token'."
