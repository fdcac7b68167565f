"""The embedded HTTP endpoint: ``/metrics``, ``/health`` and ``/traces/<trace_id>``.

One small threaded HTTP server (standard library) per configuration. Scrapes
render the bridge's prometheus_client registry in the format the scraper asks
for (OpenMetrics when negotiated, so exemplars are served; classic text
otherwise) and gzip it when asked.
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from llmtel import _errors
from llmtel._errors import ConfigurationError
from llmtel.tracestore import TraceStore

logger = logging.getLogger("llmtel")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False  # a second process on the same port must fail loudly, not share it
    registry: CollectorRegistry | None
    trace_store: TraceStore | None
    metrics_path: str


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None  # scrapes must not spam the host's stderr

    def _send(self, status: int, body: bytes, content_type: str, *, compress: bool = False) -> None:
        if compress and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            extra = [("Content-Encoding", "gzip")]
        else:
            extra = []
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in extra:
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = self.path.split("?", 1)[0]
        try:
            if path == self.server.metrics_path and self.server.registry is not None:
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, encoder(self.server.registry), content_type, compress=True)
            elif path == "/health":
                self._json(200, {"status": "ok"})
            elif path.startswith("/traces") and self.server.trace_store is not None:
                trace_id = path[len("/traces"):].strip("/")
                if not trace_id:
                    self._json(200, {"trace_ids": self.server.trace_store.trace_ids()[-100:]})
                    return
                spans = self.server.trace_store.get(trace_id)
                if spans is None:
                    self._json(404, {"error": f"trace {trace_id} not in the store (it keeps recent traces only)"})
                else:
                    self._json(200, {"trace_id": trace_id.lower(), "spans": spans})
            else:
                self._json(404, {"error": "not found", "paths": [self.server.metrics_path, "/health", "/traces/<id>"]})
        except Exception as exc:  # noqa: BLE001 - a failing scrape must not kill the server thread
            _errors.report("endpoint request failed", exc)
            self._send(500, b"internal error\n", "text/plain")


class Endpoint:
    """A running endpoint; :meth:`close` stops it."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        registry: CollectorRegistry | None,
        trace_store: TraceStore | None,
        metrics_path: str = "/metrics",
    ) -> None:
        try:
            server = _Server((host, port), _Handler)
        except OSError as exc:
            raise ConfigurationError(
                f"llmtel cannot serve its endpoint on {host}:{port}: {exc.strerror or exc}. "
                "Another process (or another llmtel in this one) uses that port: choose another with "
                "configure(prometheus_port=...) or OTEL_EXPORTER_PROMETHEUS_PORT, or 0 for any free port."
            ) from None
        server.registry = registry
        server.trace_store = trace_store
        server.metrics_path = metrics_path
        self._server = server
        self.host, self.port = server.server_address[:2]  # type: ignore[misc]
        # A short poll interval keeps shutdown() quick (serve_forever's default waits up to 0.5 s).
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="llmtel-endpoint", daemon=True
        )
        self._thread.start()

    @classmethod
    def from_options(
        cls, opts: dict[str, Any], *, registry: CollectorRegistry | None, trace_store: TraceStore | None
    ) -> Endpoint:
        """Start the endpoint described by configure()'s resolved options."""
        return cls(str(opts["prometheus_host"]), int(opts["prometheus_port"]), registry=registry, trace_store=trace_store)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9464``."""
        host = f"[{self.host}]" if ":" in str(self.host) else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
