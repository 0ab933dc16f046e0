"""Settings and ``rag serve`` arguments: names not paths, limits typed, bad input named."""

from __future__ import annotations

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
