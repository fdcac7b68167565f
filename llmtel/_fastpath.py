"""Record many values of one histogram with one attribute set in one step.

A streamed answer yields one ``time_per_output_chunk`` sample per chunk. Through
the public API each sample is a full ``Histogram.record()``: a ``Measurement``
object, attribute cleaning, attribute hashing, a lock, a bucket search and an
exemplar offer, about 7-14 µs each (see docs/performance.md). All samples of
one call share the instrument, attributes and context, so :func:`record_many`
does that per-call work once and folds the values into the SDK's aggregation
under its lock in one step.

This goes below the SDK's public API (``opentelemetry-sdk`` ``_internal``
objects, pinned to ``>=1.45,<1.46`` in pyproject.toml). It only takes the fast
route when every object on the way is exactly the type it was written for:
an SDK ``_Histogram``, the synchronous measurement consumer, reader storages,
view matches, the explicit-bucket histogram aggregation, the aligned-bucket
exemplar reservoir and one of the SDK's three exemplar filters. Anything else
(another SDK version, a non-SDK or proxy provider, a view that changes the
aggregation or the reservoir, a custom exemplar filter, non-finite values)
takes the plain path: ``instrument.record()`` per value.

Equivalence with the plain path (tested sample for sample in
tests/benchmarks/test_fastpath.py): bucket counts, count, min and max are
equal; the sum adds the values one by one in the same order, so it is equal to
the bit; the exemplar reservoir keeps the last value offered per bucket, so
offering only the last value of each bucket leaves it in the same state, with
the same trace and span ids and attributes (only the timestamp is shared by
the call's exemplars instead of being taken per value).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from functools import reduce
from operator import add
from time import time_ns
from typing import Any

from opentelemetry.context import Context, get_current

__all__ = ["available", "record_many"]

try:  # Everything below is SDK-internal: a missing name means "use the plain path".
    from opentelemetry.attributes import _clean_attribute_value
    from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes, _ViewInstrumentMatch
    from opentelemetry.sdk.metrics._internal.aggregation import _ExplicitBucketHistogramAggregation
    from opentelemetry.sdk.metrics._internal.exemplar import (
        AlignedHistogramBucketExemplarReservoir,
        AlwaysOffExemplarFilter,
        AlwaysOnExemplarFilter,
        TraceBasedExemplarFilter,
    )
    from opentelemetry.sdk.metrics._internal.instrument import _Histogram
    from opentelemetry.sdk.metrics._internal.measurement_consumer import SynchronousMeasurementConsumer
    from opentelemetry.sdk.metrics._internal.metric_reader_storage import MetricReaderStorage
    from opentelemetry.version import __version__ as _api_version

    from opentelemetry.sdk.version import __version__ as _sdk_version  # isort: skip

    _FILTERS: tuple[type, ...] = (TraceBasedExemplarFilter, AlwaysOnExemplarFilter, AlwaysOffExemplarFilter)
    # Written and tested against these internals; any other SDK minor falls back.
    available = _sdk_version.startswith("1.45.") and _api_version.startswith("1.45.")
except ImportError:  # pragma: no cover - depends on the installed SDK
    available = False


def _plain(instrument: Any, values: Sequence[float], attributes: dict[str, Any], context: Context | None) -> None:
    record = instrument.record
    for value in values:
        record(value, attributes, context)


def record_many(
    instrument: Any, values: Sequence[float], attributes: dict[str, Any], context: Context | None = None
) -> bool:
    """Record every value of ``values`` into histogram ``instrument`` with ``attributes``.

    Same result as ``for v in values: instrument.record(v, attributes, context)``.
    Returns True when the fast route was taken, False when the plain path was.
    """
    if not values:
        return True
    if not available or type(instrument) is not _Histogram or not instrument._is_enabled():
        _plain(instrument, values, attributes, context)
        return False
    total = sum(values)  # NaN or inf anywhere makes this non-finite
    low = min(values)
    if not math.isfinite(total) or low < 0:
        _plain(instrument, values, attributes, context)  # the SDK warns and drops such values
        return False
    consumer = instrument._measurement_consumer
    if type(consumer) is not SynchronousMeasurementConsumer:
        _plain(instrument, values, attributes, context)
        return False
    exemplar_filter = consumer._sdk_config.exemplar_filter
    if type(exemplar_filter) not in _FILTERS:  # a custom filter may judge each value
        _plain(instrument, values, attributes, context)
        return False

    # What Measurement() and _ViewInstrumentMatch.consume_measurement() do per value, once.
    cleaned: dict[str, Any] = _clean_attribute_value(attributes, None) if attributes is not None else {}
    targets: list[tuple[_ViewInstrumentMatch, Any, dict[str, Any], Any]] = []
    for storage in consumer._reader_storages.values():
        if type(storage) is not MetricReaderStorage:
            _plain(instrument, values, attributes, context)
            return False
        for match in storage._get_or_init_view_instrument_match(instrument):
            if type(match) is not _ViewInstrumentMatch:
                _plain(instrument, values, attributes, context)
                return False
            point_attributes = dict(cleaned)
            keys = match._view._attribute_keys
            if keys is not None:
                point_attributes = {k: v for k, v in point_attributes.items() if k in keys}
            key = _hash_attributes(point_attributes)
            aggregation = match._attributes_aggregation.get(key)
            if aggregation is None:
                with match._lock:
                    aggregation = match._get_or_create_aggregation(key, point_attributes)
            reservoir = aggregation._reservoir
            if (
                type(aggregation) is not _ExplicitBucketHistogramAggregation
                or type(reservoir) is not AlignedHistogramBucketExemplarReservoir
                or tuple(reservoir._boundaries) != aggregation._boundaries
            ):
                _plain(instrument, values, attributes, context)
                return False
            targets.append((match, key, point_attributes, aggregation))

    ctx = context if context is not None else get_current()
    now = time_ns()
    # The SDK's three filters do not look at the value: one answer holds for all.
    sample = exemplar_filter.should_sample(values[0], now, cleaned, ctx)
    high = max(values)
    by_bounds: dict[tuple[float, ...], tuple[Counter[int], dict[int, float]]] = {}
    for match, key, point_attributes, aggregation in targets:
        bounds = aggregation._boundaries
        buckets = by_bounds.get(bounds)
        if buckets is None:
            indexes = [bisect_left(bounds, value) for value in values]  # the SDK's bucket rule
            # dict(zip()) keeps the last value per bucket: what the reservoir would end with.
            buckets = by_bounds[bounds] = (Counter(indexes), dict(zip(indexes, values, strict=True)))
        counts, last = buckets
        if match._reset_on_collect:
            # A delta collection swaps the aggregations out: hold the match lock, as the SDK does.
            with match._lock:
                aggregation = match._get_or_create_aggregation(key, point_attributes)
                _fold(aggregation, values, counts, low, high)
        else:
            _fold(aggregation, values, counts, low, high)
        if sample:
            offer = aggregation._reservoir.offer
            for index in sorted(last):
                offer(last[index], now, cleaned, ctx)
    return True


def _fold(aggregation: Any, values: Sequence[float], counts: Counter[int], low: float, high: float) -> None:
    with aggregation._lock:
        if aggregation._value is None:
            aggregation._value = aggregation._get_empty_bucket_counts()
        # One by one, in order, as repeated aggregate() calls would: the same float sum.
        aggregation._sum = reduce(add, values, aggregation._sum)
        if aggregation._record_min_max:
            aggregation._min = min(aggregation._min, low)
            aggregation._max = max(aggregation._max, high)
        bucket_counts = aggregation._value
        for index, count in counts.items():
            bucket_counts[index] += count
