"""llmtel.configure() pushing OTLP (gRPC and HTTP/protobuf) to the test receiver, end to end."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from otlp_receiver import OtlpReceiver, SpanRecord

import llmtel
from llmtel import semconv
from llmtel._internal.naming import prometheus_name

PROTOCOLS = ["grpc", "http/protobuf"]
TTFC = semconv.spec("gen_ai.client.operation.time_to_first_chunk")
DURATION = semconv.spec("gen_ai.client.operation.duration")
TOKENS = semconv.spec("gen_ai.client.token.usage")
REGISTRY_NAMES = {spec.name for spec in semconv.INSTRUMENTS}


@pytest.fixture(autouse=True)
def _isolated(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No OTEL_* leaking in from the machine; llmtel shut down after each test (receiver still up)."""
    import os

    for key in list(os.environ):
        if key.startswith(("OTEL_", "LLMTEL_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("LLMTEL_RAISE_INTERNAL_ERRORS", "1")
    monkeypatch.setenv("LLMTEL_GPU_METRICS", "false")
    monkeypatch.setenv("LLMTEL_PROCESS_METRICS", "false")
    # Long interval: the tests decide when to export (force_flush / shutdown).
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "60000")
    yield
    llmtel.shutdown(timeout=5)


def _point_to(monkeypatch: pytest.MonkeyPatch, rx: OtlpReceiver, protocol: str) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint(protocol))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)


def _streamed_call(model: str = "gpt-otlp") -> None:
    with llmtel.llm_call(provider="openai", model=model, stream=True) as call:
        for _chunk in call.wrap_stream(iter(["Hel", "lo", "!"])):
            time.sleep(0.002)
        call.set_usage(input_tokens=12, output_tokens=3)


def _span_id_pair(span: SpanRecord) -> tuple[bytes, bytes]:
    return span.trace_id, span.span_id


def _assert_exemplar_links_to_span(rx: OtlpReceiver, model: str) -> None:
    [span] = rx.wait_for(lambda: rx.spans(f"chat {model}"))
    points = [p for p in rx.metric_points(TTFC.name) if p.attributes.get(semconv.REQUEST_MODEL) == model]
    assert points, rx.summary()
    exemplars = [e for p in points for e in p.point.exemplars]
    assert exemplars, "TTFC point arrived without exemplars"
    assert {(bytes(e.trace_id), bytes(e.span_id)) for e in exemplars} == {_span_id_pair(span)}


@pytest.mark.realserver
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_otlp_and_prometheus_together(receiver: OtlpReceiver, protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _point_to(monkeypatch, receiver, protocol)
    telemetry = llmtel.configure(
        service_name="otlp-e2e",
        resource_attributes={"deployment.environment.name": "test"},
        metrics_exporter=["otlp", "llmtel_prometheus"],
        traces_exporter=["otlp"],
        prometheus_port=0,
    )
    _streamed_call()
    assert llmtel.force_flush(10)

    _assert_exemplar_links_to_span(receiver, "gpt-otlp")
    transport = "grpc" if protocol == "grpc" else "http"
    assert {r.transport for r in receiver.received} == {transport}

    # Resource and metric names exactly as in the registry.
    [point] = [p for p in receiver.metric_points(TTFC.name)]
    assert point.resource["service.name"] == "otlp-e2e"
    assert point.resource["deployment.environment.name"] == "test"
    assert point.resource["telemetry.sdk.name"] == "opentelemetry"
    assert point.scope == "llmtel"
    assert point.metric.unit == TTFC.unit
    assert point.attributes == {
        semconv.OPERATION_NAME: "chat",
        semconv.PROVIDER_NAME: "openai",
        semconv.REQUEST_MODEL: "gpt-otlp",
    }
    assert point.point.count == 1
    assert list(point.point.explicit_bounds) == list(TTFC.buckets or ())
    llmtel_names = {p.metric.name for p in receiver.metric_points() if p.scope == "llmtel"}
    assert {TTFC.name, DURATION.name, TOKENS.name} <= llmtel_names
    assert llmtel_names <= REGISTRY_NAMES, llmtel_names - REGISTRY_NAMES
    tokens = {p.attributes[semconv.TOKEN_TYPE]: p.point.sum for p in receiver.metric_points(TOKENS.name)}
    assert tokens == {"input": 12, "output": 3}
    [span] = receiver.spans("chat gpt-otlp")
    assert span.resource["service.name"] == "otlp-e2e"
    assert span.attributes[semconv.REQUEST_MODEL] == "gpt-otlp"

    # The Prometheus bridge serves the same data at the same time.
    assert telemetry.metrics_url is not None
    with urllib.request.urlopen(telemetry.metrics_url, timeout=5) as resp:
        scrape = resp.read().decode()
    assert f"{prometheus_name(TTFC)}_bucket" in scrape


@pytest.mark.realserver
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_exporters_from_environment(receiver: OtlpReceiver, protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _point_to(monkeypatch, receiver, protocol)
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp,llmtel_prometheus")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=llm,deployment.environment.name=ci")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "0")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    telemetry = llmtel.configure()
    assert telemetry.metrics_url is not None
    _streamed_call("gpt-env")
    assert llmtel.force_flush(10)

    _assert_exemplar_links_to_span(receiver, "gpt-env")
    point = receiver.metric_points(TTFC.name)[0]
    assert point.resource["service.name"] == "from-env"
    assert point.resource["team"] == "llm"
    assert all(r.headers.get("x-tenant") == "acme" for r in receiver.received)
    if protocol != "grpc":  # grpc-core hides grpc-encoding from the servicer
        assert all(r.headers.get("content-encoding") == "gzip" for r in receiver.received)


@pytest.mark.realserver
def test_delta_temporality_on_request(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

    _point_to(monkeypatch, receiver, "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")
    llmtel.configure(metrics_exporter="otlp")
    _streamed_call("gpt-delta")
    assert llmtel.force_flush(10)
    _streamed_call("gpt-delta")
    assert llmtel.force_flush(10)
    points = receiver.metric_points(DURATION.name)
    assert [p.point.count for p in points] == [1, 1]  # each export carries only its own interval
    assert {p.metric.histogram.aggregation_temporality for p in points} == {
        AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    }


@pytest.mark.realserver
def test_cumulative_temporality_by_default(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

    _point_to(monkeypatch, receiver, "grpc")
    llmtel.configure(metrics_exporter="otlp")
    _streamed_call("gpt-cumulative")
    assert llmtel.force_flush(10)
    _streamed_call("gpt-cumulative")
    assert llmtel.force_flush(10)
    points = receiver.metric_points(DURATION.name)
    assert [p.point.count for p in points] == [1, 2]
    assert {p.metric.histogram.aggregation_temporality for p in points} == {
        AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    }


def _call_latencies(seconds: float) -> list[float]:
    """Run instrumented calls for ``seconds``; return each call's own latency."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        with llmtel.llm_call(provider="openai", model="gpt-fault", stream=True) as call:
            for _ in call.wrap_stream(iter("abc")):
                pass
            call.set_usage(input_tokens=5, output_tokens=3)
        latencies.append(time.perf_counter() - started)
        time.sleep(0.005)
    return latencies


@pytest.mark.realserver
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_collector_down_never_blocks_and_shutdown_is_bounded(
    receiver: OtlpReceiver, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_to(monkeypatch, receiver, protocol)
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")  # exports keep failing in the background
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    receiver.stop()
    shutdown_bound = 2.0
    llmtel.configure(
        metrics_exporter=["otlp"], traces_exporter=["otlp"], export_timeout=1.0, shutdown_timeout=shutdown_bound
    )

    # 1. Collector down: calls run at their own speed while exports fail behind them.
    down = _call_latencies(1.5)
    assert len(down) > 50
    # Generous for a loaded CI machine, and still well under the 1 s an export can take.
    assert max(down) < 0.5, f"an instrumented call waited on an export: max {max(down):.3f}s"

    # 2. Collector back: later exports arrive without reconfiguring.
    receiver.start()
    _call_latencies(0.3)
    receiver.wait_for(lambda: receiver.metric_points(DURATION.name) and receiver.spans("chat gpt-fault"), timeout=15)

    # 3. Collector gone again: shutdown() still returns within its bound.
    receiver.stop()
    _call_latencies(0.2)
    started = time.monotonic()
    llmtel.shutdown()
    elapsed = time.monotonic() - started
    print(f"\n[{protocol}] collector down: calls {_fmt(down)}; shutdown {elapsed:.2f}s (bound {shutdown_bound}s)")
    assert elapsed < shutdown_bound + 1.0, f"shutdown took {elapsed:.2f}s"

    # 4. A fresh configure after shutdown exports again.
    receiver.start()
    receiver.clear()
    llmtel.configure(metrics_exporter=["otlp"], traces_exporter=["otlp"], export_timeout=2.0)
    _streamed_call("gpt-after")
    assert llmtel.force_flush(10)
    _assert_exemplar_links_to_span(receiver, "gpt-after")


@pytest.mark.realserver
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_slow_or_failing_collector_never_blocks(
    receiver: OtlpReceiver, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_to(monkeypatch, receiver, protocol)
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    receiver.delay = 3.0  # slower than the export timeout
    llmtel.configure(metrics_exporter=["otlp"], traces_exporter=["otlp"], export_timeout=1.5, shutdown_timeout=2.0)
    slow = _call_latencies(1.0)
    assert max(slow) < 0.5, max(slow)  # a call waiting on an export would take >= 1.5 s
    receiver.delay = 0.0
    receiver.error = "unavailable"
    failing = _call_latencies(0.6)
    assert max(failing) < 0.5, max(failing)
    receiver.wait_for(lambda: receiver.rejected > 0)
    started = time.monotonic()
    llmtel.shutdown()
    assert time.monotonic() - started < 3.0


def _fmt(values: list[float]) -> dict[str, Any]:
    values = sorted(values)
    return {"n": len(values), "p50_ms": round(values[len(values) // 2] * 1e3, 3), "max_ms": round(values[-1] * 1e3, 3)}


@pytest.mark.realserver
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_collector_outage_is_logged_once_and_counted(
    receiver: OtlpReceiver, protocol: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    _point_to(monkeypatch, receiver, protocol)
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    receiver.stop()
    memory = InMemoryMetricReader()
    caplog.set_level(logging.WARNING)
    llmtel.configure(
        metrics_exporter=["otlp"], traces_exporter=["otlp"], export_timeout=0.5, shutdown_timeout=2.0,
        metric_readers=[memory],
    )  # fmt: skip
    _call_latencies(2.0)  # ~10 metric and span export attempts, all failing
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    # One message per exporter (metrics, traces) for the whole outage, not one per attempt.
    assert len(records) <= 2, [r.getMessage()[:120] for r in records]
    failures = [
        p.value
        for rm in memory.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "llmtel.sdk.export.failures"
        for p in m.data.data_points
    ]
    assert sum(failures) >= 2


@pytest.mark.realserver
def test_exponential_histograms_on_request(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    _point_to(monkeypatch, receiver, "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "base2_exponential_bucket_histogram")
    llmtel.configure(metrics_exporter="otlp", traces_exporter="otlp")
    _streamed_call("gpt-expo")
    assert llmtel.force_flush(10)
    [point] = receiver.metric_points(TTFC.name)
    assert point.metric.WhichOneof("data") == "exponential_histogram"
    assert point.point.count == 1
    _assert_exemplar_links_to_span(receiver, "gpt-expo")


@pytest.mark.realserver
def test_exemplar_filter_always_off_from_environment(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    _point_to(monkeypatch, receiver, "http/protobuf")
    monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "always_off")
    llmtel.configure(metrics_exporter="otlp", traces_exporter="otlp")
    _streamed_call("gpt-noexemplar")
    assert llmtel.force_flush(10)
    [point] = receiver.metric_points(TTFC.name)
    assert point.point.count == 1
    assert list(point.point.exemplars) == []
    assert receiver.spans("chat gpt-noexemplar")  # the span itself is still exported
