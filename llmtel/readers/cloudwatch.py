"""Amazon CloudWatch exporter: Embedded Metric Format records (``PutLogEvents``) or ``PutMetricData``.

Written here because no maintained pure-Python OpenTelemetry exporter for CloudWatch exists
(open-telemetry/opentelemetry-python-contrib#2490 is open; aws-opentelemetry-distro's EMF exporter
pins older OpenTelemetry releases and brings the whole distro).

* ``emf`` (default): one JSON log event per data point, in CloudWatch's Embedded Metric Format.
  CloudWatch Logs turns the record into a metric with the allowlisted attributes as dimensions;
  every other attribute stays in the log event as a searchable property, and the trace id of an
  exemplar is kept in the record so the log line links to its trace.
* ``metric_data``: ``PutMetricData`` with ``Value``, ``StatisticValues`` or ``Values``/``Counts``,
  batched within the API limits.

CloudWatch adds up whatever each record carries, so counters and histograms are exported as
deltas (what happened since the last export) whatever temporality other readers use. Up-down
counters and gauges are levels, not totals: they are sent as the current value.

Histograms become ``Values``/``Counts``: one representative value per non-empty bucket, the middle
of the bucket clamped to the observed min and max (so a bucket holding one observation is exact and
the open-ended first and last buckets stay finite). Exact ``Sum``/``Count``/``Min``/``Max`` travel
with them in EMF; ``PutMetricData`` takes one form or the other (``StatisticValues`` by default).

Configuration: constructor keywords, else ``LLMTEL_CLOUDWATCH_*`` variables, else defaults; AWS
credentials, region and endpoint come from boto3's standard chain (``AWS_REGION`` /
``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``, profiles, instance roles...).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import socket
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    Gauge,
    HistogramDataPoint,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.metrics.export import (
    ExponentialHistogramDataPoint as ExpPoint,
)
from opentelemetry.sdk.metrics.export import (
    Histogram as HistogramData,
)
from opentelemetry.sdk.resources import Resource

from llmtel import semconv
from llmtel._internal import env
from llmtel._internal.errors import ConfigurationError, export_failed, guarded, report

__all__ = [
    "DEFAULT_LOG_GROUP",
    "DEFAULT_NAMESPACE",
    "NOT_DIMENSIONS",
    "CloudWatchMetricExporter",
    "default_dimensions",
    "representative_values",
]

logger = logging.getLogger(__name__)

EXPORTER_NAME: Final = "cloudwatch"
DEFAULT_NAMESPACE: Final = "llmtel"
DEFAULT_LOG_GROUP: Final = "/llmtel/metrics"
MODES: Final = ("emf", "metric_data")
HISTOGRAM_STYLES: Final = ("statistic_values", "values")

# API limits (CloudWatch PutMetricData, CloudWatch Logs PutLogEvents, EMF specification).
MAX_DATUMS_PER_REQUEST: Final = 1000
MAX_VALUES_PER_DATUM: Final = 150
MAX_EMF_VALUES: Final = 100
MAX_DIMENSIONS: Final = 30
MAX_REQUEST_BYTES: Final = 1_000_000  # PutMetricData payload limit is 1 MB; keep a margin
MAX_EVENTS_PER_BATCH: Final = 10_000
MAX_BATCH_BYTES: Final = 1_048_576
EVENT_OVERHEAD_BYTES: Final = 26
MAX_EVENT_BYTES: Final = 256 * 1024

#: Attributes allowed on instruments that are never made dimensions by default: unbounded values
#: (server address/port, dated response model names) or descriptions of ``hw.id`` that add a
#: dimension without splitting anything. They stay in EMF records as properties.
NOT_DIMENSIONS: Final = frozenset(
    {
        semconv.SERVER_ADDRESS,
        semconv.SERVER_PORT,
        semconv.RESPONSE_MODEL,
        "hw.name",
        "hw.parent",
        "hw.vendor",
        "hw.model",
        "hw.driver_version",
    }
)

# OpenTelemetry (UCUM) units → CloudWatch StandardUnit; "{annotation}" units are counts.
_UNITS: Final = {
    "s": "Seconds",
    "ms": "Milliseconds",
    "us": "Microseconds",
    "By": "Bytes",
    "KiBy": "Kilobytes",
    "MiBy": "Megabytes",
    "GiBy": "Gigabytes",
    "bit": "Bits",
    "%": "Percent",
    "By/s": "Bytes/Second",
    "1": "None",
}

_BY_EMITTED_NAME: Final = {
    **{s.name: s for s in semconv.INSTRUMENTS},
    **{s.latest_name: s for s in semconv.INSTRUMENTS if s.latest_name},
}

# CloudWatch sums what it receives: monotonic counts and histograms go as deltas. Up-down counters
# are levels (queue depth, requests in flight); a delta would only say how much they moved.
_TEMPORALITY: Final[dict[type, AggregationTemporality]] = {
    Counter: AggregationTemporality.DELTA,
    ObservableCounter: AggregationTemporality.DELTA,
    Histogram: AggregationTemporality.DELTA,
    UpDownCounter: AggregationTemporality.CUMULATIVE,
    ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
    ObservableGauge: AggregationTemporality.CUMULATIVE,
}


def cloudwatch_unit(unit: str | None) -> str:
    """The CloudWatch unit for an OpenTelemetry unit (``None`` when CloudWatch has no match)."""
    if not unit:
        return "None"
    if unit.startswith("{") and unit.endswith("}"):
        return "Count"
    return _UNITS.get(unit, "None")


def default_dimensions(metric_name: str) -> frozenset[str]:
    """Dimensions by default: the registry's allowed attributes of the instrument minus :data:`NOT_DIMENSIONS`.

    Instruments the registry does not know get no attribute dimensions.
    """
    found = _BY_EMITTED_NAME.get(metric_name)
    return found.attributes - NOT_DIMENSIONS if found is not None else frozenset()


def representative_values(
    bounds: Sequence[float], counts: Sequence[int], minimum: float, maximum: float
) -> tuple[list[float], list[float]]:
    """``Values``/``Counts`` for an explicit-bucket histogram: one value per non-empty bucket.

    The value is the middle of the bucket after clamping it to the observed ``[minimum, maximum]``:
    exact for a bucket that holds a single distinct value, and finite for the open-ended first and
    last buckets. ``minimum``/``maximum`` may be non-finite (min/max not recorded): bucket edges are
    used then.
    """
    have_min, have_max = math.isfinite(minimum), math.isfinite(maximum)
    values: list[float] = []
    weights: list[float] = []
    for i, count in enumerate(counts):
        if not count:
            continue
        lo = bounds[i - 1] if i > 0 else (minimum if have_min else bounds[0] if bounds else 0.0)
        hi = bounds[i] if i < len(bounds) else (maximum if have_max else bounds[-1] if bounds else 0.0)
        if have_min:
            lo = max(lo, minimum)
        if have_max:
            hi = min(hi, maximum)
        if lo > hi:
            lo = hi
        values.append((lo + hi) / 2.0)
        weights.append(float(count))
    return values, weights


def _exponential_values(point: ExpPoint) -> tuple[list[float], list[float]]:
    """Representative values of an exponential histogram (bucket middles, clamped to min/max)."""
    base = 2.0 ** (2.0**-point.scale)
    pairs: list[tuple[float, float]] = []
    for sign, buckets in ((1.0, point.positive), (-1.0, point.negative)):
        for k, count in enumerate(buckets.bucket_counts):
            if count:
                index = buckets.offset + k
                lo, hi = base**index, base ** (index + 1)
                pairs.append((sign * (lo + hi) / 2.0, float(count)))
    if point.zero_count:
        pairs.append((0.0, float(point.zero_count)))
    pairs.sort()
    if math.isfinite(point.min) and math.isfinite(point.max):
        pairs = [(min(max(v, point.min), point.max), c) for v, c in pairs]
    return [v for v, _ in pairs], [c for _, c in pairs]


def _cap(values: list[float], counts: list[float], limit: int) -> tuple[list[float], list[float]]:
    """Merge neighbouring values (count-weighted) until at most ``limit`` remain (API limits)."""
    while len(values) > limit:
        merged_v: list[float] = []
        merged_c: list[float] = []
        for i in range(0, len(values), 2):
            vs, cs = values[i : i + 2], counts[i : i + 2]
            total = sum(cs)
            merged_v.append(sum(v * c for v, c in zip(vs, cs, strict=True)) / total if total else vs[0])
            merged_c.append(total)
        values, counts = merged_v, merged_c
    return values, counts


@dataclass
class _Point:
    """One data point, flattened for either output: what CloudWatch needs to know about it."""

    name: str
    unit: str
    timestamp_ms: int
    dimensions: dict[str, str]
    properties: dict[str, Any]
    value: float | None = None  # counters, up-down counters, gauges
    values: list[float] | None = None  # histograms
    counts: list[float] | None = None
    total: float = 0.0
    count: int = 0
    minimum: float = 0.0
    maximum: float = 0.0
    trace_id: str | None = None
    span_id: str | None = None


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _env_list(name: str) -> list[str] | None:
    raw = env.text(name)
    if raw is None:
        return None
    if raw.strip().lower() == "none":
        return []
    return [part.strip() for part in raw.split(",") if part.strip()]


class CloudWatchMetricExporter(MetricExporter):
    """Push llmtel's metrics to CloudWatch; instantiable with no arguments (``llmtel_cloudwatch``).

    Args:
        mode: ``"emf"`` (``LLMTEL_CLOUDWATCH_MODE``, default) or ``"metric_data"``.
        namespace: CloudWatch namespace (``LLMTEL_CLOUDWATCH_NAMESPACE``, default ``llmtel``).
        log_group: EMF log group (``LLMTEL_CLOUDWATCH_LOG_GROUP``, default ``/llmtel/metrics``); created if missing.
        log_stream: EMF log stream (``LLMTEL_CLOUDWATCH_LOG_STREAM``, default ``<host>-<pid>-<random>``);
            created if missing.
        dimensions: attribute keys made dimensions: one list for every instrument, or a mapping from
            metric name to list (key ``"*"`` for the rest). ``LLMTEL_CLOUDWATCH_DIMENSIONS`` (comma
            separated, ``none`` for no attribute dimensions) sets one list. Default:
            :func:`default_dimensions`.
        resource_dimensions: resource attributes added as dimensions to every metric
            (``LLMTEL_CLOUDWATCH_RESOURCE_DIMENSIONS``, default ``service.name``).
        histograms: ``metric_data`` mode only: ``"statistic_values"`` (exact sum/count/min/max, the
            default) or ``"values"`` (representative Values/Counts, so CloudWatch can compute
            percentiles) (``LLMTEL_CLOUDWATCH_HISTOGRAMS``).
        storage_resolution: 60 (standard, default) or 1 (high resolution) (``LLMTEL_CLOUDWATCH_STORAGE_RESOLUTION``).
        region, endpoint_url: override boto3's chain (``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``).
        timeout: connect/read timeout in seconds per AWS call (``LLMTEL_EXPORT_TIMEOUT``, default 5).
        session: a ``boto3.session.Session`` to build clients from (default: a new one).
        logs_client, cloudwatch_client: ready boto3 clients (tests, custom configuration).
    """

    def __init__(
        self,
        *,
        mode: str | None = None,
        namespace: str | None = None,
        log_group: str | None = None,
        log_stream: str | None = None,
        dimensions: Iterable[str] | Mapping[str, Iterable[str]] | None = None,
        resource_dimensions: Iterable[str] | None = None,
        histograms: str | None = None,
        storage_resolution: int | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout: float | None = None,
        session: Any = None,
        logs_client: Any = None,
        cloudwatch_client: Any = None,
    ) -> None:
        super().__init__(preferred_temporality=dict(_TEMPORALITY))
        self.mode = (mode or env.text("LLMTEL_CLOUDWATCH_MODE") or "emf").lower()
        if self.mode not in MODES:
            raise ConfigurationError(f"LLMTEL_CLOUDWATCH_MODE must be one of {MODES}, got {self.mode!r}")
        self.namespace = namespace or env.text("LLMTEL_CLOUDWATCH_NAMESPACE") or DEFAULT_NAMESPACE
        self.log_group = log_group or env.text("LLMTEL_CLOUDWATCH_LOG_GROUP") or DEFAULT_LOG_GROUP
        self.log_stream = (
            log_stream
            or env.text("LLMTEL_CLOUDWATCH_LOG_STREAM")
            or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        self.histograms = (histograms or env.text("LLMTEL_CLOUDWATCH_HISTOGRAMS") or "statistic_values").lower()
        if self.histograms not in HISTOGRAM_STYLES:
            raise ConfigurationError(
                f"LLMTEL_CLOUDWATCH_HISTOGRAMS must be one of {HISTOGRAM_STYLES}, got {self.histograms!r}"
            )
        raw_resolution = storage_resolution or env.text("LLMTEL_CLOUDWATCH_STORAGE_RESOLUTION") or 60
        try:
            self.storage_resolution = int(raw_resolution)
        except ValueError:
            self.storage_resolution = 0
        if self.storage_resolution not in (1, 60):
            raise ConfigurationError(f"LLMTEL_CLOUDWATCH_STORAGE_RESOLUTION must be 1 or 60, got {raw_resolution!r}")

        env_dims = _env_list("LLMTEL_CLOUDWATCH_DIMENSIONS")
        chosen = dimensions if dimensions is not None else env_dims
        self._dims_all: frozenset[str] | None = None
        self._dims_by_name: dict[str, frozenset[str]] = {}
        if isinstance(chosen, Mapping):
            self._dims_by_name = {k: frozenset(v) for k, v in chosen.items()}
        elif chosen is not None:
            self._dims_all = frozenset(chosen)
        res_dims = resource_dimensions if resource_dimensions is not None else None
        if res_dims is None:
            res_dims = _env_list("LLMTEL_CLOUDWATCH_RESOURCE_DIMENSIONS")
        self.resource_dimensions: tuple[str, ...] = tuple(res_dims if res_dims is not None else ("service.name",))

        if timeout is None:
            timeout = env.parsed("LLMTEL_EXPORT_TIMEOUT", float, 5.0)
        self._logs = logs_client
        self._cloudwatch = cloudwatch_client
        needed = (self._logs is None) if self.mode == "emf" else (self._cloudwatch is None)
        if needed:
            self._make_client(session, region, endpoint_url, timeout)
        self._stream_ready = False

    # ------------------------------------------------------------------ configuration
    def _make_client(self, session: Any, region: str | None, endpoint_url: str | None, timeout: float) -> None:
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import NoRegionError
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigurationError("llmtel_cloudwatch needs boto3: pip install 'llmtel[aws]'") from exc
        session = session or boto3.session.Session()
        region = region or env.text("AWS_REGION", "AWS_DEFAULT_REGION") or session.region_name
        config = Config(connect_timeout=timeout, read_timeout=timeout, user_agent_extra="llmtel")
        service = "logs" if self.mode == "emf" else "cloudwatch"
        try:
            client = session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)
        except NoRegionError as exc:
            raise ConfigurationError(
                "llmtel_cloudwatch: no AWS region; set AWS_REGION (or AWS_DEFAULT_REGION, or a profile region)"
            ) from exc
        if service == "logs":
            # Tells CloudWatch Logs to extract the metrics (optional today, harmless, and documented).
            client.meta.events.register("before-sign.logs.PutLogEvents", _add_emf_header)
            self._logs = client
        else:
            self._cloudwatch = client

    def _dimension_keys(self, metric_name: str) -> frozenset[str]:
        if self._dims_all is not None:
            return self._dims_all
        if metric_name in self._dims_by_name:
            return self._dims_by_name[metric_name]
        if "*" in self._dims_by_name:
            return self._dims_by_name["*"]
        return default_dimensions(metric_name)

    # ------------------------------------------------------------------ MetricExporter
    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        """Send one collection; never raises (failures are counted in ``llmtel.sdk.export.failures``)."""
        ok = False
        with guarded("export", exporter=EXPORTER_NAME):  # an export must never raise into the app
            points = list(self._points(metrics_data))
            if not points:
                return MetricExportResult.SUCCESS
            ok = self._put_log_events(points) if self.mode == "emf" else self._put_metric_data(points)
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True  # nothing is buffered between exports

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        for client in (self._logs, self._cloudwatch):
            close = getattr(client, "close", None)
            if callable(close):
                with guarded("close CloudWatch client", expected=True):  # closing is best effort
                    close()

    # ------------------------------------------------------------------ conversion
    def _points(self, metrics_data: MetricsData) -> Iterator[_Point]:
        for rm in metrics_data.resource_metrics:
            resource_dims = self._resource_dimensions(rm.resource)
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    dim_keys = self._dimension_keys(metric.name)
                    unit = cloudwatch_unit(metric.unit)
                    for dp in metric.data.data_points:
                        point = self._point(metric.name, unit, metric.data, dp, dim_keys, resource_dims)
                        if point is not None:
                            yield point

    def _resource_dimensions(self, resource: Resource) -> dict[str, str]:
        out: dict[str, str] = {}
        for key in self.resource_dimensions:
            value = resource.attributes.get(key)
            if value not in (None, ""):
                out[key] = _text(value)
        return out

    def _point(
        self,
        name: str,
        unit: str,
        data: Any,
        dp: Any,
        dim_keys: frozenset[str],
        resource_dims: dict[str, str],
    ) -> _Point | None:
        attrs: Mapping[str, Any] = dp.attributes or {}
        dims = dict(resource_dims)
        for key in sorted(dim_keys):
            if key in attrs and attrs[key] not in (None, ""):
                dims[key] = _text(attrs[key])
        if len(dims) > MAX_DIMENSIONS:
            report("cloudwatch: more than 30 dimensions, extra ones dropped")
            dims = dict(list(dims.items())[:MAX_DIMENSIONS])
        props = {k: _json_value(v) for k, v in attrs.items() if k not in dims and k != "_aws"}
        point = _Point(name, unit, dp.time_unix_nano // 1_000_000, dims, props)

        if isinstance(data, (Sum, Gauge)) and isinstance(dp, NumberDataPoint):
            if (
                isinstance(data, Sum)
                and data.is_monotonic
                and data.aggregation_temporality is not (AggregationTemporality.DELTA)
            ):
                # Only reached when someone forces cumulative temporality: CloudWatch would sum totals.
                report("cloudwatch: cumulative counter skipped (CloudWatch needs deltas)")
                return None
            point.value = float(dp.value)
        elif isinstance(data, HistogramData) and isinstance(dp, HistogramDataPoint):
            if data.aggregation_temporality is not AggregationTemporality.DELTA:
                report("cloudwatch: cumulative histogram skipped (CloudWatch needs deltas)")
                return None
            if not dp.count:
                return None
            point.values, point.counts = representative_values(dp.explicit_bounds, dp.bucket_counts, dp.min, dp.max)
            self._stats(point, dp.sum, dp.count, dp.min, dp.max)
        elif isinstance(data, ExponentialHistogram) and isinstance(dp, ExpPoint):
            if data.aggregation_temporality is not AggregationTemporality.DELTA or not dp.count:
                return None
            point.values, point.counts = _exponential_values(dp)
            self._stats(point, dp.sum, dp.count, dp.min, dp.max)
        else:
            return None

        numbers = [point.value] if point.value is not None else [point.total, *(point.values or [])]
        if not all(math.isfinite(v) for v in numbers):
            report("cloudwatch: non-finite value dropped")
            return None
        self._exemplar(point, dp)
        return point

    @staticmethod
    def _stats(point: _Point, total: float, count: int, minimum: float, maximum: float) -> None:
        values = point.values or [total / count]
        point.total, point.count = float(total), int(count)
        point.minimum = float(minimum) if math.isfinite(minimum) else min(values)
        point.maximum = float(maximum) if math.isfinite(maximum) else max(values)

    @staticmethod
    def _exemplar(point: _Point, dp: Any) -> None:
        # The exemplar with the largest value (the slowest call, the biggest prompt) is the most
        # useful trace to jump to from a metric record.
        traced = [e for e in (getattr(dp, "exemplars", None) or ()) if e.trace_id]
        if traced:
            best = max(traced, key=lambda e: e.value)
            point.trace_id = f"{best.trace_id:032x}"
            point.span_id = f"{best.span_id:016x}" if best.span_id else None

    # ------------------------------------------------------------------ EMF
    def emf_record(self, point: _Point) -> dict[str, Any]:
        """The EMF JSON document for one point (public for tests and docs)."""
        definition: dict[str, Any] = {"Name": point.name, "Unit": point.unit}
        if self.storage_resolution == 1:
            definition["StorageResolution"] = 1
        record: dict[str, Any] = {
            "_aws": {
                "Timestamp": point.timestamp_ms,
                "CloudWatchMetrics": [
                    {"Namespace": self.namespace, "Dimensions": [sorted(point.dimensions)], "Metrics": [definition]}
                ],
            }
        }
        record.update(point.properties)
        record.update(point.dimensions)
        if point.trace_id:
            record["trace_id"] = point.trace_id
            # X-Ray's form of the same id, so CloudWatch/X-Ray consoles can link the record too.
            record["xray_trace_id"] = f"1-{point.trace_id[:8]}-{point.trace_id[8:]}"
            if point.span_id:
                record["span_id"] = point.span_id
        if point.value is not None:
            record[point.name] = point.value
        else:
            values, counts = _cap(point.values or [], point.counts or [], MAX_EMF_VALUES)
            record[point.name] = {
                "Values": values,
                "Counts": counts,
                "Sum": point.total,
                "Count": point.count,
                "Min": point.minimum,
                "Max": point.maximum,
            }
        return record

    def _put_log_events(self, points: list[_Point]) -> bool:
        events: list[dict[str, Any]] = []
        for point in points:
            message = json.dumps(self.emf_record(point), separators=(",", ":"), default=str)
            if len(message.encode()) + EVENT_OVERHEAD_BYTES > MAX_EVENT_BYTES:
                report("cloudwatch: EMF record over the 256 KiB event limit dropped")
                continue
            events.append({"timestamp": point.timestamp_ms, "message": message})
        events.sort(key=lambda e: int(e["timestamp"]))  # PutLogEvents wants chronological order
        return _send_batches(_log_batches(events), self._put_log_batch)

    def _put_log_batch(self, batch: list[dict[str, Any]]) -> bool:
        from botocore.exceptions import ClientError

        request = {"logGroupName": self.log_group, "logStreamName": self.log_stream, "logEvents": batch}
        try:
            response = self._logs.put_log_events(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            self._create_stream()
            response = self._logs.put_log_events(**request)
        rejected = response.get("rejectedLogEventsInfo")
        if rejected:
            export_failed(EXPORTER_NAME, RuntimeError(f"PutLogEvents rejected events: {rejected}"))
            return False
        return True

    def _create_stream(self) -> None:
        """Create the log group and stream (each may already exist: another process raced us)."""
        logs = self._logs
        for call, kwargs in (
            (logs.create_log_group, {"logGroupName": self.log_group}),
            (logs.create_log_stream, {"logGroupName": self.log_group, "logStreamName": self.log_stream}),
        ):
            try:
                call(**kwargs)
            except logs.exceptions.ResourceAlreadyExistsException:
                pass

    # ------------------------------------------------------------------ PutMetricData
    def metric_datum(self, point: _Point) -> dict[str, Any]:
        """The ``MetricDatum`` for one point (public for tests and docs)."""
        datum: dict[str, Any] = {
            "MetricName": point.name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(point.dimensions.items())],
            "Timestamp": _dt.datetime.fromtimestamp(point.timestamp_ms / 1000, tz=_dt.timezone.utc),
            "Unit": point.unit,
            "StorageResolution": self.storage_resolution,
        }
        if point.value is not None:
            datum["Value"] = point.value
        elif self.histograms == "values":
            values, counts = _cap(point.values or [], point.counts or [], MAX_VALUES_PER_DATUM)
            datum["Values"], datum["Counts"] = values, counts
        else:
            datum["StatisticValues"] = {
                "SampleCount": float(point.count),
                "Sum": point.total,
                "Minimum": point.minimum,
                "Maximum": point.maximum,
            }
        return datum

    def _put_metric_data(self, points: list[_Point]) -> bool:
        def send(batch: list[dict[str, Any]]) -> bool:
            self._cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=batch)
            return True

        return _send_batches(_datum_batches(self.metric_datum(p) for p in points), send)


def _datum_batches(datums: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Split datums within PutMetricData limits: 1,000 per request, about 1 MB of payload."""
    batch: list[dict[str, Any]] = []
    size = 0
    for datum in datums:
        datum_size = len(json.dumps(datum, default=str))
        if batch and (len(batch) >= MAX_DATUMS_PER_REQUEST or size + datum_size > MAX_REQUEST_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(datum)
        size += datum_size
    if batch:
        yield batch


def _send_batches(batches: Iterable[list[dict[str, Any]]], send: Any) -> bool:
    """Send every batch; a batch the service rejects (4xx) does not stop the others.

    Throttling, server errors and connection errors end this export: the rest would fail the same
    way, and hammering an unwell endpoint makes it worse. One failure is counted per export.
    """
    from botocore.exceptions import ClientError

    ok, failure = True, None
    for batch in batches:
        try:
            ok = send(batch) and ok
        except ClientError as exc:
            failure = failure or exc
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if status >= 500 or status == 429 or "Throttl" in code:
                break
    if failure is not None:
        export_failed(EXPORTER_NAME, failure)
        return False
    return ok


def _log_batches(events: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Split events within PutLogEvents limits: 10,000 events, 1 MiB, a 24-hour span."""
    batch: list[dict[str, Any]] = []
    size = 0
    for event in events:
        event_size = len(event["message"].encode()) + EVENT_OVERHEAD_BYTES
        too_long = batch and event["timestamp"] - batch[0]["timestamp"] >= 24 * 3600 * 1000
        if batch and (len(batch) >= MAX_EVENTS_PER_BATCH or size + event_size > MAX_BATCH_BYTES or too_long):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += event_size
    if batch:
        yield batch


def _add_emf_header(request: Any, **kwargs: Any) -> None:
    request.headers["x-amzn-logs-format"] = "json/emf"
