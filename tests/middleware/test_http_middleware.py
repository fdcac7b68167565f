"""HTTP server metrics composed in, not rewritten: contrib's FastAPI instrumentation next to llmtel,
one ``llmtel.configure()``, a real uvicorn worker, scraped from llmtel's endpoint.

* the stable HTTP conventions (``OTEL_SEMCONV_STABILITY_OPT_IN=http``): ``http.server.request.duration``
  in seconds, by ``http.route`` (the route template, not the path), no old millisecond histogram;
* ``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS`` keeps ``/health`` and ``/metrics`` out, and only them;
* the GenAI call made inside a route is recorded by llmtel as usual, its span a child of the
  HTTP server span.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from realservers import free_port, stop_process

from llmtel.cli.dashboards import build_panels
from llmtel.cli.promql import HTTP_SERVER_DURATION, PromNames, Query

pytest.importorskip("fastapi", reason="fastapi is in the test extra")
pytest.importorskip("uvicorn", reason="uvicorn is in the test extra")
pytest.importorskip("opentelemetry.instrumentation.fastapi", reason="in the test extra")
pytestmark = pytest.mark.realserver

HERE = Path(__file__).resolve().parent
DURATION = "http_server_request_duration_seconds"


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


@pytest.fixture
def app(tmp_path: Path) -> Any:
    app_port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTEL_"))}
    env.update(
        OTEL_SERVICE_NAME="chat-api",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port),
        OTEL_SEMCONV_STABILITY_OPT_IN="http",
        OTEL_PYTHON_FASTAPI_EXCLUDED_URLS="/health$,/metrics$",
        LLMTEL_PROCESS_METRICS="false",
        LLMTEL_GPU_METRICS="false",
        PYTHONPATH=os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p),
    )
    log = tmp_path / "uvicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "http_app:app", "--host", "127.0.0.1", "--port", str(app_port),
             "--workers", "1", "--no-access-log"],
            cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(f"http://127.0.0.1:{app_port}/items/0")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"uvicorn did not come up:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{metrics_port}"
    finally:
        stop_process(proc)


def _samples(metrics_url: str) -> list[Any]:
    text = _get(f"{metrics_url}/metrics").decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def test_http_server_metrics_beside_llmtel(app: tuple[str, str]) -> None:
    base, metrics = app
    for _ in range(3):
        _get(f"{base}/chat")
    trace_id = json.loads(_get(f"{base}/chat?topic=health"))["trace_id"]  # "health" in the query: still counted
    for path in ("/items/1", "/items/2", "/health", "/health", "/metrics"):
        _get(f"{base}{path}")

    samples = _samples(metrics)
    counts: dict[tuple[str, str, str], float] = defaultdict(float)
    for s in samples:
        if s.name == f"{DURATION}_count":
            counts[
                (s.labels["http_route"], s.labels["http_request_method"], s.labels["http_response_status_code"])
            ] += s.value
    # /items/0 is the readiness probe of the fixture: one more.
    assert dict(counts) == {("/chat", "GET", "200"): 4, ("/items/{item_id}", "GET", "200"): 3}
    # Stable conventions only: seconds, with the conventions' advisory buckets (0.005 ... 10 s).
    names = {s.name for s in samples}
    assert not any(n.startswith("http_server_duration") for n in names), sorted(names)
    bounds = sorted({float(s.labels["le"]) for s in samples if s.name == f"{DURATION}_bucket"})
    assert bounds[0] == 0.005 and bounds[-2] == 10.0 and bounds[-1] == float("inf")
    # llmtel's own metrics are served from the same endpoint, unchanged by the composition.
    calls = sum(s.value for s in samples if s.name == "gen_ai_client_operation_duration_seconds_count")
    assert calls == 4

    # The dashboard's HTTP row and the HTTP rules read exactly these series and labels.
    names = PromNames("prometheus", latest=False)
    d = HTTP_SERVER_DURATION
    assert {names.count(d), names.bucket(d), names.sum(d)} <= {s.name for s in samples}
    http_exprs = [t.expr for p in build_panels(Query(names)) if p.group == "http" for t in p.targets]
    assert len(http_exprs) == 3 and all(names.count(d) in e or names.bucket(d) in e for e in http_exprs)
    assert all(
        k in s.labels for s in samples if s.name == names.count(d) for k in ("http_route", "http_response_status_code")
    )

    # The llm_call span is a child of the HTTP server span (llmtel's trace store).
    trace = json.loads(_get(f"{metrics}/traces/{trace_id}?format=json"))
    spans = {s["span_id"]: s for s in trace["spans"]}
    chat = next(s for s in spans.values() if s["name"] == "chat gpt-4o-mini")
    parent = spans[chat["parent_span_id"]]
    assert parent["kind"] == "SERVER" and parent["name"] == "GET /chat"
