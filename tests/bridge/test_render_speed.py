"""The bridge renders (with exemplars) in well under half the stock exporter's time.

A small, quick guard of the issue-7 target; the full figures (10 000 and 100 000 series)
come from tests/bridge/bench_bridge.py and are in docs/prometheus.md.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import AlwaysOnExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, generate_latest

from llmtel.readers.prometheus import PrometheusBridgeReader
from llmtel.semconv import TTFT_BUCKETS

SERIES = 1000


def _median(func: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def test_bridge_with_exemplars_is_at_least_twice_as_fast_as_stock() -> None:
    registry = CollectorRegistry(auto_describe=False)
    stock = PrometheusMetricReader(registry=registry)
    bridge = PrometheusBridgeReader()
    view = View(instrument_name="ttft", aggregation=ExplicitBucketHistogramAggregation(list(TTFT_BUCKETS)))
    provider = MeterProvider(metric_readers=[stock, bridge], views=[view], exemplar_filter=AlwaysOnExemplarFilter())
    histogram = provider.get_meter("speed").create_histogram("ttft", unit="s")
    with TracerProvider().get_tracer("speed").start_as_current_span("s"):
        for i in range(SERIES):
            histogram.record(0.001 * (i % 200), {"gen_ai.request.model": f"m{i}", "gen_ai.provider.name": "p"})
    try:
        text = bridge.render(openmetrics=True)
        assert text.count(" # {") == SERIES
        ours = _median(lambda: bridge.render(openmetrics=True))
        theirs = _median(lambda: generate_latest(registry))
        assert ours <= 0.5 * theirs, f"bridge {ours * 1000:.0f} ms vs stock {theirs * 1000:.0f} ms"
    finally:
        provider.shutdown()
