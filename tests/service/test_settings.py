"""Settings and ``rag serve`` arguments: names not paths, limits typed, bad input named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from rag.cli import main
from service.settings import Settings, indexes_from_args


def test_index_arguments_become_names():
    # When / Then
    assert indexes_from_args(["build/scifact", "fiqa=/data/fiqa-index"]) == {
        "scifact": Path("build/scifact"), "fiqa": Path("/data/fiqa-index")}
    with pytest.raises(ValueError, match="two indexes are named 'x'"):
        indexes_from_args(["a/x", "b/x"])


def test_settings_come_from_rag_variables(monkeypatch):
    # Given
    monkeypatch.setenv("RAG_INDEXES", '{"one": "/i/one", "two": "/i/two"}')
    monkeypatch.setenv("RAG_MAX_K", "20")
    monkeypatch.setenv("RAG_API_KEY", "k")
    # When
    s = Settings()
    # Then the first index is the default, limits are typed, the key is not printed
    assert s.default_index == "one" and s.max_k == 20 and s.api_key.get_secret_value() == "k"
    assert "k'" not in repr(s)


@pytest.mark.parametrize("indexes", [{"../up": "/x"}, {"a/b": "/x"}, {"": "/x"}])
def test_index_names_cannot_be_paths(indexes):
    with pytest.raises(ValidationError, match="index name"):
        Settings(indexes=indexes)


def test_default_index_must_be_configured():
    with pytest.raises(ValidationError, match="default_index"):
        Settings(indexes={"a": "/x"}, default_index="b")


def test_serve_refuses_a_missing_index_in_one_line(tmp_path, capsys):
    # When
    rc = main(["serve", "--index", f"gone={tmp_path / 'missing'}"])
    # Then
    err = capsys.readouterr().err
    assert rc == 1 and "--index gone: index directory not found" in err and "Traceback" not in err


@pytest.fixture
def restored_environ():
    """``rag serve`` hands its settings to the workers as RAG_* variables: undo them after the test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize(("env", "named", "said"), [
    ({"RAG_RERANK_DEPTH": "500"}, "setting rerank_depth (--rerank-depth, RAG_RERANK_DEPTH): ",
     "500 exceeds RAG_MAX_RERANK_DEPTH (200"),
    ({"RAG_RERANK_WEIGHT": "2"}, "setting rerank_weight (--rerank-weight, RAG_RERANK_WEIGHT): ",
     "Input should be less than or equal to 1, got '2'"),
    ({"RAG_MAX_K": "many"}, "setting max_k (RAG_MAX_K): ", "Input should be a valid integer"),
    ({"RAG_DEFAULT_INDEX": "other"}, "setting default_index (RAG_DEFAULT_INDEX): ",
     "'other' is not one of the configured indexes ('sample')"),
], ids=["depth-over-cap", "weight-range", "type", "default-index"])
def test_serve_names_the_option_and_variable_of_a_bad_setting(restored_environ, monkeypatch, capsys, sample_index, env, named, said):
    # Given a bad RAG_* variable (field and model validators alike)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # When the server is started
    rc = main(["serve", "--index", f"sample={sample_index}"])
    # Then one line names the setting, its option where it has one and its variable, without pydantic's prefixes
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "\n" not in err and "Traceback" not in err
    assert f"{named}{said}" in err, err
    assert "Value error" not in err and "setting :" not in err


def test_a_depth_over_the_cap_on_the_command_line_names_both_variables(restored_environ, monkeypatch, capsys, sample_index, tiny_cross_encoder):
    # Given --rerank-depth 500 with the default cap (200)
    monkeypatch.delenv("RAG_MAX_RERANK_DEPTH", raising=False)
    # When
    rc = main(["serve", "--index", f"sample={sample_index}", "--rerank", str(tiny_cross_encoder), "--rerank-depth", "500"])
    # Then the flag, its variable and the cap's variable are named
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.endswith(
        "setting rerank_depth (--rerank-depth, RAG_RERANK_DEPTH): 500 exceeds RAG_MAX_RERANK_DEPTH (200, the largest "
        "depth served); lower it or raise RAG_MAX_RERANK_DEPTH"), err


def test_serve_help_states_the_rerank_depth_cap(capsys):
    # When
    rc = main(["serve", "--help"])
    # Then the help of --rerank-depth names its cap and the variable that sets it
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert rc == 0 and "at most RAG_MAX_RERANK_DEPTH (default 200)" in out
