"""llmtel's record path: capture on the call path, aggregate in batches off it.

Through the public API every ``Histogram.record()`` / ``Counter.add()`` builds
a ``Measurement``, cleans and copies the attribute dict, hashes it per view,
takes the aggregation's lock, searches the bucket and offers an exemplar:
7-17 µs each with GenAI attributes (docs/performance.md has the profile), and
an LLM call records seven of them.

Here a call does two cheap things:

1. **Find its plan** (per instrument and attribute set: the cleaned
   attributes, every reader's view match and the series' aggregation object,
   resolved once) or, for an ``llm_call``, its *bundle* (:class:`Layout`): the
   plans of every series the call records, found with one lookup. Plans live
   in LRU caches sized by the instruments' cardinality limit (twice it: every
   series an instrument can hold keeps its plan, and as many attribute sets
   past the limit, which the SDK folds into the overflow series); such a set
   is cached from its second use on, so a label explosion neither costs
   memory nor evicts plans in use.
2. **Append** ``(plan or bundle, values, time, context)`` to its thread's
   buffer: no lock, no SDK call.

The buffers are folded into the SDK's aggregations in batches (:func:`drain`):
at the start of every collection by any reader of a provider the fast path
wrote to (a hook registered with the SDK's measurement consumer runs before
the reader's storage is collected, so Prometheus scrapes, OTLP intervals,
``force_flush`` and shutdown see everything recorded before them), when a
thread's buffer holds ``BUFFER_LIMIT`` entries (that thread folds its own),
and before ``os.fork()``. A batch folds all values of one series under its
locks in one step; a batch with only a few entries per attribute set (hundreds
of models) folds each value as it comes instead, which makes no objects per
series. Both ways end in the same state.

Equivalence with the plain path (tested value for value, with exemplars, in
tests/test_fastpath.py and a randomized differential test): bucket counts,
count, min and max are equal; sums add the values one by one in record order
(per thread), so they are equal to the bit; exemplar reservoirs end in the
state per-value offers leave: the aligned-bucket reservoir (histograms) is
offered the last sampled value per bucket (and, where that one had no span,
the last one with a span first, since a bucket keeps the previous span ids),
the simple fixed-size reservoir (sums) draws the same random numbers per
value and is offered only the values it keeps, any other reservoir gets every
value. Each value keeps its call's timestamp and context. Values the SDK
would reject (negative, NaN, inf) go through the public API (at once, or for
a bundle slot already resolved, when folded), so the SDK warns about and
drops them as it would have, and they create no series. Deviations: a delta
series created in its first collection interval starts at the fold, not at
its first record; across threads, values are folded thread by thread (the
order between threads is a race on the plain path too).

Nothing is lost: a dying thread's buffer stays registered until it has been
folded; ``os.fork()`` folds everything first (the child starts with empty
buffers and fresh plans); memory between collections is bounded by
``BUFFER_LIMIT`` entries per thread (four times that while another thread is
folding: a full buffer does not wait for another thread's fold).

This goes below the SDK's public API (``opentelemetry-sdk`` ``_internal``
objects) and is used only on the SDK versions it is tested on
(:data:`PROVEN_SDK_VERSIONS`, one version check: :data:`available`), and only
when every object on the way is exactly the type it was written for (SDK
instruments, the synchronous measurement consumer, reader storages, view
matches, the explicit-bucket histogram or sum aggregation, one of the SDK's
three exemplar filters). Anything else takes the public API, one
``record()``/``add()`` per value, at once.
"""

from __future__ import annotations

import math
import os
import random
import sys
import threading
import weakref
from bisect import bisect_left, bisect_right
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from functools import partial, reduce
from itertools import repeat
from operator import add as _add
from operator import itemgetter
from time import time_ns
from typing import Any

from opentelemetry.context import Context, get_current
from opentelemetry.trace import (
    INVALID_SPAN,
    INVALID_SPAN_CONTEXT,
    NonRecordingSpan,
    Span,
    TraceFlags,
    set_span_in_context,
)

from llmtel._internal import errors as _errors
from llmtel._internal.sdkcompat import PROVEN_SDK_VERSIONS, SDK_PROVEN

__all__ = [
    "BUFFER_LIMIT",
    "PROVEN_SDK_VERSIONS",
    "Layout",
    "add",
    "available",
    "drain",
    "record",
    "record_many",
]

try:  # Everything below is SDK-internal: a missing name means "use the public API".
    from opentelemetry.attributes import _clean_attribute_value
    from opentelemetry.sdk.metrics._internal._view_instrument_match import (
        _OVERFLOW_KEY,
        _hash_attributes,
        _ViewInstrumentMatch,
    )
    from opentelemetry.sdk.metrics._internal.aggregation import (
        _DropAggregation,
        _ExplicitBucketHistogramAggregation,
        _SumAggregation,
    )
    from opentelemetry.sdk.metrics._internal.exemplar import (
        AlignedHistogramBucketExemplarReservoir,
        AlwaysOffExemplarFilter,
        AlwaysOnExemplarFilter,
        SimpleFixedSizeExemplarReservoir,
        TraceBasedExemplarFilter,
    )
    from opentelemetry.sdk.metrics._internal.exemplar import exemplar_reservoir as _reservoir_module
    from opentelemetry.sdk.metrics._internal.exemplar.exemplar_reservoir import ExemplarBucket
    from opentelemetry.sdk.metrics._internal.instrument import _Counter, _Histogram, _UpDownCounter
    from opentelemetry.sdk.metrics._internal.measurement_consumer import SynchronousMeasurementConsumer
    from opentelemetry.sdk.metrics._internal.metric_reader_storage import MetricReaderStorage
    from opentelemetry.sdk.trace import _Span

    _FILTERS: tuple[type, ...] = (TraceBasedExemplarFilter, AlwaysOnExemplarFilter, AlwaysOffExemplarFilter)
    #: Spans whose ``get_span_context()`` returns their ``_context`` field: read directly (two Python calls less).
    _CONTEXT_FIELD: frozenset[type] = frozenset((_Span, NonRecordingSpan))
    #: An exemplar bucket's fields, which :func:`_offer` sets as ``ExemplarBucket.offer`` does.
    _BUCKET_FIELDS = ("value", "time_unix_nano", "attributes", "span_id", "trace_id", "offered")
    #: The one gate: True on a proven SDK version, else every value takes the public API.
    available = SDK_PROVEN and set(vars(ExemplarBucket())) == {f"_ExemplarBucket__{field}" for field in _BUCKET_FIELDS}
except (ImportError, ValueError):  # pragma: no cover - depends on the installed SDK
    available = False

#: Entries a thread buffers before it folds them itself (one entry per call or per record).
BUFFER_LIMIT = 1024
# A thread buffers at most this many times BUFFER_LIMIT: while another thread folds, it goes on to
# here before it waits for that fold.
_HARD_FACTOR = 4
# Plans kept per cache before the first view match tells the real limit (twice the SDK's default).
_DEFAULT_CAPACITY = 4000
_SCALARS = frozenset((str, int, float, bool))
_NUMBERS = (int, float)
_INF = math.inf
_NO_ATTRIBUTES = (None,)  # the key of attributes=None: one long, never three per attribute like a dict's
_HIST, _SUM = "histogram", "sum"
#: The context key the API keeps the current span under (found through the public API, once).
SPAN_KEY = next(iter(set_span_in_context(NonRecordingSpan(INVALID_SPAN_CONTEXT), Context())))


# -- plans ------------------------------------------------------------------------------------


class _Target:
    """One series of one view of one reader that a plan writes into."""

    __slots__ = ("aggregation", "aligned", "boundaries", "key", "match", "point_attributes", "reset", "series", "slot")

    def __init__(self, match: Any, key: Any, point_attributes: dict[str, Any], aggregation: Any) -> None:
        self.match = match
        self.key = key  # the series asked for
        self.point_attributes = point_attributes
        # Delta: the match swaps its series out at each collection, so the series is looked up (and
        # created, in record order, which decides what overflows) when values are folded.
        self.reset = aggregation is None
        self.slot = key
        self.aggregation = aggregation
        self.boundaries: Any = None  # a histogram's bucket boundaries, equal to the aggregation's
        self.series: Any = None  # the match's series dict ``aggregation`` was found in
        if aggregation is not None:
            self._bind(aggregation)
        # The match's own aggregation object is built like its series are (same reservoir factory).
        reservoir = (aggregation or match._aggregation)._reservoir
        self.aligned = type(reservoir) is AlignedHistogramBucketExemplarReservoir and tuple(
            reservoir._boundaries
        ) == getattr(aggregation or match._aggregation, "_boundaries", None)

    def _bind(self, aggregation: Any) -> None:
        """Remember ``aggregation``; the caller holds ``match._lock``."""
        self.aggregation = aggregation
        # Every series of a match has its own tuple of the same boundaries (the SDK copies them per
        # series): bisecting the match's one tuple finds the same bucket in memory that stays cached.
        own = getattr(aggregation, "_boundaries", None)
        shared = getattr(self.match._aggregation, "_boundaries", None)
        self.boundaries = shared if own == shared else own
        self.series = self.match._attributes_aggregation
        if not self.reset:
            # Past the cardinality limit the SDK hands out the overflow series: remember where it sits.
            overflowed = self.series.get(self.key) is not aggregation
            self.slot = _OVERFLOW_KEY if overflowed else self.key

    def current(self) -> Any:
        """The aggregation to fold into now.

        The aggregation found last stays valid as long as the match keeps the same series dict:
        the SDK replaces it when a delta collection takes the series, and so does llmtel's bridge
        when it forgets the series a forked worker inherited (PrometheusBridgeReader.after_fork_in_child);
        the SDK never drops a cumulative series otherwise. One identity test, no key hashing.
        """
        match = self.match
        if match._attributes_aggregation is self.series:
            return self.aggregation
        with match._lock:  # created now, in record order, as the SDK would (it decides what overflows)
            self._bind(match._get_or_create_aggregation(self.key, self.point_attributes))
        return self.aggregation


class _Plan:
    """Where one instrument's values with one attribute set go, resolved once."""

    __slots__ = (
        "attributes", "filter", "instrument", "kind", "low", "offered", "sampled_targets", "sampling", "targets",
    )  # fmt: skip

    def __init__(self, instrument: Any, kind: str, attributes: Any, offered: Any, targets: list[_Target]) -> None:
        self.instrument = instrument
        self.kind = kind
        # The least value the SDK accepts: ``low <= value < inf`` is the whole test for a number
        # (NaN fails it, and -inf is below the least finite float).
        self.low = 0 if _positive(instrument) else -sys.float_info.max
        self.attributes = attributes  # as given: the public API gets these for rejected values
        self.offered = offered  # the cleaned attributes exemplars are offered with (None for None)
        self.targets = tuple(targets)  # one object (a list is two: its header and its items), read per value
        self.filter: Any = None
        # Reservoirs other than aligned-bucket ones take each value in record order (_offer_sampled, from _fold).
        self.sampled_targets = tuple(target for target in targets if not target.aligned)
        self.sampling = bool(self.sampled_targets)


def _kind(instrument: Any) -> str | None:
    kind = type(instrument)
    if kind is _Histogram:
        return _HIST
    if kind is _Counter or kind is _UpDownCounter:
        return _SUM
    return None


def _build(instrument: Any, kind: str, storages: Any, attributes: Any) -> _Plan | None:
    """What Measurement() and _ViewInstrumentMatch.consume_measurement() do per value, once (None: not eligible)."""
    cleaned: dict[str, Any] = _clean_attribute_value(attributes, None) if attributes is not None else {}
    aggregation_type = _ExplicitBucketHistogramAggregation if kind is _HIST else _SumAggregation
    targets: list[_Target] = []
    for storage in storages.values():
        if type(storage) is not MetricReaderStorage:
            return None
        for match in storage._get_or_init_view_instrument_match(instrument):
            if type(match) is not _ViewInstrumentMatch:
                return None
            keys = match._view._attribute_keys
            point_attributes = cleaned if keys is None else {k: v for k, v in cleaned.items() if k in keys}
            key = _hash_attributes(point_attributes)
            if type(match._aggregation) is _DropAggregation:
                continue  # a Drop view records nothing (configure drops foreign gen_ai.client.* this way)
            if type(match._aggregation) is not aggregation_type:  # what its series are made of
                return None
            if match._reset_on_collect:
                targets.append(_Target(match, key, point_attributes, None))
                continue
            with match._lock:  # a cumulative series is created now, as the SDK would at this record
                targets.append(
                    _Target(match, key, point_attributes, match._get_or_create_aggregation(key, point_attributes))
                )
    return _Plan(instrument, kind, attributes, cleaned if attributes is not None else None, targets)


def _key(attributes: Any) -> Any:
    """The cache key of an attribute dict, or None when it cannot be cached.

    Types are part of the key: the SDK keeps 1, 1.0 and True apart, tuples compare them equal.
    Only scalar values are cached: (1, 2) and (1.0, 2.0) would share a key. The key is one flat
    tuple (the keys, the values, their types): a dict lookup hashes it and compares it with the
    cached one, and a nested key (a tuple per attribute) is as many objects to visit, each a cache
    miss when thousands of keys are cached (≈ 5 µs per lookup at 2 000 models, measured).
    """
    if attributes is None:
        return _NO_ATTRIBUTES
    try:
        values = attributes.values()
        types = tuple(map(type, values))
        return (*attributes, *values, *types) if _SCALARS.issuperset(types) else None
    except (TypeError, AttributeError):  # not a mapping: the public API warns about it
        return None


class _Cache:
    """Plans (or bundles) by attribute key for one consumer: LRU, twice as large as its cardinality limit."""

    __slots__ = (
        "__weakref__", "capacity", "consumer", "eligible", "filter", "hooked", "items", "seen", "sized", "storages",
    )  # fmt: skip

    def __init__(self) -> None:
        self.items: OrderedDict[Any, Any] = OrderedDict()
        self.seen: OrderedDict[Any, bool] = OrderedDict()  # sets past the limit used once
        self.storages: Any = None
        self.filter: Any = None
        self.consumer: Any = None
        self.eligible = False
        self.hooked = False
        self.capacity = _DEFAULT_CAPACITY
        self.sized = False  # capacity still the default: no view match seen yet
        _caches.add(self)

    def check(self, instrument: Any) -> bool:
        """True when plans for ``instrument`` may be used now; resets the cache when readers changed."""
        consumer = instrument._measurement_consumer
        if consumer is not self.consumer or consumer._reader_storages is not self.storages:
            return self._reset(consumer)
        if consumer._sdk_config.exemplar_filter is not self.filter:
            return self._reset(consumer)
        if self.eligible and not self.hooked:
            self.hooked = _hook(consumer)
        return self.eligible and self.hooked

    def _reset(self, consumer: Any) -> bool:
        self.items.clear()  # readers, filter or consumer changed: every plan is resolved again
        self.seen.clear()
        self.consumer = consumer
        self.eligible = False
        if type(consumer) is not SynchronousMeasurementConsumer:
            return False
        self.storages = consumer._reader_storages  # replaced, never mutated, when readers change
        self.filter = consumer._sdk_config.exemplar_filter
        # A custom filter may judge each value; the SDK's three only look at the context.
        self.eligible = type(self.filter) in _FILTERS
        self.hooked = self.eligible and _hook(consumer)
        return self.eligible and self.hooked

    def get(self, key: Any) -> Any:
        item = self.items.get(key)
        if item is not None:
            try:
                self.items.move_to_end(key)
            except KeyError:  # evicted by another thread meanwhile
                pass
        return item

    def put(self, key: Any, item: Any, targets: Sequence[_Target]) -> None:
        overflowed = False
        for target in targets:
            # Twice the limit: every series the instrument can hold, and as many sets past the limit in
            # repeated use, so neither evicts the other (an LRU thrashes once a cycle outgrows it).
            limit = 2 * target.match._cardinality_limit
            if limit > self.capacity or not self.sized:
                self.capacity, self.sized = limit, True
            overflowed = overflowed or target.slot is _OVERFLOW_KEY
        items = self.items
        if overflowed and key not in items and self.seen.pop(key, False) is False:
            # Past the cardinality limit a set is cached from its second use on, so a stream of
            # one-off sets (a label explosion) costs no memory and never evicts the plans in use.
            self.seen[key] = True
            _trim(self.seen, self.capacity)
            return
        items[key] = item
        _trim(items, self.capacity)


def _trim(items: OrderedDict[Any, Any], capacity: int) -> None:
    while len(items) > capacity:  # least recently used first
        try:
            items.popitem(last=False)
        except KeyError:  # emptied by another thread meanwhile
            break


_caches: weakref.WeakSet[_Cache] = weakref.WeakSet()
_instrument_caches: weakref.WeakKeyDictionary[Any, _Cache] = weakref.WeakKeyDictionary()


def _plan(instrument: Any, attributes: Any) -> _Plan | None:
    """The plan for ``instrument`` with ``attributes``, or None when the public API must be used."""
    kind = _kind(instrument) if available else None
    if kind is None or not instrument._is_enabled():
        return None
    cache = _instrument_caches.get(instrument)
    if cache is None:
        cache = _instrument_caches.setdefault(instrument, _Cache())
    if not cache.check(instrument):
        return None
    key = _key(attributes)
    plan: _Plan | None = cache.get(key) if key is not None else None
    if plan is None:
        if key is None and not isinstance(attributes, Mapping):
            return None
        plan = _build(instrument, kind, cache.storages, attributes)
        if plan is None:
            return None
        plan.filter = cache.filter
        if key is not None:
            cache.put(key, plan, plan.targets)
    return plan


# -- bundles: every series of one call --------------------------------------------------------


_CALLER_KEY = object()  # marks a key given by the caller of Layout.record
SlotAttributes = Callable[[int, Mapping[str, Any], "str | None", tuple[Any, ...]], dict[str, Any]]


class Layout:
    """The series one kind of call records, resolved together: one cache lookup per call.

    Slot *i* records into ``instruments[i]`` with ``slot_attributes(i, attributes,
    error_type, variant)`` (called once per distinct call, when its plans are made).
    :meth:`record` takes one value per slot: a number, a sequence of numbers, or
    None for nothing. ``variant`` is a tuple of scalars and mappings (hashed by
    content) for whatever else decides the slots' attributes.
    """

    def __init__(self, instruments: Sequence[Any], slot_attributes: SlotAttributes) -> None:
        self.instruments = tuple(instruments)
        self.slot_attributes = slot_attributes
        self._cache = _Cache()
        self._first = self.instruments[0] if self.instruments else None
        # Eligible only when every instrument is an SDK one of the same consumer and meter config.
        first = self._first
        self._eligible = (
            available
            and first is not None
            and all(
                _kind(instrument) is not None
                and instrument._measurement_consumer is first._measurement_consumer
                and instrument._meter_config is first._meter_config
                for instrument in self.instruments
            )
        )

    def record(
        self,
        attributes: Mapping[str, Any],
        error_type: str | None,
        variant: tuple[Any, ...],
        values: Sequence[Any],
        context: Context | None = None,
        key: Hashable | None = None,
    ) -> bool:
        """Record ``values`` (one per slot); True when they took the fast path.

        ``key``: the caller's own cache key for this ``(attributes, error_type, variant)``
        (it must stand for exactly those), saving the key built from their contents.
        """
        bundle = self._bundle(attributes, error_type, variant, key) if available and self._eligible else None
        if bundle is None:
            self.record_plain(attributes, error_type, variant, values, context)
            return False
        for index in bundle.unplanned:  # slots without a plan yet: resolve them when this call brings a value
            if values[index] is not None:
                left = self._resolve_slots(bundle, attributes, error_type, variant, values, context)
                if left is None:
                    return False
                values = left
                break
        _append((bundle, values, time_ns(), context if context is not None else get_current()))
        return True

    def _resolve_slots(
        self,
        bundle: _Bundle,
        attributes: Mapping[str, Any],
        error_type: str | None,
        variant: tuple[Any, ...],
        values: Sequence[Any],
        context: Context | None,
    ) -> Sequence[Any] | None:
        """Plans for the slots ``values`` fill first; the values left to buffer (None: all went the public API)."""
        plans = bundle.plans
        resolved = bundle.new
        for index, value in enumerate(values):
            if value is not None and plans[index] is None:
                # Resolved (and the series created) the first time a value comes, as the SDK would.
                instrument = self.instruments[index]
                if not any(_valid(item, _positive(instrument)) for item in _items(value)):
                    # Nothing the SDK accepts: its public API warns and drops it, and no series is made.
                    self.record_plain(attributes, error_type, variant, _only(index, value, len(values)), context)
                    values = _only(index, None, len(values), values)
                    continue
                plan = _build(instrument, _kind(instrument) or _HIST, self._cache.storages, bundle.attributes_of(index))
                if plan is None:
                    self._eligible = False  # a view changed the aggregation: this layout uses the API
                    self.record_plain(attributes, error_type, variant, values, context)
                    return None
                plan.filter = self._cache.filter
                plans[index] = plan
                resolved = True
        if resolved:
            bundle.new = False
            self._cache.put(bundle.key, bundle, [target for plan in plans if plan for target in plan.targets])
        bundle.unplanned = [index for index, plan in enumerate(plans) if plan is None]
        return values

    def _bundle(
        self, attributes: Mapping[str, Any], error_type: str | None, variant: tuple[Any, ...], key: Hashable | None
    ) -> _Bundle | None:
        first: Any = self._first
        if not first._is_enabled() or not self._cache.check(first):
            return None
        if key is None:
            key = self._content_key(attributes, error_type, variant)
            if key is None:
                return None
        else:
            key = (_CALLER_KEY, key)  # never equal to a content key
        bundle: _Bundle | None = self._cache.get(key)
        if bundle is None:
            frozen = tuple(dict(part) if isinstance(part, Mapping) else part for part in variant)
            bundle = _Bundle(self, key, dict(attributes), error_type, frozen)
        return bundle

    @staticmethod
    def _content_key(attributes: Mapping[str, Any], error_type: str | None, variant: tuple[Any, ...]) -> Any:
        parts = [_key(attributes), error_type]
        for part in variant:
            if isinstance(part, Mapping):
                part = _key(part) if part else ()
                if part is None:
                    return None  # an attribute value that cannot be keyed (a sequence): the public API
            parts.append(part)
        if parts[0] is None:
            return None
        return tuple(parts)

    def record_plain(
        self,
        attributes: Mapping[str, Any],
        error_type: str | None,
        variant: tuple[Any, ...],
        values: Sequence[Any],
        context: Context | None = None,
    ) -> None:
        """What :meth:`record` does through the public API: one ``record()``/``add()`` per value."""
        for index, value in enumerate(values):
            if value is None:
                continue
            instrument = self.instruments[index]
            attrs = self.slot_attributes(index, attributes, error_type, variant)
            method = instrument.record if hasattr(instrument, "record") else instrument.add
            for item in value if isinstance(value, Sequence) else (value,):
                method(item, attrs, context)


def _items(value: Any) -> Sequence[float]:
    return (value,) if type(value) in _NUMBERS else value


def _only(index: int, value: Any, size: int, values: Sequence[Any] | None = None) -> list[Any]:
    """``values`` (or all None) with slot ``index`` set to ``value``."""
    out = list(values) if values is not None else [None] * size
    out[index] = value
    return out


def _positive(instrument: Any) -> bool:
    """Histograms and counters take no negative values (up/down counters do)."""
    return type(instrument) is not _UpDownCounter


class _Bundle:
    """The plans of every slot of a :class:`Layout` for one call's attributes, error type and variant."""

    __slots__ = ("attributes", "error_type", "filter", "key", "layout", "new", "plans", "unplanned", "variant")

    def __init__(
        self, layout: Layout, key: Any, attributes: dict[str, Any], error_type: str | None, variant: tuple[Any, ...]
    ) -> None:
        self.layout = layout
        self.key = key
        self.attributes = attributes
        self.error_type = error_type
        self.variant = variant
        self.plans: list[_Plan | None] = [None] * len(layout.instruments)
        self.filter = layout._cache.filter
        self.new = True  # not yet offered to the cache
        self.unplanned = list(range(len(layout.instruments)))  # the slots without a plan yet

    def attributes_of(self, slot: int) -> dict[str, Any]:
        return self.layout.slot_attributes(slot, self.attributes, self.error_type, self.variant)


# -- the call path ----------------------------------------------------------------------------


class _Buffer:
    """One thread's entries; ``owner`` dies with the thread's locals."""

    __slots__ = ("entries", "owner")

    def __init__(self, entries: list[Any], owner: Any) -> None:
        self.entries = entries
        self.owner = weakref.ref(owner)


class _Owner:
    __slots__ = ("__weakref__",)


_local = threading.local()
_buffers: list[_Buffer] = []  # every thread's buffer; a dead thread's is dropped once folded
_registry_lock = threading.Lock()
_drain_lock = threading.RLock()  # one folder at a time; the call path never takes it


def _new_entries() -> list[Any]:
    entries: list[Any] = []
    owner = _Owner()
    buffer = _Buffer(entries, owner)
    with _registry_lock:
        _buffers.append(buffer)
    _local.owner = owner
    _local.buffer = buffer
    _local.entries = entries
    return entries


def _append(entry: tuple[Any, Any, int, Context]) -> None:
    try:
        entries = _local.entries
    except AttributeError:
        entries = _new_entries()
    entries.append(entry)  # atomic: the folder takes entries from the front, this thread adds at the end
    if len(entries) >= BUFFER_LIMIT:
        _fold_own(len(entries))


def _fold_own(size: int) -> None:
    """Fold this thread's full buffer: a full buffer costs its thread one batch, no more.

    While another thread folds (its own full buffer, a collection, a fork), this one goes on and
    tries again at its next record, instead of waiting for that fold; only at ``_HARD_FACTOR``
    times ``BUFFER_LIMIT`` entries does it wait, so memory stays bounded.
    """
    if size >= _HARD_FACTOR * BUFFER_LIMIT:
        _drain((_local.buffer,))
    elif _drain_lock.acquire(blocking=False):
        try:
            _drain((_local.buffer,))
        finally:
            _drain_lock.release()


def record_many(instrument: Any, values: Sequence[float], attributes: Any, context: Context | None = None) -> bool:
    """Record every value of ``values`` into histogram ``instrument`` with ``attributes``.

    Same result as ``for v in values: instrument.record(v, attributes, context)``;
    never raises more than that would. Returns True when the fast route was taken.
    """
    if not values:
        return True
    plan = None
    if available and type(instrument) is _Histogram:
        # NaN or inf anywhere makes the sum non-finite; a histogram takes no negative value.
        if not (math.isfinite(sum(values)) and min(values) >= 0):
            for value in values:
                if not _valid(value, True):
                    instrument.record(value, attributes, context)  # the SDK warns and drops it: no state
            values = [value for value in values if _valid(value, True)]
            if not values:
                return False
        plan = _plan(instrument, attributes)
    if plan is None:
        record = instrument.record
        for value in values:
            record(value, attributes, context)
        return False
    _append((plan, tuple(values), time_ns(), context if context is not None else get_current()))
    return True


def record(instrument: Any, value: float, attributes: Any, context: Context | None = None) -> bool:
    """``instrument.record(value, attributes, context)`` for an SDK Histogram, via its plan."""
    valid = available and type(instrument) is _Histogram and _valid(value, True)
    plan = _plan(instrument, attributes) if valid else None
    if plan is None:  # the SDK warns about and drops a value it rejects
        instrument.record(value, attributes, context)
        return False
    _append((plan, value, time_ns(), context if context is not None else get_current()))
    return True


def add(instrument: Any, amount: float, attributes: Any, context: Context | None = None) -> bool:
    """``instrument.add(amount, attributes, context)`` for an SDK Counter/UpDownCounter, via its plan.

    Returns True when the fast route was taken.
    """
    valid = available and _kind(instrument) is _SUM and _valid(amount, _positive(instrument))
    plan = _plan(instrument, attributes) if valid else None
    if plan is None:  # the SDK warns about and drops a value it rejects
        instrument.add(amount, attributes, context)
        return False
    _append((plan, amount, time_ns(), context if context is not None else get_current()))
    return True


# -- folding ----------------------------------------------------------------------------------


def drain() -> None:
    """Fold every thread's buffered values into the SDK's aggregations now.

    Called by the SDK at the start of every collection (see :func:`_hook`), by a
    thread whose buffer is full, and before ``os.fork()``. Never raises (failures
    are counted in ``llmtel.sdk.problems``).
    """
    with _registry_lock:
        buffers = list(_buffers)
    _drain(buffers)


def _drain(buffers: Sequence[_Buffer]) -> None:
    with _drain_lock:
        batch: list[Any] = []
        for buffer in buffers:
            entries = buffer.entries
            taken = len(entries)
            if taken:
                batch += entries[:taken]
                del entries[:taken]  # entries appended meanwhile stay for the next drain
            elif buffer.owner() is None:  # its thread is gone and everything it recorded is taken
                with _registry_lock:
                    if buffer in _buffers:
                        _buffers.remove(buffer)
        if batch:
            with _errors.guarded("fold metrics"):
                _fold(batch)


class _Series:
    """One aggregation's share of a batch: its records in record order."""

    __slots__ = ("aggregation", "aligned", "histogram", "records", "spread")

    def __init__(self, aggregation: Any, histogram: bool, aligned: bool) -> None:
        self.aggregation = aggregation
        self.histogram = histogram
        self.aligned = aligned
        # (value or values, time, span ids, sampled, offered attributes): one per value or record_many
        self.records: list[tuple[Any, int, _SpanIds, bool, Any]] = []
        self.spread = False  # some record holds several values


#: Entries per source (plan or bundle: one attribute set) from which a batch is grouped by series.
#: Grouped, each series takes its lock and finds its buckets once for many values; with a few entries
#: per source (hundreds of models) grouping costs more than it saves, most of it in the objects it makes,
#: so each value is folded as it comes. Both end in the same state (measured: docs/performance.md).
_GROUP_FROM = 4
_source_of = itemgetter(0)


def _fold(batch: list[Any]) -> None:
    # Values are taken in record order; each series (aggregation) collects its own, whichever plan
    # (attribute dict, bundle) they came through, so sums and "last value" exemplars follow that order.
    # Each batch chooses its own way, from its own entries (counted in C: ~0.1 µs per entry), so a
    # workload that changes does not fold a batch the way the last one wanted.
    grouping = len(batch) >= _GROUP_FROM * len(set(map(_source_of, batch)))
    live: dict[_Target, _Series] = {}  # each target's series in this batch (no collection runs meanwhile)
    series: dict[Any, _Series] = {}  # by aggregation: plans of equal attribute sets share a series
    # Sampling reservoirs (a sum's, any not aligned to buckets) draw a random number per value, in record
    # order across series. Value by value, each value is offered right after it is folded, while its
    # series' objects are still in cache; grouped, after the whole batch (_offer_each). Same draws.
    sampled_values: list[tuple[_Plan, Any, int, Context, _SpanIds]] = []
    draw = _drawer()
    last_ctx: Any = None
    last_filter: Any = None
    sampled, ids = False, None
    for source, values, now, ctx in batch:
        if ctx is not last_ctx or source.filter is not last_filter:
            # The entries of one call share its context: the filter is asked once, the span ids read once.
            sampled, ids = _exemplar_decision(source.filter, ctx)
            last_ctx, last_filter = ctx, source.filter
        bundled = type(source) is _Bundle
        # zip() without strict=: a keyword argument is parsed on every call (a bundle has a value per plan).
        for plan, value in zip(source.plans, values) if bundled else ((source, values),):  # noqa: B905
            if value is None or plan is None:
                continue
            if bundled and not (type(value) in _NUMBERS and plan.low <= value < _INF):
                # Only a bundle's values may hold what the SDK rejects (single records are checked on the
                # call path); a number in range is the common case, tested inline.
                value = _accepted(plan, value, ctx)
                if value is None:
                    continue
            if not grouping:
                # Each value as it comes, inline: at hundreds of series this runs for every value, and a
                # Python call per value and target costs more than the rest of the work (what aggregate()
                # does: a histogram's bucket found once, for it and for its exemplar).
                histogram = plan.kind is _HIST
                for target in plan.targets:
                    # target.current(), its common case inline
                    same = target.match._attributes_aggregation is target.series
                    aggregation = target.aggregation if same else target.current()
                    if type(value) not in _NUMBERS:  # a sequence (a stream's chunk gaps): one series' values
                        alone = _Series(aggregation, histogram, target.aligned)
                        alone.records.append((value, now, ids, sampled, plan.offered))
                        alone.spread = True
                        _fold_series(alone)
                        continue
                    # The locks by acquire() and release(), not ``with``: looking up and binding a lock's
                    # __enter__ and __exit__ costs ~0.1 µs, paid here per value (docs/performance.md).
                    lock = aggregation._lock
                    lock.acquire()
                    try:
                        if not histogram:  # a sum
                            aggregation._value = (0 if aggregation._value is None else aggregation._value) + value
                        else:
                            index = bisect_left(target.boundaries, value)  # the SDK's bucket rule
                            if aggregation._value is None:
                                aggregation._value = aggregation._get_empty_bucket_counts()
                            aggregation._sum += value
                            if aggregation._record_min_max:  # min() and max() of the SDK, without two calls
                                if value < aggregation._min:
                                    aggregation._min = value
                                if value > aggregation._max:
                                    aggregation._max = value
                            aggregation._value[index] += 1
                    finally:
                        lock.release()
                    if not sampled:
                        continue
                    reservoir = aggregation._reservoir
                    if not target.aligned:
                        _offer_sampled(reservoir, value, now, plan.offered, ids, ctx, draw)
                        continue
                    # Straight to the reservoir's bucket, as its offer() finds it (its _find_bucket_index
                    # is the first boundary >= value, the aggregation's bisect_left).
                    lock = reservoir._lock
                    lock.acquire()
                    try:
                        _offer(reservoir._reservoir_storage[index], value, now, plan.offered, ids)
                    finally:
                        lock.release()
                if sampled and plan.sampling and type(value) not in _NUMBERS:
                    _offer_each(((plan, value, now, ctx, ids),), draw)  # each value to every reservoir, in turn
                continue
            if sampled and plan.sampling:
                sampled_values.append((plan, value, now, ctx, ids))
            record = (value, now, ids, sampled, plan.offered)  # shared by the plan's targets
            spread = type(value) not in _NUMBERS
            for target in plan.targets:
                entry = live.get(target)
                if entry is None:
                    aggregation = target.current()
                    entry = series.get(aggregation)
                    if entry is None:
                        entry = series[aggregation] = _Series(aggregation, plan.kind is _HIST, target.aligned)
                    live[target] = entry
                entry.records.append(record)
                if spread:
                    entry.spread = True
    if grouping:
        for entry in series.values():
            _fold_series(entry)
    if sampled_values:
        _offer_each(sampled_values, draw)


#: The (trace id, span id) an exemplar bucket takes from a value's context; None: it keeps the ids it had.
_SpanIds = tuple[int, int] | None
_NOT_SAMPLED: tuple[bool, _SpanIds] = (False, None)
_SAMPLED = TraceFlags.SAMPLED


def _exemplar_decision(exemplar_filter: Any, ctx: Context) -> tuple[bool, _SpanIds]:
    """Whether values recorded in ``ctx`` are offered as exemplars, and the span ids they carry.

    The first is ``exemplar_filter.should_sample(value, time, attributes, ctx)`` for the SDK's three
    filters (the only ones a plan is made under), which look at the context alone; the second is what
    ``ExemplarBucket.offer`` reads from ``get_current_span(ctx)`` (ids unless it is ``INVALID_SPAN``).
    Both per context, not per value: the values of one call share theirs.
    """
    kind = type(exemplar_filter)
    if kind is AlwaysOffExemplarFilter:
        return _NOT_SAMPLED
    span: Any = ctx.get(SPAN_KEY)
    if span is None or span is INVALID_SPAN or not (type(span) in _span_types or _new_span_class(span)):
        # get_current_span(ctx) is INVALID_SPAN, whose flags say "not sampled"
        return kind is AlwaysOnExemplarFilter, None
    span_context = span._context if type(span) in _CONTEXT_FIELD else span.get_span_context()
    # SpanContext is the tuple (trace_id, span_id, is_remote, trace_flags, ...): items, not properties.
    if kind is TraceBasedExemplarFilter and not span_context[3] & _SAMPLED:
        return _NOT_SAMPLED
    return True, span_context[:2]


_span_types: set[type] = set()  # classes of spans seen in contexts (a handful: the SDK's and the API's)


def _new_span_class(span: Any) -> bool:
    """Whether ``span`` (of a class not met yet) is a ``Span``; its class is remembered if so.

    ``Span`` is an ABC: its ``isinstance()`` is a Python call, so it is asked once per class.
    """
    if not isinstance(span, Span):
        return False
    _span_types.add(type(span))
    return True


def _accepted(plan: _Plan, value: Any, ctx: Context) -> Any:
    """``value`` without what the SDK rejects (sent through its public API: it warns and drops them); None if empty."""
    positive = plan.low == 0
    if type(value) in _NUMBERS:
        if _valid(value, positive):
            return value
        values: Sequence[float] = (value,)
    else:
        # NaN or inf anywhere makes the sum non-finite; histograms and counters take no negative values.
        if math.isfinite(sum(value)) and not (positive and min(value) < 0):
            return value
        values = value
    method = plan.instrument.record if plan.kind is _HIST else plan.instrument.add
    kept = []
    for item in values:
        if _valid(item, positive):
            kept.append(item)
        else:
            method(item, plan.attributes, ctx)
    return kept or None


def _valid(value: Any, positive: bool) -> bool:
    try:
        return math.isfinite(value) and not (positive and value < 0)
    except TypeError:  # not a number: the SDK's public API says so
        return False


def _fold_series(entry: _Series) -> None:
    """Fold a series' records in one step."""
    aggregation = entry.aggregation
    records = entry.records
    starts: list[int] | None = None  # per record, the index of its first value (None: one value each)
    if entry.spread:
        flat: list[float] = []
        starts = []
        for record in records:
            starts.append(len(flat))
            value = record[0]
            if type(value) in _NUMBERS:
                flat.append(value)
            else:
                flat += value
    else:
        flat = [record[0] for record in records]
    if not entry.histogram:
        with aggregation._lock:
            # One by one, in order, as repeated aggregate() calls would: the same float sum.
            aggregation._value = reduce(_add, flat, 0 if aggregation._value is None else aggregation._value)
        return  # exemplars: offered by _fold, in record order across series
    with aggregation._lock:
        boundaries = aggregation._boundaries
        if aggregation._value is None:
            aggregation._value = aggregation._get_empty_bucket_counts()
        bucket_counts = aggregation._value
        aggregation._sum = reduce(_add, flat, aggregation._sum)
        low, high = min(flat), max(flat)
        if aggregation._record_min_max:
            aggregation._min = min(aggregation._min, low)
            aggregation._max = max(aggregation._max, high)
        first = bisect_left(boundaries, low)  # the SDK's bucket rule: the first boundary >= value
        if first == bisect_left(boundaries, high):  # all in one bucket (chunk gaps often are): no search
            bucket_counts[first] += len(flat)
            buckets = 1  # distinct buckets among the values
        else:
            counts = Counter(map(bisect_left, repeat(boundaries, len(flat)), flat))
            for index, count in counts.items():
                bucket_counts[index] += count
            buckets = len(counts)
    if entry.aligned and any(record[3] for record in records):
        _offer_last_per_bucket(entry, flat, starts, buckets)


def _offer_last_per_bucket(entry: _Series, flat: list[float], starts: list[int] | None, buckets: int) -> None:
    """Leave an aligned-bucket reservoir as offering every sampled value in order would.

    It keeps the last value per bucket; a bucket offered a value without a span keeps
    the span ids it had, so the last value with a span goes in before it.
    """
    records = entry.records
    boundaries = entry.aggregation._boundaries
    last: dict[int, int] = {}  # bucket -> position in flat of its last sampled value
    last_span: dict[int, int] = {}  # ... of its last sampled value with a span
    # From the last record back (a record's values share a context), until every bucket has its last
    # value with a span (and so its last value): usually one or two calls, so only their values'
    # buckets are searched.
    for index in range(len(records) - 1, -1, -1):
        _, _, ids, sampled, _ = records[index]
        if not sampled:
            continue
        if starts is None:
            latest = {bisect_left(boundaries, flat[index]): index}
        else:
            start, end = starts[index], starts[index + 1] if index + 1 < len(starts) else len(flat)
            found = map(bisect_left, repeat(boundaries, end - start), flat[start:end])
            latest = dict(zip(found, range(start, end), strict=True))
        for bucket, position in latest.items():
            last.setdefault(bucket, position)
        if ids is not None:
            for bucket, position in latest.items():
                last_span.setdefault(bucket, position)
            if len(last_span) == buckets:
                break
    reservoir = entry.aggregation._reservoir
    # The bucket is known: straight to the reservoir's bucket, as its offer() would find it.
    storage = reservoir._reservoir_storage
    with reservoir._lock:
        for bucket, position in last.items():
            earlier = last_span.get(bucket)
            if earlier is not None and earlier != position:
                _, now, ids, _, offered = records[earlier if starts is None else bisect_right(starts, earlier) - 1]
                _offer(storage[bucket], flat[earlier], now, offered, ids)
            _, now, ids, _, offered = records[position if starts is None else bisect_right(starts, position) - 1]
            _offer(storage[bucket], flat[position], now, offered, ids)


def _offer_each(
    sampled_values: Sequence[tuple[_Plan, Any, int, Context, _SpanIds]], draw: Callable[[int], int]
) -> None:
    """Offer each sampled value to every reservoir of its plan that is not aligned-bucket, as the SDK would.

    In record order: series after series and reader after reader, as the SDK offers them (a sampling
    reservoir draws a random number per value).
    """
    for plan, values, now, ctx, ids in sampled_values:
        attributes = plan.offered
        for value in (values,) if type(values) in _NUMBERS else values:
            for target in plan.sampled_targets:
                # The aggregation found by this fold: no collection runs meanwhile.
                _offer_sampled(target.aggregation._reservoir, value, now, attributes, ids, ctx, draw)


def _offer_sampled(
    reservoir: Any, value: float, now: int, attributes: Any, ids: _SpanIds, ctx: Context, draw: Callable[[int], int]
) -> None:
    """``reservoir.offer(value, now, attributes, ctx)`` for a reservoir not aligned to buckets."""
    if type(reservoir) is not SimpleFixedSizeExemplarReservoir:
        reservoir.offer(value, now, attributes, ctx)
        return
    # Its _find_bucket_index inline: the same random draw, and only a kept value is offered.
    lock = reservoir._lock
    lock.acquire()  # not ``with``: per value (see _fold)
    try:
        seen = reservoir._measurements_seen
        reservoir._measurements_seen = seen + 1
        size = reservoir._size
        index = seen if seen < size else draw(seen + 1)
        if index < size:
            _offer(reservoir._reservoir_storage[index], value, now, attributes, ids)
    finally:
        lock.release()


def _offer(bucket: Any, value: float, now: int, attributes: Any, ids: _SpanIds) -> None:
    """``bucket.offer(value, now, attributes, ctx)`` for an SDK ``ExemplarBucket``: the same fields set.

    ``ids``: :func:`_exemplar_decision`'s for ``ctx``, read once per call, not per value as ``offer()``
    reads them (eight Python calls), which a fold at hundreds of series pays for most histogram values.
    """
    bucket._ExemplarBucket__value = value
    bucket._ExemplarBucket__time_unix_nano = now
    bucket._ExemplarBucket__attributes = attributes
    if ids is not None:  # else the bucket keeps the span ids it had, as offer() leaves them
        bucket._ExemplarBucket__trace_id, bucket._ExemplarBucket__span_id = ids
    bucket._ExemplarBucket__offered = True


def _drawer() -> Callable[[int], int]:
    """``n -> randrange(0, n)`` as the SDK's reservoir module draws it: the same number from the same generator.

    Looked up per fold, as the SDK module's own code looks it up per value (tests give it a seeded
    one). For a ``random.Random`` generator it is the generator's ``_randbelow(n)``, which is what
    ``randrange(0, n)`` returns for ``n > 0`` after checking its arguments.
    """
    randrange = _reservoir_module.randrange  # type: ignore[attr-defined]
    generator = getattr(randrange, "__self__", None)
    if type(generator) is random.Random and getattr(randrange, "__func__", None) is random.Random.randrange:
        return generator._randbelow  # type: ignore[attr-defined,no-any-return]
    return partial(randrange, 0)


# -- collection and fork hooks ----------------------------------------------------------------


class _DrainBeforeCollect:
    """Registered with the SDK's measurement consumer as an asynchronous instrument.

    ``SynchronousMeasurementConsumer.collect()`` calls every asynchronous
    instrument's ``callback`` before it collects the reader's storage: the
    buffers are folded there, for every reader, every time. It yields nothing.
    """

    def callback(self, options: Any) -> tuple[()]:
        drain()
        return ()


_DRAIN_HOOK = _DrainBeforeCollect()
_hooked: weakref.WeakSet[Any] = weakref.WeakSet()


def _hook(consumer: Any) -> bool:
    """Make sure ``consumer`` drains the buffers before each collection; False if not (yet) possible."""
    if consumer in _hooked:
        return True
    # Never wait for the consumer: a collection in progress holds its lock (and may be this thread's).
    if not consumer._lock.acquire(blocking=False):
        return False
    try:
        if _DRAIN_HOOK not in consumer._async_instruments:
            consumer._async_instruments.append(_DRAIN_HOOK)
        _hooked.add(consumer)
    finally:
        consumer._lock.release()
    return True


def _before_fork() -> None:
    if _drain_lock.acquire(timeout=5.0):  # released in the parent; the child gets a new lock
        drain()


def _after_fork_in_parent() -> None:
    try:
        _drain_lock.release()
    except RuntimeError:  # not acquired (timed out)
        pass


def _after_fork_in_child() -> None:
    global _drain_lock, _registry_lock
    _drain_lock = threading.RLock()
    _registry_lock = threading.Lock()
    # Other threads do not exist here; what they buffered after the drain is the parent's to fold.
    mine = getattr(_local, "entries", None)
    _buffers[:] = [b for b in _buffers if b.entries is mine]
    for cache in list(_caches):
        cache.items.clear()  # resolve plans again against what the child keeps of the series


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)
