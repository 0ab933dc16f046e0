"""PUT / DELETE /indexes/{name}/documents: off unless writable, behind the key, bounded; every
worker serves a new commit on its next request, without a restart."""

from __future__ import annotations

import shutil

import httpx
import pytest

API_KEY = "test-key-not-a-secret"
DOC = {"id": "new1", "title": "Axolotl", "text": "The axolotl regrows whole limbs.", "metadata": {"year": 2024}}


def _search(client: httpx.Client, query: str) -> list[str]:
    r = client.post("/search", json={"query": query, "k": 3, "mode": "bm25", "index": "live"})
    assert r.status_code == 200, r.text
    return [h["id"] for h in r.json()["hits"]]


@pytest.fixture(scope="module")
def writable_server(start_server, bm25_index, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("writable")
    index = shutil.copytree(bm25_index, tmp / "live")
    srv = start_server(tmp, [f"live={index}"], api_key=API_KEY, extra=("--writable", "--workers", "2"),
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
        assert all("new1" not in _search(c, "axolotl limbs") for _ in range(8))


def test_bad_bodies_are_4xx(writable_server):
    with writable_server.client() as c:
        too_many = c.put("/indexes/live/documents", json={"documents": [DOC, {**DOC, "id": "b"}, {**DOC, "id": "c"}]})
        no_text = c.put("/indexes/live/documents", json={"documents": [{"id": "x", "text": ""}]})
        unknown = c.put("/indexes/nope/documents", json={"documents": [DOC]})
        empty = c.request("DELETE", "/indexes/live/documents", json={"ids": []})
    assert too_many.status_code == 422 and "at most 2" in too_many.json()["error"]["message"]
    assert no_text.status_code == 422 and unknown.status_code == 404 and empty.status_code == 422
