"""Count push-export failures and log them once (wrappers around the SDK exporters).

The SDK's OTLP exporters return FAILURE (they do not raise) and log every failed attempt at
WARNING/ERROR, so a collector outage prints a few lines per export interval for as long as it
lasts. These wrappers count each failed export in ``llmtel.sdk.export.failures`` via
``_errors.export_failed`` (which logs once per exporter), and a logging filter lets each SDK
exporter logger speak once, then stays quiet (the count keeps going).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from llmtel._internal import errors as _errors
from llmtel._internal import values as _values

#: Loggers the SDK's OTLP exporters log each failed attempt on.
SDK_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
)


class _OncePerLogger(logging.Filter):
    """Let the first WARNING+ record of a logger through; drop later ones (they are counted)."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        with self._lock:
            if record.name in self._seen:
                return False
            self._seen.add(record.name)
        return True


_filter = _OncePerLogger()


def quiet_sdk_exporter_logs() -> None:
    """Install the once-per-logger filter on the SDK exporter loggers (idempotent)."""
    for name in SDK_EXPORTER_LOGGERS:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)


class CountingMetricExporter(MetricExporter):
    """A MetricExporter that forwards to ``inner`` and counts failures."""

    def __init__(self, inner: MetricExporter, name: str) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner, self._name = inner, name

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        result = MetricExportResult.FAILURE
        with _errors.guarded("export", exporter=self._name) as block:
            result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        if block.failed:
            return MetricExportResult.FAILURE
        if result is not MetricExportResult.SUCCESS:
            _errors.export_failed(self._name)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class CountingSpanExporter(SpanExporter):
    """A SpanExporter that forwards to ``inner`` and counts failures."""

    def __init__(self, inner: SpanExporter, name: str) -> None:
        self._inner, self._name = inner, name

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = SpanExportResult.FAILURE
        with _errors.guarded("export", exporter=self._name) as block:
            result = self._inner.export(spans)
        if block.failed:
            return SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            _errors.export_failed(self._name)
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self._inner.shutdown()


_EXCEPTION_TEXT = ("exception.message", "exception.stacktrace")


def _redacted_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` whose exception events and status description went through the redactor."""
    events = []
    for event in span.events:
        attributes = event.attributes or {}
        if any(isinstance(attributes.get(key), str) for key in _EXCEPTION_TEXT):
            cleaned = dict(attributes)
            for key in _EXCEPTION_TEXT:
                text = cleaned.get(key)
                if isinstance(text, str):
                    cleaned[key] = _values.redact(text)
            event = Event(event.name, cleaned, event.timestamp)
        events.append(event)
    status = span.status
    if status.description:
        status = Status(status.status_code, _values.redact(status.description))
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanExporter(SpanExporter):
    """Passes every span's exception messages, stack traces and status description through the redactor.

    Wraps each span exporter configure() builds when ``redact_exception_messages`` is set, so spans
    of every instrumentation on llmtel's provider leave redacted, not only llmtel's own.
    """

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        redacted = []
        for span in spans:
            with _errors.guarded("redact span"):
                redacted.append(_redacted_span(span))
        return self._inner.export(redacted)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self._inner.shutdown()
