"""The live page on the embedded endpoint: overview at ``/``, trace waterfall, recent-traces list.

Plain HTML, CSS and JavaScript shipped as package data (``llmtel/serving/ui/``)
and served by the endpoint itself: no CDN, no build step, nothing fetched from
elsewhere (the Content-Security-Policy says so to the browser too). The pages
hold no data; their scripts read JSON from the same endpoint:

* ``/api/overview``: golden signals per model (:mod:`llmtel.serving.overview`),
  computed when asked, in the endpoint thread;
* ``/traces`` and ``/traces/<trace_id>``: the JSON API the endpoint serves
  anyway, so what a page shows is exactly what the API serves (same
  redaction, same auth).

A browser asking ``/traces/<trace_id>`` for HTML (``Accept: text/html``) gets
the waterfall page; API clients keep getting JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from llmtel._internal.negotiation import best_quality
from llmtel.readers.prometheus import PrometheusBridgeReader
from llmtel.serving.overview import Overview
from llmtel.serving.tracestore import TraceStore

__all__ = ["Pages", "trace_list", "wants_html"]

#: Page requests collect at most this often (a scrape in between counts as a collection) ...
MIN_COLLECT_INTERVAL_S = 1.0
#: ... and wait at least this many times the last collection's duration (at most 10 % of one thread).
MAX_DUTY = 10.0

Send = Callable[[int, bytes, str, Sequence[tuple[str, str]]], None]

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Everything the pages load comes from this endpoint; inline scripts and styles are refused too,
# so a value shown on a page can never run as code.
_SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)


def wants_html(accept: str | None) -> bool:
    """True when an ``Accept`` header asks for HTML over JSON (a browser navigating; not ``*/*``)."""
    best_html = best_quality(accept, ("text/html", "application/xhtml+xml"))
    best_json = best_quality(accept, ("application/json", "application/*"))
    return best_html > 0 and best_html > best_json


def _flag(query: Mapping[str, list[str]], name: str) -> bool:
    return (query.get(name) or [""])[-1].strip().lower() in ("1", "true", "yes", "on")


def _number(query: Mapping[str, list[str]], name: str, default: float) -> float:
    try:
        value = float((query.get(name) or [""])[-1])
    except ValueError:
        return default
    return value if value == value and value >= 0 else default  # NaN and negatives: the default


def trace_list(store: TraceStore, query_string: str) -> dict[str, Any]:
    """``GET /traces`` JSON: ``trace_ids`` (oldest first, as before) and filtered ``traces`` summaries.

    Query: ``error=true`` (only traces with an error span), ``min_duration_ms=N`` (slow ones),
    ``limit=N`` (at most 1000, default 100).
    """
    query = parse_qs(query_string)
    limit = int(min(_number(query, "limit", 100), 1000))
    traces = store.summaries(
        limit, errors_only=_flag(query, "error"), min_duration_ms=_number(query, "min_duration_ms", 0.0)
    )
    return {"trace_ids": store.trace_ids()[-100:], "traces": traces}


def _load_files() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files("llmtel.serving").joinpath("ui").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _TYPES:
            files[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return files


class Pages:
    """Answers the page routes for the endpoint's request handler (when ``ui`` is on)."""

    def __init__(
        self, *, bridge: PrometheusBridgeReader | None, trace_store: TraceStore | None, metrics_path: str = "/metrics"
    ) -> None:
        self._files = _load_files()
        self._metrics_path = metrics_path
        self._collect_s = 0.0  # how long the last page-triggered collection took
        self._bridge = bridge
        self._trace_store = trace_store
        self.overview = Overview()
        if bridge is not None:
            bridge.add_collect_listener(self.overview.observe)

    def close(self) -> None:
        """Stop following the bridge's collections."""
        if self._bridge is not None:
            self._bridge.remove_collect_listener(self.overview.observe)

    def after_fork_in_child(self) -> None:
        """Start the child's overview from nothing (the parent's history, and lock, stay behind)."""
        self.close()
        self.overview = Overview()
        if self._bridge is not None:
            self._bridge.add_collect_listener(self.overview.observe)

    def handle(self, path: str, query: str, accept: str, send: Send) -> bool:
        """Answer ``path`` if it is a page route; False lets the endpoint answer it.

        ``?format=json`` on a trace URL asks for the JSON even from a browser.
        """
        if path in ("/", "/index.html"):
            return self._file("index.html", send)
        if path.startswith("/ui/"):
            return self._file(path[len("/ui/") :], send)
        if path == "/api/overview":
            send(200, json.dumps(self._overview()).encode(), "application/json", _SECURITY_HEADERS)
            return True
        if self._trace_store is None:
            return False  # no trace store served: no trace pages either
        if (path == "/traces" or path.startswith("/traces/")) and wants_html(accept) and "format=json" not in query:
            trace_id = path[len("/traces") :].strip("/")
            if not trace_id:
                return self._file("traces.html", send)
            known = self._trace_store.get(trace_id) is not None
            return self._file("trace.html", send, status=200 if known else 404)
        return False

    def _overview(self) -> dict[str, Any]:
        if self._bridge is None:
            return {
                "metrics": False,
                "traces": self._trace_store is not None,
                "reason": "no Prometheus bridge in this process: the page reads the llmtel_prometheus reader "
                "(metrics_exporter=llmtel_prometheus, the default)",
            }
        self.overview.follow()
        # Collect at most once a second and never more than 1/MAX_DUTY of the time: on an app with
        # very many series the page refreshes more slowly rather than slow the app.
        if time.monotonic() - self.overview.last_observed >= max(MIN_COLLECT_INTERVAL_S, MAX_DUTY * self._collect_s):
            start = time.monotonic()
            self._bridge.snapshot()  # the listener folds it in
            self._collect_s = time.monotonic() - start
        return {**self.overview.view(), "metrics_path": self._metrics_path, "traces": self._trace_store is not None}

    def _file(self, name: str, send: Send, status: int = 200) -> bool:
        found = self._files.get(name)
        if found is None:
            return False
        body, content_type = found
        send(status, body, content_type, (*_SECURITY_HEADERS, ("Vary", "Accept")))
        return True
