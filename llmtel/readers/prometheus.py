"""llmtel's Prometheus reader: the bridge served at the embedded endpoint's ``/metrics``.

It keeps the upstream ``opentelemetry-exporter-prometheus`` translation
(unit suffixes such as ``_seconds``, counters ``_total``, ``target_info``,
``otel_scope_*`` labels, label sanitizing) by calling the same helpers, and
adds what the stock exporter drops:

* **exemplars** (``trace_id``/``span_id`` of the span that recorded the
  value) on histogram buckets and counters, served when the scraper
  negotiates OpenMetrics; the classic text format stays exemplar-free;
* exemplars that **survive scrapes**: the SDK empties its exemplar reservoir
  on every collect, so the bridge keeps the latest exemplar per bucket until
  a newer one replaces it, and forgets it with its series.

Why a hand-written renderer instead of prometheus_client's family objects:
building a label dict and a ``Sample`` per bucket per scrape is most of the
stock exporter's cost. Here a series' label text is built once (cached by the
identity of the SDK's per-series attribute dict, which the SDK copies once and
never mutates) and each bucket is one f-string. The output is checked against
prometheus_client's own parsers and ``promtool`` in ``tests/bridge``.

:attr:`PrometheusBridgeReader.registry` still is a prometheus_client
``CollectorRegistry`` (for ``make_asgi_app(registry=...)`` and the like); that
compatibility path parses the bridge's OpenMetrics text back into families.
"""

from __future__ import annotations

import fnmatch
import json
import math
import threading
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import accumulate
from typing import Any

# Upstream's name translation (private module, present in every supported release;
# tests/bridge/test_upstream_contract.py fails loudly when upstream changes it).
from opentelemetry.exporter.prometheus._mapping import map_unit, sanitize_attribute, sanitize_full_name
from opentelemetry.sdk.metrics import (
    Counter,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics import (
    Histogram as HistogramInstrument,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

from llmtel._internal import errors as _errors
from llmtel._internal.negotiation import best_quality

__all__ = [
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT",
    "PrometheusBridgeReader",
    "bridge_for",
    "wants_openmetrics",
]

# Names the OpenTelemetry "Prometheus and OpenMetrics compatibility" spec gives. Upstream's exporter
# keeps them private and gained the scope labels only in 0.65b0, so the bridge defines them itself
# (test_upstream_contract checks they agree wherever upstream has them).
_TARGET_INFO_NAME = "target"
_TARGET_INFO_DESCRIPTION = "Target metadata"
_OTEL_SCOPE_NAME_LABEL = "otel_scope_name"
_OTEL_SCOPE_VERSION_LABEL = "otel_scope_version"
_OTEL_SCOPE_SCHEMA_URL_LABEL = "otel_scope_schema_url"
_OTEL_SCOPE_ATTR_PREFIX = "otel_scope_"


def _should_convert_sum_to_gauge(metric: Metric) -> bool:
    """The spec exports cumulative non-monotonic sums as gauges."""
    data = metric.data
    return (
        isinstance(data, Sum)
        and not data.is_monotonic
        and data.aggregation_temporality == AggregationTemporality.CUMULATIVE
    )


CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"

_INF = math.inf
# Registries whose bridge the endpoint renders directly (fast path), by registry.
_BRIDGES: weakref.WeakKeyDictionary[CollectorRegistry, PrometheusBridgeReader] = weakref.WeakKeyDictionary()


def bridge_for(registry: Any) -> PrometheusBridgeReader | None:
    """The bridge whose families ``registry`` holds, or None for any other registry."""
    try:
        return _BRIDGES.get(registry)
    except TypeError:  # not weak-referenceable: not ours
        return None


def wants_openmetrics(accept: str | None) -> bool:
    """True when an ``Accept`` header prefers OpenMetrics text over the classic format (q-values honoured)."""
    best_om = best_quality(accept, ("application/openmetrics-text",))
    best_text = best_quality(accept, ("text/plain", "text/*", "*/*"))
    return best_om > 0 and best_om >= best_text


def _number(value: float) -> str:
    """A sample value in exposition syntax (``+Inf``/``-Inf``/``NaN`` spelled as the formats require)."""
    if value.__class__ is int:
        return str(value)
    if math.isfinite(value):
        return repr(float(value))
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _label_value(value: Any) -> str:
    # Same conversion as the upstream exporter's _CustomCollector._check_value.
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text.isascii():
        return text
    # A lone surrogate (from an app's own instrument) cannot be encoded: it would fail the whole response.
    return text.encode("utf-8", "replace").decode("utf-8")


def _label_text(labels: Mapping[str, Any]) -> str:
    """``a="1",b="2"`` (sorted, sanitized, escaped); later keys win on a sanitizing clash, as upstream."""
    clean: dict[str, str] = {}
    for key, value in labels.items():
        clean[sanitize_attribute(key)] = _label_value(value)
    return ",".join(f'{key}="{_escape_value(clean[key])}"' for key in sorted(clean))


class _Series:
    """Per-series render state: cached label text and the exemplars kept across scrapes."""

    __slots__ = ("attributes", "exemplars", "labels")

    def __init__(self, attributes: object, labels: str | None) -> None:
        self.attributes = attributes  # holds the dict so its id() stays unique while cached
        self.labels = labels
        # Bucket index (0 for counters) → (time_unix_nano, rendered " # {...} value ts"); sparse,
        # since a series usually has exemplars in a few buckets only.
        self.exemplars: dict[int, tuple[int, str]] | None = None


class _Family:
    """One output metric family: its headers and the sample lines gathered for it."""

    __slots__ = ("kind", "lines", "name", "om_header", "text_header")

    def __init__(self, name: str, kind: str, description: str, unit: str) -> None:
        self.name = name
        self.kind = kind  # counter | gauge | histogram | info
        om_help = _escape_value(description)
        text_help = description.replace("\\", r"\\").replace("\n", r"\n")
        om = f"# HELP {name} {om_help}\n# TYPE {name} {kind}\n"
        if unit:
            om += f"# UNIT {name} {unit}\n"
        self.om_header = om
        text_name = {"counter": f"{name}_total", "info": f"{name}_info"}.get(kind, name)
        text_type = "gauge" if kind == "info" else kind
        self.text_header = f"# HELP {text_name} {text_help}\n# TYPE {text_name} {text_type}\n"
        self.lines: list[str] = []


def _family_name(metric_name: str, unit: str, kind: str) -> str:
    # prometheus_client's naming rules, as the stock exporter gets them through its families.
    name = sanitize_full_name(metric_name)
    if kind == "counter" and name.endswith("_total"):
        name = name[:-6]
    if unit and not name.endswith("_" + unit):
        name = f"{name}_{unit}"
    return name


def _kind(metric: Metric) -> str | None:
    data = metric.data
    if isinstance(data, Sum):
        return "gauge" if _should_convert_sum_to_gauge(metric) else "counter"
    if isinstance(data, Gauge):
        return "gauge"
    if isinstance(data, Histogram):
        return "histogram"
    return None  # exponential histograms: not in the classic exposition formats


def _exemplar_text(trace_id: int, span_id: int, value: float, time_unix_nano: int) -> str:
    return f' # {{trace_id="{trace_id:032x}",span_id="{span_id:016x}"}} {_number(value)} {time_unix_nano / 1e9!r}'


class PrometheusBridgeReader(MetricReader):
    """A pull reader rendered on each scrape: classic Prometheus text or OpenMetrics with exemplars.

    Args:
        registry: prometheus_client registry to expose the families in (a private one by default).
        resource_labels: resource attributes copied as labels on every series: a predicate on the
            attribute key, or keys/glob patterns (``["service.name", "deployment.*"]``).
        scope_labels: add ``otel_scope_name``/``otel_scope_version``/... labels (upstream default).
        target_info: serve the resource as ``target_info``.
        exemplars: serve exemplars (OpenMetrics only).
        constant_labels: labels added to every series (e.g. ``{"worker": "2"}``).
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        resource_labels: Callable[[str], bool] | Sequence[str] | None = None,
        scope_labels: bool = True,
        target_info: bool = True,
        exemplars: bool = True,
        constant_labels: Mapping[str, str] | None = None,
    ) -> None:
        cumulative = AggregationTemporality.CUMULATIVE
        super().__init__(
            preferred_temporality={
                Counter: cumulative,
                UpDownCounter: cumulative,
                HistogramInstrument: cumulative,
                ObservableCounter: cumulative,
                ObservableUpDownCounter: cumulative,
                ObservableGauge: cumulative,
            }
        )
        if resource_labels is None or callable(resource_labels):
            self._resource_filter: Callable[[str], bool] | None = resource_labels
        else:
            patterns = [str(p) for p in resource_labels if str(p)]
            self._resource_filter = (
                (lambda key: any(fnmatch.fnmatchcase(key, p) for p in patterns)) if patterns else None
            )
        self._scope_labels = scope_labels
        self._target_info = target_info
        self._exemplars = exemplars
        self._constant: dict[str, str] = dict(constant_labels or {})
        self._lock = threading.Lock()
        self._pending: MetricsData | None = None
        self._series: dict[int, _Series] = {}
        self._families: dict[tuple[str, str, str, str], tuple[str, str, str]] = {}
        self._le_cache: dict[tuple[float, ...], list[str]] = {}
        self._target_line: str | None = None
        self.family_names: frozenset[str] = frozenset()
        self._listeners: list[Callable[[MetricsData], None]] = []
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        self._collector = _FamilyCollector(self)
        self.registry.register(self._collector)
        _BRIDGES[self.registry] = self

    # -- configuration that may change after fork ---------------------------------
    def set_constant_labels(self, labels: Mapping[str, str]) -> None:
        """Replace the labels added to every series (the endpoint sets ``worker`` this way)."""
        with self._lock:
            self._constant = dict(labels)
            self._series.clear()

    @property
    def constant_labels(self) -> dict[str, str]:
        """Labels added to every series."""
        return dict(self._constant)

    def after_fork_in_child(self, *, forget_inherited: bool = False) -> None:
        """Make a forked child's bridge usable; with ``forget_inherited``, start its series from zero.

        A worker forked after configure() inherits a copy of every series the
        parent recorded; served by each worker, the parent's counts would appear
        once per worker. The SDK has no public reset, so this clears this reader's
        aggregations in the SDK storage (private; the SDK is pinned to 1.45.x and
        tests/bridge/test_multiprocess.py checks it).
        """
        # A scrape thread may have held the lock at fork time; it does not exist in the child.
        self._lock = threading.Lock()
        self._series = {}
        if not forget_inherited:
            return
        consumer = getattr(self._collect, "__self__", None)
        storage = getattr(consumer, "_reader_storages", {}).get(self)
        matches = getattr(storage, "_instrument_view_instrument_matches", None)
        if not isinstance(matches, dict):
            _errors.report("prometheus: cannot reset inherited series after fork", detail="SDK internals changed")
            return
        storage._lock = threading.RLock()  # type: ignore[union-attr]
        for instrument_matches in matches.values():
            for match in instrument_matches:
                match._lock = threading.Lock()
                # A new dict, as the SDK's delta collection swaps in: llmtel's record path
                # (fastpath._Target.current) tells its series are gone by the dict's identity.
                match._attributes_aggregation = {}

    # -- MetricReader ---------------------------------------------------------------
    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        self._pending = metrics_data

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Nothing to flush: scrapes pull. (Collecting here would eat the SDK's exemplars before a scrape.)"""
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Stop exposing families in :attr:`registry`."""
        try:
            self.registry.unregister(self._collector)
        except KeyError:
            pass

    # -- rendering ------------------------------------------------------------------
    def render(self, *, openmetrics: bool, eof: bool = True) -> str:
        """Collect now and render every family (OpenMetrics with exemplars, or classic text).

        ``eof=False`` leaves out OpenMetrics' ``# EOF`` so more families can be appended.
        Never raises: a failure is counted and gives what was rendered so far.
        """
        with self._lock:
            data = self._collect_locked()
            families: dict[str, _Family] = {}
            with _errors.guarded("prometheus render failed"):
                if data is not None:
                    self._render_data(data, families, openmetrics)
            self.family_names = frozenset(families)
            parts: list[str] = []
            for family in families.values():
                parts.append(family.om_header if openmetrics else family.text_header)
                if family.lines:
                    parts.append("\n".join(family.lines))
                    parts.append("\n")
            if openmetrics and eof:
                parts.append("# EOF\n")
            return "".join(parts)

    def snapshot(self) -> MetricsData | None:
        """Collect now, as a scrape does, and return the data (None when nothing could be collected).

        For in-process readers of the same numbers (the endpoint's live page): exemplars the
        collection takes from the SDK's reservoirs are kept for the next scrape, as a render keeps them.
        """
        with self._lock:
            data = self._collect_locked()
            if data is not None and self._exemplars:
                with _errors.guarded("prometheus: keeping snapshot exemplars failed"):
                    self._keep_exemplars(data)
            return data

    def add_collect_listener(self, listener: Callable[[MetricsData], None]) -> None:
        """Call ``listener(data)`` after every collection (scrapes and snapshots), in the collecting thread.

        Listeners run under the bridge's lock: they must be quick; a failing one is counted, never raised.
        """
        with self._lock:
            self._listeners.append(listener)

    def remove_collect_listener(self, listener: Callable[[MetricsData], None]) -> None:
        """Stop calling ``listener``."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _collect_locked(self) -> MetricsData | None:
        self._pending = None
        with _errors.guarded("prometheus collect failed"):
            self.collect()
        data, self._pending = self._pending, None
        if data is not None:
            for listener in self._listeners:
                with _errors.guarded("prometheus: collect listener failed"):
                    listener(data)
        return data

    def _keep_exemplars(self, data: MetricsData) -> None:
        # Series first seen here get their label text at the next render (labels=None until then).
        series_map = self._series
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = _kind(metric)
                    if kind not in ("histogram", "counter"):
                        continue
                    for point in metric.data.data_points:
                        if not point.exemplars:
                            continue
                        attributes = point.attributes
                        series = series_map.get(id(attributes))
                        if series is None or series.attributes is not attributes:
                            series = series_map[id(attributes)] = _Series(attributes, None)
                        if kind == "histogram":
                            assert isinstance(point, HistogramDataPoint)
                            self._keep_histogram_exemplars(series, point)
                        else:
                            self._keep_counter_exemplar(series, point.exemplars)

    def _render_data(self, data: MetricsData, families: dict[str, _Family], openmetrics: bool) -> None:
        old_series: dict[int, _Series] = self._series
        series_map: dict[int, _Series] = {}
        self._series = series_map
        constant = self._constant
        for index, resource_metrics in enumerate(data.resource_metrics):
            if index == 0 and self._target_info:
                self._add_target_info(resource_metrics.resource, families)
            resource_part: dict[str, Any] = dict(constant)
            if self._resource_filter is not None:
                for key, value in resource_metrics.resource.attributes.items():
                    if self._resource_filter(key):
                        resource_part[key] = value
            for scope_metrics in resource_metrics.scope_metrics:
                base = {**resource_part, **self._scope_attrs(scope_metrics.scope)}
                for metric in scope_metrics.metrics:
                    self._render_metric(metric, base, families, old_series, series_map, openmetrics)

    def _add_target_info(self, resource: Resource, families: dict[str, _Family]) -> None:
        if self._target_line is None:
            labels = _label_text(dict(resource.attributes))
            self._target_line = f"{_TARGET_INFO_NAME}_info{{{labels}}} 1" if labels else f"{_TARGET_INFO_NAME}_info 1"
        family = _Family(_TARGET_INFO_NAME, "info", _TARGET_INFO_DESCRIPTION, "")
        family.lines.append(self._target_line)
        families[_TARGET_INFO_NAME] = family

    def _scope_attrs(self, scope: InstrumentationScope) -> dict[str, Any]:
        if not self._scope_labels:
            return {}
        attrs: dict[str, Any] = {}
        for key, value in (scope.attributes or {}).items():
            attrs[_OTEL_SCOPE_ATTR_PREFIX + key] = value
        # Empty values are left out: Prometheus treats label="" as no label.
        for key, value in (
            (_OTEL_SCOPE_NAME_LABEL, scope.name),
            (_OTEL_SCOPE_VERSION_LABEL, scope.version),
            (_OTEL_SCOPE_SCHEMA_URL_LABEL, scope.schema_url),
        ):
            if value:
                attrs[key] = value
        return attrs

    def _family_for(self, metric: Metric, kind: str, families: dict[str, _Family]) -> _Family | None:
        key = (metric.name, metric.description or "", metric.unit or "", kind)
        cached = self._families.get(key)
        if cached is None:
            unit = map_unit(metric.unit or "")
            cached = (_family_name(metric.name, unit, kind), metric.description or "", unit)
            self._families[key] = cached
        name, description, unit = cached
        family = families.get(name)
        if family is None:
            family = families[name] = _Family(name, kind, description, unit)
        elif family.kind != kind:
            _errors.report("prometheus name clash", detail=f"{name} is both {family.kind} and {kind}")
            return None
        return family

    def _render_metric(
        self,
        metric: Metric,
        base: dict[str, Any],
        families: dict[str, _Family],
        old_series: dict[int, _Series],
        series_map: dict[int, _Series],
        openmetrics: bool,
    ) -> None:
        kind = _kind(metric)
        if kind is None:
            _errors.report("prometheus: unsupported metric data", detail=type(metric.data).__name__)
            return
        family = self._family_for(metric, kind, families)
        if family is None:
            return
        name = family.name
        lines = family.lines
        show_exemplars = openmetrics and self._exemplars
        for point in metric.data.data_points:
            mark = len(lines)
            # One bad series (e.g. the app's own attribute value that cannot be printed: bad data, so
            # "expected") is skipped and counted; it never costs the rest of the scrape.
            with _errors.guarded("prometheus series skipped", expected=True) as block:
                self._render_point(point, name, kind, base, lines, old_series, series_map, show_exemplars)
            if block.failed:
                del lines[mark:]

    def _render_point(
        self,
        point: Any,
        name: str,
        kind: str,
        base: dict[str, Any],
        lines: list[str],
        old_series: dict[int, _Series],
        series_map: dict[int, _Series],
        show_exemplars: bool,
    ) -> None:
        append = lines.append
        want_exemplars = self._exemplars
        attributes: Mapping[str, Any] | None = point.attributes
        key = id(attributes)
        series = old_series.get(key)
        if series is None or series.attributes is not attributes:
            series = _Series(attributes, _label_text({**base, **(attributes or {})}))
        elif series.labels is None:  # kept by a snapshot() before its first render
            series.labels = _label_text({**base, **(attributes or {})})
        series_map[key] = series
        labels = series.labels
        if kind == "histogram":
            assert isinstance(point, HistogramDataPoint)
            bounds = point.explicit_bounds
            les = self._le_cache.get(tuple(bounds))
            if les is None:
                les = [f'le="{bound}"}} ' for bound in bounds] + ['le="+Inf"} ']
                self._le_cache[tuple(bounds)] = les
            if want_exemplars and point.exemplars:
                self._keep_histogram_exemplars(series, point)
            prefix = f"{name}_bucket{{{labels}," if labels else f"{name}_bucket{{"
            start = len(lines)
            lines.extend(
                [f"{prefix}{le}{count}" for le, count in zip(les, accumulate(point.bucket_counts), strict=False)]
            )
            kept = series.exemplars if show_exemplars else None
            if kept:
                end = len(lines)
                for index, (_, text) in kept.items():
                    if start + index < end:
                        lines[start + index] += text
            if labels:
                append(f"{name}_count{{{labels}}} {point.count}")
                append(f"{name}_sum{{{labels}}} {_number(point.sum)}")
            else:
                append(f"{name}_count {point.count}")
                append(f"{name}_sum {_number(point.sum)}")
        else:
            value = _number(point.value)
            sample = f"{name}_total" if kind == "counter" else name
            line = f"{sample}{{{labels}}} {value}" if labels else f"{sample} {value}"
            if kind == "counter" and want_exemplars:
                if point.exemplars:
                    self._keep_counter_exemplar(series, point.exemplars)
                if show_exemplars and series.exemplars:
                    line += series.exemplars[0][1]
            append(line)

    @staticmethod
    def _keep_histogram_exemplars(series: _Series, point: HistogramDataPoint) -> None:
        kept = series.exemplars
        if kept is None:
            kept = series.exemplars = {}
        bounds = point.explicit_bounds
        for exemplar in point.exemplars:
            if not exemplar.trace_id or not exemplar.span_id:
                continue  # exemplars exist here to link to traces
            # Bucket i holds (bounds[i-1], bounds[i]]; the value must fall inside its bucket.
            index = bisect_left(bounds, exemplar.value)
            previous = kept.get(index)
            if previous is None or exemplar.time_unix_nano >= previous[0]:
                kept[index] = (
                    exemplar.time_unix_nano,
                    _exemplar_text(exemplar.trace_id, exemplar.span_id, exemplar.value, exemplar.time_unix_nano),
                )

    @staticmethod
    def _keep_counter_exemplar(series: _Series, exemplars: Sequence[Any]) -> None:
        kept = series.exemplars
        latest = kept.get(0) if kept else None
        for exemplar in exemplars:
            if not exemplar.trace_id or not exemplar.span_id:
                continue
            if latest is None or exemplar.time_unix_nano >= latest[0]:
                latest = (
                    exemplar.time_unix_nano,
                    _exemplar_text(exemplar.trace_id, exemplar.span_id, exemplar.value, exemplar.time_unix_nano),
                )
        if latest is not None:
            series.exemplars = {0: latest}


class _FamilyCollector(Collector):
    """prometheus_client view of the bridge, for servers other than llmtel's endpoint.

    Parses the bridge's own OpenMetrics text with prometheus_client's parser, so
    both paths serve exactly the same samples and exemplars (slower; the
    endpoint renders text directly).
    """

    def __init__(self, bridge: PrometheusBridgeReader) -> None:
        self._bridge = weakref.ref(bridge)

    def describe(self) -> list[Any]:
        # Without describe(), an auto-describing registry (prometheus_client.REGISTRY) would call
        # collect() at registration, before the reader is attached to a MeterProvider.
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families

        bridge = self._bridge()
        if bridge is None:
            return iter(())
        families: Iterable[Any] = text_string_to_metric_families(bridge.render(openmetrics=True))  # type: ignore[no-untyped-call]
        return iter(list(families))
