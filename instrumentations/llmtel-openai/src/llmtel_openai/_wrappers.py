"""The wrappers put around ``openai`` resource methods.

Each instrumented call becomes one ``llm_call`` of the public kit
(:mod:`llmtel.instrumentation`), driven explicitly: ``start(attach=False)``, then
``stop()`` or ``fail(exc)``. The span is never left attached to the caller's
context (a stream outlives the ``create()`` call); while the HTTP request runs
it is made current so that lower-level spans nest under it.

Nothing here may raise into the application: reading requests and responses is
guarded and failures are counted by llmtel (``llmtel.sdk.problems``).

Costs are kept off the call path where they can be: what depends only on the
client (server address, provider) is computed once per client;
the request's keyword arguments are read in one pass; response objects are read
through their field values (no pydantic attribute misses); content is built
only when capture is on.
"""

from __future__ import annotations

import contextvars
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import Logger
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv._incubating.attributes import openai_attributes as oa

from llmtel.instrumentation import LLMCall, capture_mode, guard, guarded, llm_call
from llmtel_openai import _content
from llmtel_openai._content import field, fields_of

logger = logging.getLogger("llmtel_openai")

OPENAI = ga.GenAiProviderNameValues.OPENAI.value
AZURE_OPENAI = ga.GenAiProviderNameValues.AZURE_AI_OPENAI.value
TOOL_DEFINITIONS = "gen_ai.tool.definitions"

# Set while an instrumented call runs, so that an instrumented method calling another
# one (old ``beta.*.parse`` helpers delegate) records a single call.
_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("llmtel_openai_active", default=False)

# Guarded blocks on every call: made once (llmtel's shared guarded blocks).
_READ_STREAM = guarded("llmtel_openai read stream", shared=True)
_READ_RESPONSE = guarded("llmtel_openai read response", shared=True)
# Per chunk: a plain try/except asking this block, not a guarded wrapper function (one Python call less).
_READ_CHUNK = guarded("llmtel_openai read chunk", shared=True)
_START_CALL = guarded("llmtel_openai start call", shared=True)

#: Module prefix of the contrib instrumentation (opentelemetry-instrumentation-openai-v2).
CONTRIB_MODULE = "opentelemetry.instrumentation.openai_v2"


@dataclass(frozen=True)
class Target:
    """One method to wrap: ``module.Class.method`` and how to read it."""

    module: str
    cls: str
    method: str
    operation: str
    kind: str  # chat | completion | embeddings | responses


@dataclass
class Settings:
    """What the instrumentor was given and found in the installed ``openai``."""

    event_logger: Logger | None = None
    #: ``with_raw_response`` results (``LegacyAPIResponse``).
    legacy_response: tuple[type[Any], ...] = ()
    #: ``with_streaming_response`` results: sync ``APIResponse`` and async ``AsyncAPIResponse``.
    api_response: tuple[type, ...] = ()
    async_api_response: tuple[type, ...] = ()
    stream_types: tuple[type, ...] = ()
    azure_types: tuple[type, ...] = ()


# -- contrib detection ------------------------------------------------------------
# id(class attribute) -> (that attribute, contrib's?): the attribute is kept so its id cannot be reused.
_contrib_cache: dict[int, tuple[Any, bool]] = {}
_contrib_logged = False


def _wrapper_modules(attr: Any) -> list[str]:
    modules = []
    seen = 0
    while attr is not None and seen < 16:  # a wrapper chain is short; guard against cycles
        inner = getattr(attr, "_self_wrapper", None)
        if inner is not None:
            modules.append(getattr(inner, "__module__", "") or "")
        attr = getattr(attr, "__wrapped__", None)
        seen += 1
    return modules


def contrib_owns(instance: Any, method: str) -> bool:
    """True when contrib's ``openai_v2`` wrapper is applied to this method (it then wins).

    Looks at the class attribute (not at who was installed first), so the rule
    holds whichever instrumentor ``opentelemetry-instrument`` loads first.
    """
    global _contrib_logged
    for klass in type(instance).__mro__:
        attr = klass.__dict__.get(method)
        if attr is None:
            continue
        cached = _contrib_cache.get(id(attr))
        if cached is not None and cached[0] is attr:
            owned = cached[1]
        else:
            owned = any(m.startswith(CONTRIB_MODULE) for m in _wrapper_modules(attr))
            if len(_contrib_cache) > 256:
                _contrib_cache.clear()
            _contrib_cache[id(attr)] = (attr, owned)
        if owned and not _contrib_logged:
            _contrib_logged = True
            logger.info(
                "llmtel_openai: opentelemetry-instrumentation-openai-v2 instruments %s.%s; llmtel_openai leaves "
                "those calls to it (set OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=openai to use llmtel_openai instead)",
                klass.__name__,
                method,
            )
        return owned
    return False


# -- per client ----------------------------------------------------------------------
class _ClientInfo:
    """What depends only on the client: computed on its first call, then reused."""

    __slots__ = ("host", "port", "provider")

    def __init__(self, client: Any, settings: Settings) -> None:
        url = getattr(client, "base_url", None)
        host = getattr(url, "host", None) or None
        port = getattr(url, "port", None)
        if port is None and host is not None:
            port = 443 if getattr(url, "scheme", "https") == "https" else 80
        self.host: str | None = host
        self.port: int | None = port
        azure = (settings.azure_types and isinstance(client, settings.azure_types)) or (host or "").endswith(
            ".openai.azure.com"
        )
        self.provider = AZURE_OPENAI if azure else OPENAI


_clients: weakref.WeakKeyDictionary[Any, _ClientInfo] = weakref.WeakKeyDictionary()


def _client_info(instance: Any, settings: Settings) -> _ClientInfo:
    client = getattr(instance, "_client", None)
    try:
        info = _clients.get(client) if client is not None else None
    except TypeError:  # an unhashable or un-weakref-able client: no cache
        info = None
    if info is None:
        info = _ClientInfo(client, settings)
        if client is not None:
            try:
                _clients[client] = info
            except TypeError:
                pass
    return info


# -- request side -------------------------------------------------------------------
_SCALARS = {
    "temperature": ga.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": ga.GEN_AI_REQUEST_TOP_P,
    "frequency_penalty": ga.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": ga.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "seed": ga.GEN_AI_REQUEST_SEED,
    "service_tier": oa.OPENAI_REQUEST_SERVICE_TIER,
}
# max_completion_tokens (chat) over the deprecated max_tokens; max_output_tokens (Responses).
_MAX_TOKENS_RANK = {"max_completion_tokens": 0, "max_tokens": 1, "max_output_tokens": 2}
_API_TYPE = {"chat": "chat_completions", "responses": "responses"}


def _is_scalar(value: Any) -> bool:
    # openai uses sentinel objects (NotGiven/Omit) for "not passed": plain values only.
    return isinstance(value, str | int | float | bool)


def _output_type(key: str, value: Any) -> str | None:
    """``gen_ai.output.type`` from chat ``response_format``, Responses ``text.format``, or a
    pydantic model given to ``.parse()`` (``response_format=Model`` / ``text_format=Model``)."""
    if key == "text":
        value = field(value, "format") if isinstance(value, dict) else None
    elif isinstance(value, type):
        return "json"
    kind = field(value, "type") if isinstance(value, dict) else None
    if not isinstance(kind, str):
        return None
    return "json" if kind.startswith("json") else kind


def _read_request(kind: str, kwargs: dict[str, Any], scalars: dict[str, Any], lists: dict[str, Any]) -> None:
    """The request attributes, in one pass over ``kwargs`` (also used for ``extra_body``, which the
    SDK merges into the request body last, so its values win)."""
    rank = 9
    for key, value in kwargs.items():
        attr = _SCALARS.get(key)
        if attr is not None:
            if _is_scalar(value):
                scalars[attr] = value
        elif key in _MAX_TOKENS_RANK:
            if isinstance(value, int) and not isinstance(value, bool) and _MAX_TOKENS_RANK[key] < rank:
                rank = _MAX_TOKENS_RANK[key]
                scalars[ga.GEN_AI_REQUEST_MAX_TOKENS] = value
        elif key == "n":
            if isinstance(value, int) and not isinstance(value, bool) and value != 1:
                scalars[ga.GEN_AI_REQUEST_CHOICE_COUNT] = value
        elif key == "stop":
            if isinstance(value, str):
                lists[ga.GEN_AI_REQUEST_STOP_SEQUENCES] = [value]
            elif isinstance(value, list | tuple) and value and all(isinstance(s, str) for s in value):
                lists[ga.GEN_AI_REQUEST_STOP_SEQUENCES] = list(value)
        elif key in ("response_format", "text_format", "text"):
            output_type = _output_type(key, value)
            if output_type is not None:
                scalars[ga.GEN_AI_OUTPUT_TYPE] = output_type
        elif key == "encoding_format":
            if kind == "embeddings" and isinstance(value, str):
                lists[ga.GEN_AI_REQUEST_ENCODING_FORMATS] = [value]
        elif key == "extra_body" and isinstance(value, dict):
            _read_request(kind, value, scalars, lists)


def _set_usage(call: LLMCall, usage: Any, responses: bool) -> None:
    """Usage in the shape present: chat/completions/embeddings (``prompt_tokens``...) or Responses
    (``input_tokens``...)."""
    if usage is None:
        return
    fields = fields_of(usage, _USAGE_FIELDS)
    if responses:
        inp, out = fields.get("input_tokens"), fields.get("output_tokens")
        in_details, out_details = fields.get("input_tokens_details"), fields.get("output_tokens_details")
    else:
        inp, out = fields.get("prompt_tokens"), fields.get("completion_tokens")
        in_details, out_details = fields.get("prompt_tokens_details"), fields.get("completion_tokens_details")
    call.set_usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_input_tokens=field(in_details, "cached_tokens") if in_details is not None else None,
        cache_creation_input_tokens=field(in_details, "cache_write_tokens") if in_details is not None else None,
        reasoning_output_tokens=field(out_details, "reasoning_tokens") if out_details is not None else None,
    )


def _error_type(exc: BaseException) -> str:
    # The public class name (openai.RateLimitError), not the private module path.
    module = type(exc).__module__ or ""
    name = type(exc).__qualname__
    if module.startswith("openai"):
        return f"openai.{name}"
    return name if module == "builtins" else f"{module}.{name}"


class Tracker:
    """One instrumented call: its ``LLMCall``, context, and what its response said."""

    def __init__(self, target: Target, instance: Any, kwargs: dict[str, Any], settings: Settings) -> None:
        self.target = target
        self.settings = settings
        kind = target.kind
        self.responses = kind == "responses"
        self.stream = kwargs.get("stream") is True
        info = _client_info(instance, settings)
        scalars: dict[str, Any] = {}
        self._lists: dict[str, Any] = {}
        _read_request(kind, kwargs, scalars, self._lists)
        api_type = _API_TYPE.get(kind)
        if api_type is not None:
            scalars[oa.OPENAI_API_TYPE] = api_type
        self.call = llm_call(
            provider=info.provider,
            model=kwargs.get("model"),
            operation=target.operation,
            stream=self.stream,
            server_address=info.host,
            server_port=info.port,
            **scalars,
        )
        mode = capture_mode()  # resolved once by configure(): a read of llmtel's state
        self.capture_event = mode.as_event
        self._kwargs = kwargs if (mode.on_span or mode.as_event) else None
        self._done = False
        # Stream state.
        self._model: Any = None
        self._id: Any = None
        self._tier: Any = None
        self._fingerprint: Any = None
        self._usage: Any = None
        self._finish: dict[int, str] = {}
        self._text: dict[int, list[str]] = {}
        self._tools: dict[int, dict[int, dict[str, Any]]] = {}
        self._final: Any = None  # Responses API: the last response object an event carried
        self._stream_error: str | None = None
        self._mark = self.call.mark_chunk
        self.call.start(attach=False)
        if self._lists and self.call.span.is_recording():
            self.call.span.set_attributes(self._lists)

    # -- lifecycle -----------------------------------------------------------------
    def attach(self) -> contextvars.Token[otel_context.Context] | None:
        """Make the call's span current in the caller's context while the request is sent."""
        span = self.call.span
        if not span.get_span_context().is_valid:  # llmtel off: keep the caller's own parent current
            return None
        return otel_context.attach(trace.set_span_in_context(span))

    def finish(self, exc: BaseException | None = None) -> None:
        """End the call once, recording what was seen."""
        if self._done:
            return
        self._done = True
        if self.stream:
            try:
                self._apply_stream(exc)
            except Exception as error:
                if not _READ_STREAM.swallowed(error):
                    raise
        # No activated() block: a call started with attach=False makes its own span current while it
        # records, so the samples' exemplars link to it whatever context the stream ends in.
        if exc is None:
            self.call.stop()
        else:
            self.call.set_error(_error_type(exc))
            self.call.fail(exc)

    def handle(self, result: Any) -> Any:
        """Record a finished request's result; streams come back wrapped."""
        settings = self.settings
        if self.stream and isinstance(result, settings.stream_types):
            return self.wrap_stream(result)
        try:
            if isinstance(result, settings.legacy_response):
                if self.stream:  # with_raw_response + stream=True: the caller's parse() gives the stream
                    _hook_parse(result, self, is_async=False)
                    return result
                self.read(result.parse())  # the body is read already; parse() caches its result
            elif isinstance(result, settings.api_response):  # with_streaming_response: body not read yet
                _hook_parse(result, self, is_async=False)
                return result
            elif isinstance(result, settings.async_api_response):
                _hook_parse(result, self, is_async=True)
                return result
            else:
                self.read(result)
        except Exception as exc:
            if not _READ_RESPONSE.swallowed(exc):
                raise
        self.finish()
        return result

    def wrap_stream(self, stream: Any) -> Any:
        if hasattr(stream, "__aiter__"):
            return AsyncStreamProxy(stream, self)
        return StreamProxy(stream, self)

    def parsed(self, value: Any) -> Any:
        """What a raw/streaming response's ``parse()`` returned: a stream to follow, or the body."""
        if self._done:
            return value
        if isinstance(value, self.settings.stream_types):
            return self.wrap_stream(value)
        try:
            self.read(value)
        except Exception as exc:
            if not _READ_RESPONSE.swallowed(exc):
                raise
        self.finish()
        return value

    # -- reading -------------------------------------------------------------------
    def read(self, response: Any) -> None:
        """Read a complete (non-streamed) response."""
        kind = self.target.kind
        if kind == "responses":
            self._read_response_object(response)
            return
        call = self.call
        fields = fields_of(response, _RESPONSE_FIELDS)
        call.set_response_model(fields.get("model"))
        if kind == "embeddings":
            data = fields.get("data") or ()
            vector = field(data[0], "embedding") if data else None
            if isinstance(vector, list) and call.span.is_recording():
                call.span.set_attribute(ga.GEN_AI_EMBEDDINGS_DIMENSION_COUNT, len(vector))
        else:
            call.set_response_id(fields.get("id"))
            choices = fields.get("choices") or ()
            call.set_finish_reasons([r for r in (field(c, "finish_reason") for c in choices) if r])
            self._response_attributes(fields.get("service_tier"), fields.get("system_fingerprint"))
            if self._kwargs is not None:
                self._output(_content.chat_output(choices) if kind == "chat" else _content.completion_output(choices))
        _set_usage(call, fields.get("usage"), responses=False)

    def _read_response_object(self, response: Any) -> None:
        call = self.call
        call.set_response_model(field(response, "model"))
        call.set_response_id(field(response, "id"))
        status = field(response, "status")
        reason = _content.responses_finish_reason(response)
        if reason is not None:
            call.set_finish_reasons([reason])
        if status == "failed":
            call.set_error(str(field(field(response, "error"), "code") or "response_failed"))
        self._response_attributes(field(response, "service_tier"), None)
        _set_usage(call, field(response, "usage"), responses=True)
        if self._kwargs is not None:
            self._output(_content.responses_output(response, reason or _content.UNFINISHED))

    def _response_attributes(self, tier: Any, fingerprint: Any) -> None:
        # Recommended on the span and on the duration and token-usage points (semconv openai.md).
        attributes = {}
        if isinstance(tier, str):
            attributes[oa.OPENAI_RESPONSE_SERVICE_TIER] = tier
        if isinstance(fingerprint, str):
            attributes[oa.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint
        if attributes:
            self.call.set_attributes(attributes)

    # -- streams -------------------------------------------------------------------
    def on_chunk(self, chunk: Any) -> None:
        """Time and read one streamed chunk/event (the stream proxies guard it with ``_READ_CHUNK``)."""
        if self.responses:
            kind = field(chunk, "type") or ""
            if kind.endswith(".delta"):
                self.call.mark_chunk()
            elif kind.startswith("response.") and kind in _RESPONSE_EVENTS:
                self._final = field(chunk, "response")
            elif kind == "error":
                self._stream_error = str(field(chunk, "code") or "error")
            return
        # One mapping of the chunk's fields, read with plain .get (per chunk, so every call counts).
        fields = fields_of(chunk, _CHUNK_FIELDS)
        choices = fields.get("choices")
        usage = fields.get("usage")
        if choices or usage is None:  # the trailing usage-only chunk carries no output
            self._mark()
        if usage is not None:
            self._usage = usage
        if self._id is None:  # the same on every chunk: read until seen
            self._id = fields.get("id")
            self._model = fields.get("model")
        if self._tier is None:
            self._tier = fields.get("service_tier")
        if self._fingerprint is None:
            self._fingerprint = fields.get("system_fingerprint")
        if not choices:
            return
        capture = self._kwargs is not None
        for choice in choices:
            reason = field(choice, "finish_reason")
            if reason:
                self._finish[field(choice, "index") or 0] = reason
            if capture:
                self._capture_delta(choice)

    def _capture_delta(self, choice: Any) -> None:
        index = field(choice, "index") or 0
        delta = field(choice, "delta")
        text = field(delta, "content") if delta is not None else field(choice, "text")
        if isinstance(text, str):
            self._text.setdefault(index, []).append(text)
        for call in field(delta, "tool_calls") or ():
            slot = self._tools.setdefault(index, {}).setdefault(
                field(call, "index") or 0, {"type": "tool_call", "id": None, "name": "", "arguments": ""}
            )
            slot["id"] = field(call, "id") or slot["id"]
            function = field(call, "function")
            slot["name"] = field(function, "name") or slot["name"]
            slot["arguments"] += field(function, "arguments") or ""

    def _apply_stream(self, exc: BaseException | None) -> None:
        call = self.call
        if self.responses:
            if self._final is not None:
                self._read_response_object(self._final)
            if self._stream_error is not None:
                call.set_error(self._stream_error)
            return
        call.set_response_model(self._model)
        call.set_response_id(self._id)
        call.set_finish_reasons([self._finish[i] for i in sorted(self._finish)])
        self._response_attributes(self._tier, self._fingerprint)
        _set_usage(call, self._usage, responses=False)
        if self._kwargs is not None:
            indexes = sorted(set(self._finish) | set(self._text) | set(self._tools))
            self._output(
                [
                    {
                        "role": "assistant",
                        "parts": ([{"type": "text", "content": "".join(self._text[i])}] if i in self._text else [])
                        + list(self._tools.get(i, {}).values()),
                        # abandoned or failed before the finish chunk: the schema still wants a reason
                        "finish_reason": self._finish.get(i) or _content.UNFINISHED,
                    }
                    for i in indexes
                ]
            )

    # -- content ---------------------------------------------------------------------
    def _output(self, output: list[dict[str, Any]]) -> None:
        """Record input, output, system instructions and tool definitions (capture is on)."""
        kwargs = self._kwargs
        if kwargs is None:
            return
        kind = self.target.kind
        system: list[dict[str, Any]] = []
        if kind == "responses":
            inputs = _content.responses_input(kwargs.get("input"))
            system = _content.system_instructions(kwargs.get("instructions"))
        elif kind == "chat":
            inputs = _content.chat_input(kwargs.get("messages"))
        else:
            inputs = _content.prompt_input(kwargs.get("prompt"))
        tools = _content.tool_definitions(kwargs.get("tools"))
        # On the span through the kit (JSON strings, only when the mode puts content on spans).
        self.call.set_content(
            input_messages=inputs or None,
            output_messages=output or None,
            system_instructions=system or None,
            tool_definitions=tools or None,
        )
        event_logger = self.settings.event_logger
        if not self.capture_event or event_logger is None:
            return
        # The event carries the structured form, as the conventions require.
        event_attrs: dict[str, Any] = {ga.GEN_AI_OPERATION_NAME: self.target.operation}
        for key, value in (
            (ga.GEN_AI_INPUT_MESSAGES, inputs),
            (ga.GEN_AI_OUTPUT_MESSAGES, output),
            (ga.GEN_AI_SYSTEM_INSTRUCTIONS, system),
            (TOOL_DEFINITIONS, tools),
        ):
            if value:
                event_attrs[key] = value
        model = kwargs.get("model")
        if _is_scalar(model):
            event_attrs[ga.GEN_AI_REQUEST_MODEL] = model
        event_logger.emit(
            event_name=_content.EVENT_NAME,
            attributes=event_attrs,
            context=trace.set_span_in_context(self.call.span),
        )


_RESPONSE_FIELDS = ("model", "data", "id", "choices", "service_tier", "system_fingerprint", "usage")
_USAGE_FIELDS = (
    "input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details",
    "prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details",
)  # fmt: skip
_CHUNK_FIELDS = ("choices", "usage", "id", "model", "service_tier", "system_fingerprint")
_RESPONSE_EVENTS = frozenset(
    {"response.created", "response.in_progress", "response.completed", "response.incomplete", "response.failed"}
)


# -- raw and streaming responses -----------------------------------------------------
def _hook_parse(response: Any, tracker: Tracker, *, is_async: bool) -> None:
    """Follow ``with_raw_response``/``with_streaming_response`` results: the call goes on until the
    caller's ``parse()`` gives the body (read) or a stream (followed like a plain stream), or the
    response is closed or dropped unread (ended then, as an abandoned stream is)."""
    parse = type(response).parse
    ref = weakref.ref(response)  # no cycle through the hook: the response stays collectable
    finalizer = weakref.finalize(response, tracker.finish)
    finalizer.atexit = False

    if is_async:

        async def parse_async(*args: Any, **kwargs: Any) -> Any:
            finalizer.detach()
            return tracker.parsed(await parse(ref(), *args, **kwargs))

        response.parse = parse_async
    else:

        def parse_sync(*args: Any, **kwargs: Any) -> Any:
            finalizer.detach()
            return tracker.parsed(parse(ref(), *args, **kwargs))

        response.parse = parse_sync
    close = getattr(type(response), "close", None)
    if close is None:
        return
    if is_async:

        async def close_async() -> None:
            try:
                await close(ref())
            finally:
                tracker.finish()

        response.close = close_async
    else:

        def close_sync() -> None:
            try:
                close(ref())
            finally:
                tracker.finish()

        response.close = close_sync


# wrapt 2 types ObjectProxy as a generic; wrapt 1 cannot subscript it at run time.
if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy


# -- stream proxies ------------------------------------------------------------------
class StreamProxy(_Proxy):
    """An ``openai.Stream`` that times chunks and ends the call when the stream ends.

    Everything else (``response``, ``with``, ``close()``, ``isinstance``) is the
    wrapped stream's. Ending paths: exhausted, raised, ``close()``, ``with``
    exit, or garbage collection of an abandoned stream.
    """

    def __init__(self, wrapped: Any, tracker: Tracker) -> None:
        super().__init__(wrapped)
        self._self_tracker = tracker

    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            chunk = self.__wrapped__.__next__()
        except StopIteration:
            self._self_tracker.finish()
            raise
        except BaseException as exc:
            self._self_tracker.finish(exc)
            raise
        try:
            self._self_tracker.on_chunk(chunk)
        except Exception as error:
            if not _READ_CHUNK.swallowed(error):
                raise
        return chunk

    def __enter__(self) -> StreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_tracker.finish()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_tracker.finish()

    @guard("llmtel_openai finalize stream")  # a finalizer must never raise
    def __del__(self) -> None:
        self._self_tracker.finish()


class AsyncStreamProxy(_Proxy):
    """The ``openai.AsyncStream`` counterpart of :class:`StreamProxy`."""

    def __init__(self, wrapped: Any, tracker: Tracker) -> None:
        super().__init__(wrapped)
        self._self_tracker = tracker

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_tracker.finish()
            raise
        except BaseException as exc:
            self._self_tracker.finish(exc)
            raise
        try:
            self._self_tracker.on_chunk(chunk)
        except Exception as error:
            if not _READ_CHUNK.swallowed(error):
                raise
        return chunk

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_tracker.finish()

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_tracker.finish()

    @guard("llmtel_openai finalize stream")  # a finalizer must never raise
    def __del__(self) -> None:
        self._self_tracker.finish()


# -- the wrappers ------------------------------------------------------------------
def _start(target: Target, instance: Any, kwargs: dict[str, Any], settings: Settings) -> Tracker | None:
    """The call's tracker; None: not this instrumentation's call, or its start failed (telemetry must not
    stop the request)."""
    tracker = None
    try:
        if not (_ACTIVE.get() or contrib_owns(instance, target.method)):
            tracker = Tracker(target, instance, kwargs, settings)
    except Exception as exc:
        if not _START_CALL.swallowed(exc):
            raise
    return tracker


def make_wrapper(target: Target, is_async: bool, settings: Settings) -> Callable[..., Any]:
    """A ``wrapt`` wrapper for ``target`` (sync or async)."""
    if is_async:

        async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            tracker = _start(target, instance, kwargs, settings)
            if tracker is None:
                return await wrapped(*args, **kwargs)
            active = _ACTIVE.set(True)
            token = tracker.attach()
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                tracker.finish(exc)
                raise
            finally:
                if token is not None:
                    otel_context.detach(token)
                _ACTIVE.reset(active)
            return tracker.handle(result)

        return async_wrapper

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        tracker = _start(target, instance, kwargs, settings)
        if tracker is None:
            return wrapped(*args, **kwargs)
        active = _ACTIVE.set(True)
        token = tracker.attach()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            tracker.finish(exc)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
            _ACTIVE.reset(active)
        return tracker.handle(result)

    return wrapper
