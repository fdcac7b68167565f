"""A bounded in-memory store of recent spans, so a trace id seen in an exemplar
can be looked up at ``/traces/<trace_id>`` with nothing else running.

Bounded twice: at most ``max_traces`` traces (oldest evicted first) and at most
``max_spans_per_trace`` spans each (later spans of a huge trace are counted,
not kept).

What it serves holds nothing secret unless content capture is on: without
``serve_content``, content-bearing attributes (prompts, completions, tool
arguments and results, exception messages and stack traces, from any
instrumentation) are left out of every span and event; with it, exception text
still goes through the redactor when one is configured. Every value is turned
into plain JSON, whatever an instrumentation put on its spans.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from llmtel._internal import values as _values
from llmtel._internal.errors import describe
from llmtel.semconv import ERROR_TYPE, REQUEST_MODEL

MAX_SPANS_PER_TRACE = 256

# Dot-separated key segments that mark an attribute as content-bearing (``gen_ai.input.messages``,
# ``gen_ai.prompt.0.content``, ``gen_ai.tool.call.arguments``, ``exception.message``, ``db.query.text``...).
_CONTENT_SEGMENTS = frozenset(
    (
        "arguments",
        "body",
        "completion",
        "completions",
        "content",
        "contents",
        "definitions",
        "input_messages",
        "message",
        "messages",
        "output_messages",
        "prompt",
        "prompts",
        "result",
        "stacktrace",
        "system_instructions",
        "text",
    )
)
# Last segments that do the same (``traceloop.entity.input``, OpenInference's ``input.value``).
_CONTENT_LAST = frozenset(("input", "output", "value"))
_EXCEPTION_TEXT = frozenset(("exception.message", "exception.stacktrace"))


def is_content_key(key: str) -> bool:
    """True for attribute keys that may carry prompt/completion content or exception text."""
    segments = key.lower().split(".")
    return segments[-1] in _CONTENT_LAST or not _CONTENT_SEGMENTS.isdisjoint(segments)


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A plain-JSON form of any attribute value (bytes, huge ints, NaN, nested values)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value) if value.bit_length() < 64 else describe(value, 80)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if depth < 8 and isinstance(value, list | tuple):
        return [_jsonable(item, depth + 1) for item in value]
    if depth < 8 and isinstance(value, Mapping):
        return {str(key): _jsonable(item, depth + 1) for key, item in value.items()}
    return describe(value, 80)


def _text(value: Any) -> str:
    """Any attribute value as display text (what another instrumentation set may be bytes or a huge int)."""
    return value if isinstance(value, str) else json.dumps(_jsonable(value))


def _served_attributes(attributes: Mapping[str, Any] | None, content: bool) -> dict[str, Any]:
    served: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if not content and is_content_key(key):
            continue
        if key in _EXCEPTION_TEXT and isinstance(value, str):
            value = _values.redact(value)
        served[key] = _jsonable(value)
    return served


def _hex_trace(trace_id: int) -> str:
    return format(trace_id, "032x")


def _hex_span(span_id: int) -> str:
    return format(span_id, "016x")


def span_to_dict(span: ReadableSpan, *, content: bool = False) -> dict[str, Any]:
    """A JSON-ready view of one finished span (content-bearing attributes only with ``content``)."""
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "trace_id": _hex_trace(ctx.trace_id) if ctx else None,
        "span_id": _hex_span(ctx.span_id) if ctx else None,
        "parent_span_id": _hex_span(parent.span_id) if parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "duration_ms": ((span.end_time or 0) - (span.start_time or 0)) / 1e6,
        "status": span.status.status_code.name,
        "attributes": _served_attributes(span.attributes, content),
        "events": [{"name": e.name, "attributes": _served_attributes(e.attributes, content)} for e in span.events],
    }


def _summary(trace_id: int, spans: list[ReadableSpan]) -> dict[str, Any]:
    ids = {span.context.span_id for span in spans if span.context}
    roots = [span for span in spans if span.parent is None or span.parent.span_id not in ids] or spans
    root = min(roots, key=lambda span: span.start_time or 0)
    start = min(span.start_time or 0 for span in spans)
    end = max(span.end_time or 0 for span in spans)
    models = sorted(
        {
            _text(span.attributes[REQUEST_MODEL])
            for span in spans
            if span.attributes and REQUEST_MODEL in span.attributes
        }
    )
    error_types = sorted(
        {_text(span.attributes[ERROR_TYPE]) for span in spans if span.attributes and ERROR_TYPE in span.attributes}
    )
    return {
        "trace_id": _hex_trace(trace_id),
        "name": root.name,
        "start_time_unix_nano": start,
        "duration_ms": (end - start) / 1e6,
        "spans": len(spans),
        "error": any(span.status.status_code is StatusCode.ERROR for span in spans),
        "error_types": error_types,
        "models": models,
    }


class TraceStore(SpanProcessor):
    """Keeps the most recent finished spans, grouped by trace id."""

    def __init__(
        self, max_traces: int = 1000, max_spans_per_trace: int = MAX_SPANS_PER_TRACE, *, serve_content: bool = False
    ) -> None:
        self.max_traces = max_traces
        #: Serve content-bearing attributes and exception text (configure's ``capture_content``).
        self.serve_content = serve_content
        self.max_spans_per_trace = max_spans_per_trace
        self._traces: OrderedDict[int, list[ReadableSpan]] = OrderedDict()
        self._lock = threading.Lock()
        self._active = True
        self.dropped_spans = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if not self._active:
            return
        ctx = span.get_span_context()
        if ctx is None or not ctx.trace_flags.sampled:
            return
        with self._lock:
            spans = self._traces.get(ctx.trace_id)
            if spans is None:
                spans = self._traces[ctx.trace_id] = []
                while len(self._traces) > self.max_traces:
                    self._traces.popitem(last=False)
            else:
                self._traces.move_to_end(ctx.trace_id)
            if len(spans) < self.max_spans_per_trace:
                spans.append(span)
            else:
                self.dropped_spans += 1

    def get(self, trace_id: str) -> list[dict[str, Any]] | None:
        """Spans of a trace (hex id), oldest first, or None when not stored."""
        try:
            key = int(trace_id, 16)
        except ValueError:
            return None
        with self._lock:
            spans = list(self._traces.get(key, ()))
        if not spans:
            return None
        ordered = sorted(spans, key=lambda s: s.start_time or 0)
        return [span_to_dict(span, content=self.serve_content) for span in ordered]

    def summaries(
        self, limit: int = 100, *, errors_only: bool = False, min_duration_ms: float = 0.0
    ) -> list[dict[str, Any]]:
        """One line per stored trace, most recently active first: root span, duration, status, models.

        ``errors_only`` keeps traces with a span whose status is ERROR; ``min_duration_ms`` keeps
        traces at least that long (first span start to last span end).
        """
        with self._lock:
            traces = [(trace_id, list(spans)) for trace_id, spans in reversed(self._traces.items())]
        found: list[dict[str, Any]] = []
        for trace_id, spans in traces:
            if len(found) >= limit:
                break
            summary = _summary(trace_id, spans)
            if errors_only and not summary["error"]:
                continue
            if summary["duration_ms"] < min_duration_ms:
                continue
            found.append(summary)
        return found

    def trace_ids(self) -> list[str]:
        """Stored trace ids, newest last."""
        with self._lock:
            return [_hex_trace(t) for t in self._traces]

    def shutdown(self) -> None:
        self._active = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
