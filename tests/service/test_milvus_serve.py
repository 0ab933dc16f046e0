"""``rag serve`` over a ``--backend milvus`` index (Milvus Lite, started by the server process):
search (with metadata filters), and documents upserted and deleted over REST, unchanged from a local index."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pymilvus", reason="pymilvus not installed (pip install 'rag-toolkit[scale]')")
pytest.importorskip("milvus_lite", reason="milvus-lite not installed (pip install 'rag-toolkit[scale]')")

FIXTURES = Path(__file__).parents[1] / "fixtures"
DOC = {"id": "new1", "title": "Axolotl", "text": "The axolotl regrows whole limbs.", "metadata": {"year": 2024}}


@pytest.mark.slow  # ~45 s on the 2-core VM: an index subprocess and a server start
def test_search_upsert_delete_over_milvus(start_server, tmp_path):
    # Given a BM25 index whose weights live in a Milvus Lite file (built by the CLI in its own process:
    # Lite opens a file in one process at a time), served writable by one worker
    index = tmp_path / "milvus-index"
    subprocess.run([sys.executable, "-m", "rag.cli", "index", str(FIXTURES / "corpus.jsonl"), "--out", str(index), "--no-dense",
                    "--backend", "milvus", "--uri", str(tmp_path / "lite.db")], check=True, capture_output=True)
    srv = start_server(tmp_path, [f"live={index}"], extra=("--writable",))
    try:
        with srv.client() as c:
            def search(q: str, **extra) -> list[str]:
                r = c.post("/search", json={"query": q, "k": 3, "mode": "bm25", "index": "live"} | extra)
                assert r.status_code == 200, r.text
                return [h["id"] for h in r.json()["hits"]]

            assert "new1" not in search("axolotl limbs")
            # When a document is upserted, Then the next search finds it first
            r = c.put("/indexes/live/documents", json={"documents": [DOC]})
            assert r.status_code == 200 and r.json()["added"] == 1, r.text
            assert search("axolotl limbs")[0] == "new1"
            # And a year given as a string is refused (the index now holds 'year' as numbers), nothing written
            r = c.put("/indexes/live/documents", json={"documents": [{**DOC, "id": "new2", "metadata": {"year": "2024"}}]})
            assert r.status_code == 422 and r.json()["error"]["message"].startswith("documents[0].metadata.year is a string")
            assert "new2" not in search("axolotl limbs")
            # And a metadata filter is pushed into the engine: only the new document has a year
            assert search("axolotl limbs", filter={"year": {"$gte": 2020}}) == ["new1"]
            assert search("axolotl limbs", filter={"year": {"$lt": 2020}}) == []
            assert "new1" not in search("axolotl limbs", filter={"source": "rag-toolkit sample"})
            r = c.post("/search", json={"query": "axolotl", "mode": "bm25", "index": "live", "filter": {"yr": 2024}})
            assert r.status_code == 422 and "unknown metadata field 'yr'" in r.text
            # When it is deleted, Then it is gone
            r = c.request("DELETE", "/indexes/live/documents", json={"ids": ["new1"]})
            assert r.status_code == 200 and r.json()["deleted"] == 1
            assert "new1" not in search("axolotl limbs")
    finally:
        srv.stop()
