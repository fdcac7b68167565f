"""Every GenAI span on llmtel's TracerProvider becomes llmtel's own GenAI metrics.

Most LLM traffic does not pass through ``llmtel.llm_call``: the Anthropic SDK
traces its own calls, and contrib's, OpenLLMetry's and OpenLIT's
instrumentations emit GenAI spans. :class:`GenAISpanMetrics` is a span
processor that reads each finished GenAI span and records what it carries
into llmtel's instruments, through the same fast path, allowlists, buckets and
names as ``llm_call`` (so dashboards, rules and cost work unchanged):

- inference spans (``chat``, ``text_completion``, ``generate_content``,
  ``embeddings``) → ``gen_ai.client.operation.duration`` (the span's
  duration), ``gen_ai.client.token.usage``, ``time_to_first_chunk`` (from
  ``gen_ai.response.time_to_first_chunk``) and ``llmtel.gen_ai.client.cost``;
- ``execute_tool`` → ``llmtel.tool.duration``, ``invoke_agent`` →
  ``llmtel.agent.duration``, ``retrieval`` → ``llmtel.retrieval.duration``.

Each call is counted once (docs/genai-spans.md explains the rules):

- llmtel's own spans are skipped (``llm_call`` recorded them), and so is any
  inference span nested inside an ``llm_call`` span;
- of nested inference spans the innermost counts (the span closest to the
  wire: the provider SDK's own, which has the exact usage and time to first
  chunk); the spans around it are skipped. Nesting is known from span starts:
  a span that looks like an inference call when it starts opens a "call"
  that its descendants inherit;
- a source that duplicates another one without nesting (OpenLLMetry's
  Anthropic instrumentation starts its span beside the Anthropic SDK's own,
  not around it) is skipped once the source it duplicates has been seen.

Cost: most spans are no GenAI operation and leave after a few key tests. A
call span's metric attributes are cleaned once per distinct raw values (a
bounded memory of :class:`_CallSeries`) and its values go into one plan bundle
(``fastpath.Layout``, as ``llm_call``'s): one lookup and one buffer append per
span, folded later (benchmarks/spans.py, docs/performance.md).

Attribute dialects are normalised: the current GenAI conventions, the older
names still emitted (``gen_ai.system``, ``gen_ai.usage.prompt_tokens`` /
``completion_tokens``, ``llm.request.type``) and the sources' own keys
(``gen_ai.usage.cache_write.input_tokens`` of the Anthropic SDK). Values go
through llmtel's bad-input rules (``values.py``): nothing here raises into
the application, and every dropped value is counted in ``llmtel.sdk.problems``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.metrics.view import DropAggregation, View
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import NonRecordingSpan, SpanKind, StatusCode
from opentelemetry.util.types import Attributes

from llmtel import semconv
from llmtel._internal import errors as _errors
from llmtel._internal import fastpath as _fastpath
from llmtel._internal import state as _state
from llmtel._internal.bounded import remember
from llmtel._internal.dimensions import block_attributes
from llmtel._internal.values import MAX_VALUE, clean_count, clean_duration, clean_str

__all__ = [
    "DERIVED_INSTRUMENTS",
    "SAME_METRIC_SCOPES",
    "SUPERSEDED_SCOPES",
    "GenAISampler",
    "GenAISpanMetrics",
    "exclusive_views",
]

# --- dialects -----------------------------------------------------------------
OPERATION_KEYS: Final = (semconv.OPERATION_NAME, semconv.OPENLLMETRY_REQUEST_TYPE)
#: OpenLLMetry's older ``llm.request.type`` values → GenAI operation names.
LEGACY_OPERATIONS: Final = {"completion": "text_completion", "embedding": "embeddings"}
PROVIDER_KEYS: Final = (semconv.PROVIDER_NAME, semconv.LEGACY_SYSTEM)
#: Older ``gen_ai.system`` spellings → ``gen_ai.provider.name`` values of the conventions.
LEGACY_PROVIDERS: Final = {
    "Anthropic": "anthropic",
    "OpenAI": "openai",
    "AWS": "aws.bedrock",
    "Bedrock": "aws.bedrock",
    "Google": "gcp.gemini",
    "Gemini": "gcp.gemini",
    "VertexAI": "gcp.vertex_ai",
    "Mistral": "mistral_ai",
    "MistralAI": "mistral_ai",
    "Cohere": "cohere",
    "Groq": "groq",
}
INPUT_TOKEN_KEYS: Final = (semconv.USAGE_INPUT_TOKENS, semconv.LEGACY_USAGE_PROMPT_TOKENS)
OUTPUT_TOKEN_KEYS: Final = (semconv.USAGE_OUTPUT_TOKENS, semconv.LEGACY_USAGE_COMPLETION_TOKENS)
CACHE_READ_KEYS: Final = (semconv.USAGE_CACHE_READ_INPUT_TOKENS, semconv.OPENLLMETRY_USAGE_CACHE_READ_INPUT_TOKENS)
CACHE_CREATION_KEYS: Final = (
    semconv.USAGE_CACHE_CREATION_INPUT_TOKENS,
    semconv.ANTHROPIC_USAGE_CACHE_WRITE_INPUT_TOKENS,  # the Anthropic SDK's own spans
    semconv.OPENLLMETRY_USAGE_CACHE_CREATION_INPUT_TOKENS,
)
TTFC_KEY: Final = semconv.RESPONSE_TIME_TO_FIRST_CHUNK

CALL_OPERATIONS: Final = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
TOOL, AGENT, RETRIEVAL = "execute_tool", "invoke_agent", "retrieval"

#: The instruments this processor records; on llmtel's own MeterProvider these names are llmtel's alone.
DERIVED_INSTRUMENTS: Final = (
    semconv.CLIENT_OPERATION_DURATION,
    semconv.CLIENT_TOKEN_USAGE,
    semconv.CLIENT_TIME_TO_FIRST_CHUNK,
    semconv.CLIENT_TIME_PER_OUTPUT_CHUNK,
)

#: Instrumentation scopes (tracer = meter name) known to record ``DERIVED_INSTRUMENTS`` themselves.
#: On a MeterProvider llmtel builds, a View drops those instruments of every meter but llmtel's, so
#: their spans are derived. On the application's own MeterProvider (no View can be added) their
#: spans are skipped instead, and their own metrics stand for those calls.
SAME_METRIC_SCOPES: Final = frozenset(
    {
        "opentelemetry.instrumentation.openai_v2",
        "opentelemetry.util.genai.handler",  # openai-v2 2.4b0 and other util-genai based instrumentations
        "opentelemetry.instrumentation.google_genai",
        "opentelemetry.instrumentation.vertexai",
        "opentelemetry.instrumentation.openai_agents",
        "opentelemetry.instrumentation.anthropic",  # OpenLLMetry
        "opentelemetry.instrumentation.openai",  # OpenLLMetry
        "opentelemetry.instrumentation.bedrock",  # OpenLLMetry
        "opentelemetry.instrumentation.langchain",  # OpenLLMetry
    }
)

#: scope → the scope it duplicates call for call without nesting: skipped once that one is seen.
SUPERSEDED_SCOPES: Final = {"opentelemetry.instrumentation.anthropic": "com.anthropic.sdk.python"}

#: Open spans tracked for nesting; a leak guard for spans that never end.
MAX_OPEN_SPANS: Final = 100_000
#: Instrumentation scopes remembered for SUPERSEDED_SCOPES (a process has a handful).
MAX_SCOPES: Final = 1024

#: Call series remembered by their raw span values (oldest out first).
MAX_CALL_SERIES: Final = 4096

#: Keys of a GenAI span that lacks its operation (counted as a problem).
_LOOKS_GENAI: Final = frozenset((semconv.LEGACY_SYSTEM, *INPUT_TOKEN_KEYS, *OUTPUT_TOKEN_KEYS))
#: A span without any of these keys starts no call (on_start) / is no GenAI span (on_end).
_CALL_MARKERS: Final = frozenset(OPERATION_KEYS)
_GENAI_MARKERS: Final = _CALL_MARKERS | _LOOKS_GENAI
#: The span attributes a call's metric attributes come from (see _CallSeries).
_CALL_KEYS: Final = (
    semconv.PROVIDER_NAME,
    semconv.LEGACY_SYSTEM,
    semconv.REQUEST_MODEL,
    semconv.RESPONSE_MODEL,
    semconv.SERVER_ADDRESS,
    semconv.SERVER_PORT,
    semconv.ERROR_TYPE,
)
_PORT_INDEX: Final = _CALL_KEYS.index(semconv.SERVER_PORT)
#: The value keys of a call span, read in one pass (_record_call unpacks them in this order).
_VALUE_KEYS: Final = (*INPUT_TOKEN_KEYS, *OUTPUT_TOKEN_KEYS, TTFC_KEY, *CACHE_READ_KEYS, *CACHE_CREATION_KEYS)
_NO_ATTRIBUTES: Final[Mapping[str, Any]] = {}
_EMPTY_CONTEXT: Final = Context()
_SPAN_KEY: Final = _fastpath.SPAN_KEY
_PROBLEM_NO_OPERATION: Final = "genai span without operation"
_CLIENT: Final = SpanKind.CLIENT
#: Guards on_start and on_end (a try/except asking it: both run for every span of the process).
_DERIVING: Final = _errors.guarded("genai span metrics", shared=True)


def _attributes(span: Any) -> Mapping[str, Any]:
    """The span's attributes; the SDK's BoundedAttributes dict directly (a Python-level ``get`` costs µs)."""
    raw = getattr(span, "_attributes", None)
    if type(raw) is BoundedAttributes:
        return raw._dict
    if raw is None:
        return _NO_ATTRIBUTES
    return getattr(raw, "_dict", raw)  # type: ignore[no-any-return]


def _sdk_attributes(span: Any) -> dict[str, Any] | None:
    """An SDK span's own attribute dict, on which key tests cannot raise (None: another kind of span)."""
    if not isinstance(span, ReadableSpan):
        return None
    attributes = _attributes(span)
    return attributes if type(attributes) is dict else None


def operation_of(attributes: Mapping[str, Any]) -> str | None:
    """The GenAI operation a span reports, in any dialect (None: not a GenAI operation span)."""
    raw = attributes.get(semconv.OPERATION_NAME)  # OPERATION_KEYS in order, without a loop
    if raw is None:
        raw = attributes.get(semconv.OPENLLMETRY_REQUEST_TYPE)
        if raw is None:
            return None
    if not isinstance(raw, str):
        return clean_str(raw)  # counted as a problem when not a scalar
    return LEGACY_OPERATIONS.get(raw, raw)


def is_call_start(attributes: Attributes) -> bool:
    """Whether a span starting with ``attributes`` is a GenAI inference call."""
    if not attributes:
        return False
    return operation_of(attributes) in CALL_OPERATIONS


def _clean_tokens(raw: Any) -> int | None:
    """A token count as llmtel records it (None: absent or bad, and a bad one is counted)."""
    if raw is None:
        return None
    if isinstance(raw, str):  # some sources stringify numbers; still a bad value to llmtel
        _errors.report("invalid token count", detail=repr(raw)[:40])
        return None
    return clean_count(raw)


def _error_type(raw: Any, failed: bool) -> str | None:
    """``error.type`` from the span's attribute, else ``_OTHER`` for an error status."""
    if raw is not None:
        return clean_str(raw) or "_OTHER"
    return "_OTHER" if failed else None


class _CallSeries:
    """A call span's metric attributes, error type and price key, cleaned from its raw values.

    ``exact``: cleaning changed nothing (no problem was counted), so spans with the
    same raw values may share this object.
    """

    __slots__ = ("attributes", "error_type", "exact", "price_model", "provider")

    def __init__(self, operation: str, raw: tuple[Any, ...], failed: bool, dims: dict[str, str]) -> None:
        provider_name, system, model, response_model, address, port, error = raw
        provider = provider_name if provider_name is not None else system
        if isinstance(provider, str):
            provider = LEGACY_PROVIDERS.get(provider, provider)
        cleaned = {
            semconv.PROVIDER_NAME: (provider, clean_str(provider)),
            semconv.REQUEST_MODEL: (model, clean_str(model)),
            semconv.RESPONSE_MODEL: (response_model, clean_str(response_model)),
            semconv.SERVER_ADDRESS: (address, clean_str(address)),
        }
        attributes: dict[str, Any] = {semconv.OPERATION_NAME: operation, **dims}
        attributes.update((key, text) for key, (_, text) in cleaned.items() if text is not None)
        if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
            attributes[semconv.SERVER_PORT] = port
        self.attributes = attributes
        self.error_type = _error_type(error, failed)
        self.exact = (error is None or error == self.error_type) and all(
            given == text for given, text in cleaned.values()
        )
        self.provider = attributes.get(semconv.PROVIDER_NAME)
        self.price_model = attributes.get(semconv.RESPONSE_MODEL) or attributes.get(semconv.REQUEST_MODEL)


#: The series a call span records, in the order GenAISpanMetrics._record_call passes their values.
_SPAN_CALL_SLOTS: Final = ("duration", "ttfc", "tokens input", "tokens output", "cost input", "cost output")


def _span_layout(ins: Any) -> _fastpath.Layout:
    """The record-path layout of a call span (built once per instruments object); variant: ``(cost source,)``."""
    layout: _fastpath.Layout | None = ins.layouts.get("genai span")
    if layout is None:
        layout = ins.layouts.setdefault(
            "genai span",
            _fastpath.Layout(
                [ins.client_duration, ins.client_ttfc, ins.client_tokens, ins.client_tokens, ins.cost, ins.cost],
                _span_slot_attributes,
            ),
        )
    return layout


def _span_slot_attributes(
    slot: int, attributes: Mapping[str, Any], error_type: str | None, variant: tuple[Any, ...]
) -> dict[str, Any]:
    """Slot ``slot``'s attributes, as ``llm_call`` records the same series."""
    name = _SPAN_CALL_SLOTS[slot]
    if name in ("duration", "ttfc"):
        return {**attributes, semconv.ERROR_TYPE: error_type} if error_type is not None else dict(attributes)
    kind, token_type = name.split()
    if kind == "tokens":
        return {**attributes, semconv.TOKEN_TYPE: token_type}
    return {**attributes, semconv.TOKEN_TYPE: token_type, semconv.COST_SOURCE: variant[0]}


class _Call:
    """An inference call span of another instrumentation that is open; its descendants inherit it."""

    __slots__ = ("counted_inside", "outer", "span_id")

    def __init__(self, span_id: int, outer: _Call | None) -> None:
        self.span_id = span_id
        self.outer = outer
        self.counted_inside = False

    def inside_llmtel(self) -> bool:
        """Whether this call is, or runs inside, an open client-role ``llm_call`` (:data:`_LLMTEL_CALL`)."""
        call: _Call | None = self
        while call is not None:
            if call is _LLMTEL_CALL:
                return True
            call = call.outer
        return False

    def mark_counted(self) -> None:
        """A call inside this one was counted: this one and every call around it are not counted."""
        call: _Call | None = self
        while call is not None and not call.counted_inside:
            call.counted_inside = True
            call = call.outer


#: Every open client-role llm_call, and the spans inside it: what ends inside is llmtel's to record
#: (``inside_llmtel``), and nothing reads or marks more of it (a counted call is never inside llmtel).
_LLMTEL_CALL: Final = _Call(0, None)


class GenAISpanMetrics(SpanProcessor):
    """Derives llmtel's GenAI metrics from the GenAI spans of other instrumentations (see the module doc).

    ``skip_scopes``: instrumentation scopes whose spans are not derived (their own metrics
    stand for those calls). Records into whatever llmtel is configured on at the span's end.
    """

    def __init__(self, skip_scopes: frozenset[str] = frozenset()) -> None:
        self._skip_scopes = skip_scopes
        self._open: dict[int, _Call] = {}
        self._seen_scopes: set[str] = set()
        # Span ids of open local spans with a counted call inside: found at span ends, so a call
        # span that only says it is one at its end is still known to enclose a counted call.
        self._counted_under: dict[int, bool] = {}
        # Call series by raw span values (_call_series), at most MAX_CALL_SERIES, oldest out first.
        self._calls: dict[Any, _CallSeries] = {}
        self._lock = threading.Lock()
        self._active = True

    # -- nesting ----------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            # Most spans are neither a GenAI operation nor inside an open call: they leave here, on
            # key tests of the SDK's own attribute dict.
            attributes = _sdk_attributes(span)
            if attributes is not None and not self._open and _CALL_MARKERS.isdisjoint(attributes):
                return
            self._start(span, attributes)
        except Exception as exc:
            if not _DERIVING.swallowed(exc):
                raise

    def _start(self, span: Span, attributes: Mapping[str, Any] | None) -> None:
        if not self._active:
            return
        open_calls = self._open
        if attributes is None:
            attributes = _attributes(span)
        starts_call = bool(attributes) and operation_of(attributes) in CALL_OPERATIONS
        if not starts_call and not open_calls:
            return
        llmtel = False
        if starts_call:
            scope = span.instrumentation_scope
            llmtel = scope is not None and scope.name == _state.SCOPE
        span_id = span.context.span_id
        call: _Call | None
        # llmtel's client-role llm_call records the gen_ai.client.* of what runs inside it; its
        # retrieval (also CLIENT), tool, agent and server-role spans do not.
        if llmtel and span.kind is _CLIENT:
            call = _LLMTEL_CALL  # whatever encloses it, what runs inside is llmtel's: no parent to look up
        else:
            parent = span.parent
            enclosing = open_calls.get(parent.span_id) if parent is not None and open_calls else None
            call = _Call(span_id, enclosing) if starts_call and not llmtel else enclosing
        if call is None:
            return
        # No lock: one dict write is atomic, and a clear racing with it only forgets nesting, as it means to.
        if len(open_calls) >= MAX_OPEN_SPANS:
            open_calls.clear()  # spans that never ended: nesting is forgotten rather than memory grown
        open_calls[span_id] = call

    def inside_call(self, parent_span_id: int) -> bool:
        """Whether ``parent_span_id`` is a span inside an open inference call (the sampler asks)."""
        return parent_span_id in self._open

    # -- deriving ---------------------------------------------------------------
    def on_end(self, span: ReadableSpan) -> None:
        try:
            if not self._open and not self._counted_under:  # as in on_start: the common span leaves here
                attributes = _sdk_attributes(span)
                if attributes is not None and _GENAI_MARKERS.isdisjoint(attributes):
                    return
            self._end(span)
        except Exception as exc:
            if not _DERIVING.swallowed(exc):
                raise

    def _end(self, span: ReadableSpan) -> None:
        if not self._active:
            return
        if self._open or self._counted_under:  # nesting to follow (empty: nothing to look up)
            context = span.context
            if context is None:
                return
            call = self._open.pop(context.span_id, None)
            inner_counted = self._counted_under.pop(context.span_id, False)
        else:
            call, inner_counted = None, False
        scope = span.instrumentation_scope
        scope_name = scope.name if scope is not None else ""
        if scope_name == _state.SCOPE:
            return  # llmtel's own span: llm_call (or its tool, agent, retrieval) recorded it
        attributes = _attributes(span)
        operation = operation_of(attributes) if attributes else None
        if operation is None and not inner_counted and _LOOKS_GENAI.isdisjoint(attributes):
            return  # a span that is no GenAI operation and holds no counted call
        if operation is None:
            if not _LOOKS_GENAI.isdisjoint(attributes):
                _errors.report(_PROBLEM_NO_OPERATION, detail=scope_name[:60])
            if inner_counted:
                self._mark_parent(span)
            return
        self._derive(span, attributes, operation, call, scope_name, inner_counted)

    def _mark_parent(self, span: ReadableSpan) -> None:
        """A call inside ``span`` was counted: tell its (local) parent when that ends."""
        parent = span.parent
        if parent is not None and not parent.is_remote:
            with self._lock:
                if len(self._counted_under) >= MAX_OPEN_SPANS:
                    self._counted_under.clear()  # parents that never end: forget rather than grow
                self._counted_under[parent.span_id] = True

    def _derive(
        self,
        span: ReadableSpan,
        attributes: Mapping[str, Any],
        operation: str,
        call: _Call | None,
        scope: str,
        inner_counted: bool,
    ) -> None:
        if scope in self._skip_scopes:
            return
        ctx = span.context
        if inner_counted:
            self._mark_parent(span)
        if operation in CALL_OPERATIONS:
            own = call if call is not None and ctx is not None and call.span_id == ctx.span_id else None
            if inner_counted or (own is not None and own.counted_inside):
                return  # a call span inside this one was counted: the innermost counts
            if call is not None and call.inside_llmtel():
                return  # llmtel's llm_call recorded this call
            superseded = SUPERSEDED_SCOPES.get(scope)
            if superseded is not None and superseded in self._seen_scopes:
                return
            if scope not in self._seen_scopes and len(self._seen_scopes) < MAX_SCOPES:
                with self._lock:
                    self._seen_scopes.add(scope)
            enclosing = own.outer if own is not None else call
            if enclosing is not None:
                enclosing.mark_counted()
            self._mark_parent(span)
        elif operation not in (TOOL, AGENT, RETRIEVAL):
            return  # workflows, tasks, create_agent...: no llmtel metric
        handles = _state.current()
        if not handles.enabled:
            return
        start, end = span.start_time, span.end_time
        duration = None
        if start is not None and end is not None:
            duration = (end - start) / 1e9
            if not 0 <= duration <= MAX_VALUE:  # an end before the start, or a junk time
                duration = clean_duration(duration)
        failed = span.status.status_code is StatusCode.ERROR
        # Exemplars link to this span (sampled spans only), never to whatever span is current at its end.
        sampled = ctx is not None and ctx.trace_flags.sampled
        exemplar_context = Context({_SPAN_KEY: NonRecordingSpan(ctx)}) if sampled else _EMPTY_CONTEXT
        # The opted-in metric_attributes: from the span, else the llmtel.attributes() block it ended in.
        dims: dict[str, str] = {}
        if handles.dimensions:
            block = block_attributes()
            dims = handles.dimensions.resolve({**block, **attributes} if block else attributes)
        if operation in CALL_OPERATIONS:
            self._record_call(handles, attributes, operation, duration, failed, exemplar_context, dims)
        else:
            error_type = _error_type(attributes.get(semconv.ERROR_TYPE), failed)
            self._record_other(handles, attributes, operation, duration, error_type, exemplar_context, dims)

    def _record_call(
        self,
        handles: _state.Handles,
        span_attributes: Mapping[str, Any],
        operation: str,
        duration: float | None,
        failed: bool,
        context: Context,
        dims: dict[str, str],
    ) -> None:
        series, key = self._call_series(span_attributes, operation, failed, dims)
        # Every value key in one pass (in _VALUE_KEYS order); each dialect's first present key wins.
        new_in, old_in, new_out, old_out, ttfc, read, read_old, creation, written, creation_old = map(
            span_attributes.get, _VALUE_KEYS
        )
        if ttfc is not None and not (type(ttfc) is float and 0 <= ttfc <= MAX_VALUE):  # else: a clean float
            ttfc = clean_duration(ttfc)
        raw = new_in if new_in is not None else old_in
        input_tokens = raw if type(raw) is int and 0 <= raw <= MAX_VALUE else _clean_tokens(raw)
        raw = new_out if new_out is not None else old_out
        output_tokens = raw if type(raw) is int and 0 <= raw <= MAX_VALUE else _clean_tokens(raw)
        cost_in = cost_out = source = None
        if input_tokens or output_tokens:
            cache_read = read if read is not None else read_old
            cache_creation = creation if creation is not None else written if written is not None else creation_old
            priced = handles.prices.split_cost(
                series.price_model,
                series.provider,
                input_tokens or 0,
                output_tokens or 0,
                _clean_tokens(cache_read) or 0,
                _clean_tokens(cache_creation) or 0,
            )
            if priced is not None:  # as llm_call records it: split by token type, with the prices' source
                input_usd, output_usd, source = priced
                cost_in = input_usd if input_tokens is not None else None
                cost_out = output_usd if output_tokens is not None else None
        _span_layout(handles.instruments).record(
            series.attributes,
            series.error_type,
            (source,),
            (duration, ttfc, input_tokens, output_tokens, cost_in, cost_out),
            context,
            key=None if key is None else (series, source),
        )

    def _call_series(
        self, span_attributes: Mapping[str, Any], operation: str, failed: bool, dims: dict[str, str]
    ) -> tuple[_CallSeries, Any]:
        """The metric attributes of a call span, and its cache key (None: not cached).

        Spans of one kind of call repeat the same few values: they are cleaned once
        and remembered by their raw values. Values that cleaning changes (and counts
        as a problem) are cleaned, and counted, every time.
        """
        raw = tuple(map(span_attributes.get, _CALL_KEYS))
        key: Any = None
        port = raw[_PORT_INDEX]
        # Cached series hold str values and an int port; only a port can equal another type (1 == 1.0 == True).
        if port is None or type(port) is int:
            key = (operation, failed, raw, tuple(dims.items()) if dims else ())
            try:
                series = self._calls.get(key)
            except TypeError:  # an unhashable value (not from an SDK span): not cached
                key, series = None, None
            if series is not None:
                return series, key
        series = _CallSeries(operation, raw, failed, dims)
        if key is None or not series.exact:
            return series, None
        remember(self._calls, key, series, MAX_CALL_SERIES)
        return series, key

    @staticmethod
    def _record_other(
        handles: _state.Handles,
        span_attributes: Mapping[str, Any],
        operation: str,
        duration: float | None,
        error_type: str | None,
        context: Context,
        dims: dict[str, str],
    ) -> None:
        if duration is None:
            return
        ins = handles.instruments
        if operation == TOOL:
            instrument, key = ins.tool_duration, semconv.TOOL_NAME
        elif operation == AGENT:
            instrument, key = ins.agent_duration, semconv.AGENT_NAME
        else:
            instrument, key = ins.retrieval_duration, semconv.DATA_SOURCE_ID
        attrs: dict[str, Any] = dict(dims)
        name = clean_str(span_attributes.get(key))
        if name is not None:
            attrs[key] = name
        if error_type is not None:
            attrs[semconv.ERROR_TYPE] = error_type
        _fastpath.record(instrument, duration, attrs, context)

    def shutdown(self) -> None:
        """Stop deriving (a provider llmtel joined keeps its processors after ``llmtel.shutdown()``)."""
        self._active = False
        with self._lock:
            self._open.clear()
            self._counted_under.clear()
            self._calls.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class GenAISampler(Sampler):
    """Wraps a sampler so that sampling never thins GenAI metrics.

    A span the wrapped sampler drops is kept as ``RECORD_ONLY`` (recorded, so
    span processors see it end; not sampled, so it is neither exported nor
    stored in the trace store, and gives no exemplar) when it starts as a GenAI
    operation or inside an open inference call. Every other decision is the
    wrapped sampler's.
    """

    def __init__(self, inner: Sampler, processor: GenAISpanMetrics) -> None:
        self.inner = inner
        self._processor = processor

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        result = self.inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        if result.decision is not Decision.DROP:
            return result
        keep = False
        with _errors.guarded("genai sampler"):
            keep = (attributes is not None and operation_of(attributes) is not None) or self._parent_inside_call(
                parent_context
            )
        if keep:
            return SamplingResult(Decision.RECORD_ONLY, attributes, result.trace_state)
        return result

    def _parent_inside_call(self, parent_context: Context | None) -> bool:
        from opentelemetry.trace import get_current_span

        parent = get_current_span(parent_context).get_span_context()
        return parent.is_valid and self._processor.inside_call(parent.span_id)

    def get_description(self) -> str:
        return f"LlmtelGenAI{{{self.inner.get_description()}}}"


def exclusive_views(views: list[View]) -> list[View]:
    """Views making ``DERIVED_INSTRUMENTS`` llmtel's alone on a MeterProvider llmtel builds.

    A Drop view per name matches that instrument of every meter; llmtel's own
    instrument also matches a view of its own (added here unless ``views``
    has one), and an instrument matched by two views is recorded by each: so
    llmtel's is kept once, every other meter's (openai-v2, OpenLLMetry, the
    google-genai instrumentation...) dropped, and the calls they traced are
    derived from their spans instead.
    """
    extra: list[View] = []
    for name in DERIVED_INSTRUMENTS:
        if not any(v._instrument_name == name and v._meter_name == _state.SCOPE for v in views):
            extra.append(View(instrument_name=name, meter_name=_state.SCOPE))
        extra.append(View(instrument_name=name, aggregation=DropAggregation()))
    return extra
