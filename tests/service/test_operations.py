"""Probes, metrics, request logs and graceful shutdown of a real server process."""

from __future__ import annotations

import signal
import socket
import time

import httpx


def test_ready_server_reports_ready(server):
    r = httpx.get(server.url + "/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready", "indexes": ["sample"], "detail": None}


def test_liveness_and_readiness_list_the_same_indexes(plain_server):
    # Given a ready server of one index / When both probes are asked
    live, ready = httpx.get(plain_server.url + "/healthz"), httpx.get(plain_server.url + "/readyz")
    # Then: the same served names on both; only the status differs
    assert live.json() == {"status": "ok", "indexes": ["lexical"], "detail": None}
    assert ready.json() == {"status": "ready", "indexes": ["lexical"], "detail": None}


def test_failed_load_is_503_on_readyz_and_search_but_live(start_server, broken_index, tmp_path):
    # Given a server whose index names an encoder that cannot be loaded
    srv = start_server(tmp_path, [f"broken={broken_index}"], wait_ready=False)
    try:
        deadline = time.monotonic() + 60
        while (ready := httpx.get(srv.url + "/readyz")).json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.1)
        # When
        live = httpx.get(srv.url + "/healthz")
        search = httpx.post(srv.url + "/search", json={"query": "sky", "mode": "bm25"})
    finally:
        srv.stop()
    # Then the process lives, says it is not ready and why: the error's own message (issue 12.13),
    # with the index folder named by the index's name (no server paths)
    assert live.status_code == 200 and live.json()["indexes"] == ready.json()["indexes"] == ["broken"]
    assert ready.status_code == 503 and ready.json()["status"] == "failed"
    assert "index 'broken'/no-such-model" in ready.json()["detail"] and str(broken_index) not in ready.text
    assert search.status_code == 503 and search.json()["error"]["code"] == "not_ready"
    assert any(r.get("message", "").startswith("loading failed: ModelLoadError") for r in srv.log_records())


def test_damaged_index_file_is_named_on_readyz(start_server, bm25_index, tmp_path):
    # Given a server over a copy of an index whose BM25 postings file is empty (a crash mid-copy)
    import shutil

    index = shutil.copytree(bm25_index, tmp_path / "lexical")
    (postings,) = index.glob("segments/*/bm25_postings.npz")  # format 2: the files live in the segment
    postings.write_bytes(b"")
    name = postings.relative_to(index).as_posix()
    srv = start_server(tmp_path, [f"lexical={index}"], wait_ready=False)
    try:
        deadline = time.monotonic() + 60
        while (ready := httpx.get(srv.url + "/readyz")).json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.1)
        search = httpx.post(srv.url + "/search", json={"query": "sky", "mode": "bm25"})
    finally:
        srv.stop()
    # Then /readyz and the 503 say which file and what to do, not an exception class
    detail = ready.json()["detail"]
    assert ready.status_code == 503 and detail.startswith(f"index 'lexical'/{name}: checksum mismatch")
    assert "rebuild the index" in detail and str(tmp_path) not in ready.text
    assert search.status_code == 503 and detail in search.json()["error"]["message"]


def test_metrics_count_requests_per_route_and_mode(server):
    # Given
    with server.client() as c:
        for mode in ("bm25", "hybrid"):
            c.post("/search", json={"query": "sky", "k": 1, "mode": mode})
        c.post("/search", json={"query": "sky", "k": 0})
        # When
        text = c.get("/metrics").text
    # Then
    assert 'rag_requests_total{method="POST",mode="bm25",route="/search",status="200"}' in text
    assert 'rag_requests_total{method="POST",mode="hybrid",route="/search",status="200"}' in text
    assert 'route="/search",status="422"' in text
    assert 'rag_request_duration_seconds_bucket{le="0.005",mode="bm25",route="/search"}' in text
    assert "rag_encoder_batch_size_count" in text and "rag_requests_in_flight" in text


def test_one_json_log_line_per_request_with_its_id(server):
    # When a request carries its own id
    with server.client() as c:
        r = c.post("/search", json={"query": "sky", "k": 1, "mode": "bm25"}, headers={"X-Request-ID": "abc-123"})
    time.sleep(0.2)  # the log line is written after the response
    # Then the id comes back and one structured line records route, status and latency
    assert r.headers["x-request-id"] == "abc-123"
    lines = [rec for rec in server.log_records() if rec.get("request_id") == "abc-123"]
    assert len(lines) == 1
    line = lines[0]
    assert line["route"] == "/search" and line["status"] == 200 and line["mode"] == "bm25"
    assert line["index"] == "sample" and line["latency_ms"] > 0 and line["logger"] == "rag.service.access"


def test_shutdown_finishes_the_request_in_flight(start_server, bm25_index, tmp_path):
    # Given a server and a request whose body is only half sent
    srv = start_server(tmp_path, [f"lexical={bm25_index}"])
    body = b'{"query": "why is the sky blue", "k": 2, "mode": "bm25"}'
    sock = socket.create_connection(("127.0.0.1", int(srv.url.rsplit(":", 1)[1])))
    sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
    time.sleep(0.3)
    # When the server is told to stop, and the rest of the body arrives afterwards
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    sock.sendall(body[10:])
    sock.settimeout(20)
    response = b""
    while chunk := sock.recv(65536):
        response += chunk
    sock.close()
    code = srv.proc.wait(timeout=30)
    # Then the request completes normally, and the server shuts down cleanly after it (uvicorn
    # re-raises the signal once it is done, so the exit status is "terminated by SIGTERM")
    assert response.startswith(b"HTTP/1.1 200") and b'"sky1"' in response
    assert code in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in srv.log.read_text()
    assert any(r.get("route") == "/search" and r.get("status") == 200 for r in srv.log_records())
