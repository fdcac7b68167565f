"""The endpoint's off switch and push-only modes (issue 14, item 9).

`prometheus_port=None` / `LLMTEL_ENDPOINT=off` never bind a port; push-only modes (OTLP without
the bridge) bind none unless `LLMTEL_ENDPOINT=on` asks for /health and /traces.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from bridge_helpers import get

import llmtel
from llmtel import ConfigurationError

QUIET = {"gpu_metrics": False, "process_metrics": False}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("OTEL_", "LLMTEL_")) and key != "LLMTEL_RAISE_INTERNAL_ERRORS":
            monkeypatch.delenv(key)
    # Nothing listens there: the push exporter is never reached within these tests.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "60000")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process (here: this test) listens on, as a second worker would find it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_push_only_binds_no_port(taken_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    telemetry = llmtel.configure(prometheus_port=taken_port, **QUIET)  # raised "address in use" before
    assert telemetry.endpoint is None and telemetry.endpoint_url is None and telemetry.bridge is None


def test_prometheus_port_none_turns_the_endpoint_off(taken_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", str(taken_port))
    telemetry = llmtel.configure(prometheus_port=None, **QUIET)
    assert telemetry.endpoint is None
    assert telemetry.bridge is not None  # still there: its registry can be mounted on the app's own server
    llmtel.cache_lookup("off-switch", hit=True)
    assert "llmtel_cache_requests" in telemetry.bridge.render(openmetrics=False)


def test_llmtel_endpoint_off(taken_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_ENDPOINT", "off")
    telemetry = llmtel.configure(prometheus_port=taken_port, **QUIET)
    assert telemetry.endpoint is None


def test_not_giving_prometheus_port_still_serves_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "0")
    telemetry = llmtel.configure(**QUIET)
    assert telemetry.metrics_url is not None and get(telemetry.metrics_url)[0] == 200


def test_endpoint_on_serves_health_and_traces_in_push_only_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    monkeypatch.setenv("LLMTEL_ENDPOINT", "on")
    telemetry = llmtel.configure(prometheus_port=0, **QUIET)
    assert telemetry.endpoint_url is not None and telemetry.metrics_url is None
    assert get(f"{telemetry.endpoint_url}/health")[0] == 200
    assert get(f"{telemetry.endpoint_url}/traces")[0] == 200
    assert get(f"{telemetry.endpoint_url}/metrics")[0] == 404  # no bridge, no scrape path


def test_contradicting_switches_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="endpoint"):
        llmtel.configure(prometheus_port=None, endpoint="on", **QUIET)


def test_bad_endpoint_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_ENDPOINT", "sometimes")
    with pytest.raises(ConfigurationError, match="LLMTEL_ENDPOINT"):
        llmtel.configure(**QUIET)


def test_a_gunicorn_worker_never_fails_over_a_taken_port(taken_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default prometheus_workers=1: on HUP gunicorn starts the new worker while the old one holds the port.

    A ConfigurationError there would make the worker exit 3 and halt the master ("Worker failed to boot").
    """
    monkeypatch.setenv("SERVER_SOFTWARE", "gunicorn/27.0.1")  # what gunicorn's master exports to its workers
    telemetry = llmtel.configure(prometheus_port=taken_port, **QUIET)
    assert telemetry.endpoint is not None and not telemetry.endpoint.serving  # retried in the background
