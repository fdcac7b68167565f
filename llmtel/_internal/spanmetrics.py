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

from opentelemetry.context import Context
from opentelemetry.sdk.metrics.view import DropAggregation, View
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import NonRecordingSpan, SpanKind, StatusCode, set_span_in_context
from opentelemetry.util.types import Attributes

from llmtel import semconv
from llmtel._internal import errors as _errors
from llmtel._internal import fastpath as _fastpath
from llmtel._internal import state as _state
from llmtel._internal.dimensions import block_attributes
from llmtel._internal.values import clean_count, clean_duration, clean_str

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

_NO_ATTRIBUTES: Final[Mapping[str, Any]] = {}
_EMPTY_CONTEXT: Final = Context()
_PROBLEM_NO_OPERATION: Final = "genai span without operation"


def _attributes(span: Any) -> Mapping[str, Any]:
    """The span's attributes; the SDK's BoundedAttributes dict directly (a Python-level ``get`` costs µs)."""
    raw = getattr(span, "_attributes", None)
    if raw is None:
        return _NO_ATTRIBUTES
    return getattr(raw, "_dict", raw)  # type: ignore[no-any-return]


def _first(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            return value
    return None


def operation_of(attributes: Mapping[str, Any]) -> str | None:
    """The GenAI operation a span reports, in any dialect (None: not a GenAI operation span)."""
    raw = _first(attributes, OPERATION_KEYS)
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


def _provider(attributes: Mapping[str, Any]) -> str | None:
    raw = _first(attributes, PROVIDER_KEYS)
    if isinstance(raw, str):
        raw = LEGACY_PROVIDERS.get(raw, raw)
    return clean_str(raw)


def _count(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    raw = _first(attributes, keys)
    if isinstance(raw, str):  # some sources stringify numbers; still a bad value to llmtel
        _errors.report("invalid token count", detail=repr(raw)[:40])
        return None
    return clean_count(raw)


class _Call:
    """An inference call span that is open; its descendants inherit it."""

    __slots__ = ("counted_inside", "llmtel", "outer", "span_id")

    def __init__(self, span_id: int, outer: _Call | None, llmtel: bool) -> None:
        self.span_id = span_id
        self.outer = outer
        self.llmtel = llmtel
        self.counted_inside = False

    def inside_llmtel(self) -> bool:
        call: _Call | None = self
        while call is not None:
            if call.llmtel:
                return True
            call = call.outer
        return False

    def mark_counted(self) -> None:
        """A call inside this one was counted: this one and every call around it are not counted."""
        call: _Call | None = self
        while call is not None and not call.counted_inside:
            call.counted_inside = True
            call = call.outer


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
        self._lock = threading.Lock()
        self._active = True

    # -- nesting ----------------------------------------------------------------
    @_errors.guard("genai span metrics")
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not self._active:
            return
        parent = span.parent
        open_calls = self._open
        enclosing = open_calls.get(parent.span_id) if parent is not None and open_calls else None
        scope = span.instrumentation_scope
        llmtel = scope is not None and scope.name == _state.SCOPE
        # llmtel's client-role llm_call records the gen_ai.client.* of what runs inside it; its
        # retrieval (also CLIENT), tool, agent and server-role spans do not.
        if operation_of(_attributes(span)) in CALL_OPERATIONS and (not llmtel or span.kind is SpanKind.CLIENT):
            call = _Call(span.context.span_id, enclosing, llmtel)
        elif enclosing is not None:
            call = enclosing
        else:
            return
        with self._lock:
            if len(open_calls) >= MAX_OPEN_SPANS:
                open_calls.clear()  # spans that never ended: nesting is forgotten rather than memory grown
            open_calls[span.context.span_id] = call

    def inside_call(self, parent_span_id: int) -> bool:
        """Whether ``parent_span_id`` is a span inside an open inference call (the sampler asks)."""
        return parent_span_id in self._open

    # -- deriving ---------------------------------------------------------------
    @_errors.guard("genai span metrics")
    def on_end(self, span: ReadableSpan) -> None:
        if not self._active:
            return
        context = span.context
        if context is None:
            return
        span_id = context.span_id
        call = self._open.pop(span_id, None) if self._open else None
        inner_counted = self._counted_under.pop(span_id, False) if self._counted_under else False
        scope = span.instrumentation_scope
        scope_name = scope.name if scope is not None else ""
        if scope_name == _state.SCOPE:
            return
        attributes = _attributes(span)
        operation = operation_of(attributes)
        if operation is None:
            if attributes and (
                semconv.LEGACY_SYSTEM in attributes or _first(attributes, INPUT_TOKEN_KEYS + OUTPUT_TOKEN_KEYS)
            ):
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
        if inner_counted:
            self._mark_parent(span)
        if operation in CALL_OPERATIONS:
            own = call if call is not None and call.span_id == span.context.span_id else None
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
        duration = clean_duration((end - start) / 1e9) if start is not None and end is not None else None
        error_type = attributes.get(semconv.ERROR_TYPE)
        if error_type is not None:
            error_type = clean_str(error_type) or "_OTHER"
        elif span.status.status_code is StatusCode.ERROR:
            error_type = "_OTHER"
        ctx = span.context
        # Exemplars link to this span (sampled spans only), never to whatever span is current at its end.
        exemplar_context = (
            set_span_in_context(NonRecordingSpan(ctx), _EMPTY_CONTEXT)
            if ctx is not None and ctx.trace_flags.sampled
            else _EMPTY_CONTEXT
        )
        # The opted-in metric_attributes: from the span, else the llmtel.attributes() block it ended in.
        dims: dict[str, str] = {}
        if handles.dimensions:
            block = block_attributes()
            dims = handles.dimensions.resolve({**block, **attributes} if block else attributes)
        if operation in CALL_OPERATIONS:
            self._record_call(handles, attributes, operation, duration, error_type, exemplar_context, dims)
        else:
            self._record_other(handles, attributes, operation, duration, error_type, exemplar_context, dims)

    @staticmethod
    def _record_call(
        handles: _state.Handles,
        span_attributes: Mapping[str, Any],
        operation: str,
        duration: float | None,
        error_type: str | None,
        context: Context,
        dims: dict[str, str],
    ) -> None:
        ins = handles.instruments
        record = _fastpath.record
        attrs: dict[str, Any] = {semconv.OPERATION_NAME: operation, **dims}
        provider = _provider(span_attributes)
        if provider is not None:
            attrs[semconv.PROVIDER_NAME] = provider
        model = clean_str(span_attributes.get(semconv.REQUEST_MODEL))
        if model is not None:
            attrs[semconv.REQUEST_MODEL] = model
        response_model = clean_str(span_attributes.get(semconv.RESPONSE_MODEL))
        if response_model is not None:
            attrs[semconv.RESPONSE_MODEL] = response_model
        address = clean_str(span_attributes.get(semconv.SERVER_ADDRESS))
        if address is not None:
            attrs[semconv.SERVER_ADDRESS] = address
        port = span_attributes.get(semconv.SERVER_PORT)
        if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
            attrs[semconv.SERVER_PORT] = port
        err_attrs = attrs if error_type is None else {**attrs, semconv.ERROR_TYPE: error_type}
        if duration is not None:
            record(ins.client_duration, duration, err_attrs, context)
        ttfc_raw = span_attributes.get(TTFC_KEY)
        if ttfc_raw is not None:
            ttfc = clean_duration(ttfc_raw)
            if ttfc is not None:
                record(ins.client_ttfc, ttfc, err_attrs, context)
        input_tokens = _count(span_attributes, INPUT_TOKEN_KEYS)
        output_tokens = _count(span_attributes, OUTPUT_TOKEN_KEYS)
        if input_tokens is not None:
            record(ins.client_tokens, input_tokens, {**attrs, semconv.TOKEN_TYPE: "input"}, context)
        if output_tokens is not None:
            record(ins.client_tokens, output_tokens, {**attrs, semconv.TOKEN_TYPE: "output"}, context)
        if input_tokens or output_tokens:
            priced = handles.prices.split_cost(
                response_model or model,
                provider,
                input_tokens or 0,
                output_tokens or 0,
                _count(span_attributes, CACHE_READ_KEYS) or 0,
                _count(span_attributes, CACHE_CREATION_KEYS) or 0,
            )
            if priced is not None:  # as llm_call records it: split by token type, with the prices' source
                input_usd, output_usd, source = priced
                if input_tokens is not None:
                    cost_attrs = {**attrs, semconv.TOKEN_TYPE: "input", semconv.COST_SOURCE: source}
                    _fastpath.add(ins.cost, input_usd, cost_attrs, context)
                if output_tokens is not None:
                    cost_attrs = {**attrs, semconv.TOKEN_TYPE: "output", semconv.COST_SOURCE: source}
                    _fastpath.add(ins.cost, output_usd, cost_attrs, context)

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
