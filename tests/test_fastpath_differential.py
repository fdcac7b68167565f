"""Randomized differential test: llmtel's buffered record path against the plain SDK, point for point.

Two identical pipelines (a cumulative and a delta reader, a cardinality limit small
enough to overflow, one of the SDK's three exemplar filters) get the same random
sequence of operations: single records, multi-value records, counter and up/down
counter adds, whole-call bundles (``fastpath.Layout``), values the SDK rejects,
attribute sets that differ only by type (1, 1.0, True), unhashable values, no
attributes, and contexts with a sampled span, an unsampled span or none; with
collections at random points. One pipeline records through the public API, the
other through ``llmtel._internal.fastpath``. After every collection the points
must be equal: counts, bucket counts, sums to the bit, min, max, values, and the
exemplars (value, trace id, span id, filtered attributes). Both sides' sampling
reservoirs draw from equally seeded random generators. The same in batches of three
entries (a buffer folding itself) and in one batch of everything.
"""

from __future__ import annotations

import math
import random
import sys
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    Counter,
    Histogram,
    MeterProvider,
    TraceBasedExemplarFilter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics._internal.exemplar import exemplar_reservoir as _reservoir_module
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from sdk_features import needs_fast_path

from llmtel._internal import fastpath

BOUNDS = [0.01, 0.1, 1.0, 10.0]
DELTA = {Histogram: AggregationTemporality.DELTA, Counter: AggregationTemporality.DELTA,
         UpDownCounter: AggregationTemporality.DELTA}  # fmt: skip


class _Side:
    """One pipeline and its instruments."""

    def __init__(self, exemplar_filter: Any) -> None:
        self.readers = [InMemoryMetricReader(), InMemoryMetricReader(preferred_temporality=DELTA)]
        views = [View(instrument_name="h", aggregation_cardinality_limit=6), View(instrument_name="*")]
        self.provider = MeterProvider(metric_readers=self.readers, views=views, exemplar_filter=exemplar_filter)
        meter = self.provider.get_meter("t")
        self.h = meter.create_histogram("h", "s", explicit_bucket_boundaries_advisory=BOUNDS)
        self.tokens = meter.create_histogram("tokens", "t", explicit_bucket_boundaries_advisory=[1, 10, 100])
        self.c = meter.create_counter("c")
        self.u = meter.create_up_down_counter("u")
        self.layout = fastpath.Layout([self.h, self.tokens, self.tokens, self.c], _slot_attributes)

    def points(self) -> list[Any]:
        out = []
        for reader in self.readers:
            data = reader.get_metrics_data()
            for rm in data.resource_metrics if data else ():
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        for p in metric.data.data_points:
                            fields = {k: getattr(p, k, None) for k in ("count", "sum", "min", "max", "value")}
                            buckets = tuple(getattr(p, "bucket_counts", ()))
                            exemplars = [
                                (e.value, e.trace_id, e.span_id, sorted((e.filtered_attributes or {}).items(), key=str))
                                for e in p.exemplars
                            ]
                            out.append((metric.name, sorted(p.attributes.items(), key=str), fields, buckets, exemplars))
        return sorted(out, key=repr)


def _slot_attributes(slot: int, attrs: Any, error_type: str | None, variant: tuple[Any, ...]) -> dict[str, Any]:
    """Slot 0 carries error.type; the token slots a type; the counter the variant's late attributes."""
    if slot == 0:
        return {**attrs, "error.type": error_type} if error_type else dict(attrs)
    if slot in (1, 2):
        return {**attrs, "type": "in" if slot == 1 else "out"}
    return {**attrs, **variant[0]}


def _attributes(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.1:
        return {}
    if roll < 0.15:
        return {"m": rng.choice([1, 1.0, True])}  # equal values of different types: different series
    if roll < 0.2:
        return {"m": "a", "tags": ["x", "y"]}  # unhashable: never cached
    if roll < 0.25:
        return {"m": f"wide-{rng.randrange(20)}"}  # past the limit of 6 on "h": the overflow series
    return {"m": rng.choice("abc"), "p": rng.choice(["openai", "anthropic"])}


def _value(rng: random.Random, *, signed: bool = False) -> float:
    roll = rng.random()
    if roll < 0.02:
        return rng.choice([math.nan, math.inf, -math.inf, -1.0])  # rejected by the SDK (but -1 by up/down)
    if roll < 0.1:
        return rng.choice(BOUNDS)  # on a boundary
    value = rng.choice([rng.random() * 20, rng.randrange(200), 1 / 3, 0.1 + 0.2])
    return -value if signed and rng.random() < 0.4 else value


def _context(rng: random.Random, spans: list[Context]) -> Context:
    return rng.choice(spans)


def _spans(rng: random.Random) -> list[Context]:
    out = [Context()]
    for flags in (TraceFlags.SAMPLED, TraceFlags.SAMPLED, TraceFlags.DEFAULT):
        span = NonRecordingSpan(SpanContext(rng.getrandbits(128), rng.getrandbits(64), False, TraceFlags(flags)))
        out.append(trace.set_span_in_context(span))
    return out


def _run(side: _Side, ops: list[tuple[Any, ...]], fast: bool, seed: int) -> list[list[Any]]:
    snapshots = []
    _reservoir_module.randrange = random.Random(seed).randrange  # restored by the fixture
    for op in ops:
        name = op[0]
        if name == "collect":
            snapshots.append(side.points())
            continue
        ctx, args = op[1], op[2:]
        token = otel_context.attach(ctx)  # the context is the current one, as in llmtel's calls
        try:
            if name == "record":
                value, attributes = args
                fastpath.record(side.h, value, attributes) if fast else side.h.record(value, attributes)
            elif name == "many":
                values, attributes = args
                if fast:
                    fastpath.record_many(side.h, values, attributes)
                else:
                    for value in values:
                        side.h.record(value, attributes)
            elif name in ("add", "updown"):
                value, attributes = args
                instrument = side.c if name == "add" else side.u
                fastpath.add(instrument, value, attributes) if fast else instrument.add(value, attributes)
            elif name == "call":
                attributes, error, late, values = args
                if fast:
                    assert side.layout.record(attributes, error, (late,), values)
                else:
                    side.layout.record_plain(attributes, error, (late,), values)
        finally:
            otel_context.detach(token)
    snapshots.append(side.points())
    return snapshots


def _ops(rng: random.Random, spans: list[Context], n: int, collects: int = 1) -> list[tuple[Any, ...]]:
    ops: list[tuple[Any, ...]] = []
    for _ in range(n):
        kind = rng.choices(["record", "many", "add", "updown", "call", "collect"], [5, 3, 3, 2, 4, collects])[0]
        ctx = _context(rng, spans)
        if kind == "collect":
            ops.append(("collect",))
        elif kind == "record":
            ops.append(("record", ctx, _value(rng), _attributes(rng)))
        elif kind == "many":
            ops.append(("many", ctx, [_value(rng) for _ in range(rng.randrange(1, 12))], _attributes(rng)))
        elif kind in ("add", "updown"):
            ops.append((kind, ctx, _value(rng, signed=kind == "updown"), _attributes(rng)))
        else:
            attributes = {"m": rng.choice("ab"), "p": "openai"}
            error = rng.choice([None, None, "TimeoutError"])
            gaps = [abs(_value(rng)) for _ in range(rng.randrange(0, 6))] or None
            values = (gaps if rng.random() < 0.5 else _value(rng), rng.randrange(500), rng.choice([None, 7]),
                      rng.choice([None, 0.25, 1e-7]))  # fmt: skip
            late = rng.choice([{}, {}, {"route": "/chat"}, {"route": 1}])
            ops.append(("call", ctx, attributes, error, late, values))
    return ops


@pytest.fixture(autouse=True)
def _own_randrange(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_reservoir_module, "randrange", _reservoir_module.randrange)


@pytest.fixture(autouse=True, params=["grouped", "one by one", "adaptive"])
def fold_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every way of folding must end in the plain SDK's state: values grouped by series, folded one by
    one, or the way each batch picks from its entries per attribute set."""
    if request.param == "grouped":
        monkeypatch.setattr(fastpath, "_GROUP_FROM", 0)
    elif request.param == "one by one":
        monkeypatch.setattr(fastpath, "_GROUP_FROM", sys.maxsize)
    return str(request.param)


@needs_fast_path
@pytest.mark.parametrize("exemplar_filter", [TraceBasedExemplarFilter, AlwaysOnExemplarFilter, AlwaysOffExemplarFilter])
@pytest.mark.parametrize("seed", range(4))
def test_fast_path_equals_plain_sdk(seed: int, exemplar_filter: type, caplog: pytest.LogCaptureFixture) -> None:
    assert fastpath.available
    rng = random.Random(seed)
    spans = _spans(rng)
    ops = _ops(rng, spans, 400)
    plain = _run(_Side(exemplar_filter()), ops, False, seed)
    fast = _run(_Side(exemplar_filter()), ops, True, seed)
    assert len(plain) == len(fast) > 1
    for round_no, (p, f) in enumerate(zip(plain, fast, strict=True)):
        assert p == f, f"collection {round_no} differs"
    assert any(p for p in plain), "the operations recorded something"
    overflowed = any("otel.metric.overflow" in repr(point[1]) for snapshot in fast for point in snapshot)
    with_exemplars = any(point[4] for snapshot in fast for point in snapshot)
    assert overflowed and (with_exemplars or exemplar_filter is AlwaysOffExemplarFilter)


@needs_fast_path
@pytest.mark.parametrize("batches", ["small", "large"])
@pytest.mark.parametrize("seed", range(4, 8))
def test_fast_path_equals_plain_sdk_in_small_and_large_batches(
    seed: int, batches: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Small: a buffer folds every 3 entries, so most series get one value per batch (the fold's
    # one-value path). Large: one collection at the end, so every series gets many values per batch
    # (bucket counting, the last sampled value per bucket from the last record back).
    if batches == "small":
        monkeypatch.setattr(fastpath, "BUFFER_LIMIT", 3)
    rng = random.Random(seed)
    spans = _spans(rng)
    ops = _ops(rng, spans, 400, collects=4 if batches == "small" else 0)
    plain = _run(_Side(TraceBasedExemplarFilter()), ops, False, seed)
    fast = _run(_Side(TraceBasedExemplarFilter()), ops, True, seed)
    assert len(plain) == len(fast) >= (2 if batches == "small" else 1)
    for round_no, (p, f) in enumerate(zip(plain, fast, strict=True)):
        assert p == f, f"collection {round_no} differs"
    assert any(point[4] for snapshot in fast for point in snapshot), "exemplars were compared"
