"""llmtel._internal.fastpath.record_many gives exactly what per-value Histogram.record() gives.

Two identical SDK pipelines get the same values, one through the plain API and
one through record_many; the collected points must be equal sample for sample
(bucket counts, count, sum to the bit, min, max) with the same exemplars
(value, trace id, span id, filtered attributes). Fallbacks are checked to take
the plain path and still give equal results.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    Histogram,
    MeterProvider,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics._internal.exemplar import exemplar_reservoir as _reservoir_module
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.trace import TracerProvider
from sdk_features import needs_fast_path

import llmtel
from llmtel import semconv
from llmtel._internal import fastpath as _fastpath

# Fast and plain paths compared sample for sample: only where the fast path runs.
pytestmark = needs_fast_path

BOUNDS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.08, 0.1, 0.5]
# On-boundary values, zero, beyond the last bound, repeats, an int, odd floats whose sum order matters.
VALUES = [0.0, 0.001, 0.0010001, 0.005, 0.1, 0.3, 7.5, 0.0123456789, 1e-9, 0.07, 0.07, 2, 0.1 + 0.2, 1 / 3] * 5
ATTRS = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m", "n": 3}

Pipeline = tuple[MeterProvider, list[InMemoryMetricReader], Any]


def _pipeline(views: Sequence[View] = (), exemplar_filter: Any = None) -> Pipeline:
    readers = [
        InMemoryMetricReader(),
        InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA}),
    ]
    provider = MeterProvider(
        metric_readers=readers, views=list(views), exemplar_filter=exemplar_filter or TraceBasedExemplarFilter()
    )
    histogram = provider.get_meter("t").create_histogram("h", "s", explicit_bucket_boundaries_advisory=BOUNDS)
    return provider, readers, histogram


def _points(reader: InMemoryMetricReader) -> list[dict[str, Any]]:
    data = reader.get_metrics_data()
    out = []
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    point = {
                        "name": metric.name,
                        "attributes": dict(p.attributes or {}),
                        "count": getattr(p, "count", None),
                        "sum": getattr(p, "sum", None),
                        "min": getattr(p, "min", None),
                        "max": getattr(p, "max", None),
                        "exemplars": sorted(
                            (e.value, e.trace_id, e.span_id, tuple(sorted((e.filtered_attributes or {}).items())))
                            for e in p.exemplars
                        ),
                    }
                    if not hasattr(p, "count"):  # a sum
                        point = {"name": metric.name, "attributes": dict(p.attributes or {}), "value": p.value,
                                 "exemplars": point["exemplars"]}  # fmt: skip
                    elif hasattr(p, "bucket_counts"):
                        point["bucket_counts"] = tuple(p.bucket_counts)
                        point["explicit_bounds"] = tuple(p.explicit_bounds)
                    else:  # exponential histogram
                        point["positive"] = (p.positive.offset, tuple(p.positive.bucket_counts))
                    out.append(point)
    return sorted(out, key=lambda p: sorted(p["attributes"].items(), key=str))


@pytest.fixture(autouse=True)
def _own_randrange(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may give the SDK's sampling reservoirs their own random numbers; put the module's back after."""
    monkeypatch.setattr(_reservoir_module, "randrange", _reservoir_module.randrange)


@pytest.fixture
def tracer() -> trace.Tracer:
    return TracerProvider().get_tracer("t")


def _compare(
    tracer: trace.Tracer,
    batches: Sequence[tuple[Sequence[float], dict[str, Any]]],
    *,
    make: Callable[[], Pipeline] = _pipeline,
    expect_fast: bool = True,
    collects: int = 2,
    random_reservoir: bool = False,
    kind: str = "histogram",
) -> list[dict[str, Any]]:
    """Feed ``batches`` plain into one pipeline and via the fast path into another; assert equal points.

    ``kind``: "histogram" (record_many), "counter" or "updown" (add, one call per value).
    """
    pipelines = [make(), make()]
    if kind != "histogram":
        for i, (provider, readers, _) in enumerate(pipelines):
            meter = provider.get_meter("t")
            counter = meter.create_counter("c") if kind == "counter" else meter.create_up_down_counter("c")
            pipelines[i] = (provider, readers, counter)
    (_, plain_readers, plain_i), (_, fast_readers, fast_i) = pipelines
    plain_out: list[list[dict[str, Any]]] = []
    fast_out: list[list[dict[str, Any]]] = []
    for round_no in range(collects):  # later rounds: accumulation (cumulative), reset (delta), cached plans
        for instrument, fast in ((plain_i, False), (fast_i, True)):
            random.seed(round_no)
            # Sampling reservoirs draw the same numbers on both sides: the plain side when it records,
            # the fast side when its buffers are folded at collection.
            _reservoir_module.randrange = random.Random(round_no).randrange  # restored by _own_randrange
            for values, attrs in batches:
                with tracer.start_as_current_span("call"):
                    if not fast:
                        for value in values:
                            (instrument.record if kind == "histogram" else instrument.add)(value, attrs)
                    elif kind == "histogram":
                        assert _fastpath.record_many(instrument, values, attrs) is expect_fast
                    else:
                        for value in values:
                            assert _fastpath.add(instrument, value, attrs) is expect_fast
        plain_out += [_points(r) for r in plain_readers]
        fast_out += [_points(r) for r in fast_readers]
    # Exemplars carry different span ids per pipeline: compare them structurally, values exactly.
    for plain, fast in zip(plain_out, fast_out, strict=True):
        assert len(plain) == len(fast) > 0
        for p, f in zip(plain, fast, strict=True):
            p_ex, f_ex = p.pop("exemplars"), f.pop("exemplars")
            assert p == f
            if random_reservoir:  # a sampling reservoir picks at random: only its presence can be compared
                assert bool(p_ex) == bool(f_ex)
            else:
                assert [(v, attrs) for v, _, _, attrs in p_ex] == [(v, attrs) for v, _, _, attrs in f_ex]
            assert all(t and s for _, t, s, _ in f_ex)
    return fast_out[0]


def test_available_on_pinned_sdk() -> None:
    assert _fastpath.available, "the pinned SDK (1.45.x) must take the fast path"


def test_equal_to_plain_path_sample_for_sample(tracer: trace.Tracer) -> None:
    # Two calls into one series between collections: the running sum must match the bit.
    batches = [(VALUES, ATTRS), (VALUES[3:9], {**ATTRS, "gen_ai.request.model": "other"}), (VALUES[::-3], ATTRS)]
    points = _compare(tracer, batches)
    main = next(p for p in points if p["attributes"]["gen_ai.request.model"] == "m")
    assert main["count"] == len(VALUES) + len(VALUES[::-3])


def test_exemplars_carry_the_current_span(tracer: trace.Tracer) -> None:
    _, (reader, _), histogram = _pipeline()
    with tracer.start_as_current_span("call") as span:
        assert _fastpath.record_many(histogram, VALUES, ATTRS)
    (point,) = _points(reader)
    ctx = span.get_span_context()
    assert point["exemplars"], "a sampled span must leave exemplars"
    assert {(t, s) for _, t, s, _ in point["exemplars"]} == {(ctx.trace_id, ctx.span_id)}
    # One exemplar per touched bucket, holding the last value that fell in it (the reservoir's rule).
    touched = {sum(v > b for b in BOUNDS) for v in VALUES}
    assert len(point["exemplars"]) == len(touched)


def test_no_exemplars_outside_a_sampled_span() -> None:
    _, (reader, _), histogram = _pipeline()
    assert _fastpath.record_many(histogram, VALUES, ATTRS)
    (point,) = _points(reader)
    assert point["count"] == len(VALUES) and point["exemplars"] == []


@pytest.mark.parametrize("exemplar_filter", [AlwaysOnExemplarFilter, AlwaysOffExemplarFilter])
def test_other_sdk_filters(tracer: trace.Tracer, exemplar_filter: type) -> None:
    _compare(tracer, [(VALUES, ATTRS)], make=lambda: _pipeline(exemplar_filter=exemplar_filter()))


def test_view_attribute_keys_and_buckets(tracer: trace.Tracer) -> None:
    views = [
        View(
            instrument_name="h",
            attribute_keys={"gen_ai.request.model"},
            aggregation=ExplicitBucketHistogramAggregation([0.05, 1.0]),
        )
    ]
    points = _compare(tracer, [(VALUES, ATTRS)], make=lambda: _pipeline(views))
    assert points[0]["attributes"] == {"gen_ai.request.model": "m"}
    assert points[0]["explicit_bounds"] == (0.05, 1.0)


def test_cardinality_overflow(tracer: trace.Tracer) -> None:
    views = [View(instrument_name="h", aggregation_cardinality_limit=2)]
    batches = [(VALUES[:4], {**ATTRS, "gen_ai.request.model": f"m{i}"}) for i in range(4)]
    points = _compare(tracer, batches, make=lambda: _pipeline(views))
    assert any(p["attributes"] == {"otel.metric.overflow": True} for p in points)


def test_fallback_other_aggregation(tracer: trace.Tracer) -> None:
    views = [View(instrument_name="h", aggregation=ExponentialBucketHistogramAggregation())]
    _compare(tracer, [(VALUES, ATTRS)], make=lambda: _pipeline(views), expect_fast=False, random_reservoir=True)


def test_fallback_custom_exemplar_filter(tracer: trace.Tracer) -> None:
    class BigOnly(TraceBasedExemplarFilter):
        def should_sample(self, value: float, *args: Any) -> bool:
            return value > 0.05

    _compare(tracer, [(VALUES, ATTRS)], make=lambda: _pipeline(exemplar_filter=BigOnly()), expect_fast=False)


def test_bad_values_are_rejected_by_the_sdk(tracer: trace.Tracer, caplog: pytest.LogCaptureFixture) -> None:
    # Rejected values go through the public API at once (the SDK warns about and drops each one, and no
    # state changes); the rest of the call's values take the fast path.
    _compare(tracer, [([0.1, math.nan, 0.2, -1.0, math.inf], ATTRS)], collects=1)
    warnings = [r.getMessage() for r in caplog.records if "Histogram h" in r.getMessage()]
    assert len(warnings) == 6, warnings  # three per pipeline


def test_fallback_when_internals_unavailable(tracer: trace.Tracer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fastpath, "available", False)
    _compare(tracer, [(VALUES, ATTRS)], expect_fast=False)


def test_fallback_non_sdk_instrument() -> None:
    histogram = NoOpMeterProvider().get_meter("t").create_histogram("h")
    assert _fastpath.record_many(histogram, VALUES, ATTRS) is False
    assert _fastpath.record_many(histogram, [], ATTRS) is True


def test_single_values_and_plan_cache(tracer: trace.Tracer) -> None:
    # One value per call, many calls into the same series: the path llmtel takes for durations and tokens.
    batches = [([v], ATTRS) for v in VALUES] + [([v], {**ATTRS, "gen_ai.token.type": "input"}) for v in VALUES[:5]]
    _compare(tracer, batches, collects=3)


def test_equal_values_of_different_types_stay_apart(tracer: trace.Tracer) -> None:
    # The SDK keeps 1, 1.0 and True apart; a plan cache keyed on equal tuples must too.
    batches = [(VALUES[:3], {"n": 1}), (VALUES[3:6], {"n": 1.0}), (VALUES[6:9], {"n": True}), (VALUES[:2], {})]
    points = _compare(tracer, batches)
    assert len(points) == 4


def test_series_dropped_from_the_sdk_storage_are_recreated(tracer: trace.Tracer) -> None:
    # What the bridge does in a forked worker: give every view match a new, empty series dict, as the
    # SDK's own delta collection does (after os.fork() has folded the buffers: the drain here).
    def forget(provider: MeterProvider) -> None:
        _fastpath.drain()
        for storage in provider._measurement_consumer._reader_storages.values():
            for matches in storage._instrument_view_instrument_matches.values():
                for match in matches:
                    match._attributes_aggregation = {}

    outputs = []
    for fast in (False, True):
        provider, (reader, _), histogram = _pipeline()
        for _ in range(2):
            with tracer.start_as_current_span("call"):
                if fast:
                    assert _fastpath.record_many(histogram, VALUES[:5], ATTRS)
                    assert _fastpath.record(histogram, 0.5, ATTRS)
                else:
                    for value in [*VALUES[:5], 0.5]:
                        histogram.record(value, ATTRS)
            forget(provider)
        with tracer.start_as_current_span("call"):
            if fast:
                assert _fastpath.record_many(histogram, VALUES[5:9], ATTRS)
            else:
                for value in VALUES[5:9]:
                    histogram.record(value, ATTRS)
        (point,) = _points(reader)
        point.pop("exemplars")
        outputs.append(point)
    assert outputs[0] == outputs[1]
    assert outputs[1]["count"] == 4  # only what was recorded after the last reset


def test_sequence_values_of_equal_elements_stay_apart(tracer: trace.Tracer) -> None:
    batches = [(VALUES[:3], {"n": (1, 2)}), (VALUES[3:6], {"n": (1.0, 2.0)}), (VALUES[:2], {"n": (1, 2)})]
    points = _compare(tracer, batches)
    assert len(points) == 2


def test_no_attributes(tracer: trace.Tracer) -> None:
    _, (reader, _), histogram = _pipeline()
    with tracer.start_as_current_span("call"):
        assert _fastpath.record_many(histogram, VALUES, None)  # type: ignore[arg-type]
    (point,) = _points(reader)
    assert point["attributes"] == {} and point["count"] == len(VALUES) and point["exemplars"]


def test_unhashable_attribute_values(tracer: trace.Tracer) -> None:
    _compare(tracer, [(VALUES, {**ATTRS, "tags": ["a", "b"]}), (VALUES[:4], {**ATTRS, "tags": ["a", "b"]})])


@pytest.mark.parametrize("kind", ["counter", "updown"])
def test_sums_equal_to_plain_path(tracer: trace.Tracer, kind: str) -> None:
    amounts = [1, 0.25, 0.1, 3, 0.1 + 0.2, 1e-7] if kind == "counter" else [1, -1, 0.5, -0.25, 1, -1]
    batches = [(amounts, ATTRS), (amounts[:3], {**ATTRS, "gen_ai.request.model": "other"})]
    _compare(tracer, batches, kind=kind, collects=3)


@pytest.mark.parametrize("models", [2, 40], ids=["grouped", "value by value"])
def test_sampling_reservoirs_draw_in_record_order_across_series(tracer: trace.Tracer, models: int) -> None:
    # A histogram whose view keeps a sampling reservoir (not aligned to its buckets) and a counter: each
    # value draws a random number, in record order across every series; single values and sequences,
    # folded grouped (few attribute sets) and value by value (many): the same exemplars as the SDK's.
    def sampling(aggregation_type: type) -> Callable[..., Any]:
        return lambda **_: _reservoir_module.SimpleFixedSizeExemplarReservoir(size=2)

    views = [View(instrument_name="h", exemplar_reservoir_factory=sampling), View(instrument_name="c")]
    sides = []
    for fast in (False, True):
        provider, readers, histogram = _pipeline(views)
        counter = provider.get_meter("t").create_counter("c")
        _reservoir_module.randrange = random.Random(3).randrange  # restored by _own_randrange
        for _ in range(2):  # two collections: cumulative accumulates, delta resets
            for index in range(60):
                attrs = {**ATTRS, "gen_ai.request.model": f"m{index % models}"}
                values = VALUES[index % 7 : index % 7 + 3]
                with tracer.start_as_current_span("call"):
                    if not fast:
                        for value in values if index % 3 == 0 else values[:1]:
                            histogram.record(value, attrs)
                        counter.add(values[1], attrs)
                    else:
                        if index % 3 == 0:
                            assert _fastpath.record_many(histogram, values, attrs)
                        else:
                            assert _fastpath.record(histogram, values[0], attrs)
                        assert _fastpath.add(counter, values[1], attrs)
            sides.append([_points(reader) for reader in readers])  # each collection drains (cumulative, delta)
    for collected in sides:  # span ids differ between the pipelines: exemplars compared by value and attributes
        for points in collected:
            for point in points:
                assert all(trace_id and span_id for _, trace_id, span_id, _ in point["exemplars"])
                point["exemplars"] = [(value, attrs) for value, _, _, attrs in point["exemplars"]]
    plain, fast = sides[:2], sides[2:]
    assert plain == fast
    exemplars = [len(point["exemplars"]) for collected in fast for points in collected for point in points]
    assert max(exemplars) == 2 and sum(exemplars) > 2 * models
    assert any(point["name"] == "h" and point["exemplars"] for points in fast[0] for point in points)


def test_counter_rejects_negative_like_the_sdk(caplog: pytest.LogCaptureFixture) -> None:
    provider, (reader, _), _ = _pipeline()
    counter = provider.get_meter("t").create_counter("c")
    assert _fastpath.add(counter, -1.0, ATTRS) is False  # the SDK warns and drops it, at once
    assert _fastpath.add(counter, math.nan, ATTRS) is False
    assert _fastpath.add(counter, 2.0, ATTRS) is True
    (point,) = _points(reader)
    assert point["value"] == 2.0
    messages = [r.getMessage() for r in caplog.records]
    assert any("non-negative on Counter c" in m for m in messages) and any("nan is not finite" in m for m in messages)


def _tpoc_point(reader: InMemoryMetricReader) -> Any:
    data = reader.get_metrics_data()
    assert data is not None
    name = semconv.emitted_name(semconv.spec("gen_ai.client.operation.time_per_output_chunk"))
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    (point,) = metric.data.data_points
                    return point
    raise AssertionError(f"{name} not recorded")


@pytest.mark.parametrize("fast", [True, False])
def test_llm_call_stream_records_every_chunk_gap(monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    monkeypatch.setattr(_fastpath, "available", fast)
    reader = InMemoryMetricReader()
    llmtel.configure(
        metrics_exporter="none", metric_readers=[reader], prometheus_port=0, gpu_metrics=False, process_metrics=False
    )
    try:
        with llmtel.llm_call(provider="openai", model="m", stream=True) as call:
            assert list(call.wrap_stream(range(50))) == list(range(50))
            trace_id = call.span.get_span_context().trace_id
        point = _tpoc_point(reader)
        assert point.count == 49
        assert point.sum == pytest.approx(sum(call._gaps()))
        assert point.min == min(call._gaps()) and point.max == max(call._gaps())
        assert point.exemplars and {e.trace_id for e in point.exemplars} == {trace_id}
        assert {k: v for k, v in point.attributes.items()} == {
            semconv.OPERATION_NAME: "chat", semconv.PROVIDER_NAME: "openai", semconv.REQUEST_MODEL: "m",
        }  # fmt: skip
    finally:
        llmtel.shutdown()


# -- the fold's shortcuts for SDK calls it makes per value -----------------------------------------


class _SampledSpanSubclass(trace.NonRecordingSpan):
    """A span class of the application's own (the fold learns span classes as it meets them)."""


@needs_fast_path
@pytest.mark.parametrize(
    "exemplar_filter", [TraceBasedExemplarFilter(), AlwaysOnExemplarFilter(), AlwaysOffExemplarFilter()]
)
def test_filter_decision_is_the_filters_own(exemplar_filter: Any, tracer: trace.Tracer) -> None:
    sampled = trace.SpanContext(1, 2, is_remote=False, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
    unsampled = trace.SpanContext(1, 3, is_remote=False, trace_flags=trace.TraceFlags(trace.TraceFlags.DEFAULT))
    with tracer.start_as_current_span("real") as real:
        contexts = [
            Context(),
            trace.set_span_in_context(real),
            trace.set_span_in_context(trace.NonRecordingSpan(sampled)),
            trace.set_span_in_context(trace.NonRecordingSpan(unsampled)),
            trace.set_span_in_context(_SampledSpanSubclass(sampled)),
            trace.set_span_in_context(trace.INVALID_SPAN),
            Context({_fastpath.SPAN_KEY: "not a span"}),
        ]
        for ctx in contexts * 2:  # the second round: span classes already learned
            sampled, ids = _fastpath._exemplar_decision(exemplar_filter, ctx)
            assert sampled is exemplar_filter.should_sample(0, 0, None, ctx)
            if sampled:  # the ids offer() would read (unsampled contexts offer nothing)
                span = trace.get_current_span(ctx)
                context = span.get_span_context()
                assert ids == (None if span is trace.INVALID_SPAN else (context.trace_id, context.span_id))


@needs_fast_path
def test_draws_are_randranges_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_reservoir_module, "randrange", random.Random(7).randrange)
    draw = _fastpath._drawer()
    expected = random.Random(7)
    assert [draw(n) for n in range(1, 300)] == [expected.randrange(0, n) for n in range(1, 300)]
    # Any other callable is called as the SDK module calls it.
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(_reservoir_module, "randrange", lambda start, stop: calls.append((start, stop)) or 0)
    assert _fastpath._drawer()(5) == 0
    assert calls == [(0, 5)]


def _fold_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How the fold took a batch: ``made`` series shares (grouped), ``series`` of them folded in one step.

    Value by value, a number makes no share: it goes straight into its aggregation.
    """
    calls = {"made": 0, "series": 0}

    class Counted(_fastpath._Series):
        __slots__ = ()

        def __init__(self, *args: Any) -> None:
            calls["made"] += 1
            super().__init__(*args)

    original = _fastpath._fold_series

    def counted(entry: Any) -> None:
        calls["series"] += 1
        original(entry)

    monkeypatch.setattr(_fastpath, "_Series", Counted)
    monkeypatch.setattr(_fastpath, "_fold_series", counted)
    return calls


@needs_fast_path
def test_each_batch_is_folded_the_way_its_own_entries_call_for(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fold_calls(monkeypatch)
    _, readers, histogram = _pipeline()  # each reader has its own series
    for passes in (1, 2):  # and back: no batch is folded the way the one before it wanted
        for value in VALUES:  # many values, one attribute set: grouped, one step per series
            assert _fastpath.record(histogram, value, ATTRS)
        _fastpath.drain()
        assert calls == {"made": len(readers), "series": len(readers)}
        for index, value in enumerate(VALUES):  # one value per attribute set (many models): value by value
            assert _fastpath.record(histogram, value, {**ATTRS, "gen_ai.request.model": f"m{index}"})
        _fastpath.drain()
        assert calls == {"made": len(readers), "series": len(readers)}  # no share made, nothing grouped
        for reader, times in zip(readers, (passes, 1), strict=True):  # cumulative, delta: every value folded
            counts = {p["attributes"]["gen_ai.request.model"]: (p["count"], p["sum"]) for p in _points(reader)}
            assert [counts[f"m{index}"] for index in range(len(VALUES))] == [(times, times * v) for v in VALUES]
            assert counts["m"][0] == times * len(VALUES)
        calls.update(made=0, series=0)


@needs_fast_path
def test_a_sequence_is_folded_in_one_step_when_values_are_not_grouped(monkeypatch: pytest.MonkeyPatch) -> None:
    # One record of many values per series (a long stream's chunk gaps at many models): few entries per
    # attribute set, so not grouped, yet each sequence is one series' values and takes one step.
    calls = _fold_calls(monkeypatch)
    _, readers, histogram = _pipeline()
    for index in range(10):
        assert _fastpath.record_many(histogram, VALUES, {**ATTRS, "gen_ai.request.model": f"m{index}"})
    _fastpath.drain()
    assert calls == {"made": 10 * len(readers), "series": 10 * len(readers)}


@needs_fast_path
def test_offer_leaves_a_bucket_as_the_sdks_offer_does(tracer: trace.Tracer) -> None:
    sampled = trace.SpanContext(5, 6, is_remote=False, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
    with tracer.start_as_current_span("real") as real:
        contexts = [
            trace.set_span_in_context(real),
            Context(),  # no span: the bucket keeps the ids it had
            trace.set_span_in_context(trace.NonRecordingSpan(sampled)),
            trace.set_span_in_context(trace.INVALID_SPAN),
            trace.set_span_in_context(_SampledSpanSubclass(sampled)),
            Context({_fastpath.SPAN_KEY: "not a span"}),
        ]
    ours, theirs = _reservoir_module.ExemplarBucket(), _reservoir_module.ExemplarBucket()
    for index, ctx in enumerate(contexts * 2):
        attributes = {"n": index}
        _, ids = _fastpath._exemplar_decision(AlwaysOnExemplarFilter(), ctx)
        _fastpath._offer(ours, index + 0.5, 1000 + index, attributes, ids)
        theirs.offer(index + 0.5, 1000 + index, attributes, ctx)
        assert vars(ours) == vars(theirs)
        if index % 4 == 3:  # ids kept from earlier offers in between, and both reset alike
            assert ours.collect({}) == theirs.collect({}) is not None
