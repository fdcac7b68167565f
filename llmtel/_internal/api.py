"""The recording API: one handler for LLM calls, tools, retrieval and agents.

Each invocation object starts a span, makes it the current span for the block
(so the application's own spans and logs nest under it), gathers timings while
the block runs, and records every metric at the end — while its span is still
current, so histogram samples carry the span's trace and span id as exemplars.
One class serves ``with`` and ``async with``; streams are wrapped by
``wrap_stream`` for sync and async iterables alike.

Nothing here raises into the caller: failures are counted by ``llmtel._internal.errors``.
"""

from __future__ import annotations

import functools
import inspect
import operator
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import Token
from time import perf_counter
from types import TracebackType
from typing import Any, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from typing_extensions import Self

from llmtel import semconv
from llmtel._internal import errors as _errors
from llmtel._internal import fastpath as _fastpath
from llmtel._internal import spanattributes as _spanattributes
from llmtel._internal import state as _state
from llmtel._internal import values as _values
from llmtel._internal.dimensions import block_attributes
from llmtel._internal.instruments import Instruments
from llmtel._internal.pricing import SOURCE_REPORTED
from llmtel._internal.values import (
    clean_attributes,
    clean_count,
    clean_flag,
    clean_port,
    clean_positive_int,
    clean_str,
)

__all__ = ["AgentInvocation", "LLMCall", "Retrieval", "ToolInvocation", "agent", "llm_call", "retrieval", "tool"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


# The record path's guarded blocks: made once, entered by every call (see errors.guarded's shared).
_RESOLVE_ATTRIBUTES = _errors.guarded("resolve attributes", shared=True)
_START_SPAN = _errors.guarded("start span", shared=True)
_RECORD_METRICS = _errors.guarded("record metrics", shared=True)
_END_SPAN = _errors.guarded("end span", shared=True)
_CONTEXT_DETACH = _errors.guarded("context detach", shared=True)
_RECORD_ACTIVE = _errors.guarded("record active requests", shared=True)


def _error_type(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


class _Operation:
    """Span + duration lifecycle shared by every invocation kind."""

    _span_kind = SpanKind.INTERNAL

    def __init__(self, attributes: Mapping[str, Any] | None = None) -> None:
        self._handles = _state.current()
        #: Keyword attributes as given (a decorator's fresh operations start from these).
        self._given: Mapping[str, Any] = attributes or {}
        #: The given attributes over those of the enclosing ``llmtel.attributes()`` block (set at start).
        self._extra: Mapping[str, Any] = self._given
        #: Values of the opted-in ``metric_attributes`` keys, added to every metric point.
        self._dims: dict[str, str] = {}
        self._span: trace.Span | None = None
        self._token: Token[Context] | None = None
        self._start = 0.0
        self._ended = False
        self.error_type: str | None = None

    # -- subclass hooks -------------------------------------------------
    def _span_name(self) -> str:
        raise NotImplementedError

    def _span_attributes(self) -> dict[str, Any]:
        return {}

    def _record(self, duration: float, context: Context | None) -> None:
        """Record the metrics; ``context`` (None: the current one) decides the samples' exemplars."""
        raise NotImplementedError

    def _final_span_attributes(self) -> dict[str, Any]:
        return {}

    # -- lifecycle --------------------------------------------------------
    @property
    def span(self) -> trace.Span:
        """This invocation's span (a non-recording span before the block starts)."""
        return self._span if self._span is not None else trace.INVALID_SPAN

    def _extra_span_attributes(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """``attrs`` plus the keyword and block attributes (cleaned; spans take them all, unfolded)."""
        attrs.update(clean_attributes(self._extra))
        return attrs

    # The per-call blocks below are guarded by try/except asking the module's shared blocks
    # (errors.guarded.swallowed), not by ``with``: its two Python calls cost more than some blocks.
    def _begin(self, attach: bool = True) -> Context:
        """Start the span (made current if ``attach``); the context the operation runs in."""
        # The current context, read once for the block's attributes, the span's parent (and its
        # sampler's) and the span's own context: each would read it again (two Python calls each).
        context = otel_context.get_current()
        try:
            block = block_attributes(context)
            if block:
                self._extra = {**block, **self._given} if self._given else block
            dimensions = self._handles.dimensions
            if dimensions:
                self._dims = dimensions.resolve(self._extra)
        except Exception as exc:
            if not _RESOLVE_ATTRIBUTES.swallowed(exc):
                raise
        try:
            if self._handles.enabled:
                span = self._handles.tracer.start_span(
                    self._span_name(), context, kind=self._span_kind, attributes=self._span_attributes()
                )
                self._span = span
                if attach:
                    context = trace.set_span_in_context(span, context)
                    self._token = otel_context.attach(context)
        except Exception as exc:
            if not _START_SPAN.swallowed(exc):
                raise
        self._start = perf_counter()
        return context

    def _end(self, exc: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        duration = perf_counter() - self._start
        if exc is not None and self.error_type is None:
            self.error_type = _error_type(exc)
        if self._handles.enabled:
            try:
                # A call started detached (start(attach=False)) and stopped outside activated() still
                # records in a context where its span is current, so its samples carry the span's
                # exemplar (given to the record path: no attach and detach).
                own = self._span if self._token is None else None
                self._record(duration, trace.set_span_in_context(own) if own is not None else None)
            except Exception as error:
                if not _RECORD_METRICS.swallowed(error):
                    raise
        span = self._span
        if span is not None:
            try:
                extra = self._final_span_attributes()
                if self.error_type is not None:
                    extra[semconv.ERROR_TYPE] = self.error_type
                if extra:  # llmtel's cleaned values: not cleaned a second time on an SDK span
                    _spanattributes.set_cleaned(span, extra)
                if exc is not None:
                    self._record_exception(span, exc)
                elif self.error_type is not None:
                    span.set_status(Status(StatusCode.ERROR, self.error_type))
                span.end()
            except Exception as error:
                if not _END_SPAN.swallowed(error):
                    raise
        if self._token is not None:
            attached, self._token = self._token, None
            try:
                otel_context.detach(attached)
            except Exception as error:
                if not _CONTEXT_DETACH.swallowed(error):
                    raise

    def _record_exception(self, span: trace.Span, exc: BaseException) -> None:
        """The ``exception`` event and error status; the message and stack trace only with content capture on.

        (Exception text may hold prompt content or keys: docs/bad-input.md.)
        """
        attributes = {"exception.type": self.error_type or _error_type(exc)}
        description = attributes["exception.type"]
        if self._handles.capture_content.on_span:
            message = _values.exception_message(exc)
            attributes["exception.message"] = message
            attributes["exception.stacktrace"] = _values.exception_stacktrace(exc)
            description = message[:256] or description
        span.add_event("exception", attributes)
        span.set_status(Status(StatusCode.ERROR, description))

    def _with_error(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """``attributes`` plus the opted-in dimensions, and ``error.type`` when the operation failed."""
        if self._dims:
            attributes.update(self._dims)
        if self.error_type is not None:
            attributes[semconv.ERROR_TYPE] = self.error_type
        return attributes

    def set_error(self, error_type: str) -> None:
        """Mark the operation failed without an exception (e.g. a refusal)."""
        self.error_type = clean_str(error_type) or "_OTHER"

    # -- explicit lifecycle (what instrumentations call; ``with`` uses the same) ----------
    def start(self, *, attach: bool = True) -> Self:
        """Start the span and the clock; with ``attach`` (the default) make the span current.

        Instrumentations whose call outlives the caller's frame (a stream returned to
        the application) start with ``attach=False`` and make the span current only
        around their own work with :meth:`activated`, so it never leaks into the
        caller's context.
        """
        self._begin(attach)
        return self

    def stop(self) -> None:
        """Finish successfully: record the metrics, end the span. Only the first finish counts."""
        self._end(None)

    def fail(self, exc: BaseException) -> None:
        """Finish with ``exc``: ``error.type``, an exception event and error status. Only the first finish counts."""
        self._end(exc)

    @contextmanager
    def activated(self) -> Iterator[Self]:
        """Make this call's span the current span for a block (for calls started with ``attach=False``)."""
        span = self._span
        if span is None:  # llmtel is off: keep the caller's own parent current
            yield self
            return
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield self
        finally:
            otel_context.detach(token)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._end(exc)

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._end(exc)


# The series an llm_call records, in the order LLMCall._record passes their values.
_CLIENT_SLOTS = (
    "active",
    "duration",
    "ttfc",
    "tpoc",
    "tokens input",
    "tokens output",
    "cost input",
    "cost output",
    "cost",
)
_SERVER_SLOTS = ("active", "duration", "ttft", "tpot", "tokens input", "tokens output")


def _layout(ins: Instruments, role: str) -> _fastpath.Layout:
    """The record-path layout of an ``llm_call`` of ``role`` (built once per instruments object).

    Its variant is ``(cost source, late attributes, active-requests attributes)``; :func:`_slot_attributes`
    gives each slot's attributes from the call's attributes, error type and variant.
    """
    layouts = ins.layouts
    if role not in layouts:
        client = [ins.active, ins.client_duration, ins.client_ttfc, ins.client_tpoc, ins.client_tokens,
                  ins.client_tokens, ins.cost, ins.cost, ins.cost]  # fmt: skip
        server = [ins.active, ins.server_duration, ins.server_ttft, ins.server_tpot, ins.client_tokens,
                  ins.client_tokens]  # fmt: skip
        for name, instruments, slots in (("client", client, _CLIENT_SLOTS), ("server", server, _SERVER_SLOTS)):
            layouts[name] = _fastpath.Layout(
                instruments, functools.partial(_slot_attributes, ins, name == "client", slots)
            )
        # The +1 at a call's start: one slot, the series the -1 in the call's bundle goes to.
        layouts["active"] = _fastpath.Layout([ins.active], _active_attributes)
    layout: _fastpath.Layout = layouts[role]
    return layout


def _active_attributes(
    slot: int, attrs: Mapping[str, Any], error_type: str | None, variant: tuple[Any, ...]
) -> dict[str, Any]:
    return dict(attrs)


def _slot_attributes(
    ins: Instruments,
    client: bool,
    slots: tuple[str, ...],
    slot: int,
    attrs: Mapping[str, Any],
    error_type: str | None,
    variant: tuple[Any, ...],
) -> dict[str, Any]:
    """The attributes of slot ``slot`` of a call (computed once per distinct call, when its plans are made)."""
    name = slots[slot]
    source, late, active = variant
    if name == "active":  # the -1 of the +1 that _begin recorded, on the same series
        return dict(active)
    err_attrs = {**attrs, semconv.ERROR_TYPE: error_type} if error_type is not None else dict(attrs)
    if name == "duration":  # late attributes: only the keys each instrument's allowlist names
        instrument = semconv.CLIENT_OPERATION_DURATION if client else semconv.SERVER_REQUEST_DURATION
        return {**err_attrs, **ins.allowed(instrument, late)} if late else err_attrs
    if name in ("ttfc", "tpoc"):
        return err_attrs
    if name.startswith("tokens"):
        tokens = {**attrs, **ins.allowed(semconv.CLIENT_TOKEN_USAGE, late)} if late else dict(attrs)
        return {**tokens, semconv.TOKEN_TYPE: name.split()[1]}
    if name.startswith("cost "):
        return {**attrs, semconv.TOKEN_TYPE: name.split()[1], semconv.COST_SOURCE: source}
    if name == "cost":
        return {**attrs, semconv.COST_SOURCE: SOURCE_REPORTED}
    return dict(attrs)  # server ttft / tpot: successful calls only, no error.type


class LLMCall(_Operation):
    """One inference call. Use through :func:`llm_call`."""

    _span_kind = SpanKind.CLIENT

    def __init__(
        self,
        *,
        provider: Any,
        model: Any,
        operation: Any = "chat",
        stream: bool = False,
        role: str = "client",
        server_address: Any = None,
        server_port: Any = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(attributes)
        if not isinstance(role, str) or role not in ("client", "server"):
            _errors.report("invalid role", detail=_errors.describe(role))
            role = "client"
        self.role = role
        if role == "server":
            # Nested under the transport's SERVER span (HTTP/gRPC instrumentation) of the same request.
            self._span_kind = SpanKind.INTERNAL
        self.stream = clean_flag(stream, "invalid stream flag")
        self.operation = clean_str(operation) or "chat"
        self.provider = clean_str(provider)
        self.model = clean_str(model)
        self.response_model: str | None = None
        self.finish_reasons: tuple[str, ...] = ()
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cache_read_input_tokens: int | None = None
        self.cache_creation_input_tokens: int | None = None
        self.reasoning_output_tokens: int | None = None
        self.response_id: str | None = None
        #: Reported cost in USD (:meth:`set_cost`); None: priced from the price table, if known.
        self.cost: float | None = None
        self.priced_cost: float | None = None
        self.cost_source: str | None = None
        self._chunk_times: list[float] = []  # perf_counter() of each chunk; gaps are taken at the end
        port = clean_port(server_port)
        # One attribute dict per call; every metric's allowlist is a subset of these keys.
        self._attrs: dict[str, Any] = {semconv.OPERATION_NAME: self.operation}
        if self.provider is not None:
            self._attrs[semconv.PROVIDER_NAME] = self.provider
        if self.model is not None:
            self._attrs[semconv.REQUEST_MODEL] = self.model
        address = clean_str(server_address)
        if address is not None:
            self._attrs[semconv.SERVER_ADDRESS] = address
        if port is not None:
            self._attrs[semconv.SERVER_PORT] = port
        self._late: dict[str, Any] = {}

    def _span_name(self) -> str:
        return f"{self.operation} {self.model}" if self.model else self.operation

    def _span_attributes(self) -> dict[str, Any]:
        attrs = dict(self._attrs)
        attrs[semconv.REQUEST_STREAM] = self.stream
        return self._extra_span_attributes(attrs)

    def _begin(self, attach: bool = True) -> Context:
        context = super()._begin(attach)
        if self._handles.enabled:
            try:
                # The first keys of _attrs, in their order.
                self._active_attrs = {semconv.OPERATION_NAME: self.operation}
                if self.provider is not None:
                    self._active_attrs[semconv.PROVIDER_NAME] = self.provider
                if self.model is not None:
                    self._active_attrs[semconv.REQUEST_MODEL] = self.model
                dims = self._dims
                if dims:  # every metric of the call carries them (allowlists below are subsets)
                    self._attrs.update(dims)
                    self._active_attrs.update(dims)
                # The key stands for the attributes above (every value a str): no content key to build.
                key = (self.operation, self.provider, self.model, tuple(dims.items()) if dims else ())
                _layout(self._handles.instruments, "active").record(
                    self._active_attrs, None, (), (1,), context, key=key
                )
            except Exception as exc:
                if not _RECORD_ACTIVE.swallowed(exc):
                    raise
        return context

    # -- streaming ----------------------------------------------------------
    def mark_first_token(self) -> None:
        """Mark the first token/chunk now (hand-driven streams); later calls are ignored."""
        if not self._chunk_times:
            self.mark_chunk()

    def mark_chunk(self) -> None:
        """Mark that a chunk arrived now. The first one gives time to first chunk."""
        self._chunk_times.append(perf_counter())

    def _gaps(self) -> list[float]:
        """Seconds between consecutive chunks (``time_per_output_chunk`` samples)."""
        times = self._chunk_times
        return list(map(operator.sub, times[1:], times[:-1]))  # each later - earlier, in C

    @overload
    def wrap_stream(self, stream: AsyncIterable[T]) -> AsyncIterator[T]: ...
    @overload
    def wrap_stream(self, stream: Iterable[T]) -> Iterator[T]: ...
    def wrap_stream(self, stream: Iterable[T] | AsyncIterable[T]) -> Iterator[T] | AsyncIterator[T]:
        """Yield ``stream``'s chunks unchanged, timing each one (sync or async)."""
        if hasattr(stream, "__aiter__"):
            return self._wrap_async(stream)  # type: ignore[arg-type]
        return self._wrap_sync(stream)

    def _wrap_sync(self, stream: Iterable[T]) -> Iterator[T]:
        mark = self._chunk_times.append  # mark_chunk() inline: the per-chunk cost is this append
        for chunk in stream:
            mark(perf_counter())
            yield chunk

    async def _wrap_async(self, stream: AsyncIterable[T]) -> AsyncIterator[T]:
        mark = self._chunk_times.append
        async for chunk in stream:
            mark(perf_counter())
            yield chunk

    # -- results ------------------------------------------------------------
    def set_usage(
        self,
        input_tokens: Any = None,
        output_tokens: Any = None,
        cache_read_input_tokens: Any = None,
        cache_creation_input_tokens: Any = None,
        reasoning_output_tokens: Any = None,
    ) -> None:
        """Token usage as reported by the provider (bad values are dropped and counted)."""
        if input_tokens is not None:
            self.input_tokens = clean_count(input_tokens)
        if output_tokens is not None:
            self.output_tokens = clean_count(output_tokens)
        if cache_read_input_tokens is not None:
            self.cache_read_input_tokens = clean_count(cache_read_input_tokens)
        if cache_creation_input_tokens is not None:
            self.cache_creation_input_tokens = clean_count(cache_creation_input_tokens)
        if reasoning_output_tokens is not None:
            self.reasoning_output_tokens = clean_count(reasoning_output_tokens)

    def set_cost(self, usd: Any) -> None:
        """The call's cost in US dollars as the provider or gateway reported it (OpenRouter, LiteLLM...).

        It wins over the price table: ``llmtel.gen_ai.client.cost`` gets this amount with
        ``llmtel.cost.source=reported`` (and no ``gen_ai.token.type``: the split is unknown).
        Negative, non-finite or non-numeric amounts are dropped and counted.
        """
        cost = _values.clean_amount(usd, "invalid cost")
        if cost is None:
            return
        self.cost = cost
        self.cost_source = SOURCE_REPORTED

    def set_response_model(self, model: Any) -> None:
        """The model that actually answered (``gen_ai.response.model``)."""
        self.response_model = clean_str(model)

    def set_response_id(self, response_id: Any) -> None:
        """The provider's response id (``gen_ai.response.id``, span only)."""
        self.response_id = clean_str(response_id)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Attributes learned during the call (e.g. ``openai.response.service_tier``): on the span,
        and on each metric point whose instrument allows the key (docs/metrics.md)."""
        self._late.update(clean_attributes(attributes))

    def set_finish_reasons(self, reasons: Sequence[Any] | str) -> None:
        """Why generation stopped (``gen_ai.response.finish_reasons``, span only)."""
        items: Sequence[Any]
        if type(reasons) is list or type(reasons) is tuple:  # what instrumentations pass: nothing to guard
            items = reasons
        elif reasons is None or isinstance(reasons, str | bytes | bytearray | int | float):
            items = [] if reasons is None else [reasons]
        else:
            items = _errors.call_app_code("invalid finish reasons", list, reasons, default=[])
        self.finish_reasons = tuple([r for r in map(clean_str, items) if r is not None])

    @property
    def time_to_first_chunk(self) -> float | None:
        """Seconds from the start of the call to the first chunk, once seen."""
        return self._chunk_times[0] - self._start if self._chunk_times else None

    # -- recording ----------------------------------------------------------
    def _record(self, duration: float, context: Context | None) -> None:
        # One lookup finds every series of the call (a plan bundle); the values are buffered and folded
        # into the SDK's aggregations in batches (llmtel/_internal/fastpath.py, docs/performance.md).
        ins = self._handles.instruments
        attrs = self._attrs
        if self.response_model is not None:
            attrs[semconv.RESPONSE_MODEL] = self.response_model
        ttfc = self.time_to_first_chunk
        values: tuple[Any, ...]
        source = None
        if self.role == "client":
            cost_in = cost_out = reported = None
            if self.cost is not None:
                reported = self.cost
            else:
                priced = self._priced_cost()
                if priced is not None:
                    input_usd, output_usd, source = priced
                    cost_in = input_usd if self.input_tokens is not None else None
                    cost_out = output_usd if self.output_tokens is not None else None
            gaps = self._gaps() if ttfc is not None else []
            tokens_in, tokens_out = self.input_tokens, self.output_tokens
            values = (-1, duration, ttfc, gaps or None, tokens_in, tokens_out, cost_in, cost_out, reported)
        else:
            ttft = tpot = None
            if self.error_type is None and ttfc is not None:
                ttft = ttfc
                output = self.output_tokens if self.output_tokens else len(self._chunk_times)
                if output and output > 1:
                    tpot = (duration - ttfc) / (output - 1)
            values = (-1, duration, ttft, tpot, self.input_tokens, self.output_tokens)
        late = self._late
        # The caller's key: attrs hold str values and an int port, the active-requests attributes
        # are a subset of attrs (and the opted-in keys), so attrs, error type, cost source and
        # late attributes stand for the bundle; late values other than str: the content key.
        # One flat tuple, each variable-length part after its length (the dims' keys last): a nested key
        # is an object per attribute for the cache lookup to compare, each a cache miss at many models.
        key = None
        if not late or all(type(value) is str for value in late.values()):
            key = (len(attrs), *attrs, *attrs.values(), self.error_type, source, len(late), *late, *late.values(),
                   *self._dims)  # fmt: skip
        _layout(ins, self.role).record(attrs, self.error_type, (source, late, self._active_attrs), values, context, key)

    def _priced_cost(self) -> tuple[float, float, str] | None:
        """Input and output cost in USD from the price table, and its source (None: not priced)."""
        if not (self.input_tokens or self.output_tokens):
            return None
        priced = self._handles.prices.split_cost(
            self.response_model or self.model,
            self.provider,
            self.input_tokens or 0,
            self.output_tokens or 0,
            self.cache_read_input_tokens or 0,
            self.cache_creation_input_tokens or 0,
        )
        if priced is None:
            return None
        input_usd, output_usd, source = priced
        self.priced_cost = input_usd + output_usd
        self.cost_source = source
        return priced

    def _final_span_attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        if self.response_model is not None:
            attrs[semconv.RESPONSE_MODEL] = self.response_model
        if self.response_id is not None:
            attrs[semconv.RESPONSE_ID] = self.response_id
        if self.finish_reasons:
            attrs[semconv.RESPONSE_FINISH_REASONS] = self.finish_reasons
        for key, value in (
            (semconv.USAGE_INPUT_TOKENS, self.input_tokens),
            (semconv.USAGE_OUTPUT_TOKENS, self.output_tokens),
            (semconv.USAGE_CACHE_READ_INPUT_TOKENS, self.cache_read_input_tokens),
            (semconv.USAGE_CACHE_CREATION_INPUT_TOKENS, self.cache_creation_input_tokens),
            (semconv.USAGE_REASONING_OUTPUT_TOKENS, self.reasoning_output_tokens),
        ):
            if value is not None:
                attrs[key] = value
        ttfc = self.time_to_first_chunk
        if ttfc is not None:
            attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc
        attrs.update(self._late)
        usd = self.cost if self.cost is not None else self.priced_cost
        if usd is not None:
            attrs["llmtel.cost.usd"] = usd
            attrs[semconv.COST_SOURCE] = self.cost_source
        return attrs

    def set_content(
        self,
        *,
        input_messages: Any = None,
        output_messages: Any = None,
        system_instructions: Any = None,
        tool_definitions: Any = None,
    ) -> None:
        """Record content on the span as JSON — only when the capture mode puts content on spans.

        Values follow the GenAI conventions' formats (``gen_ai.input.messages``,
        ``gen_ai.output.messages``, ``gen_ai.system_instructions``, ``gen_ai.tool.definitions``).
        """
        if not self._handles.capture_content.on_span or self._span is None:
            return
        with _errors.guarded("capture content"):
            for key, value in (
                (semconv.INPUT_MESSAGES, input_messages),
                (semconv.OUTPUT_MESSAGES, output_messages),
                (semconv.SYSTEM_INSTRUCTIONS, system_instructions),
                (semconv.TOOL_DEFINITIONS, tool_definitions),
            ):
                text = _values.content_json(value)
                if text is not None:
                    self._span.set_attribute(key, text)


def llm_call(
    *,
    provider: Any,
    model: Any,
    operation: Any = "chat",
    stream: bool = False,
    role: str = "client",
    server_address: Any = None,
    server_port: Any = None,
    **attributes: Any,
) -> LLMCall:
    """Instrument one inference call: ``with llmtel.llm_call(...) as call:`` (or ``async with``).

    ``role="server"`` records the ``gen_ai.server.*`` metrics instead of the
    client ones. Extra keyword attributes (``tenant="acme"``) go on the span, and on the
    metrics too for the keys named in the ``metric_attributes`` option.
    """
    return LLMCall(
        provider=provider,
        model=model,
        operation=operation,
        stream=stream,
        role=role,
        server_address=server_address,
        server_port=server_port,
        attributes=attributes,
    )


class _Decoratable(_Operation):
    """An operation that is also a decorator: each decorated call is a fresh operation."""

    def _fresh(self) -> _Decoratable:
        raise NotImplementedError

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class ToolInvocation(_Decoratable):
    """A tool execution (``execute_tool`` span + ``llmtel.tool.duration``)."""

    def __init__(
        self,
        name: Any,
        *,
        tool_type: str | None = None,
        call_id: Any = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(attributes)
        self.name = clean_str(name) or "unknown"
        self.tool_type = clean_str(tool_type)
        self.call_id = clean_str(call_id)

    def _fresh(self) -> ToolInvocation:
        return ToolInvocation(self.name, tool_type=self.tool_type, attributes=self._given)

    def _span_name(self) -> str:
        return f"execute_tool {self.name}"

    def _span_attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {semconv.OPERATION_NAME: "execute_tool", semconv.TOOL_NAME: self.name}
        if self.tool_type:
            attrs[semconv.TOOL_TYPE] = self.tool_type
        if self.call_id:
            attrs[semconv.TOOL_CALL_ID] = self.call_id
        return self._extra_span_attributes(attrs)

    def _record(self, duration: float, context: Context | None) -> None:
        _fastpath.record(
            self._handles.instruments.tool_duration, duration, self._with_error({semconv.TOOL_NAME: self.name}), context
        )


def tool(name: Any, *, tool_type: str | None = None, call_id: Any = None, **attributes: Any) -> ToolInvocation:
    """Instrument a tool: ``with llmtel.tool("search"):`` or ``@llmtel.tool("search")``.

    Extra keyword attributes go on the span, and on the metric for keys named in ``metric_attributes``.
    """
    return ToolInvocation(name, tool_type=tool_type, call_id=call_id, attributes=attributes)


class AgentInvocation(_Decoratable):
    """An agent invocation (``invoke_agent`` span + ``llmtel.agent.duration``); calls inside nest under it."""

    def __init__(
        self, name: Any, *, agent_id: Any = None, provider: Any = None, attributes: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(attributes)
        self.name = clean_str(name) or "unknown"
        self.agent_id = clean_str(agent_id)
        self.provider = clean_str(provider)

    def _fresh(self) -> AgentInvocation:
        return AgentInvocation(self.name, agent_id=self.agent_id, provider=self.provider, attributes=self._given)

    def _span_name(self) -> str:
        return f"invoke_agent {self.name}"

    def _span_attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {semconv.OPERATION_NAME: "invoke_agent", semconv.AGENT_NAME: self.name}
        if self.agent_id:
            attrs[semconv.AGENT_ID] = self.agent_id
        if self.provider:
            attrs[semconv.PROVIDER_NAME] = self.provider
        return self._extra_span_attributes(attrs)

    def _record(self, duration: float, context: Context | None) -> None:
        _fastpath.record(
            self._handles.instruments.agent_duration,
            duration,
            self._with_error({semconv.AGENT_NAME: self.name}),
            context,
        )


def agent(name: Any, *, agent_id: Any = None, provider: Any = None, **attributes: Any) -> AgentInvocation:
    """Instrument an agent run: ``with llmtel.agent("planner"):`` or as a decorator.

    Extra keyword attributes go on the span, and on the metric for keys named in ``metric_attributes``.
    """
    return AgentInvocation(name, agent_id=agent_id, provider=provider, attributes=attributes)


class Retrieval(_Decoratable):
    """A retrieval (RAG) query: span, latency, documents returned, hit@k and reciprocal rank."""

    _span_kind = SpanKind.CLIENT

    def __init__(
        self, data_source: Any = None, *, top_k: Any = None, attributes: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(attributes)
        self.data_source = clean_str(data_source)
        self.top_k = clean_positive_int(top_k, "invalid top_k")
        self.documents: int | None = None
        self._relevant_ranks: list[int] | None = None

    def _fresh(self) -> Retrieval:
        return Retrieval(self.data_source, top_k=self.top_k, attributes=self._given)

    def _span_name(self) -> str:
        return f"retrieval {self.data_source}" if self.data_source else "retrieval"

    def _span_attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {semconv.OPERATION_NAME: "retrieval"}
        if self.data_source:
            attrs[semconv.DATA_SOURCE_ID] = self.data_source
        if self.top_k:
            attrs[semconv.REQUEST_TOP_K] = self.top_k
        return self._extra_span_attributes(attrs)

    def set_documents(self, count: Any) -> None:
        """How many documents the query returned."""
        self.documents = clean_count(count, "invalid document count")

    def record_relevance(self, relevant_ranks: Sequence[Any]) -> None:
        """1-based ranks of the relevant documents among those returned (empty: none relevant).

        Gives hit@k (was any relevant document within ``top_k``) and the
        reciprocal rank of the first relevant one (MRR over queries).
        """
        # Read once: a generator cannot be read twice.
        given: list[Any] | None = _errors.call_app_code("invalid relevance rank", list, relevant_ranks, default=None)
        if given is None:
            return
        ranks = []
        for given_rank in given:
            rank = clean_count(given_rank, "invalid relevance rank")  # counts non-numbers, negatives, huge ones
            if rank is not None and rank < 1:
                _errors.report("invalid relevance rank", detail=_errors.describe(given_rank))
            elif rank is not None:
                ranks.append(rank)
        self._relevant_ranks = sorted(ranks)

    def _record(self, duration: float, context: Context | None) -> None:
        ins = self._handles.instruments
        source: dict[str, Any] = dict(self._dims)
        if self.data_source is not None:
            source[semconv.DATA_SOURCE_ID] = self.data_source
        _fastpath.record(ins.retrieval_duration, duration, self._with_error(dict(source)), context)
        if self.documents is not None:
            _fastpath.record(ins.retrieval_documents, self.documents, source, context)
        if self._relevant_ranks is not None:
            first = self._relevant_ranks[0] if self._relevant_ranks else None
            k = self.top_k if self.top_k is not None else self.documents
            hit = first is not None and (k is None or first <= k)
            _fastpath.add(
                ins.retrieval_judged, 1, {**source, semconv.RETRIEVAL_HIT: "true" if hit else "false"}, context
            )
            _fastpath.record(ins.retrieval_rr, 1.0 / first if first else 0.0, source, context)

    def _final_span_attributes(self) -> dict[str, Any]:
        return {semconv.RETRIEVAL_DOCUMENTS_COUNT: self.documents} if self.documents is not None else {}


def retrieval(data_source: Any = None, *, top_k: Any = None, **attributes: Any) -> Retrieval:
    """Instrument a retrieval query: ``with llmtel.retrieval(data_source="docs", top_k=5) as r:``.

    Extra keyword attributes go on the span, and on the metrics for keys named in ``metric_attributes``.
    """
    return Retrieval(data_source, top_k=top_k, attributes=attributes)
