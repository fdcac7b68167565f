"""(3): the cost of one scrape at N histogram series, and its size.

llmtel's bridge (as ``llmtel.configure()`` builds it, trace-based exemplars,
one sampled span per series so every series carries exemplars) against the
stock ``opentelemetry-exporter-prometheus`` reader (no exemplars) and
prometheus_client's own histogram, all holding the same N series of
``gen_ai.client.operation.duration`` (14 bucket bounds, 5 labels).

The bridge is rendered through ``PrometheusBridgeReader.render()`` when it has
one (else through ``generate_latest`` of its registry), and once more through
llmtel's HTTP endpoint (OpenMetrics, gzip as Prometheus asks for it), so the
figure includes the server and compression.
"""

from __future__ import annotations

import gzip
import urllib.request
from collections.abc import Callable
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.view import View
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Histogram as PromHistogram
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

import llmtel
from benchmarks.harness import Row, interleaved, rows_from
from llmtel import semconv
from llmtel._internal import state as _state
from llmtel._internal.naming import prometheus_name

DURATION = semconv.spec("gen_ai.client.operation.duration")
STOCK = "stock OTel exporter, text 0.0.4"
Case = tuple[str, Callable[[], Any]]
OM_ACCEPT = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"


def _attrs(i: int) -> dict[str, Any]:
    return {
        semconv.OPERATION_NAME: "chat",
        semconv.PROVIDER_NAME: "openai",
        semconv.REQUEST_MODEL: f"model-{i:06d}",
        semconv.RESPONSE_MODEL: f"model-{i:06d}-2025",
        semconv.SERVER_ADDRESS: "api.openai.com",
    }


def _values(i: int) -> tuple[float, ...]:
    # Three samples in different buckets per series: three exemplars where the bridge keeps them.
    return (0.015 + (i % 7) * 0.01, 0.3, 3.0)


def _llmtel_bridge(n: int) -> llmtel.Telemetry:
    telemetry = llmtel.configure(prometheus_port=0, gpu_metrics=False, process_metrics=False, cardinality_limit=n + 100)
    assert telemetry.tracer_provider is not None
    tracer = telemetry.tracer_provider.get_tracer("bench.scrape")
    histogram = llmtel._internal.state.current().instruments.client_duration
    for i in range(n):
        with tracer.start_as_current_span("call"):
            for value in _values(i):
                histogram.record(value, _attrs(i))
    return telemetry


def _stock(n: int) -> tuple[MeterProvider, CollectorRegistry]:
    registry = CollectorRegistry(auto_describe=False)
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(registry=registry)],
        exemplar_filter=AlwaysOffExemplarFilter(),
        views=[View(instrument_name=DURATION.name, aggregation_cardinality_limit=n + 100)],
    )
    bounds = list(DURATION.buckets or ())
    histogram = provider.get_meter(_state.SCOPE, _state.VERSION, schema_url=semconv.SCHEMA_URL).create_histogram(
        DURATION.name, DURATION.unit, DURATION.description, explicit_bucket_boundaries_advisory=bounds
    )
    for i in range(n):
        for value in _values(i):
            histogram.record(value, _attrs(i))
    return provider, registry


def _prometheus_client(n: int) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    labels = [k.replace(".", "_") for k in _attrs(0)]
    histogram = PromHistogram(
        prometheus_name(DURATION), DURATION.description, labels, buckets=DURATION.buckets, registry=registry
    )
    for i in range(n):
        child = histogram.labels(*_attrs(i).values())
        for value in _values(i):
            child.observe(value)
    return registry


def _http_get(url: str) -> Callable[[], bytes]:
    def get() -> bytes:
        request = urllib.request.Request(url, headers={"Accept": OM_ACCEPT, "Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=60) as response:
            body: bytes = response.read()
        return body

    return get


BRIDGE_ONLY_ABOVE = 20_000  # the stock exporter needs minutes there: time only llmtel, once


def _renders(
    telemetry: llmtel.Telemetry, stock: CollectorRegistry | None, prom: CollectorRegistry | None
) -> list[Case]:
    bridge = telemetry.bridge
    assert bridge is not None
    cases: list[Case] = []
    if hasattr(bridge, "render"):
        cases.append(("llmtel bridge, OpenMetrics + exemplars", lambda: bridge.render(openmetrics=True)))
        cases.append(("llmtel bridge, text 0.0.4", lambda: bridge.render(openmetrics=False)))
    else:  # the bridge as first committed: a PrometheusMetricReader subclass
        cases.append(("llmtel bridge, OpenMetrics + exemplars", lambda: generate_openmetrics(bridge.registry)))
        cases.append(("llmtel bridge, text 0.0.4", lambda: generate_latest(bridge.registry)))
    if telemetry.metrics_url:
        cases.append(("llmtel endpoint, HTTP OpenMetrics gzip", _http_get(telemetry.metrics_url)))
    if stock is not None:
        cases.append((STOCK, lambda: generate_latest(stock)))
    if prom is not None:
        cases.append(("prometheus_client Histogram, text 0.0.4", lambda: generate_latest(prom)))
    return cases


def _run_size(n: int, quick: bool) -> list[Row]:
    big = n > BRIDGE_ONLY_ABOVE
    telemetry = _llmtel_bridge(n)
    stock_provider, stock_registry = (None, None) if big else _stock(n)
    try:
        cases = _renders(telemetry, stock_registry, None if big else _prometheus_client(n))
        rounds = 2 if quick else (1 if big else 7 if n <= 2000 else 3)
        results = interleaved(
            f"scrape: {n:,} series", cases, rounds=rounds, inner=1, warmup=1,
            baseline=None if big else STOCK,
        )  # fmt: skip
        for result in results:
            result.unit = "ms"
        rows = rows_from(results)
        stock_bytes = len(generate_latest(stock_registry)) if stock_registry is not None else None
        for name, render in cases:
            body = render()
            raw = body.encode() if isinstance(body, str) else body
            mb = len(raw) / 1e6
            note = ""
            if raw[:2] == b"\x1f\x8b":
                note = f"gzip; {len(gzip.decompress(raw)) / 1e6:.2f} MB uncompressed"
            ratio = len(raw) / stock_bytes if stock_bytes else None
            rows.append(Row(f"scrape size: {n:,} series", name, mb, mb, mb, "MB", ratio=ratio, note=note))
        return rows
    finally:
        llmtel.shutdown()
        if stock_provider is not None:
            stock_provider.shutdown()


def run(sizes: list[int], *, quick: bool) -> list[Row]:
    """Per size: milliseconds per scrape (interleaved rounds), then the bytes of one scrape per case."""
    rows: list[Row] = []
    for n in sizes:
        rows += _run_size(n, quick)
    return rows
