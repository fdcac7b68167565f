"""llmtel_azure against a local Application Insights ingestion endpoint (POST /v2.1/track) on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "azure.monitor.opentelemetry.exporter", reason="the azure extra is not installed (it needs opentelemetry-sdk 1.43+)"
)

from cloud_fakes import AzureTrackServer, FailingHttpServer, free_port, make_instruments, provider
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from prometheus_client import CollectorRegistry, generate_latest

from llmtel import semconv
from llmtel._internal import errors as _errors
from llmtel._internal.errors import ConfigurationError
from llmtel._internal.naming import prometheus_name
from llmtel.readers.azure import AzureMetricExporter

pytestmark = pytest.mark.realserver

DURATION = semconv.spec("gen_ai.client.operation.duration").name
COST = semconv.spec("llmtel.gen_ai.client.cost").name
ACTIVE = semconv.spec("llmtel.gen_ai.requests.active").name
BREAKER = semconv.spec("llmtel.circuit_breaker.state").name
CALL = {
    semconv.OPERATION_NAME: "chat",
    semconv.PROVIDER_NAME: "azure.ai.openai",
    semconv.REQUEST_MODEL: "gpt-4o",
    semconv.SERVER_PORT: 443,
}
IKEY = "00000000-0000-4000-8000-000000000001"
HOUR = 3_600_000


def _connection_string(url: str) -> str:
    return f"InstrumentationKey={IKEY};IngestionEndpoint={url}/"


@pytest.fixture
def azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Microsoft's own switches: no statsbeat, no customer sdkstats, no OneSettings control plane."""
    monkeypatch.setenv("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "true")
    monkeypatch.setenv("APPLICATIONINSIGHTS_SDKSTATS_DISABLED", "true")
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED", "true")
    monkeypatch.setenv("LLMTEL_AZURE_DISABLE_OFFLINE_STORAGE", "true")


@pytest.fixture
def track(azure_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[AzureTrackServer]:
    with AzureTrackServer() as server:
        monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", _connection_string(server.url))
        yield server


def _record(inst: dict[str, Any]) -> None:
    inst[DURATION].record(0.4, CALL)
    inst[DURATION].record(2.0, CALL)
    inst[COST].add(0.125, {**CALL, semconv.TOKEN_TYPE: "output"})
    inst[ACTIVE].add(2, {semconv.OPERATION_NAME: "chat"})
    inst[BREAKER].set(2, {semconv.CIRCUIT_BREAKER_NAME: "aoai"})


def test_metrics_arrive_as_track_envelopes(track: AzureTrackServer) -> None:
    exporter = AzureMetricExporter()  # everything from the environment, as the entry point does
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=HOUR)
    mp = provider(reader)
    inst = make_instruments(mp.get_meter("llmtel"))
    _record(inst)
    assert reader.force_flush(10_000)

    (hist,) = track.metrics(DURATION)
    assert (hist["value"], hist["count"], hist["min"], hist["max"]) == (2.4, 2, 0.4, 2.0)
    assert hist["properties"] == {k: str(v) for k, v in CALL.items()}  # attributes, as strings
    envelope = hist["envelope"]
    assert envelope["iKey"] == IKEY
    assert envelope["name"] == "Microsoft.ApplicationInsights.Metric"
    assert envelope["tags"]["ai.cloud.role"] == "cloud-test"
    # what Application Insights does not get: buckets and exemplars
    dumped = json.dumps(envelope)
    assert "bucket" not in dumped.lower() and "bounds" not in dumped and "exemplar" not in dumped.lower()

    (cost,) = track.metrics(COST)
    assert (cost["value"], cost["count"]) == (0.125, 1)
    assert cost["properties"][semconv.TOKEN_TYPE] == "output"
    (active,) = track.metrics(ACTIVE)
    assert active["value"] == 2
    (breaker,) = track.metrics(BREAKER)
    assert breaker["value"] == 2 and breaker["properties"] == {semconv.CIRCUIT_BREAKER_NAME: "aoai"}
    assert all(r["path"].endswith("/v2.1/track") for r in track.requests)
    assert track.requests[0]["headers"]["Content-Type"] == "application/json"  # a JSON array of envelopes

    # counters and histograms go as deltas, up-down counters as levels
    inst[COST].add(0.5, {**CALL, semconv.TOKEN_TYPE: "output"})
    inst[DURATION].record(1.0, CALL)
    inst[ACTIVE].add(-1, {semconv.OPERATION_NAME: "chat"})
    assert reader.force_flush(10_000)
    assert [m["value"] for m in track.metrics(COST)] == [0.125, 0.5]
    assert [(m["value"], m["count"]) for m in track.metrics(DURATION)] == [(2.4, 2), (1.0, 1)]
    assert [m["value"] for m in track.metrics(ACTIVE)] == [2, 1]
    mp.shutdown()


@pytest.mark.parametrize(
    ("status", "headers"),
    [(None, {}), (500, {}), (429, {"Retry_After": "0"}), (439, {}), (503, {})],
    ids=["refused", "500", "throttled-429", "daily-quota-439", "503"],
)
def test_failing_endpoint_never_raises(
    azure_env: None, monkeypatch: pytest.MonkeyPatch, status: int | None, headers: dict[str, str]
) -> None:
    server = FailingHttpServer(status, b'{"error":"nope"}', **headers).start() if status else None
    try:
        url = server.url if server else f"http://127.0.0.1:{free_port()}"
        monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", _connection_string(url))
        exporter = AzureMetricExporter(timeout=2)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=HOUR)
        mp = provider(reader)
        _record(make_instruments(mp.get_meter("llmtel")))
        started = time.monotonic()
        reader.force_flush(10_000)
        mp.shutdown()
        assert time.monotonic() - started < 15
        assert _errors.problem_counts().get("export failed: azure", 0) >= 1
        if server:
            assert server.requests, "the failing endpoint was never reached"
    finally:
        if server:
            server.stop()


def test_offline_storage_keeps_what_failed(azure_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Microsoft's offline storage (on by default) keeps envelopes of a retryable failure on disk."""
    monkeypatch.setenv("LLMTEL_AZURE_DISABLE_OFFLINE_STORAGE", "false")
    monkeypatch.setenv("LLMTEL_AZURE_STORAGE_DIRECTORY", str(tmp_path / "ai"))
    with FailingHttpServer(503, b"{}") as server:
        monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", _connection_string(server.url))
        exporter = AzureMetricExporter()
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=HOUR)
        mp = provider(reader)
        make_instruments(mp.get_meter("llmtel"))[COST].add(1, CALL)
        reader.force_flush(10_000)
        stored = [p for p in (tmp_path / "ai").rglob("*.blob*") if p.is_file()]  # "<time>.blob@<lease>.lock"
        mp.shutdown()
    assert stored, "nothing was written to the offline storage"
    assert COST in stored[0].read_text()


def test_configuration_errors_are_clear(azure_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="APPLICATIONINSIGHTS_CONNECTION_STRING"):
        AzureMetricExporter()
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=not-a-guid")
    with pytest.raises(ConfigurationError, match="invalid connection string"):
        AzureMetricExporter()
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", _connection_string("http://127.0.0.1:9"))
    monkeypatch.setenv("LLMTEL_AZURE_DISABLE_OFFLINE_STORAGE", "maybe")
    with pytest.raises(ConfigurationError, match="LLMTEL_AZURE_DISABLE_OFFLINE_STORAGE"):
        AzureMetricExporter()


def test_export_of_nothing_is_a_success(track: AzureTrackServer) -> None:
    assert AzureMetricExporter().export(None, 1000) is MetricExportResult.SUCCESS  # type: ignore[arg-type]
    assert not track.requests


def test_beside_the_prometheus_bridge(track: AzureTrackServer) -> None:
    registry = CollectorRegistry(auto_describe=False)
    prom = PrometheusMetricReader(registry=registry)
    reader = PeriodicExportingMetricReader(AzureMetricExporter(), export_interval_millis=HOUR)
    mp = provider(prom, reader)
    inst = make_instruments(mp.get_meter("llmtel"))
    inst[COST].add(0.25, CALL)
    assert reader.force_flush(10_000)
    inst[COST].add(0.5, CALL)
    assert reader.force_flush(10_000)
    scrape = generate_latest(registry).decode()
    mp.shutdown()
    family = prometheus_name(semconv.spec(COST))
    assert any(line.startswith(f"{family}_total{{") and line.endswith(" 0.75") for line in scrape.splitlines())
    assert [m["value"] for m in track.metrics(COST)] == [0.25, 0.5]
