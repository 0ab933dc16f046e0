"""Options with a fixed set of values are choices: ``--help`` lists the values, a value outside the
set is a usage error (exit 2) naming the option and the choices, and each set is the library's.

The scan covers every option of every command (from the functions the commands are registered
with), so a new option typed ``str`` fails here unless it takes open-ended text (listed below,
with why).
"""

from __future__ import annotations

import enum
import types
import typing

import pytest

from rag.cli import _register, main
from rag.cli.apps import app

#: Options whose values are open-ended, and why (everything else typed ``str`` should be a choice).
FREE_TEXT = {
    "api_key": "a secret", "base": "a model name or folder", "collection": "a Milvus collection name",
    "device": "cuda:N is open-ended", "encoder": "a model name, folder or llm:MODEL", "filter": "a JSON object",
    "generator": "a model name, folder or file", "host": "an interface address", "id_field": "a field name",
    "ids": "document ids", "index": "NAME=DIR pairs", "model": "a model name, folder or file",
    "passage_prefix": "any prefix text", "query": "the query", "query_prefix": "any prefix text",
    "question": "the question", "ray": "a Ray address", "rerank": "a model name or folder", "stop": "stop strings",
    "text_field": "a field name", "title_field": "a field name", "uri": "a Milvus URI",
}


def _leaves(typer_app, path):
    for command in typer_app.registered_commands:
        yield [*path, command.name or command.callback.__name__.replace("_", "-")], command.callback
    for group in typer_app.registered_groups:
        yield from _leaves(group.typer_instance, [*path, group.name])


def _parameters():
    """(command words, parameter name, value type, typer's OptionInfo/ArgumentInfo) of every parameter."""
    _register()
    for words, callback in _leaves(app, []):
        for name, hint in typing.get_type_hints(callback, include_extras=True).items():
            if name == "return":
                continue
            tp, info = typing.get_args(hint)[:2] if typing.get_origin(hint) is typing.Annotated else (hint, None)
            if typing.get_origin(tp) in (typing.Union, types.UnionType):  # X | None
                tp = next(a for a in typing.get_args(tp) if a is not type(None))
            yield words, name, tp, info


def _choices(tp) -> tuple[str, ...] | None:
    if typing.get_origin(tp) is typing.Literal:
        return typing.get_args(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tuple(m.value for m in tp)
    return None


def _flag(name: str, info) -> str:
    first = (info.default,) if isinstance(info.default, str) and info.default.startswith("-") else ()  # Option("--x", "-x")
    decls = (*first, *(info.param_decls or ())) or (f"--{name.replace('_', '-')}",)
    return next((d for d in decls if d.startswith("--")), decls[0])


CHOICE_OPTIONS = [(words, _flag(name, info), _choices(tp), info.hidden)
                  for words, name, tp, info in _parameters() if _choices(tp) is not None]


def test_no_option_with_a_fixed_set_of_values_is_free_text():
    # Given every parameter of every command / When the free-text ones are collected
    free = sorted({name for _, name, tp, _ in _parameters() if tp is str or tp == list[str]} - set(FREE_TEXT))
    # Then each takes open-ended text; a fixed set would be a Literal or Enum choice
    assert free == []


def test_the_scan_finds_the_choices_of_rag_ask_and_eval_qa():
    # Given / When / Then: the generation-path options of both commands are among the choices found
    found = {(" ".join(words), flag) for words, flag, _, _ in CHOICE_OPTIONS}
    for command in ("ask", "eval qa"):
        assert {(command, f) for f in ("--fusion", "--evict", "--positions", "--rag-sequence-decoding", "--mode")} <= found
    assert len(found) >= 30


@pytest.mark.parametrize("words, flag, choices, hidden", CHOICE_OPTIONS,
                         ids=[f"{' '.join(w)} {f}" for w, f, _, _ in CHOICE_OPTIONS])
def test_help_lists_the_values_and_a_bad_value_is_a_usage_error(capsys, words, flag, choices, hidden):
    # When help is asked for, then a value outside the set is given
    assert main([*words, "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    rc = main([*words, flag, "not-a-choice"])
    err = " ".join(capsys.readouterr().err.split())
    # Then help shows the values (hidden options aside), and the error is click's usage error (exit 2)
    # naming the option and every value, with no traceback
    assert hidden or f"<{'|'.join(choices)}>" in help_text
    assert rc == 2 and f"Invalid value for '{flag}'" in err and "'not-a-choice' is not one of" in err, err
    assert all(f"'{c}'" in err for c in choices) and "Traceback" not in err


def _library_sets() -> dict[str, set[str]]:
    """The library's value set behind each CLI choice type (imported here: some load torch)."""
    import uvicorn.config

    from indexes.kv_store import StoreDType
    from indexes.manifest import AnalyzerSpec, VectorBackendSpec
    from rag.corpus import CorpusFormat
    from rag.generation.generator import DType
    from rag.generation.kv_blocks import Positions
    from rag.generation.kv_evict import Policy
    from rag.generation.rag_fusion import Fusion, SequenceDecoding
    from rag.training.negatives import NegativeConfig
    from rag.training.reranker import RerankerTrainConfig

    def args(tp) -> set[str]:
        return set(typing.get_args(tp))

    return {
        "CorpusFormat": args(CorpusFormat), "ModelDType": args(DType), "StoreDType": args(StoreDType),
        "VectorBackend": args(VectorBackendSpec.model_fields["kind"].annotation) | {"milvus"},
        "Stemmer": args(AnalyzerSpec.model_fields["stemmer"].annotation),
        "Stopwords": args(AnalyzerSpec.model_fields["stopwords"].annotation),
        "Positions": args(Positions), "Fusion": args(Fusion), "SequenceDecoding": args(SequenceDecoding),
        "EvictionPolicy": args(Policy), "NegativeSource": args(typing.get_type_hints(NegativeConfig)["source"]),
        "RerankerLoss": args(typing.get_type_hints(RerankerTrainConfig)["loss"]),
        "LogLevel": set(uvicorn.config.LOG_LEVELS),
    }


CLI_SETS = ["CorpusFormat", "ModelDType", "StoreDType", "VectorBackend", "Stemmer", "Stopwords", "Positions", "Fusion",
            "SequenceDecoding", "EvictionPolicy", "NegativeSource", "RerankerLoss", "LogLevel"]


@pytest.mark.parametrize("name", CLI_SETS)
def test_each_cli_choice_set_is_the_librarys(name):
    # Given the CLI's light copy of a value set, and the library's own
    from rag.cli import choices

    # When / Then they hold the same values
    assert set(typing.get_args(getattr(choices, name))) == _library_sets()[name]
