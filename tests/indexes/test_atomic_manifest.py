"""Atomic directory builds and manifest validation."""

from __future__ import annotations

import json

import pytest

from indexes.atomic import atomic_directory
from indexes.errors import IndexFormatError, IndexNotFoundError
from indexes.manifest import ChunkingSpec, CorpusInfo, Manifest


def test_failed_build_leaves_previous_version_intact(tmp_path):
    # Given an existing directory
    target = tmp_path / "idx"
    with atomic_directory(target) as tmp:
        (tmp / "data").write_text("v1")
    # When a second build fails half way
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "data").write_text("half")
        raise RuntimeError("crash")
    # Then the first version is untouched and no temporary directory is left
    assert (target / "data").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]


def manifest() -> Manifest:
    return Manifest(corpus=CorpusInfo(source="c", sha256="0" * 64, documents=1, passages=1, chunking=ChunkingSpec()))


def test_manifest_round_trip(tmp_path):
    manifest().write(tmp_path)
    assert Manifest.read(tmp_path) == manifest()


def test_unknown_format_version_is_refused(tmp_path):
    raw = json.loads(manifest().model_dump_json())
    raw["format_version"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(IndexFormatError, match="format version 99"):
        Manifest.read(tmp_path)


def test_missing_index(tmp_path):
    with pytest.raises(IndexNotFoundError, match="not found"):
        Manifest.read(tmp_path / "nope")
    with pytest.raises(IndexNotFoundError, match="not an index"):
        Manifest.read(tmp_path)
