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
    # Then the first version is untouched and no temporary directory is left (only the lock file)
    assert (target / "data").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".idx.lock", "idx"]


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


def test_concurrent_build_of_the_same_target_is_refused(tmp_path):
    # Given a build in progress
    from indexes.atomic import BuildInProgressError

    target = tmp_path / "idx"
    with atomic_directory(target) as first:
        (first / "a").write_text("1")
        # When a second build of the same target starts, Then it fails at once
        with pytest.raises(BuildInProgressError, match="another process is building"):
            with atomic_directory(target):
                pass
        # and the first build's files are untouched
        assert (first / "a").read_text() == "1"
    assert (target / "a").read_text() == "1"


def test_stale_temporary_directory_of_a_dead_process_is_removed(tmp_path):
    stale = tmp_path / ".idx.tmp-999999999-abc"
    stale.mkdir()
    with atomic_directory(tmp_path / "idx"):
        pass
    assert not stale.exists()


def test_written_files_get_normal_permissions(tmp_path):
    from indexes.atomic import atomic_write_text

    atomic_write_text(tmp_path / "f", "x")
    assert (tmp_path / "f").stat().st_mode & 0o044  # group/other readable under the usual umask 022
