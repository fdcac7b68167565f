"""A record path for llmtel's end-of-call recordings that skips the SDK's per-measurement work.

Through the public API every ``Histogram.record()`` / ``Counter.add()`` builds
a ``Measurement`` object, cleans and copies the attribute dict, hashes it per
view, takes a lock, searches the bucket and offers an exemplar: 7-14 µs each
with GenAI attributes (docs/performance.md has the profile). A streamed answer
gives one ``time_per_output_chunk`` sample per chunk, and every call records
the same attribute set into several instruments, so most of that work repeats.

Here, per instrument and attribute set, the resolution (cleaned attributes,
the view matches of every reader, their aggregation objects) is done once and
kept as a *plan*; a call then folds all its values into each aggregation under
the aggregation's lock in one step, and offers exemplars as the plain path
would.

This goes below the SDK's public API (``opentelemetry-sdk`` ``_internal``
objects, pinned to ``>=1.45,<1.46`` in pyproject.toml). It takes the fast
route only when every object on the way is exactly the type it was written
for: an SDK ``_Histogram`` / ``_Counter`` / ``_UpDownCounter``, the
synchronous measurement consumer, reader storages, view matches, the
explicit-bucket histogram or sum aggregation, and one of the SDK's three
exemplar filters. Anything else (another SDK version, a non-SDK or proxy
provider, a view that changes the aggregation, a custom exemplar filter,
non-finite values) takes the plain path, one public ``record()``/``add()`` per
value.

Equivalence with the plain path (tested sample for sample in
tests/benchmarks/test_fastpath.py): bucket counts, count, min and max are
equal; sums add the values one by one in the same order, so they are equal to
the bit; every value is offered to the exemplar reservoir in order, except that
for the aligned-bucket reservoir (the histogram default, which keeps the last
value offered per bucket) only the last value of each bucket is offered,
leaving it in the same state. Exemplars keep the trace/span ids and filtered
attributes; the values of one call share one timestamp.

Plans stay valid because the SDK never removes a series' aggregation from a
cumulative view match; still, every use checks that each series is still the
one in the match (llmtel's bridge forgets series a forked worker inherited) and
rebuilds the plan otherwise. Matches that reset on collection (delta
temporality) are resolved again under the match's lock on every call, as the
SDK does, and a plan is dropped when a reader is added to or removed from the
provider.
"""

from __future__ import annotations

import math
import weakref
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from functools import reduce
from operator import add as _add
from time import time_ns
from typing import Any

from opentelemetry.context import Context, get_current

__all__ = ["add", "available", "record", "record_many"]

try:  # Everything below is SDK-internal: a missing name means "use the plain path".
    from opentelemetry.attributes import _clean_attribute_value
    from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes, _ViewInstrumentMatch
    from opentelemetry.sdk.metrics._internal.aggregation import (
        _DropAggregation,
        _ExplicitBucketHistogramAggregation,
        _SumAggregation,
    )
    from opentelemetry.sdk.metrics._internal.exemplar import (
        AlignedHistogramBucketExemplarReservoir,
        AlwaysOffExemplarFilter,
        AlwaysOnExemplarFilter,
        TraceBasedExemplarFilter,
    )
    from opentelemetry.sdk.metrics._internal.instrument import _Counter, _Histogram, _UpDownCounter
    from opentelemetry.sdk.metrics._internal.measurement_consumer import SynchronousMeasurementConsumer
    from opentelemetry.sdk.metrics._internal.metric_reader_storage import MetricReaderStorage
    from opentelemetry.sdk.version import __version__ as _sdk_version

    _FILTERS: tuple[type, ...] = (TraceBasedExemplarFilter, AlwaysOnExemplarFilter, AlwaysOffExemplarFilter)
    # Written and tested against these internals; any other SDK minor falls back.
    available = _sdk_version.startswith("1.45.")
except ImportError:  # pragma: no cover - depends on the installed SDK
    available = False

# Plans per instrument: the hot attribute sets of an app are few (models x providers x errors).
# Cleared when full; a miss costs about one plain record. Bounded so a label explosion costs no memory.
_MAX_PLANS = 256
_SCALARS = frozenset((str, int, float, bool))


class _Target:
    """One series of one view of one reader that a plan writes into."""

    __slots__ = ("aggregation", "aligned", "key", "match", "point_attributes", "reset")

    def __init__(self, match: Any, key: Any, point_attributes: dict[str, Any], aggregation: Any) -> None:
        self.match = match
        self.key = key
        self.point_attributes = point_attributes
        self.aggregation = aggregation
        self.reset = bool(match._reset_on_collect)
        reservoir = aggregation._reservoir
        self.aligned = type(reservoir) is AlignedHistogramBucketExemplarReservoir and tuple(
            reservoir._boundaries
        ) == getattr(aggregation, "_boundaries", None)

    def current(self) -> Any:
        """The aggregation to write into now (caller holds ``match._lock`` when ``reset``)."""
        if self.reset:
            return self.match._get_or_create_aggregation(self.key, self.point_attributes)
        return self.aggregation


class _Plan:
    __slots__ = ("cacheable", "cleaned", "exemplar_filter", "offered", "storages", "targets")

    def __init__(
        self, storages: Any, cleaned: dict[str, Any], targets: list[_Target] | None, exemplar_filter: Any
    ) -> None:
        self.storages = storages
        self.cleaned = cleaned
        self.targets = targets  # None: not eligible, use the plain path
        self.exemplar_filter = exemplar_filter
        self.cacheable = True
        self.offered: dict[str, Any] | None = cleaned  # the attributes exemplars are offered with

    def stale(self) -> bool:
        """True when a series this plan writes into is no longer in the SDK's storage.

        The SDK itself never drops a cumulative series, but llmtel's bridge forgets the
        series a forked worker inherited (``PrometheusBridgeReader.after_fork_in_child``).
        """
        for target in self.targets or ():
            if not target.reset and target.match._attributes_aggregation.get(target.key) is not target.aggregation:
                return True
        return False

    def sample(self, value: float, now: int, ctx: Context) -> bool:
        """The exemplar filter's answer; the SDK's three filters do not look at the value."""
        return bool(self.exemplar_filter.should_sample(value, now, self.cleaned, ctx))


_plans: weakref.WeakKeyDictionary[Any, dict[Any, _Plan]] = weakref.WeakKeyDictionary()


def _build(instrument: Any, storages: Any, attributes: Any, aggregation_type: type, exemplar_filter: Any) -> _Plan:
    # What Measurement() and _ViewInstrumentMatch.consume_measurement() do per value, once.
    cleaned: dict[str, Any] = _clean_attribute_value(attributes, None) if attributes is not None else {}
    targets: list[_Target] = []
    overflowed = False
    for storage in storages.values():
        if type(storage) is not MetricReaderStorage:
            return _Plan(storages, cleaned, None, exemplar_filter)
        for match in storage._get_or_init_view_instrument_match(instrument):
            if type(match) is not _ViewInstrumentMatch:
                return _Plan(storages, cleaned, None, exemplar_filter)
            keys = match._view._attribute_keys
            point_attributes = cleaned if keys is None else {k: v for k, v in cleaned.items() if k in keys}
            key = _hash_attributes(point_attributes)
            with match._lock:
                aggregation = match._get_or_create_aggregation(key, point_attributes)
            if type(aggregation) is _DropAggregation:
                continue  # a Drop view records nothing (configure drops foreign gen_ai.client.* this way)
            if type(aggregation) is not aggregation_type:
                return _Plan(storages, cleaned, None, exemplar_filter)
            targets.append(_Target(match, key, point_attributes, aggregation))
            # Past the cardinality limit the series folds into the overflow one: use the plan once,
            # never cache it, so new attribute sets cost no memory once capped.
            overflowed = overflowed or match._attributes_aggregation.get(key) is not aggregation
    plan = _Plan(storages, cleaned, targets, exemplar_filter)
    plan.cacheable = not overflowed
    if attributes is None:
        plan.offered = None  # as Measurement(attributes=None) offers them
    return plan


def _plan_for(instrument: Any, attributes: Any, aggregation_type: type) -> _Plan | None:
    """The cached plan for ``instrument`` and ``attributes``, or None when the plain path must be used."""
    if not available or not instrument._is_enabled():
        return None
    consumer = instrument._measurement_consumer
    if type(consumer) is not SynchronousMeasurementConsumer:
        return None
    exemplar_filter = consumer._sdk_config.exemplar_filter
    if type(exemplar_filter) not in _FILTERS:  # a custom filter may judge each value
        return None
    storages = consumer._reader_storages  # replaced, never mutated, when readers change
    plans = _plans.get(instrument)
    if plans is None:
        plans = _plans.setdefault(instrument, {})
    # Types are part of the key: the SDK keeps 1, 1.0 and True apart, tuples compare them equal.
    # Only scalar values are cached: (1, 2) and (1.0, 2.0) would share a key.
    try:
        types = tuple(map(type, attributes.values())) if attributes else ()
        key: Any = (tuple(attributes.items()), types) if _SCALARS.issuperset(types) else None
        plan = plans.get(key) if key is not None else None
    except (TypeError, AttributeError):  # not a mapping: no cache
        key, plan = None, None
    if plan is None or plan.storages is not storages or plan.exemplar_filter is not exemplar_filter or plan.stale():
        plan = _build(instrument, storages, attributes, aggregation_type, exemplar_filter)
        if key is not None and plan.cacheable:
            if len(plans) >= _MAX_PLANS:
                plans.clear()
            plans[key] = plan
    return plan if plan.targets is not None else None


def record_many(
    instrument: Any, values: Sequence[float], attributes: dict[str, Any], context: Context | None = None
) -> bool:
    """Record every value of ``values`` into histogram ``instrument`` with ``attributes``.

    Same result as ``for v in values: instrument.record(v, attributes, context)``;
    never raises more than that would. Returns True when the fast route was taken.
    """
    if not values:
        return True
    plan = (
        _plan_for(instrument, attributes, _ExplicitBucketHistogramAggregation)
        if available and type(instrument) is _Histogram
        else None
    )
    if plan is not None:
        total = sum(values)  # NaN or inf anywhere makes this non-finite
        low = min(values)
        if math.isfinite(total) and low >= 0:
            _fold_histogram(plan, values, low, max(values), context)
            return True
    record = instrument.record  # the SDK warns about and drops bad values
    for value in values:
        record(value, attributes, context)
    return False


def record(instrument: Any, value: float, attributes: dict[str, Any], context: Context | None = None) -> bool:
    """``instrument.record(value, attributes, context)`` for an SDK Histogram, via its plan."""
    return record_many(instrument, (value,), attributes, context)


def _fold_histogram(plan: _Plan, values: Sequence[float], low: float, high: float, context: Context | None) -> None:
    assert plan.targets is not None
    ctx = context if context is not None else get_current()
    now = time_ns()
    sample = plan.sample(values[0], now, ctx)  # one answer holds for all values
    bounds: tuple[float, ...] | None = None
    counts: dict[int, int] = {}
    last: dict[int, float] = {}
    for target in plan.targets:
        if target.aggregation._boundaries != bounds:  # targets normally share one set of bounds
            bounds = target.aggregation._boundaries
            if len(values) == 1:
                index = bisect_left(bounds, values[0])  # the SDK's bucket rule
                counts, last = {index: 1}, {index: values[0]}
            else:
                indexes = [bisect_left(bounds, value) for value in values]
                counts = Counter(indexes)
                # dict(zip()) keeps the last value per bucket: what the aligned reservoir ends with.
                last = dict(zip(indexes, values, strict=True))
        if target.reset:
            with target.match._lock:  # a delta collection swaps aggregations out: as the SDK does
                aggregation = target.current()
                _fold_buckets(aggregation, values, counts, low, high)
        else:
            aggregation = target.aggregation
            _fold_buckets(aggregation, values, counts, low, high)
        if sample:
            offer = aggregation._reservoir.offer
            if target.aligned:
                for index in sorted(last):
                    offer(last[index], now, plan.offered, ctx)
            else:
                for value in values:
                    offer(value, now, plan.offered, ctx)


def _fold_buckets(aggregation: Any, values: Sequence[float], counts: dict[int, int], low: float, high: float) -> None:
    with aggregation._lock:
        if aggregation._value is None:
            aggregation._value = aggregation._get_empty_bucket_counts()
        # One by one, in order, as repeated aggregate() calls would: the same float sum.
        aggregation._sum = reduce(_add, values, aggregation._sum)
        if aggregation._record_min_max:
            aggregation._min = min(aggregation._min, low)
            aggregation._max = max(aggregation._max, high)
        bucket_counts = aggregation._value
        for index, count in counts.items():
            bucket_counts[index] += count


def add(instrument: Any, amount: float, attributes: dict[str, Any], context: Context | None = None) -> bool:
    """``instrument.add(amount, attributes, context)`` for an SDK Counter/UpDownCounter, via its plan.

    Returns True when the fast route was taken.
    """
    kind = type(instrument)
    plan = None
    if available and ((kind is _Counter and amount >= 0) or kind is _UpDownCounter):
        if math.isfinite(amount):
            plan = _plan_for(instrument, attributes, _SumAggregation)
    if plan is None or plan.targets is None:
        instrument.add(amount, attributes, context)
        return False
    ctx = context if context is not None else get_current()
    now = time_ns()
    sample = plan.sample(amount, now, ctx)
    for target in plan.targets:
        if target.reset:
            with target.match._lock:
                aggregation = target.current()
                _fold_sum(aggregation, amount)
        else:
            aggregation = target.aggregation
            _fold_sum(aggregation, amount)
        if sample:
            aggregation._reservoir.offer(amount, now, plan.offered, ctx)
    return True


def _fold_sum(aggregation: Any, amount: float) -> None:
    with aggregation._lock:
        if aggregation._value is None:
            aggregation._value = 0
        aggregation._value = aggregation._value + amount
