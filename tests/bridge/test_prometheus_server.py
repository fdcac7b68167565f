"""A real Prometheus (Debian's package) scrapes the bridge and stores the call's exemplar.

Takes about 6-10 s: Prometheus starts, scrapes every second, and the test polls
/api/v1/query_exemplars until the TTFC exemplar is there (bounded at 40 s).
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bridge_helpers import configured, ids, make_certificate, streamed_call
from opentelemetry import trace
from realservers import prometheus_server

from llmtel import semconv
from llmtel._internal.naming import prometheus_name
from llmtel.serving.endpoint import Endpoint

pytestmark = pytest.mark.realserver

SECRET = "scrape-secret"
TTFC = prometheus_name(semconv.spec("gen_ai.client.operation.time_to_first_chunk"))


def _api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        payload = json.load(response)
    assert payload["status"] == "success", payload
    return payload["data"]


class Prom:
    """A running Prometheus and the files that tell it what to scrape."""

    def __init__(self, base: str, targets: Path, secure_targets: Path, cert: Path, key: Path) -> None:
        self.base, self.targets, self.secure_targets, self.cert, self.key = base, targets, secure_targets, cert, key


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prom]:
    """Prometheus on 127.0.0.1, its own TSDB dir; stopped by PID even when the test fails.

    Two jobs: ``llmtel`` (plain HTTP) and ``llmtel-secure`` (HTTPS + basic auth); the targets are
    filled in by the test (file_sd, re-read every second).
    """
    cert, key = make_certificate(tmp_path)
    config = tmp_path / "prometheus.yml"
    targets, secure_targets = tmp_path / "targets.json", tmp_path / "secure.json"
    targets.write_text("[]")
    secure_targets.write_text("[]")
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: llmtel\n"
        f"    file_sd_configs: [{{files: ['{targets}'], refresh_interval: 1s}}]\n"
        "  - job_name: llmtel-secure\n"
        "    scheme: https\n"
        f"    basic_auth: {{username: prom, password: {SECRET}}}\n"
        f"    tls_config: {{ca_file: '{cert}'}}\n"
        f"    file_sd_configs: [{{files: ['{secure_targets}'], refresh_interval: 1s}}]\n"
    )
    with prometheus_server(config, tmp_path) as base:
        yield Prom(base, targets, secure_targets, cert, key)


def _exemplars(base: str, selector: str) -> list[Any]:
    now = time.time()
    data = _api(base, "/api/v1/query_exemplars", query=selector, start=str(now - 300), end=str(now + 60))
    return [e for series in data for e in series["exemplars"]]


def test_prometheus_stores_the_ttfc_exemplar_of_the_calls_span(prometheus: Prom) -> None:
    base = prometheus.base
    started = time.monotonic()
    with configured(service_name="bridge-it") as telemetry:
        tracer = trace.get_tracer("bridge-test")
        with tracer.start_as_current_span("handle request"):
            call = streamed_call(ttfc=0.05)
        trace_id, span_id = ids(call)
        endpoint = telemetry.endpoint
        assert endpoint is not None and telemetry.bridge is not None
        # A second endpoint on the same bridge, over HTTPS with basic auth: a second scraper too.
        secure = Endpoint(
            "127.0.0.1", 0, registry=telemetry.bridge.registry, trace_store=None,
            basic_auth=f"prom:{SECRET}", tls_cert=str(prometheus.cert), tls_key=str(prometheus.key),
        )  # fmt: skip
        try:
            prometheus.targets.write_text(json.dumps([{"targets": [f"127.0.0.1:{endpoint.port}"]}]))
            prometheus.secure_targets.write_text(json.dumps([{"targets": [f"127.0.0.1:{secure.port}"]}]))
            plain: list[Any] = []
            tls: list[Any] = []
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and not (plain and tls):
                plain = plain or _exemplars(base, f'{TTFC}_bucket{{job="llmtel"}}')
                tls = tls or _exemplars(base, f'{TTFC}_bucket{{job="llmtel-secure"}}')
                if not (plain and tls):
                    time.sleep(0.5)
            elapsed = time.monotonic() - started
            assert plain, "no exemplar reached Prometheus within 40 s"
            assert {(e["labels"]["trace_id"], e["labels"]["span_id"]) for e in plain} == {(trace_id, span_id)}
            assert float(plain[0]["value"]) == pytest.approx(call.time_to_first_chunk)
            # Both scrapers got it: the bridge keeps exemplars across scrapes.
            assert {(e["labels"]["trace_id"], e["labels"]["span_id"]) for e in tls} == {(trace_id, span_id)}

            query = f'histogram_quantile(0.5, sum by (le) ({TTFC}_bucket{{job="llmtel"}}))'
            result = _api(base, "/api/v1/query", query=query)["result"]
            assert result, query
            median = float(result[0]["value"][1])
            # One observation of ~0.05 s in the (0.04, 0.06] bucket: linear interpolation gives ~0.05.
            assert 0.04 <= median <= 0.06, median
            up = {r["metric"]["job"]: r["value"][1] for r in _api(base, "/api/v1/query", query="up")["result"]}
            assert up == {"llmtel": "1", "llmtel-secure": "1"}
        finally:
            secure.close()
    print(f"real Prometheus test: exemplars stored after {elapsed:.1f} s")
