"""``rag ask --fusion / --select-blocks / --evict``: they run end to end on the tiny model, and
options that do not combine are one-line errors (exit 1) before any model loads."""

from __future__ import annotations

import json

import pytest

from rag.cli import main
from tests.rag.kv_tiny import save_tiny_generator, tiny_index


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_generator(tmp_path_factory.mktemp("tiny-llama-opts"), "llama", seed=3)


@pytest.mark.parametrize("extra, cited", [(["--fusion", "rag-token"], 2), (["--fusion", "rag-sequence", "--rag-sequence-decoding", "fast"], 2),
                                          (["--evict", "snapkv", "--kv-budget", "40"], 2),
                                          (["--kv-cache", "--select-blocks", "1"], 1)])
def test_generation_options_answer_with_their_citations(capsys, model_dir, extra, cited):
    # Given the tiny index (its KV cache built for --kv-cache runs) and a saved tiny model
    index = str(tiny_index().path)
    if "--kv-cache" in extra:
        assert main(["cache", "build", "--index", index, "--generator", str(model_dir)]) == 0
        capsys.readouterr()
    # When
    rc = main(["ask", "why is the sky blue?", "--index", index, "-k", "2", "--json", "--generator", str(model_dir),
               "--max-new-tokens", "4", *extra])
    # Then a generated answer cites the passages its prompt(s) held
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["kind"] == "generated" and len(out["citations"]) == cited


@pytest.mark.parametrize("argv, message", [
    (["--fusion", "rag-token"], "add --generator"),
    (["--generator", "x", "--select-blocks", "2"], "--select-blocks scores the cached passage keys"),
    (["--generator", "x", "--evict", "h2o"], "--evict POLICY and --kv-budget N go together"),
    (["--generator", "x", "--evict", "h2o", "--kv-budget", "9", "--kv-cache"], "does not combine with --kv-cache"),
    (["--generator", "x", "--fid", "--fusion", "rag-token"], "do not combine with --fid"),
])
def test_options_that_do_not_combine_are_one_line_errors(capsys, argv, message):
    # When
    rc = main(["ask", "q", "--index", str(tiny_index().path), *argv])
    # Then
    err = capsys.readouterr().err
    assert rc == 1 and message in err and "Traceback" not in err


def test_a_value_outside_an_options_set_is_a_usage_error_listing_the_choices(capsys):
    # When --fusion gets a value it does not have
    rc = main(["ask", "q", "--index", str(tiny_index().path), "--generator", "x", "--fusion", "rag-doc"])
    # Then click's usage error (exit 2) names the option and its values (tests/rag/test_cli_choices.py: every option)
    err = " ".join(capsys.readouterr().err.split())
    assert rc == 2 and "Invalid value for '--fusion'" in err and "'concat', 'rag-sequence', 'rag-token'" in err
