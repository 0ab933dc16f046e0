"""Request logs and Prometheus metrics: one pure-ASGI middleware records both.

Each request gets an id (the client's ``X-Request-ID`` when it is a short token, else a new
one), echoed in the response header. When the response ends the middleware writes one JSON log
line ``{"request_id", "method", "route", "status", "latency_ms", "mode", "index", ...}`` to the
``rag.service.access`` logger and updates:

- ``rag_requests_total{route, method, status, mode}`` — counter;
- ``rag_request_duration_seconds{route, mode}`` — histogram (buckets from 1 ms to 10 s);
- ``rag_requests_in_flight`` — gauge;
- ``rag_encoder_batch_size`` — histogram of queries per encoder call (micro-batching at work);
- ``rag_streamed_answer_pieces_total`` — counter of answer pieces decoded for streamed answers
  (about one per generated token; it stops growing when a client that went away is dropped).

``route`` is the route *template* (``/indexes/{name}``), or ``unmatched``, so random paths
cannot blow up the label set. ``mode`` is set by the search handlers in ``request.state``.
Under ``uvicorn --workers N`` the metrics are aggregated across processes through
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode; ``rag serve`` sets it up).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("rag.service.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The service's Prometheus metrics, in their own registry (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("rag_requests", "HTTP requests.", ["route", "method", "status", "mode"], registry=r)
        self.latency = Histogram("rag_request_duration_seconds", "Request latency, first byte in to last byte out.",
                                 ["route", "mode"], buckets=_BUCKETS, registry=r)
        self.in_flight = Gauge("rag_requests_in_flight", "Requests being served.", registry=r,
                               multiprocess_mode="livesum")
        self.batch_size = Histogram("rag_encoder_batch_size", "Queries per encoder call (micro-batching).",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.answer_pieces = Counter("rag_streamed_answer_pieces", "Answer pieces decoded for streamed answers "
                                     "(about one per generated token).", registry=r)

    def exposition(self) -> bytes:
        """The text exposition format, aggregated over worker processes when configured."""
        from prometheus_client import generate_latest

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra={"fields": ...}``."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name}
        out.update(getattr(record, "fields", None) or {"message": record.getMessage()})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)  # ASCII escapes: one record is always exactly one line


def configure_logging(level: int = logging.INFO) -> None:
    """Send the ``rag.service`` loggers to stderr as JSON lines (once per process)."""
    logger = logging.getLogger("rag.service")
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


class ObservabilityMiddleware:
    """Pure ASGI middleware: request id, one JSON log line and metrics per HTTP request.

    Args:
        app: the wrapped application.
        metrics: where to count.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        status = 500
        m = self.metrics
        m.in_flight.inc()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            m.in_flight.dec()
            elapsed = time.perf_counter() - t0
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            mode = state.get("mode", "")
            m.requests.labels(route, scope["method"], str(status), mode).inc()
            m.latency.labels(route, mode).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info("request", extra={"fields": {
                    "request_id": rid, "method": scope["method"], "route": route, "path": scope["path"],
                    "status": status, "latency_ms": round(1e3 * elapsed, 3), "mode": mode or None,
                    "index": state.get("index"), "client": f"{client[0]}:{client[1]}" if client else None}})
