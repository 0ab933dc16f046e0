"""CLI conventions every command follows: readable help, ``--version``, ``-`` for stdout, one ``--device`` default."""

from __future__ import annotations

import csv
import io
import json
from importlib.metadata import version
from pathlib import Path

import pytest
import typer

from rag.cli import _register, main
from rag.cli.apps import app
from rag.cli.options import resolve_device

FIXTURES = Path(__file__).parents[1] / "fixtures"


def _commands():
    """(``rag eval qa``-style name, click command) for every leaf command."""
    _register()

    def walk(cmd, path):
        if hasattr(cmd, "commands"):  # a group (typer >= 0.2x ships its own click: no isinstance check)
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), cmd

    commands = list(walk(typer.main.get_command(app), ["rag"]))
    assert len(commands) >= 14  # the walk reached the leaves (rag eval qa, rag train retriever, ...)
    return commands


def test_every_option_has_help_and_help_shows_no_bool_type(capsys):
    for name, cmd in _commands():
        # every option and argument says what it is for
        assert [p.name for p in cmd.params if not getattr(p, "help", None)] == [], name
        # and flags are shown as flags, not as "<bool>" values
        assert main([*name.split()[1:], "--help"]) == 0
        assert "<bool>" not in capsys.readouterr().out, name


def test_bracketed_help_text_is_printed_as_written(capsys):
    # "[passages]" was eaten as markup, leaving "{id, answer, , }"
    assert main(["eval", "qa", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "{id, answer} per line (optional: passages, latency_ms, kind)" in out and ", , }" not in out
    assert main(["eval", "ppi", "--help"]) == 0  # other bracketed texts survive too
    assert "{id, label}" in capsys.readouterr().out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"rag {version('rag-toolkit')}"


def test_every_device_option_defaults_to_auto():
    devices = {name: p.default for name, cmd in _commands() for p in cmd.params if p.name == "device"}
    assert len(devices) >= 8 and set(devices.values()) == {"auto"}, devices


def test_auto_device_resolves_to_what_torch_sees():
    import torch

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda:1") == "cuda:1"


@pytest.fixture(scope="module")
def bm25_index(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bm25") / "idx"
    assert main(["index", str(FIXTURES / "corpus.jsonl"), "--out", str(out), "--no-dense"]) == 0
    return out


def test_run_dash_writes_the_trec_run_to_stdout(bm25_index, tmp_path, monkeypatch, capsys):
    # Given a working directory to catch a stray file named "-"
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    # When
    rc = main(["search", "--index", str(bm25_index), "--mode", "bm25", "-k", "5",
               "--queries", str(FIXTURES / "queries.jsonl"), "--run", "-"])
    captured = capsys.readouterr()
    assert main(["search", "--index", str(bm25_index), "--mode", "bm25", "-k", "5",
                 "--queries", str(FIXTURES / "queries.jsonl"), "--run", "file.trec"]) == 0
    # Then stdout holds the run the file option writes, and no file named "-" exists
    assert rc == 0 and captured.out == (tmp_path / "file.trec").read_text()
    assert captured.out.splitlines()[0].split()[:4] == ["q1", "Q0", "vax1", "1"]
    assert "wrote" in captured.err and not (tmp_path / "-").exists()


def test_eval_retrieval_run_dash_keeps_metrics_off_stdout(bm25_index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["eval", "retrieval", "--index", str(bm25_index), "--mode", "bm25", "--queries",
               str(FIXTURES / "queries.jsonl"), "--qrels", str(FIXTURES / "qrels.tsv"), "--run", "-"])
    captured = capsys.readouterr()
    assert rc == 0 and all(len(line.split()) == 6 for line in captured.out.splitlines())
    assert "ndcg@10" in captured.err and not (tmp_path / "-").exists()


@pytest.mark.parametrize("argv", [
    ["index", str(FIXTURES / "corpus.jsonl"), "--out", "-", "--no-dense"],
    ["eval", "qa", "--dataset", "qa.jsonl", "--predictions", "p.jsonl", "--report", "-"],
    ["eval", "retrieval", "--index", "i", "--queries", "q", "--qrels", "r", "--report", "-"],
    ["train", "retriever", "--out", "-", "--pairs", "p.jsonl"],
    ["train", "query-encoder", "--index", "i", "--out", "-"],
])
def test_dash_for_an_output_directory_is_refused(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert "only works for output files" in capsys.readouterr().err and not (tmp_path / "-").exists()


def test_label_hint_leads_to_a_command_that_works(tmp_path, capsys):
    # Given a QA set and predictions for it
    rows = [{"id": f"q{i}", "question": f"Who won game {i}?", "answers": ["Denver Broncos"]} for i in range(40)]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"id": r["id"], "answer": "Denver Broncos" if i % 4
                                                          else "Carolina"}) + "\n" for i, r in enumerate(rows)))
    # When a template is drawn to stdout, then to a file
    assert main(["eval", "label", "--dataset", str(tmp_path / "qa.jsonl"), "--predictions", str(tmp_path / "p.jsonl"),
                 "--size", "30", "--out", "-"]) == 0
    assert len(list(csv.DictReader(io.StringIO(capsys.readouterr().out)))) == 30
    labels = tmp_path / "to_label.csv"
    assert main(["eval", "label", "--dataset", str(tmp_path / "qa.jsonl"), "--predictions", str(tmp_path / "p.jsonl"),
                 "--size", "30", "--out", str(labels)]) == 0
    hint = capsys.readouterr().err
    # Then the hint names `rag eval qa ... --labels`, not a judge file that does not exist yet
    assert "rag eval qa" in hint and f"--labels {labels}" in hint and "JUDGE.jsonl" not in hint
    # and following it (labels filled in by a person, report dir chosen) works and writes the judge file
    filled = [r | {"label": int(r["answer"] == "Denver Broncos")} for r in csv.DictReader(labels.open())]
    with labels.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "question", "answer", "label"])
        writer.writeheader()
        writer.writerows(filled)
    command = hint.split("`")[1].replace("REPORT_DIR", str(tmp_path / "report")).split()
    assert main([*command[1:], "--judge", "f1"]) == 0
    assert (tmp_path / "report" / "judge.jsonl").exists()
    assert main(["eval", "ppi", "--labels", str(labels), "--judge", str(tmp_path / "report" / "judge.jsonl")]) == 0


def test_registering_the_commands_imports_no_heavy_library():
    # Given a fresh interpreter (this one has torch loaded by other tests)
    import subprocess
    import sys

    code = ("import sys, rag.cli; rag.cli._register(); "
            "print(sorted(m for m in ('torch', 'scipy', 'transformers', 'syntok', 'eval.qa_eval') if m in sys.modules))")
    # When
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # Then `rag --help` (and every usage error) stays fast
    assert out.strip() == "[]"
