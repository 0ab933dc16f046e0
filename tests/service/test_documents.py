"""PUT / DELETE /indexes/{name}/documents: off unless writable, behind the key, bounded; every
worker serves a new commit on its next request, without a restart."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from indexes.manifest import Manifest

API_KEY = "test-key-not-a-secret"
DOC = {"id": "new1", "title": "Axolotl", "text": "The axolotl regrows whole limbs.", "metadata": {"year": 2024}}


def _search(client: httpx.Client, query: str) -> list[str]:
    r = client.post("/search", json={"query": query, "k": 3, "mode": "bm25", "index": "live"})
    assert r.status_code == 200, r.text
    return [h["id"] for h in r.json()["hits"]]


@pytest.fixture(scope="module")
def live_index(bm25_index, tmp_path_factory) -> Path:
    """A copy of the BM25 fixture index (its metadata field ``source`` holds strings), served as ``live``."""
    return Path(shutil.copytree(bm25_index, tmp_path_factory.mktemp("writable") / "live"))


@pytest.fixture(scope="module")
def writable_server(start_server, live_index):
    srv = start_server(live_index.parent, [f"live={live_index}"], api_key=API_KEY, extra=("--writable", "--workers", "2"),
                       settings={"RAG_MAX_UPSERT_DOCUMENTS": "2"})
    yield srv
    srv.stop()


def test_a_read_only_server_refuses_changes(plain_server):
    # Given a server started without --writable / When / Then
    with plain_server.client() as c:
        r = c.put("/indexes/lexical/documents", json={"documents": [DOC]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "read_only"


def test_upsert_then_delete_is_seen_by_every_worker(writable_server):
    with writable_server.client() as c:
        # Given: no key is refused, and the word is not in the index
        assert httpx.put(writable_server.url + "/indexes/live/documents", json={"documents": [DOC]}).status_code == 401
        assert "new1" not in _search(c, "axolotl limbs")
        # When: it is upserted
        r = c.put("/indexes/live/documents", json={"documents": [DOC]})
        # Then: one commit, and every following search (either worker) finds it
        assert r.status_code == 200 and r.json()["added"] == 1 and r.json()["generation"] == 2
        assert all(_search(c, "axolotl limbs")[0] == "new1" for _ in range(8))
        # When: it is deleted (with an unknown id)
        r = c.request("DELETE", "/indexes/live/documents", json={"ids": ["new1", "nope"]})
        # Then
        assert r.status_code == 200 and r.json()["deleted"] == 1 and r.json()["not_found"] == ["nope"]
        assert r.json()["committed"] is True and r.json()["generation"] == 3
        assert all("new1" not in _search(c, "axolotl limbs") for _ in range(8))
        # When: only unknown ids are deleted
        r = c.request("DELETE", "/indexes/live/documents", json={"ids": ["nope"]})
        # Then: nothing changed, no commit written: the index is still at commit 3
        assert r.status_code == 200 and r.json()["deleted"] == 0 and r.json()["not_found"] == ["nope"]
        assert r.json()["committed"] is False and r.json()["generation"] == 3


def test_bad_bodies_are_4xx(writable_server):
    with writable_server.client() as c:
        too_many = c.put("/indexes/live/documents", json={"documents": [DOC, {**DOC, "id": "b"}, {**DOC, "id": "c"}]})
        no_text = c.put("/indexes/live/documents", json={"documents": [{"id": "x", "text": ""}]})
        unknown = c.put("/indexes/nope/documents", json={"documents": [DOC]})
        empty = c.request("DELETE", "/indexes/live/documents", json={"ids": []})
    assert too_many.status_code == 422 and "at most 2" in too_many.json()["error"]["message"]
    assert no_text.status_code == 422 and unknown.status_code == 404 and empty.status_code == 422


def _files(index: Path) -> tuple[str, list[str]]:
    """What a refused request must leave as it was: the manifest's bytes and every file name."""
    return (index / "manifest.json").read_text(), sorted(str(p.relative_to(index)) for p in index.rglob("*"))


def test_a_metadata_value_of_another_type_is_422_naming_its_json_path(writable_server, live_index):
    # Given: the index holds 'source' as strings; a batch whose second document gives it a number
    before = _files(live_index)
    bad = [{"id": "z1", "text": "zebra stripes confuse flies", "metadata": {"source": "field notes"}},
           {"id": "z2", "text": "zebra foals", "metadata": {"source": 7}}]
    with writable_server.client() as c:
        # When
        r = c.put("/indexes/live/documents", json={"documents": bad})
        # Then: 422 naming documents[1].metadata.source, its type and the index's; nothing committed or written
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
        assert r.json()["error"]["message"].startswith(
            "documents[1].metadata.source is a number (7), but the index holds 'source' as strings")
        assert _files(live_index) == before and _search(c, "zebra") == []
        # And: with the right type, one commit, and the filter {"source": "field notes"} finds the document
        generation = Manifest.read(live_index).generation
        ok = c.put("/indexes/live/documents", json={"documents": [bad[0], {**bad[1], "metadata": {"source": "7"}}]})
        assert ok.status_code == 200 and ok.json()["generation"] == generation + 1
        found = c.post("/search", json={"query": "zebra", "k": 5, "mode": "bm25", "index": "live",
                                         "filter": {"source": "field notes"}})
        assert found.status_code == 200 and [h["id"] for h in found.json()["hits"]] == ["z1"]
        c.request("DELETE", "/indexes/live/documents", json={"ids": ["z1", "z2"]})


@pytest.mark.parametrize("documents, message", [
    ([{"id": "d", "text": "one"}, {"id": "d", "text": "two"}],
     "documents[1].id: duplicate id 'd' (also documents[0]); send each document once per request"),
    ([{"id": "w", "text": "  \n "}], "documents[0].text: only whitespace and no title; send the document's text"),
])
def test_bad_documents_are_422_in_rest_terms(writable_server, live_index, documents, message):
    # Given a batch a corpus reader would refuse as bad records
    before = _files(live_index)
    # When
    with writable_server.client() as c:
        r = c.put("/indexes/live/documents", json={"documents": documents})
    # Then: the JSON path and what to send, never a CLI option; nothing written
    assert r.status_code == 422 and r.json()["error"]["message"] == message and "--" not in r.text
    assert _files(live_index) == before


def test_a_lone_surrogate_or_an_empty_id_is_422_not_500(writable_server):
    with writable_server.client() as c:
        # Given / When: a metadata value holding half a UTF-16 pair (the schema types only the other
        # fields' strings), and a delete of the empty id
        body = b'{"documents": [{"id": "s", "text": "a b", "metadata": {"note": "a \\ud800 b"}}]}'
        surrogate = c.put("/indexes/live/documents", content=body, headers={"Content-Type": "application/json"})
        empty = c.request("DELETE", "/indexes/live/documents", json={"ids": [""]})
    # Then
    assert surrogate.status_code == 422 and surrogate.json()["error"]["message"].startswith("documents[0]: lone surrogate \\ud800")
    assert empty.status_code == 422 and empty.json()["error"]["fields"] == ["ids.0"] and "--" not in empty.text


def test_an_identical_upsert_is_unchanged_and_writes_no_commit_as_the_cli(writable_server, live_index):
    with writable_server.client() as c:
        # Given a document upserted over REST (commit g)
        doc = {"id": "same1", "title": "Okapi", "text": "The okapi is a giraffid.", "metadata": {"year": 2020}}
        first = c.put("/indexes/live/documents", json={"documents": [doc]})
        assert first.status_code == 200 and first.json()["committed"] is True
        g = first.json()["generation"]
        # When the same document is sent again, then with one more new document
        again = c.put("/indexes/live/documents", json={"documents": [doc]})
        mixed = c.put("/indexes/live/documents", json={"documents": [doc, {**doc, "id": "same2"}]})
    # Then: the first is unchanged with no commit (still at g); the second writes only same2 (commit g + 1)
    assert again.status_code == 200, again.text
    assert again.json() | {"notes": []} == {"generation": g, "added": 0, "replaced": 0, "deleted": 0, "not_found": [],
                                            "passages_added": 0, "passages_deleted": 0, "segments": first.json()["segments"],
                                            "unchanged": 1, "committed": False, "notes": []}
    assert mixed.status_code == 200 and (mixed.json()["added"], mixed.json()["unchanged"]) == (1, 1)
    assert mixed.json()["committed"] is True and mixed.json()["generation"] == g + 1 == Manifest.read(live_index).generation
