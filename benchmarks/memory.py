"""(4): memory held per 1k series, measured with tracemalloc.

Each case starts from a fresh pipeline, then creates N series and reports the
bytes still allocated afterwards (after a GC), scaled to 1,000 series:

* SDK histogram series with exemplars, read by llmtel's bridge, before and
  after a first scrape (the bridge caches label text and keeps exemplars);
* the same on the stock exporter (no exemplars, nothing kept between scrapes);
The trace store is shrunk to one trace, so spans do not count (it keeps at
most ``trace_store_size`` traces whatever the number of series).

* ``llmtel.llm_call`` with N distinct models (every series one call creates:
  duration, 2 x token usage, cost, active requests, time to first chunk and
  time per output chunk);
* prometheus_client's labelled histogram children.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.view import View
from prometheus_client import CollectorRegistry, generate_latest

import llmtel
from benchmarks import scrape
from benchmarks.harness import Row
from llmtel import semconv
from llmtel._internal import fastpath
from llmtel._internal import state as _state


def _held(setup: Callable[[], Any], work: Callable[[Any], Any]) -> int:
    """Bytes allocated by ``work(setup())`` and still alive afterwards."""
    state = setup()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = work(state)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return after - before


def _render(telemetry: llmtel.Telemetry) -> Any:
    bridge = telemetry.bridge
    assert bridge is not None
    if hasattr(bridge, "render"):
        return bridge.render(openmetrics=True)
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

    return generate_openmetrics(bridge.registry)


def run(series: int) -> list[Row]:
    rows: list[Row] = []
    per = 1000 / series

    def add(name: str, held: int, note: str = "") -> None:
        kib = held * per / 1024
        rows.append(Row("memory per 1k series", name, kib, kib, kib, "KiB", note=note))

    def configure() -> llmtel.Telemetry:
        return llmtel.configure(
            prometheus_port=0,
            gpu_metrics=False,
            process_metrics=False,
            cardinality_limit=series + 100,
            trace_store_size=1,  # metric state only: the trace store's spans are bounded and not per series
        )

    def bridge_series(telemetry: llmtel.Telemetry) -> Any:
        assert telemetry.tracer_provider is not None
        tracer = telemetry.tracer_provider.get_tracer("bench.memory")
        histogram = llmtel._internal.state.current().instruments.client_duration
        for i in range(series):
            with tracer.start_as_current_span("call"):
                for value in scrape._values(i):
                    histogram.record(value, scrape._attrs(i))
        return None

    try:
        add("SDK histogram + exemplars, llmtel bridge, before scrape", _held(configure, bridge_series))
    finally:
        llmtel.shutdown()
    try:

        def record_and_scrape(telemetry: llmtel.Telemetry) -> Any:
            bridge_series(telemetry)
            return _render(telemetry)[:0]

        add("SDK histogram + exemplars, llmtel bridge, after a scrape", _held(configure, record_and_scrape))
    finally:
        llmtel.shutdown()

    def stock_setup() -> tuple[MeterProvider, CollectorRegistry]:
        registry = CollectorRegistry(auto_describe=False)
        provider = MeterProvider(
            metric_readers=[PrometheusMetricReader(registry=registry)],
            exemplar_filter=AlwaysOffExemplarFilter(),
            views=[View(instrument_name=scrape.DURATION.name, aggregation_cardinality_limit=series + 100)],
        )
        return provider, registry

    def stock_series(state: tuple[MeterProvider, CollectorRegistry]) -> Any:
        provider, registry = state
        spec = scrape.DURATION
        histogram = provider.get_meter(_state.SCOPE, _state.VERSION, schema_url=semconv.SCHEMA_URL).create_histogram(
            spec.name, spec.unit, spec.description, explicit_bucket_boundaries_advisory=list(spec.buckets or ())
        )
        for i in range(series):
            for value in scrape._values(i):
                histogram.record(value, scrape._attrs(i))
        return generate_latest(registry)[:0]

    add("SDK histogram, stock OTel exporter, after a scrape", _held(stock_setup, stock_series))

    def calls(telemetry: llmtel.Telemetry) -> Any:
        for i in range(series):
            with llmtel.llm_call(provider="openai", model=f"model-{i:06d}", stream=True) as call:
                for _ in call.wrap_stream(range(4)):
                    pass
                call.set_usage(input_tokens=10, output_tokens=4)
        fastpath.drain()  # every value folded: the series exist in the SDK, the buffers are empty
        return None

    try:
        add("llmtel.llm_call, distinct models (all its series)", _held(configure, calls), "7 metric series per model")
    finally:
        llmtel.shutdown()

    def prom_setup() -> Any:
        return None

    add("prometheus_client Histogram children", _held(prom_setup, lambda _: scrape._prometheus_client(series)))
    return rows
