"""``rag add``/``delete``/``compact``/``check`` as a user sees them: metadata types kept, skipped records
counted, results on stdout, one-line errors on stderr, nothing written on refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexes.manifest import Manifest
from rag.cli import main
from rag.index import open_index

DOCS = [
    {"_id": "s1", "title": "Blue sky", "text": "the sky is blue because air scatters blue light", "year": 2019,
     "source": "wiki", "open": True},
    {"_id": "s2", "title": "Sunsets", "text": "red sky at sunset light travels through more air", "year": 2012.5,
     "source": "paper", "open": False},
]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


@pytest.fixture
def index(tmp_path, capsys) -> Path:
    """A BM25-only index of DOCS (year: numbers, source: strings, open: true/false)."""
    assert main(["index", str(_jsonl(tmp_path / "c.jsonl", DOCS)), "--out", str(tmp_path / "idx"), "--no-dense"]) == 0
    capsys.readouterr()
    return tmp_path / "idx"


def _state(index: Path) -> tuple[str, list[str]]:
    """Everything a refused change must leave as it was: the manifest's bytes and every file name."""
    return (index / "manifest.json").read_text(), sorted(str(p.relative_to(index)) for p in index.rglob("*"))


def _filter_ids(index: Path, f: dict) -> list[str]:
    ix = open_index(index)
    try:
        return sorted(p.doc_id for p in ix.store.get(ix.where(f).mask.nonzero()[0].tolist()))
    finally:
        ix.close()


def test_rag_index_records_the_type_of_each_metadata_field(index):
    # Given the index of DOCS / Then: ints and floats are numbers; a bool is its own type
    assert Manifest.read(index).metadata_fields == {"open": ("bool",), "source": ("string",), "year": ("number",)}


@pytest.mark.parametrize("field, value, kind, held", [
    ("year", "2020", 'a string ("2020")', "numbers"),
    ("year", True, "a true/false value (true)", "numbers"),
    ("open", 1, "a number (1)", "true/false values"),
    ("source", ["wiki"], 'a list (["wiki"])', "strings"),
])
def test_rag_add_refuses_a_value_of_another_type_naming_file_line_and_field(capsys, tmp_path, index, field, value, kind, held):
    # Given a file whose first record is fine and whose second gives a field another type than the index holds
    before = _state(index)
    f = _jsonl(tmp_path / "new.jsonl", [{"_id": "n1", "text": "blue light", "year": 2021},
                                        {"_id": "n2", "text": "sky at night", field: value}])
    # When
    rc, out, err = run_cli(capsys, "add", "--index", index, f)
    # Then: one line naming file:line, the field, its type and the index's; exit 1; nothing written, nothing committed
    assert rc == 1 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"rag: error: {f}:2: metadata field {field!r} is {kind}, but the index holds {field!r} as {held}")
    assert _state(index) == before


def test_an_accepted_upsert_is_found_by_the_filter_the_user_expects(capsys, tmp_path, index):
    # Given: a float where the index holds ints, a null, and a field new to the index (a string)
    f = _jsonl(tmp_path / "new.jsonl", [{"_id": "n1", "text": "blue light", "year": 2020},
                                        {"_id": "n2", "text": "sky at night", "year": 2020.0, "open": None, "doi": "10.1/x"}])
    # When
    rc, out, err = run_cli(capsys, "add", "--index", index, f)
    # Then: both are added, {"year": 2020} finds exactly them, and the new field is recorded as a string
    assert rc == 0, err
    assert _filter_ids(index, {"year": 2020}) == ["n1", "n2"]
    assert Manifest.read(index).metadata_fields == {"doi": ("string",), "open": ("bool",), "source": ("string",),
                                                    "year": ("number",)}
    # And: the new field's type now binds later upserts, through deletes and compaction
    assert run_cli(capsys, "delete", "--index", index, "n2")[0] == 0
    assert run_cli(capsys, "compact", "--index", index)[0] == 0
    rc, _, err = run_cli(capsys, "add", "--index", index, _jsonl(tmp_path / "more.jsonl", [{"_id": "n3", "text": "x y", "doi": 7}]))
    assert rc == 1 and "metadata field 'doi' is a number (7), but the index holds 'doi' as strings" in err


def test_a_field_whose_last_document_was_deleted_still_filters_matching_nothing(capsys, tmp_path, index):
    # Given an upserted document that is the only one with the field "doi", then deleted
    # (a new user's trial: the filter then failed as "unknown field" while rag add still held "doi" to strings)
    assert run_cli(capsys, "add", "--index", index, _jsonl(tmp_path / "n.jsonl", [{"_id": "n1", "text": "a b", "doi": "10.1/x"}]))[0] == 0
    assert _filter_ids(index, {"doi": "10.1/x"}) == ["n1"]
    assert run_cli(capsys, "delete", "--index", index, "n1")[0] == 0
    # When filtered on it, through the library and the CLI
    # Then: no passage matches, and no error; a value of another type is still refused, as by rag add
    assert _filter_ids(index, {"doi": "10.1/x"}) == []
    rc, out, err = run_cli(capsys, "search", "--index", index, "--mode", "bm25", "--filter", '{"doi": "10.1/x"}', "sky")
    assert rc == 0 and "Traceback" not in err, err
    rc, _, err = run_cli(capsys, "search", "--index", index, "--mode", "bm25", "--filter", '{"doi": 7}', "sky")
    assert rc == 1 and "field 'doi' holds strings, not numbers" in err


def test_an_index_without_the_record_takes_the_types_of_its_passages(capsys, tmp_path, index):
    # Given an index whose manifest predates the record (the field removed)
    raw = json.loads((index / "manifest.json").read_text())
    del raw["metadata_fields"]
    (index / "manifest.json").write_text(json.dumps(raw))
    assert Manifest.read(index).metadata_fields is None
    before = _state(index)
    # When: a string year is upserted
    rc, _, err = run_cli(capsys, "add", "--index", index, _jsonl(tmp_path / "n.jsonl", [{"_id": "n1", "text": "a b", "year": "2020"}]))
    # Then: refused from the types its live passages hold; a number is accepted, and the record written
    assert rc == 1 and "n.jsonl:1: metadata field 'year' is a string" in err and _state(index) == before
    assert run_cli(capsys, "add", "--index", index, _jsonl(tmp_path / "m.jsonl", [{"_id": "n1", "text": "a b", "year": 2020}]))[0] == 0
    assert Manifest.read(index).metadata_fields["year"] == ("number",)


def test_skip_bad_lines_says_how_many_records_it_skipped_and_the_first(capsys, tmp_path, index):
    # Given a file with two bad records (lines 2 and 4) among three good ones
    f = _jsonl(tmp_path / "new.jsonl", [{"_id": "n1", "text": "a b"}, '{"_id": "n2", "text": ', {"_id": "n3", "text": "c"},
                                        {"_id": "n4"}, {"_id": "n5", "text": "d"}])
    # When: rag add and rag index skip them
    rc_add, out_add, _ = run_cli(capsys, "add", "--index", index, f, "--skip-bad-lines")
    rc_index, out_index, _ = run_cli(capsys, "index", f, "--out", tmp_path / "fresh", "--no-dense", "--skip-bad-lines")
    # Then: both summaries count the two and name the first by file:line
    assert rc_add == 0 and "3 added" in out_add and f", 2 bad records skipped (first: {f}:2: " in out_add
    assert rc_index == 0 and "indexed 3 documents" in out_index and f", 2 bad records skipped (first: {f}:2: " in out_index


def test_summaries_are_results_on_stdout(capsys, tmp_path, index):
    # Given the index and one new document
    f = _jsonl(tmp_path / "new.jsonl", [{"_id": "n1", "text": "blue light"}])
    # When: each command runs
    runs = {"add": run_cli(capsys, "add", "--index", index, f),
            "delete": run_cli(capsys, "delete", "--index", index, "n1", "nope"),
            "compact": run_cli(capsys, "compact", "--index", index),
            "check": run_cli(capsys, "check", "--index", index)}
    # Then: each prints its summary, one line, on stdout; stderr holds only the warning about the unknown id
    starts = {"add": f"added {f}: 1 added", "delete": f"deleted from {index}: 0 added, 0 replaced, 1 deleted",
              "compact": f"{index}: nothing to compact", "check": f"{index}: "}  # n1's segment left whole: one segment
    for name, (rc, out, err) in runs.items():
        assert rc == 0 and out.startswith(starts[name]) and out.count("\n") == 1, (name, out, err)
        assert err == ("not in the index: nope\n" if name == "delete" else ""), (name, err)


def test_a_delete_without_ids_names_the_cli_options_only_on_the_cli(capsys, index):
    # Given / When: rag delete with no ids, and the library call REST makes
    from indexes.errors import InputError
    from rag.live import delete_documents

    rc, out, err = run_cli(capsys, "delete", "--index", index)
    with pytest.raises(InputError) as library:
        delete_documents(index, [""])
    # Then: the CLI's usage error (exit 2) says which options give ids; the library (also behind REST) names no CLI option
    errors = [line for line in err.splitlines() if line.startswith("Error")]
    assert rc == 2 and out == "" and errors == ["Error: Invalid value for 'IDS...': no document ids to delete: give IDS or --ids-file FILE"]
    assert str(library.value) == "no document ids to delete"


def _commit_files(index: Path) -> list[str]:
    return sorted(p.name for p in (index / "commits").iterdir()) if (index / "commits").is_dir() else []


def test_compact_of_an_index_with_one_segment_and_no_deletions_says_there_is_nothing_to_compact(capsys, index):
    # Given a freshly built index: one segment, nothing deleted
    manifest_before, g = (index / "manifest.json").read_bytes(), Manifest.read(index).generation
    commits_before = _commit_files(index)
    # When it is compacted
    rc, out, err = run_cli(capsys, "compact", "--index", index)
    # Then: success, a plain "nothing to compact" naming the commit it is still at, and no commit written
    assert rc == 0 and err == ""
    assert out == f"{index}: nothing to compact (one segment, no deleted passages); no new commit, the index is still at commit {g}\n"
    assert (index / "manifest.json").read_bytes() == manifest_before and _commit_files(index) == commits_before


def test_compact_after_a_delete_publishes_a_new_commit(capsys, index):
    # Given an index with a tombstone (commit g + 1)
    g = Manifest.read(index).generation
    assert main(["delete", "--index", str(index), "s2"]) == 0
    capsys.readouterr()
    # When it is compacted
    rc, out, _ = run_cli(capsys, "compact", "--index", index)
    # Then: commit g + 2, one segment (singular), and a second compact has nothing left to do
    assert rc == 0 and out.startswith(f"compacted {index}: ") and f"; commit {g + 2}, 1 segment, " in out
    assert Manifest.read(index).generation == g + 2
    rc, out, _ = run_cli(capsys, "compact", "--index", index)
    assert rc == 0 and out.startswith(f"{index}: nothing to compact") and out.rstrip().endswith(f"still at commit {g + 2}")


def test_a_delete_of_unknown_ids_only_writes_no_commit_and_says_so(capsys, index):
    # Given the index at its first commit g
    manifest_before, g = (index / "manifest.json").read_bytes(), Manifest.read(index).generation
    # When only ids the index does not hold are deleted
    rc, out, err = run_cli(capsys, "delete", "--index", index, "nope")
    # Then: nothing deleted, one id not found (singular), the index unchanged at commit g
    assert rc == 0 and err == "not in the index: nope\n"
    assert out == f"{index}: nothing to delete, 1 id not found; no new commit, the index is still at commit {g}\n"
    assert (index / "manifest.json").read_bytes() == manifest_before


def test_rag_check_counts_in_the_singular_when_there_is_one_commit(capsys, index):
    # Given a freshly built index (one commit)
    # When it is checked
    rc, out, _ = run_cli(capsys, "check", "--index", index)
    # Then: "of 1 commit", never "1 commits"
    assert rc == 0 and out.endswith(" of 1 commit verified\n") and "1 commits" not in out


def test_summaries_of_one_document_and_one_passage_use_the_singular(capsys, tmp_path):
    # Given a corpus of one short document
    corpus = _jsonl(tmp_path / "one.jsonl", [{"_id": "d1", "text": "blue light"}])
    # When it is indexed
    rc, out, _ = run_cli(capsys, "index", corpus, "--out", tmp_path / "one", "--no-dense")
    # Then: "1 document as 1 passage"
    assert rc == 0 and out.startswith(f"indexed 1 document as 1 passage (bm25) into {tmp_path / 'one'} ")
