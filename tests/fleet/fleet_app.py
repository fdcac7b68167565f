"""A small llmtel app for the fleet pipeline test: one WSGI app, run two ways.

* ``python fleet_app.py PORT``: a standalone instance; configures llmtel from the environment
  (``OTEL_EXPORTER_PROMETHEUS_PORT``, ``OTEL_SERVICE_NAME``...) and serves the app on PORT;
* ``gunicorn -c gunicorn_conf.py fleet_app:app``: prefork workers (see gunicorn_conf.py).

``GET /call?n=N&model=M`` makes N streamed GenAI calls and answers with their trace ids and the
llmtel endpoint (port, worker) of the process that served them. ``GET /`` answers ``ok``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import llmtel


def make_calls(n: int, model: str) -> list[str]:
    """N streamed calls; their trace ids (hex)."""
    trace_ids = []
    for _ in range(n):
        with llmtel.llm_call(provider="openai", model=model, stream=True) as call:
            for _chunk in call.wrap_stream(iter(["Hel", "lo"])):
                pass
            call.set_usage(input_tokens=12, output_tokens=2)
            trace_ids.append(format(call.span.get_span_context().trace_id, "032x"))
    return trace_ids


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if environ.get("PATH_INFO") == "/call":
        ids = make_calls(int(query.get("n", ["1"])[0]), query.get("model", ["gpt-4o-mini"])[0])
        telemetry = llmtel.current()
        endpoint = telemetry.endpoint if telemetry else None
        body = json.dumps(
            {
                "trace_ids": ids,
                "pid": os.getpid(),
                "port": endpoint.port if endpoint else None,
                "worker": endpoint.worker if endpoint else None,
            }
        ).encode()
    else:
        body = b"ok"
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    llmtel.configure()
    with make_server("127.0.0.1", int(sys.argv[1]), app, handler_class=_Quiet) as server:
        server.serve_forever()
