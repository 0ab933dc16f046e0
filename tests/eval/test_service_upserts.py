"""The upsert-under-load benchmark: its visibility rule, and its report on a healthy and a read-only server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from eval.benchmarks import service_upserts
from eval.benchmarks.service_http import start_server, stop_server
from eval.benchmarks.service_upserts import Version, WriteLog, markdown, visible

FIXTURES = Path(__file__).parents[1] / "fixtures"


class CannedSearch:
    """A connection whose ``/search`` answers with fixed (doc id, text) hits, whatever the query."""

    def __init__(self, hits: list[tuple[str, str]]) -> None:
        self.hits, self.queries = hits, []

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.queries.append(json.loads(body))
        return 200, json.dumps({"hits": [{"doc_id": d, "text": t} for d, t in self.hits]}).encode()


def test_a_version_is_visible_only_with_its_own_marker_and_without_the_one_it_replaced():
    # Given four versions, and a search index that shows:
    #   u1 with its new marker zqx2 (and its replaced zqx1 nowhere)    -> visible
    #   u2 with its new marker zqx4 but also its replaced zqx3 (stale) -> not visible
    #   u3's marker zqx5 only in another document's text             -> not visible
    #   u4's marker zqx6 nowhere                                      -> not visible
    versions = [Version("u1", "zqx2", "zqx1"), Version("u2", "zqx4", "zqx3"), Version("u3", "zqx5", None),
                Version("u4", "zqx6", None)]
    conn = CannedSearch([("u1", "zqx2 text"), ("u2", "zqx4 new text"), ("u2", "zqx3 old text"), ("other", "zqx5 x")])
    log = WriteLog()
    # When the probe asks which versions are visible
    seen = asyncio.run(visible(conn, versions, "bench", log))
    # Then only u1 is, after one bm25 search for the new markers and one for the replaced ones
    assert seen == {0}
    assert [q["query"] for q in conn.queries] == ["zqx2 zqx4 zqx5 zqx6", "zqx1 zqx3"]
    assert {q["mode"] for q in conn.queries} == {"bm25"} and log.probe_requests == 2


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return ["--queries", str(FIXTURES / "queries.jsonl"), "--qrels", str(FIXTURES / "qrels.tsv"),
            "--corpus", str(FIXTURES / "corpus.jsonl"), "--clients", "3", "--seconds", "5", "--rate", "0.4", "--batch", "3",
            "--updates", "1", "--warmup", "4", "-k", "5", "--out", str(tmp_path / "report.json"), *extra]


def test_a_healthy_writable_server_acknowledges_and_shows_every_upsert(sample_index, tmp_path):
    # Given the fixture index (BM25 + dense) and the files of its folder
    before = {p: p.read_bytes() for p in sample_index.rglob("*") if p.is_file()}
    # When the benchmark serves a copy writable and runs 5 s without and 5 s with upserts at one batch per 2.5 s (hybrid;
    # the gap lets the first batch settle before the second picks a document to update, even on a loaded machine)
    rc = service_upserts.main(["--index", str(sample_index), *_args(tmp_path)])
    r = json.loads((tmp_path / "report.json").read_text())
    # Then nothing failed, each phase searched, and every batch was acknowledged with its update
    assert r["failed_requests"] == 0 and r["upserts"]["failed"] == 0 and r["visibility"]["probe_errors"] == 0
    assert r["baseline"]["requests"] > 0 and r["with_upserts"]["requests"] > 0
    for phase in (r["baseline"], r["with_upserts"]):
        assert phase["p50_ms"] <= phase["p95_ms"] <= phase["p99_ms"]
    u, v = r["upserts"], r["visibility"]
    assert u["batches"] == 2 and u["acknowledged_documents"] == 2 * 3 and u["updates"] == 1
    # every acknowledged version was found by the probes, and every document at the final check
    assert v["versions"] == v["visible"] == 6 and r["final_check"] == {"documents": 5, "missing": 0, "first_missing": []}
    assert r["pass"] == (v["not_within"] == 0) and rc == (0 if r["pass"] else 1)
    # and the source index was never written
    assert {p: p.read_bytes() for p in sample_index.rglob("*") if p.is_file()} == before


def test_a_writer_the_server_refuses_is_reported_as_failures_not_a_crash(sample_index, tmp_path):
    # Given a server of the fixture index started read-only
    proc, port = start_server(sample_index, 1, [])
    try:
        # When the benchmark runs against it
        rc = service_upserts.main(["--port", str(port), *_args(tmp_path)])
    finally:
        stop_server(proc)
    r = json.loads((tmp_path / "report.json").read_text())
    # Then every upsert is a failed request (403), searches are unaffected, and the run fails
    assert r["upserts"]["batches"] == r["upserts"]["failed"] == 2 and r["upserts"]["acknowledged_documents"] == 0
    assert all(f.startswith("HTTP 403") for f in r["upserts"]["first_failures"])
    assert r["baseline"]["errors"] == r["with_upserts"]["errors"] == 0 and r["failed_requests"] == 2
    assert r["pass"] is False and rc == 1
    assert "FAIL" in markdown(r, "cmd", "machine", "2026-01-01")
