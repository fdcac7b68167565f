"""A real Prometheus (Debian's package) scrapes the bridge and stores the call's exemplar.

Takes about 6-10 s: Prometheus starts, scrapes every second, and the test polls
/api/v1/query_exemplars until the TTFC exemplar is there (bounded at 40 s).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bridge_helpers import configured, free_port, ids, streamed_call
from opentelemetry import trace

from llmtel import semconv
from llmtel.naming import prometheus_name

PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
pytestmark = [
    pytest.mark.realserver,
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (apt-get install prometheus)"),
]

TTFC = prometheus_name(semconv.spec("gen_ai.client.operation.time_to_first_chunk"))


def _api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        payload = json.load(response)
    assert payload["status"] == "success", payload
    return payload["data"]


def _wait_ready(base: str, process: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"prometheus not ready:\n{log.read_text()[-3000:]}")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Prometheus on 127.0.0.1, its own TSDB dir; stopped by PID even when the test fails."""
    config = tmp_path / "prometheus.yml"
    port = free_port()
    log = tmp_path / "prometheus.log"
    # The scrape target is filled in by the test (file_sd re-read every second).
    targets = tmp_path / "targets.json"
    targets.write_text("[]")
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: llmtel\n    scrape_interval: 1s\n"
        f"    file_sd_configs:\n      - files: ['{targets}']\n        refresh_interval: 1s\n"
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--enable-feature=exemplar-storage",
             "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, process, log, time.monotonic() + 30)
        yield base, targets
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_prometheus_stores_the_ttfc_exemplar_of_the_calls_span(prometheus: tuple[str, Path]) -> None:
    base, targets = prometheus
    started = time.monotonic()
    with configured(service_name="bridge-it") as telemetry:
        tracer = trace.get_tracer("bridge-test")
        with tracer.start_as_current_span("handle request"):
            call = streamed_call(ttfc=0.05)
        trace_id, span_id = ids(call)
        endpoint = telemetry.endpoint
        assert endpoint is not None
        targets.write_text(json.dumps([{"targets": [f"127.0.0.1:{endpoint.port}"]}]))

        found: list[Any] = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not found:
            now = time.time()
            data = _api(
                base, "/api/v1/query_exemplars", query=f"{TTFC}_bucket", start=str(now - 300), end=str(now + 60)
            )
            found = [e for series in data for e in series["exemplars"]]
            if not found:
                time.sleep(0.5)
        assert found, "no exemplar reached Prometheus within 40 s"
        assert {(e["labels"]["trace_id"], e["labels"]["span_id"]) for e in found} == {(trace_id, span_id)}
        assert float(found[0]["value"]) == pytest.approx(call.time_to_first_chunk)

        query = f"histogram_quantile(0.5, sum by (le) ({TTFC}_bucket))"
        result = _api(base, "/api/v1/query", query=query)["result"]
        assert result, query
        median = float(result[0]["value"][1])
        # One observation of ~0.05 s in the (0.04, 0.06] bucket: linear interpolation gives 0.05.
        assert 0.04 <= median <= 0.06, median
        # The up metric says the scrape (OpenMetrics, with exemplars) succeeded.
        up = _api(base, "/api/v1/query", query="up")["result"]
        assert [r["value"][1] for r in up] == ["1"]
    print(f"real Prometheus test: exemplar found after {time.monotonic() - started:.1f} s")
