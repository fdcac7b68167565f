"""The bridge's exposition: OpenMetrics with trace exemplars, classic text without, both parseable."""

from __future__ import annotations

import math
from typing import Any

import pytest
from bridge_helpers import TTFC, configured, ids, om_families, samples, streamed_call, text_families
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal.exemplar import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from sdk_features import needs_upstream_scope_labels

import llmtel
from llmtel import semconv
from llmtel._internal.naming import prometheus_name
from llmtel.readers.prometheus import PrometheusBridgeReader, wants_openmetrics


def _exemplar_of(families: dict[str, Any], name: str, sample_name: str, **labels: str) -> list[Any]:
    found = []
    for sample in families[name].samples:
        if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
            found.append(sample)
    return found


def test_ttfc_bucket_carries_the_calls_trace_and_span_id() -> None:
    with configured() as telemetry:
        call = streamed_call(ttfc=0.05)
        trace_id, span_id = ids(call)
        text = telemetry.bridge.render(openmetrics=True)
    families = om_families(text)
    buckets = _exemplar_of(families, TTFC, f"{TTFC}_bucket", gen_ai_request_model="gpt-4o")
    with_exemplar = [s for s in buckets if s.exemplar is not None]
    assert len(with_exemplar) == 1, text
    sample = with_exemplar[0]
    assert sample.exemplar.labels == {"trace_id": trace_id, "span_id": span_id}
    assert len(trace_id) == 32 and len(span_id) == 16
    # The exemplar sits in the bucket its value falls in, with the measured value and a timestamp.
    value = sample.exemplar.value
    assert value == pytest.approx(call.time_to_first_chunk)
    bounds = [float(s.labels["le"]) for s in buckets]
    upper = float(sample.labels["le"])
    lower = max([b for b in bounds if b < upper], default=-math.inf)
    assert lower < value <= upper
    assert sample.exemplar.timestamp is not None and float(sample.exemplar.timestamp) > 1.6e9


def test_counter_exemplar_and_every_histogram_of_the_call() -> None:
    with configured() as telemetry:
        with llmtel.tool("search") as tool:
            llmtel.cache_lookup("prompt", hit=True)
        llmtel.cache_lookup("other", hit=True)  # outside any span: nothing to link to
        call = streamed_call()
        text = telemetry.bridge.render(openmetrics=True)
    families = om_families(text)
    cache = "llmtel_cache_requests"
    [hit] = _exemplar_of(families, cache, f"{cache}_total", llmtel_cache_name="prompt")
    assert hit.exemplar.labels == dict(zip(("trace_id", "span_id"), ids(tool), strict=True))
    assert hit.exemplar.value == 1
    [other] = _exemplar_of(families, cache, f"{cache}_total", llmtel_cache_name="other")
    assert other.exemplar is None
    call_ids = dict(zip(("trace_id", "span_id"), ids(call), strict=True))
    for spec_name in (
        "gen_ai.client.operation.duration",
        "gen_ai.client.operation.time_per_output_chunk",
        "gen_ai.client.token.usage",
    ):
        name = prometheus_name(semconv.spec(spec_name))
        linked = [s for s in families[name].samples if s.exemplar is not None]
        assert linked and all(s.exemplar.labels == call_ids for s in linked), name
    cost = families[prometheus_name(semconv.spec("llmtel.gen_ai.client.cost"))]
    # input and output cost, both linked to the call
    assert [s.exemplar.labels for s in cost.samples if s.name.endswith("_total")] == [call_ids, call_ids]


def test_classic_text_has_no_exemplars_and_parses() -> None:
    with configured() as telemetry:
        streamed_call()
        text = telemetry.bridge.render(openmetrics=False)
    assert " # {" not in text and "# EOF" not in text and "# UNIT" not in text
    families = text_families(text)
    assert families[TTFC].type == "histogram"
    assert families["target_info"].type == "gauge"
    assert "# TYPE llmtel_gen_ai_client_cost_USD_total counter" in text


def test_exemplars_survive_scrapes_until_a_newer_one_replaces_them() -> None:
    with configured() as telemetry:
        first = streamed_call(ttfc=0.05)
        for _ in range(3):  # a curl, a second Prometheus replica, ...: each collect empties the SDK reservoir
            families = om_families(telemetry.bridge.render(openmetrics=True))
            [kept] = [s for s in families[TTFC].samples if s.exemplar is not None]
            assert kept.exemplar.labels["span_id"] == ids(first)[1]
        second = streamed_call(ttfc=0.05)
        families = om_families(telemetry.bridge.render(openmetrics=True))
        [kept] = [s for s in families[TTFC].samples if s.exemplar is not None]
        assert kept.exemplar.labels["span_id"] == ids(second)[1]
        # A call in another bucket adds an exemplar there and leaves the first bucket's alone.
        third = streamed_call(ttfc=0.3)
        families = om_families(telemetry.bridge.render(openmetrics=True))
        linked = {s.labels["le"]: s.exemplar.labels["span_id"] for s in families[TTFC].samples if s.exemplar}
        assert sorted(linked.values()) == sorted([ids(second)[1], ids(third)[1]])


def _histogram_data(series: dict[str, list[Exemplar]]) -> MetricsData:
    points = [
        HistogramDataPoint(
            attributes={"k": key},
            start_time_unix_nano=0,
            time_unix_nano=1,
            count=len(exemplars),
            sum=sum(e.value for e in exemplars),
            bucket_counts=[sum(1 for e in exemplars if e.value <= 1), sum(1 for e in exemplars if e.value > 1)],
            explicit_bounds=[1.0],
            min=0,
            max=0,
            exemplars=exemplars,
        )
        for key, exemplars in series.items()
    ]
    metric = Metric("h", "d", "s", Histogram(points, AggregationTemporality.CUMULATIVE))
    scope = ScopeMetrics(InstrumentationScope("s"), [metric], "")
    return MetricsData([ResourceMetrics(Resource.create({}), [scope], "")])


def test_exemplar_memory_is_bounded_by_live_series() -> None:
    bridge = PrometheusBridgeReader()
    exemplar = Exemplar({}, 0.5, 10, span_id=2, trace_id=1)
    data = _histogram_data({"a": [exemplar], "b": [exemplar]})
    families: dict[str, Any] = {}
    bridge._render_data(data, families, True)
    assert len(bridge._series) == 2
    # Next collect: "b" vanished (e.g. the SDK dropped it); its state goes with it.
    data2 = _histogram_data({"a": []})
    bridge._render_data(data2, {}, True)
    assert len(bridge._series) == 1
    # Same attribute dict object → the kept exemplar is still there for "a".
    point_a = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points[0]
    data3 = _histogram_data({})
    data3.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points.append(point_a)  # type: ignore[attr-defined]
    families3: dict[str, Any] = {}
    bridge._render_data(data3, families3, True)
    assert any('trace_id="00000000000000000000000000000001"' in line for line in families3["h_seconds"].lines)


def test_exemplars_without_trace_context_are_not_served() -> None:
    bridge = PrometheusBridgeReader()
    families: dict[str, Any] = {}
    bridge._render_data(_histogram_data({"a": [Exemplar({}, 0.5, 10)]}), families, True)
    assert not any(" # {" in line for line in families["h_seconds"].lines)


@needs_upstream_scope_labels
def test_same_names_values_and_units_as_the_stock_exporter() -> None:
    """Name translation parity: every sample the stock exporter serves, the bridge serves identically."""
    stock_registry = CollectorRegistry(auto_describe=False)
    stock = PrometheusMetricReader(registry=stock_registry)
    bridge = PrometheusBridgeReader()
    provider = MeterProvider(metric_readers=[stock, bridge], resource=Resource.create({"service.name": "svc"}))
    meter = provider.get_meter("parity", "1.2", schema_url="https://example.com/s")
    for spec in semconv.INSTRUMENTS:
        if spec.kind.observable:
            continue
        name = semconv.emitted_name(spec)
        if spec.kind is semconv.Kind.HISTOGRAM:
            meter.create_histogram(name, spec.unit, spec.description).record(0.3, {"a.b": "x", "n": 3})
        elif spec.kind is semconv.Kind.COUNTER:
            meter.create_counter(name, spec.unit, spec.description).add(2.5, {"a.b": "y", "flag": True})
        elif spec.kind is semconv.Kind.UP_DOWN_COUNTER:
            meter.create_up_down_counter(name, spec.unit, spec.description).add(-3, {"q": 'quo"te\\back\nline'})
        else:
            meter.create_gauge(name, spec.unit, spec.description).set(1.5, {"list": ("a", "b")})

    def normalized(text: str, parse: Any) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
        return {
            (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if v != "")), s.value)
            for s in samples(parse(text))
        }

    from prometheus_client.parser import text_string_to_metric_families as parse_text

    stock_text = generate_latest(stock_registry).decode()
    ours = bridge.render(openmetrics=False)
    assert normalized(ours, parse_text) == normalized(stock_text, parse_text)
    stock_om = generate_openmetrics(stock_registry).decode()
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

    assert normalized(bridge.render(openmetrics=True), parse_om) == normalized(stock_om, parse_om)
    # Types and units too (HELP text included).
    stock_families = {f.name: (f.type, f.unit, f.documentation) for f in parse_om(stock_om)}
    our_families = {f.name: (f.type, f.unit, f.documentation) for f in parse_om(bridge.render(openmetrics=True))}
    assert our_families == stock_families
    provider.shutdown()


def test_registry_compat_path_serves_the_same_with_exemplars() -> None:
    with configured() as telemetry:
        call = streamed_call()
        text = generate_openmetrics(telemetry.bridge.registry).decode()
        classic = generate_latest(telemetry.bridge.registry).decode()
    families = om_families(text)
    assert [s.exemplar.labels["span_id"] for s in families[TTFC].samples if s.exemplar] == [ids(call)[1]]
    assert TTFC in text_families(classic)


def test_label_values_are_escaped_and_resource_labels_filtered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_PROMETHEUS_RESOURCE_LABELS", "service.name,deployment.*")
    with configured(
        service_name="svc", resource_attributes={"deployment.environment": "prod", "host.name": "h"}
    ) as telemetry:
        llmtel.cache_lookup('we"ird\\name\nx', hit=True)
        text = telemetry.bridge.render(openmetrics=True)
    families = om_families(text)
    [sample] = families["llmtel_cache_requests"].samples
    assert sample.labels["llmtel_cache_name"] == 'we"ird\\name\nx'
    assert sample.labels["service_name"] == "svc"
    assert sample.labels["deployment_environment"] == "prod"
    assert "host_name" not in sample.labels
    assert families["target"].samples[0].labels["host_name"] == "h"


def test_exemplars_off_with_always_off_filter() -> None:
    with configured(exemplar_filter="always_off") as telemetry:
        streamed_call()
        text = telemetry.bridge.render(openmetrics=True)
    assert " # {" not in text
    om_families(text)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
            "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            True,
        ),
        ("application/openmetrics-text; version=1.0.0", True),
        ("text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5", False),
        ("text/plain", False),
        ("", False),
        ("*/*", False),
        ("application/openmetrics-text;q=0", False),
    ],
)
def test_content_negotiation(accept: str, expected: bool) -> None:
    assert wants_openmetrics(accept) is expected


def test_force_flush_does_not_eat_exemplars() -> None:
    with configured() as telemetry:
        call = streamed_call()
        assert llmtel.force_flush()
        families = om_families(telemetry.bridge.render(openmetrics=True))
    assert [s.exemplar.labels["span_id"] for s in families[TTFC].samples if s.exemplar] == [ids(call)[1]]


def test_bridge_on_an_auto_describing_registry(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry(auto_describe=True)
    bridge = PrometheusBridgeReader(registry=registry)  # must not collect before it has a provider
    assert "Cannot call collect" not in caplog.text
    provider = MeterProvider(metric_readers=[bridge])
    provider.get_meter("m").create_counter("hits").add(2)
    assert 'hits_total{otel_scope_name="m"} 2' in generate_latest(registry).decode()
    provider.shutdown()


def test_unsupported_and_clashing_metrics_are_skipped_not_fatal() -> None:
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View

    from llmtel._internal import errors as _errors

    _errors.reset()
    bridge = PrometheusBridgeReader()
    provider = MeterProvider(
        metric_readers=[bridge],
        views=[View(instrument_name="expo", aggregation=ExponentialBucketHistogramAggregation())],
    )
    meter = provider.get_meter("m")
    meter.create_histogram("expo", unit="s").record(1.0)
    meter.create_counter("clash").add(1)
    meter.create_gauge("clash").set(5)  # same family name, other type
    meter.create_counter("a.b").add(1, {"x.y": "dots", "x_y": "underscores", "n": 1})
    meter.create_up_down_counter("plain").add(3)
    text = bridge.render(openmetrics=True)
    families = om_families(text)
    assert "expo_seconds" not in families
    assert families["clash"].type == "counter"
    [sample] = families["a_b"].samples
    assert sample.labels["x_y"] in ("dots", "underscores") and sample.labels["n"] == "1"
    assert families["plain"].samples[0].value == 3
    problems = _errors.problem_counts()
    assert problems.get("prometheus: unsupported metric data") == 1
    assert problems.get("prometheus name clash") == 1
    provider.shutdown()
