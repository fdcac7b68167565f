"""Scrape cost of the bridge vs the stock opentelemetry-exporter-prometheus (run by hand).

    .venv/bin/python tests/bridge/bench_bridge.py --series 10000 --runs 7

Each histogram series (16 buckets) gets one value recorded inside a span, so
every series has an exemplar. Times one full scrape (SDK collect + render),
median of --runs, for: the stock reader + prometheus_client classic text and
OpenMetrics (no exemplars: it drops them), and the bridge's classic text and
OpenMetrics with exemplars. Also the SDK collect alone (an InMemoryMetricReader).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import AlwaysOnExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from llmtel.readers.prometheus import PrometheusBridgeReader
from llmtel.semconv import TTFT_BUCKETS


def median_seconds(func: Callable[[], object], runs: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - start)
        size = len(out) if isinstance(out, (bytes, str)) else 0
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-stock", action="store_true")
    args = parser.parse_args()

    stock_registry = CollectorRegistry(auto_describe=False)
    stock = PrometheusMetricReader(registry=stock_registry)
    bridge = PrometheusBridgeReader()
    memory = InMemoryMetricReader()
    view = View(
        instrument_name="ttft",
        aggregation=ExplicitBucketHistogramAggregation(list(TTFT_BUCKETS)),
        aggregation_cardinality_limit=args.series + 10,  # the SDK folds series past 2000 by default
    )
    readers = [bridge, memory] if args.skip_stock else [stock, bridge, memory]
    provider = MeterProvider(metric_readers=readers, views=[view], exemplar_filter=AlwaysOnExemplarFilter())
    histogram = provider.get_meter("bench").create_histogram("ttft", unit="s")
    tracer = TracerProvider().get_tracer("bench")
    n = args.series
    with tracer.start_as_current_span("bench"):
        for i in range(n):
            histogram.record(0.001 * (i % 200), {"gen_ai.request.model": f"model-{i}", "gen_ai.provider.name": "p"})
    for reader in (bridge,):  # warm caches as a long-running process would have them
        reader.render(openmetrics=True)

    rows = [("SDK collect only (InMemoryMetricReader)", lambda: memory.get_metrics_data())]
    if not args.skip_stock:
        rows += [
            ("stock exporter, classic text", lambda: generate_latest(stock_registry)),
            ("stock exporter, OpenMetrics (no exemplars)", lambda: generate_openmetrics(stock_registry)),
        ]
    rows += [
        ("llmtel bridge, classic text", lambda: bridge.render(openmetrics=False)),
        ("llmtel bridge, OpenMetrics + exemplars", lambda: bridge.render(openmetrics=True)),
    ]
    exemplars = bridge.render(openmetrics=True).count(" # {")
    print(
        f"{n} histogram series (bridge sees {exemplars} exemplars) x {len(TTFT_BUCKETS) + 1} buckets, "
        f"median of {args.runs} scrapes"
    )
    for label, func in rows:
        seconds, size = median_seconds(func, args.runs)
        print(f"  {label:45s} {seconds * 1000:9.1f} ms  {size / 1e6:6.1f} MB")
    provider.shutdown()


if __name__ == "__main__":
    main()
