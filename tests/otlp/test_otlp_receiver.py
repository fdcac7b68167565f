"""Self-tests of the OTLP test receiver, driven by the raw SDK's own OTLP exporters (no llmtel)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from otlp_receiver import OtlpReceiver

from llmtel.semconv import INSTRUMENTS

PROTOCOLS = ["grpc", "http/protobuf"]
TTFC = next(i for i in INSTRUMENTS if "time_to_first_chunk" in i.name)


def _exporters(rx: OtlpReceiver, protocol: str, **kw: Any) -> tuple[Any, Any]:
    if protocol == "grpc":
        return (
            GrpcMetricExporter(endpoint=rx.grpc_endpoint, insecure=True, **kw),
            GrpcSpanExporter(endpoint=rx.grpc_endpoint, insecure=True, **kw),
        )
    return (
        HttpMetricExporter(endpoint=rx.http_endpoint + "/v1/metrics", **kw),
        HttpSpanExporter(endpoint=rx.http_endpoint + "/v1/traces", **kw),
    )


def _pipeline(rx: OtlpReceiver, protocol: str, **kw: Any) -> tuple[MeterProvider, TracerProvider]:
    metric_exporter, span_exporter = _exporters(rx, protocol, **kw)
    resource = Resource.create({"service.name": "rx-selftest", "deployment.environment.name": "test"})
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=60_000)
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    tracers = TracerProvider(resource=resource)
    tracers.add_span_processor(SimpleSpanProcessor(span_exporter))
    return meters, tracers


@pytest.mark.realserver
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_histogram_exemplar_carries_span_ids(receiver: OtlpReceiver, protocol: str) -> None:
    meters, tracers = _pipeline(receiver, protocol)
    try:
        hist = meters.get_meter("selftest").create_histogram(TTFC.name, unit=TTFC.unit)
        with tracers.get_tracer("selftest").start_as_current_span("chat gpt-test") as span:
            hist.record(0.123, {"gen_ai.request.model": "gpt-test"})
            ctx = span.get_span_context()
        assert meters.force_flush(10_000)
    finally:
        meters.shutdown()
        tracers.shutdown()

    # force_flush() and shutdown() both export the (cumulative) point.
    point = receiver.wait_for(lambda: receiver.metric_points(TTFC.name))[0]
    assert point.transport == ("grpc" if protocol == "grpc" else "http")
    assert point.resource["service.name"] == "rx-selftest"
    assert point.resource["deployment.environment.name"] == "test"
    assert point.attributes == {"gen_ai.request.model": "gpt-test"}
    assert point.point.count == 1 and point.point.sum == pytest.approx(0.123)
    [exemplar] = point.point.exemplars
    assert exemplar.as_double == pytest.approx(0.123)
    [span_rec] = receiver.wait_for(lambda: receiver.spans("chat gpt-test"))
    assert span_rec.trace_id == ctx.trace_id.to_bytes(16, "big") == bytes(exemplar.trace_id)
    assert span_rec.span_id == ctx.span_id.to_bytes(8, "big") == bytes(exemplar.span_id)


@pytest.mark.realserver
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_gzip_and_headers(receiver: OtlpReceiver, protocol: str) -> None:
    if protocol == "grpc":
        from grpc import Compression as GrpcCompression

        compression: Any = GrpcCompression.Gzip
    else:
        compression = HttpCompression.Gzip
    meters, tracers = _pipeline(receiver, protocol, compression=compression, headers={"x-tenant": "acme"})
    try:
        meters.get_meter("selftest").create_counter("selftest.count").add(3)
        assert meters.force_flush(10_000)
    finally:
        meters.shutdown()
        tracers.shutdown()
    point = receiver.metric_points("selftest.count")[0]
    assert point.point.as_int == 3
    req = receiver.requests("metrics")[0]
    assert req.headers["x-tenant"] == "acme"
    if protocol != "grpc":  # grpc-core decompresses and strips grpc-encoding before the servicer sees it
        assert req.headers.get("content-encoding") == "gzip"


@pytest.mark.realserver
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_error_on_demand_is_seen_by_exporter(receiver: OtlpReceiver, protocol: str) -> None:
    receiver.error = "invalid"  # not retryable: the exporter gives up at once
    metric_exporter, span_exporter = _exporters(receiver, protocol, timeout=5)
    meters = MeterProvider(metric_readers=[PeriodicExportingMetricReader(metric_exporter, 60_000)])
    try:
        meters.get_meter("selftest").create_counter("selftest.count").add(1)
        meters.force_flush(10_000)
    finally:
        meters.shutdown()
    assert receiver.rejected >= 1
    assert receiver.metric_points() == []
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(span_exporter))
    tracers.get_tracer("t").start_span("s").end()
    tracers.shutdown()
    assert receiver.spans() == []
    assert receiver.rejected >= 2


@pytest.mark.realserver
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_slow_receiver_times_out_the_export(receiver: OtlpReceiver, protocol: str) -> None:
    receiver.delay = 3.0
    _, span_exporter = _exporters(receiver, protocol, timeout=0.5)
    tracers = TracerProvider()
    processor = SimpleSpanProcessor(span_exporter)
    tracers.add_span_processor(processor)
    span = tracers.get_tracer("t").start_span("slow")
    started = time.monotonic()
    span.end()  # SimpleSpanProcessor exports synchronously
    elapsed = time.monotonic() - started
    tracers.shutdown()
    assert elapsed < 2.5, elapsed
    assert receiver.spans() == []


@pytest.mark.realserver
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stop_and_restart_on_same_port(receiver: OtlpReceiver, protocol: str) -> None:
    ports = (receiver.grpc_port, receiver.http_port)
    _, span_exporter = _exporters(receiver, protocol, timeout=1)
    receiver.stop()
    assert span_exporter.export([_finished_span("while-down")]) is SpanExportResult.FAILURE
    receiver.start()
    assert (receiver.grpc_port, receiver.http_port) == ports
    # A gRPC channel that failed to connect waits out its reconnect backoff (~1 s) first: a later
    # export succeeds, maybe not the very next one.
    deadline = time.monotonic() + 15
    while span_exporter.export([_finished_span("after-restart")]) is not SpanExportResult.SUCCESS:
        assert time.monotonic() < deadline, "no export succeeded after the restart"
    span_exporter.shutdown()
    assert {s.name for s in receiver.spans()} == {"after-restart"}


@pytest.mark.realserver
def test_json_body_over_http(receiver: OtlpReceiver) -> None:
    import json
    import urllib.request

    body = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "json.metric", "gauge": {"dataPoints": [
        {"asInt": "7"}]}}]}]}]}  # fmt: skip
    req = urllib.request.Request(
        receiver.http_endpoint + "/v1/metrics",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
    [point] = receiver.metric_points("json.metric")
    assert point.point.as_int == 7


def _finished_span(name: str) -> Any:
    tracers = TracerProvider()
    span = tracers.get_tracer("t").start_span(name)
    span.end()
    return span
