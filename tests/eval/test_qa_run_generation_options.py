"""``rag eval qa`` with ``rag ask``'s generation-path options (--fusion, --select-blocks, --evict, --kv-cache).

The options are declared once (``rag.cli.path_options``): the two commands show the same flags
with the same help, refuse the same values with the same line, answer every question exactly as
``rag ask`` does (tiny random Llama: the answers are noise, but the same noise proves the same
path ran), and the report says which options produced it.
"""

from __future__ import annotations

import json
import shutil

import pytest

from eval.qa_eval import clean_answer
from rag.cli import main
from tests.rag.kv_tiny import save_tiny_generator, tiny_index

# 32 questions: a report's intervals need at least 30 labelled items
QUESTIONS = [f"{q} ({n})" for n in range(8) for q in ("why is the sky blue?", "how do vaccines work?",
                                                      "where do search engines keep indexes?", "how do bees find flowers?")]
PATH_FLAGS = ("--kv-cache", "--positions", "--fusion", "--fusion-temperature", "--rag-sequence-decoding",
              "--select-blocks", "--evict", "--kv-budget", "--max-new-tokens")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_generator(tmp_path_factory.mktemp("tiny-llama-evalqa"), "llama", seed=3)


@pytest.fixture(scope="module")
def index(tmp_path_factory, model_dir):
    """The tiny index (a copy: this module writes its KV cache) with a KV cache for the tiny model."""
    out = tmp_path_factory.mktemp("evalqa") / "index"
    shutil.copytree(tiny_index().path, out)
    assert main(["cache", "build", "--index", str(out), "--generator", str(model_dir)]) == 0
    return out


@pytest.fixture(scope="module")
def qa_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("qa")
    rows = [{"id": f"q{i}", "question": q, "answers": ["blue"]} for i, q in enumerate(QUESTIONS)]
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "questions.jsonl").write_text("".join(json.dumps({"id": r["id"], "question": r["question"]}) + "\n"
                                                  for r in rows), encoding="utf-8")
    return root


def _params(command: str) -> dict[str, tuple[tuple[str, ...], str | None]]:
    import typer.main

    from rag.cli import _register
    from rag.cli.apps import app

    _register()
    group = typer.main.get_command(app)
    cmd = group.commands["ask"] if command == "ask" else group.commands["eval"].commands["qa"]
    return {p.opts[0]: (tuple(p.opts), p.help) for p in cmd.params if p.opts and p.opts[0] in PATH_FLAGS}


def test_eval_qa_shows_rag_asks_path_options_with_the_same_help():
    # When / Then: both commands declare every path flag, with the same spellings and help
    ask, qa = _params("ask"), _params("eval qa")
    assert set(ask) == set(PATH_FLAGS) and qa == ask


def test_the_cli_defaults_are_the_librarys():
    # Given the literal defaults of the CLI options (kept literal so `rag --help` imports no torch)
    from rag.cli import path_options as o
    from rag.generation.kv_blocks import BlockLayout
    from rag.cli.options import MAX_NEW_TOKENS
    from rag.generation.rag_fusion import FusionConfig
    from rag.generation.sampling import SamplingConfig

    # Then they are the library's defaults
    assert (o.FUSION, o.FUSION_TEMPERATURE, o.RAG_SEQUENCE_DECODING) == (FusionConfig().fusion, FusionConfig().temperature,
                                                                         FusionConfig().decoding)
    assert o.POSITIONS == BlockLayout().positions and MAX_NEW_TOKENS == SamplingConfig().max_new_tokens


@pytest.mark.parametrize("flags", [
    ["--fusion", "rag-token"],
    ["--fusion", "rag-sequence", "--rag-sequence-decoding", "fast", "--fusion-temperature", "0.5"],
    ["--kv-cache", "--select-blocks", "1"],
    ["--evict", "snapkv", "--kv-budget", "24"],
], ids=["rag-token", "rag-sequence-fast", "select-blocks", "evict-snapkv"])
def test_eval_qa_answers_equal_rag_ask_and_the_report_names_the_options(capsys, tmp_path, model_dir, index, qa_files, flags):
    # Given the same questions, index, model and path options for both commands
    common = ["--index", str(index), "--generator", str(model_dir), "-k", "2", "--mode", "bm25", "--max-new-tokens", "4",
              *flags]
    # When rag ask answers them (batch mode) and rag eval qa evaluates them
    assert main(["ask", "--questions", str(qa_files / "questions.jsonl"), "--out", str(tmp_path / "ask.jsonl"), *common]) == 0
    rc = main(["eval", "qa", "--dataset", str(qa_files / "qa.jsonl"), "--report", str(tmp_path / "report"),
               "--judge", "f1", "--gold-labels", "30", *common])
    err = capsys.readouterr().err
    # Then every evaluated answer is rag ask's answer (citation markers cleaned, as eval scores them)
    assert rc == 0, err
    asked = {r["id"]: r for r in map(json.loads, (tmp_path / "ask.jsonl").open(encoding="utf-8"))}
    rows = [json.loads(line) for line in (tmp_path / "report/predictions.jsonl").open(encoding="utf-8")]
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(len(QUESTIONS))]
    assert all(asked[r["id"]]["kind"] == r["kind"] == "generated" for r in rows)
    assert [r["answer"] for r in rows] == [clean_answer(asked[r["id"]]["answer"]) for r in rows]
    assert any(r["answer"] for r in rows)  # the comparison is of real text, not of empty answers
    # And the report records the path that produced them
    report = json.loads((tmp_path / "report/report.json").read_text(encoding="utf-8"))
    p = report["pipeline"]
    assert p["generator"] == str(model_dir) and p["k"] == 2 and p["mode"] == "bm25" and p["max_new_tokens"] == 4
    fusion = flags[1] if flags[0] == "--fusion" else "concat"
    assert p["fusion"]["fusion"] == fusion
    assert p["fusion"]["temperature"] == (0.5 if "--fusion-temperature" in flags else 1.0)
    assert p["kv_cache"] is ("--kv-cache" in flags)
    assert p["select_blocks"] == ({"m": 1, "layers": None} if "--select-blocks" in flags else None)
    assert (p["evict"] or {}).get("policy") == ("snapkv" if "--evict" in flags else None)
    assert (p["evict"] or {}).get("budget") == (24 if "--evict" in flags else None)
    markdown = (tmp_path / "report/report.md").read_text(encoding="utf-8")
    assert f"fusion {fusion}" in markdown


@pytest.mark.parametrize("argv", [
    ["--fusion", "rag-token"],
    ["--generator", "x", "--select-blocks", "2"],
    ["--generator", "x", "--evict", "h2o"],
    ["--generator", "x", "--evict", "h2o", "--kv-budget", "9", "--kv-cache"],
    ["--generator", "x", "--evict", "h2o", "--kv-budget", "9", "--fusion", "rag-token"],
    ["--kv-cache"],
], ids=["no-generator", "select-without-kv-cache", "evict-without-budget", "evict-with-kv-cache", "evict-with-rag-fusion",
        "kv-cache-without-generator"])
def test_eval_qa_refuses_what_rag_ask_refuses_with_the_same_line(capsys, tmp_path, qa_files, argv):
    # When both commands get the same options (before any model or index loads)
    ask_rc = main(["ask", "q", "--index", str(tiny_index().path), *argv])
    ask_err = capsys.readouterr().err
    qa_rc = main(["eval", "qa", "--dataset", str(qa_files / "qa.jsonl"), "--index", str(tiny_index().path),
                  "--report", str(tmp_path / "r"), *argv])
    qa_err = capsys.readouterr().err
    # Then the same one-line error, exit 1, and no report
    assert ask_rc == qa_rc == 1 and qa_err == ask_err
    assert qa_err.startswith("rag: error: ") and qa_err.count("\n") == 1 and "Traceback" not in qa_err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv, flag", [
    (["--generator", "x", "--fusion", "rag-doc"], "--fusion"),
    (["--generator", "x", "--evict", "lru", "--kv-budget", "9"], "--evict"),
    (["--generator", "x", "--positions", "middle"], "--positions"),
    (["--generator", "x", "--fusion", "rag-token", "--fusion-temperature", "0"], "--fusion-temperature"),
], ids=["bad-fusion", "bad-eviction", "bad-positions", "zero-temperature"])
def test_eval_qa_and_rag_ask_refuse_a_value_outside_an_options_set_as_a_usage_error(capsys, tmp_path, qa_files, argv, flag):
    # When both commands get a value the option does not have
    ask_rc = main(["ask", "q", "--index", str(tiny_index().path), *argv])
    ask_err = capsys.readouterr().err
    qa_rc = main(["eval", "qa", "--dataset", str(qa_files / "qa.jsonl"), "--index", str(tiny_index().path),
                  "--report", str(tmp_path / "r"), *argv])
    qa_err = capsys.readouterr().err
    # Then the same usage error (exit 2) naming the option and its values, and no report
    assert ask_rc == qa_rc == 2
    assert ask_err.splitlines()[-1] == qa_err.splitlines()[-1] and f"Invalid value for '{flag}'" in qa_err
    assert not (tmp_path / "r").exists()


def test_the_refusals_name_the_flags(capsys, tmp_path, qa_files):
    # When: the select-without-cache and evict-with-cache combinations
    runs = {}
    for name, argv in {"select": ["--select-blocks", "2"], "evict": ["--evict", "h2o", "--kv-budget", "9", "--kv-cache"]}.items():
        main(["eval", "qa", "--dataset", str(qa_files / "qa.jsonl"), "--index", str(tiny_index().path), "--generator", "x",
              "--report", str(tmp_path / "r"), *argv])
        runs[name] = capsys.readouterr().err
    # Then PathConfig's message, naming the CLI's flags
    assert runs["select"] == "rag: error: --select-blocks scores the cached passage keys: add --kv-cache\n"
    assert runs["evict"] == ("rag: error: --evict prunes a full-context prefill: it does not combine with --kv-cache "
                             "or a RAG fusion\n")


@pytest.mark.parametrize("generator", [["--generator", "x"], []])
def test_path_options_with_predictions_are_refused(capsys, tmp_path, qa_files, generator):
    # Given answers already computed
    (tmp_path / "p.jsonl").write_text('{"id": "q0", "answer": "blue"}\n', encoding="utf-8")
    # When a path option comes with --predictions (it could not change them), with or without a
    # generator (without one, a new user was first told to add --generator, then refused for this)
    rc = main(["eval", "qa", "--dataset", str(qa_files / "qa.jsonl"), "--predictions", str(tmp_path / "p.jsonl"),
               *generator, "--fusion", "rag-token", "--report", str(tmp_path / "r")])
    # Then the one-line refusal that names the real reason
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "go with --index, not with --predictions" in err
