"""The wrappers put around ``openai`` resource methods.

Each instrumented call becomes one :func:`llmtel.llm_call`. The call is begun
and ended inside a private copy of the caller's context (``contextvars``), so a
stream that outlives the ``create()`` call never leaves llmtel's span attached
to the application's context; while the HTTP request runs, the span is made
current in the caller's context so that lower-level spans nest under it.

Nothing here may raise into the application: reading requests and responses is
guarded and failures are counted by llmtel (``llmtel.sdk.problems``).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import Logger
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv._incubating.attributes import openai_attributes as oa

import llmtel
from llmtel._internal.errors import guarded, report
from llmtel_openai import _content
from llmtel_openai._content import field

logger = logging.getLogger("llmtel_openai")

OPENAI = ga.GenAiProviderNameValues.OPENAI.value
AZURE_OPENAI = ga.GenAiProviderNameValues.AZURE_AI_OPENAI.value

# Set while an instrumented call runs, so that an instrumented method calling another
# one (old ``beta.*.parse`` helpers delegate) records a single call.
_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("llmtel_openai_active", default=False)

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
    """What the instrumentor was given."""

    event_logger: Logger | None = None
    legacy_response: tuple[type, ...] = ()
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


# -- request side -------------------------------------------------------------------
def _scalar(value: Any) -> Any:
    # openai uses sentinel objects (NotGiven/Omit) for "not passed": keep plain values only.
    return value if isinstance(value, str | int | float | bool) else None


def _server(instance: Any) -> tuple[str | None, int | None, Any]:
    client = getattr(instance, "_client", None)
    url = getattr(client, "base_url", None)
    host = getattr(url, "host", None) or None
    port = getattr(url, "port", None)
    if port is None and host is not None:
        port = 443 if getattr(url, "scheme", "https") == "https" else 80
    return host, port, client


def _output_format(kwargs: dict[str, Any]) -> Any:
    """The requested output format: chat ``response_format``, Responses ``text.format``, or a
    pydantic model given to ``.parse()`` (``response_format=Model`` / ``text_format=Model``)."""
    for key in ("response_format", "text_format"):
        value = kwargs.get(key)
        if isinstance(value, type):
            return "json_schema"
        if isinstance(value, dict):
            return field(value, "type")
    text = kwargs.get("text")
    return field(field(text, "format"), "type") if isinstance(text, dict) else None


def _request_span_attributes(target: Target, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(scalar attributes for llm_call, list attributes to set on the span)."""
    scalars: dict[str, Any] = {}
    lists: dict[str, Any] = {}
    for key, attr in (
        ("temperature", ga.GEN_AI_REQUEST_TEMPERATURE),
        ("top_p", ga.GEN_AI_REQUEST_TOP_P),
        ("frequency_penalty", ga.GEN_AI_REQUEST_FREQUENCY_PENALTY),
        ("presence_penalty", ga.GEN_AI_REQUEST_PRESENCE_PENALTY),
        ("seed", ga.GEN_AI_REQUEST_SEED),
        ("service_tier", oa.OPENAI_REQUEST_SERVICE_TIER),
    ):
        value = _scalar(kwargs.get(key))
        if value is not None:
            scalars[attr] = value
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = _scalar(kwargs.get(key))
        if isinstance(value, int):
            scalars[ga.GEN_AI_REQUEST_MAX_TOKENS] = value
            break
    n = _scalar(kwargs.get("n"))
    if isinstance(n, int) and n != 1:
        scalars[ga.GEN_AI_REQUEST_CHOICE_COUNT] = n
    stop = kwargs.get("stop")
    if isinstance(stop, str):
        lists[ga.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, list | tuple) and all(isinstance(s, str) for s in stop):
        lists[ga.GEN_AI_REQUEST_STOP_SEQUENCES] = list(stop)
    fmt = _output_format(kwargs)
    if isinstance(fmt, str):
        scalars[ga.GEN_AI_OUTPUT_TYPE] = "json" if fmt.startswith("json") else fmt
    encoding = _scalar(kwargs.get("encoding_format"))
    if target.kind == "embeddings" and isinstance(encoding, str):
        lists[ga.GEN_AI_REQUEST_ENCODING_FORMATS] = [encoding]
    if target.kind == "chat":
        scalars[oa.OPENAI_API_TYPE] = "chat_completions"
    elif target.kind == "responses":
        scalars[oa.OPENAI_API_TYPE] = "responses"
    return scalars, lists


# -- response side ------------------------------------------------------------------
def _set_usage(call: llmtel.LLMCall, usage: Any) -> None:
    if usage is None:
        return
    prompt = field(usage, "prompt_tokens")
    completion = field(usage, "completion_tokens")
    inp = prompt if prompt is not None else field(usage, "input_tokens")
    out = completion if completion is not None else field(usage, "output_tokens")
    in_details = field(usage, "prompt_tokens_details") or field(usage, "input_tokens_details")
    out_details = field(usage, "completion_tokens_details") or field(usage, "output_tokens_details")
    call.set_usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_input_tokens=field(in_details, "cached_tokens"),
        cache_creation_input_tokens=field(in_details, "cache_write_tokens"),
        reasoning_output_tokens=field(out_details, "reasoning_tokens"),
    )


class Tracker:
    """One instrumented call: its ``LLMCall``, context, and what its response said."""

    def __init__(self, target: Target, instance: Any, kwargs: dict[str, Any], settings: Settings) -> None:
        self.target = target
        self.settings = settings
        self.stream = kwargs.get("stream") is True
        host, port, client = _server(instance)
        provider = (
            AZURE_OPENAI
            if (
                (settings.azure_types and isinstance(client, settings.azure_types))
                or (host or "").endswith(".openai.azure.com")
            )
            else OPENAI
        )
        scalars, self._lists = _request_span_attributes(target, kwargs)
        self.call = llmtel.llm_call(
            provider=provider,
            model=_scalar(kwargs.get("model")),
            operation=target.operation,
            stream=self.stream,
            server_address=host,
            server_port=port,
            **scalars,
        )
        mode = _content.capture_mode()
        self.capture_span, self.capture_event = mode.on_span, mode.as_event
        self._kwargs = kwargs if (self.capture_span or self.capture_event) else None
        self._ctx = contextvars.copy_context()
        self._done = False
        # Stream state.
        self._model: Any = None
        self._id: Any = None
        self._usage: Any = None
        self._finish: dict[int, str] = {}
        self._text: dict[int, list[str]] = {}
        self._tools: dict[int, dict[int, dict[str, Any]]] = {}
        self._final: Any = None
        self._stream_error: str | None = None
        self._ctx.run(self.call.__enter__)
        if self._lists and self.call.span.is_recording():
            self.call.span.set_attributes(self._lists)

    # -- lifecycle --------------------------------------------------------------
    def attach(self) -> contextvars.Token[otel_context.Context] | None:
        """Make the call's span current in the caller's context (for the HTTP request)."""
        span = self.call.span
        if not span.get_span_context().is_valid:  # llmtel is off: keep the caller's own parent current
            return None
        return otel_context.attach(trace.set_span_in_context(span))

    def finish(self, exc: BaseException | None = None) -> None:
        """End the call once, recording what was seen."""
        if self._done:
            return
        self._done = True
        if self.stream:
            with guarded("llmtel_openai read stream"):
                self._apply_stream()
        if exc is not None:
            # The public class name (openai.RateLimitError), not the private module path.
            module = type(exc).__module__ or ""
            name = type(exc).__qualname__
            self.call.set_error(
                f"openai.{name}"
                if module.startswith("openai")
                else (name if module == "builtins" else f"{module}.{name}")
            )
        try:
            self._ctx.run(self.call.__exit__, type(exc) if exc else None, exc, exc.__traceback__ if exc else None)
        except RuntimeError as error:  # the private context is entered elsewhere (cannot happen in practice)
            report("llmtel_openai end call", error)

    def handle(self, result: Any) -> Any:
        """Record a finished request's result; streams come back wrapped."""
        if self.stream and self.settings.stream_types and isinstance(result, self.settings.stream_types):
            if hasattr(result, "__aiter__"):
                return AsyncStreamProxy(result, self)
            return StreamProxy(result, self)
        with guarded("llmtel_openai read response"):
            if self.settings.legacy_response and isinstance(result, self.settings.legacy_response):
                if not self.stream:  # with_raw_response: the body is read already; parse() caches its result
                    self.read(result.parse())  # type: ignore[attr-defined]
            elif not hasattr(result, "http_response"):  # with_streaming_response bodies are left unread
                self.read(result)
        self.finish()
        return result

    # -- reading -------------------------------------------------------------------
    def read(self, response: Any) -> None:
        """Read a complete (non-streamed) response."""
        call = self.call
        kind = self.target.kind
        if kind == "responses":
            self._read_response_object(response)
            return
        call.set_response_model(field(response, "model"))
        if kind != "embeddings":
            call.set_response_id(field(response, "id"))
            choices = field(response, "choices") or ()
            call.set_finish_reasons([r for r in (field(c, "finish_reason") for c in choices) if r])
            self._span_extras(response)
            if kind == "chat":
                self._output(_content.chat_output(choices))
            else:
                self._output(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": field(c, "text")}],
                            "finish_reason": field(c, "finish_reason"),
                        }
                        for c in choices
                    ]
                )
        else:
            data = field(response, "data") or ()
            vector = field(data[0], "embedding") if data else None
            if isinstance(vector, list) and call.span.is_recording():
                call.span.set_attribute(ga.GEN_AI_EMBEDDINGS_DIMENSION_COUNT, len(vector))
        _set_usage(call, field(response, "usage"))

    def _read_response_object(self, response: Any) -> None:
        call = self.call
        call.set_response_model(field(response, "model"))
        call.set_response_id(field(response, "id"))
        status = field(response, "status")
        incomplete = field(field(response, "incomplete_details"), "reason")
        if incomplete:
            call.set_finish_reasons([incomplete])
        elif status == "completed":
            call.set_finish_reasons(["stop"])
        error = field(response, "error")
        if error is not None or status == "failed":
            call.set_error(str(field(error, "code") or "response_failed"))
        self._span_extras(response)
        _set_usage(call, field(response, "usage"))
        self._output(_content.responses_output(response))

    def _span_extras(self, response: Any) -> None:
        span = self.call.span
        if not span.is_recording():
            return
        for key, attr in (
            ("service_tier", oa.OPENAI_RESPONSE_SERVICE_TIER),
            ("system_fingerprint", oa.OPENAI_RESPONSE_SYSTEM_FINGERPRINT),
        ):
            value = _scalar(field(response, key))
            if value is not None:
                span.set_attribute(attr, value)

    # -- streams -------------------------------------------------------------------
    def on_chunk(self, chunk: Any) -> None:
        """Time and read one streamed chunk/event."""
        if self.target.kind == "responses":
            kind = field(chunk, "type") or ""
            if kind.endswith(".delta"):
                self.call.mark_chunk()
            if kind in (
                "response.created",
                "response.in_progress",
                "response.completed",
                "response.incomplete",
                "response.failed",
            ):
                self._final = field(chunk, "response")
            elif kind == "error":
                self._stream_error = str(field(chunk, "code") or "error")
            return
        choices = field(chunk, "choices") or ()
        usage = field(chunk, "usage")
        if choices or usage is None:  # the trailing usage-only chunk carries no output
            self.call.mark_chunk()
        if usage is not None:
            self._usage = usage
        self._model = field(chunk, "model") or self._model
        self._id = field(chunk, "id") or self._id
        capture = self._kwargs is not None
        for choice in choices:
            index = field(choice, "index") or 0
            reason = field(choice, "finish_reason")
            if reason:
                self._finish[index] = reason
            if not capture:
                continue
            delta = field(choice, "delta")
            text = field(delta, "content") if delta is not None else field(choice, "text")
            if isinstance(text, str):
                self._text.setdefault(index, []).append(text)
            for call in field(delta, "tool_calls") or ():
                slot = self._tools.setdefault(index, {}).setdefault(
                    field(call, "index") or 0, {"type": "tool_call", "id": None, "name": None, "arguments": ""}
                )
                slot["id"] = field(call, "id") or slot["id"]
                function = field(call, "function")
                slot["name"] = field(function, "name") or slot["name"]
                slot["arguments"] += field(function, "arguments") or ""

    def _apply_stream(self) -> None:
        if self.target.kind == "responses":
            if self._final is not None:
                self._read_response_object(self._final)
            if self._stream_error is not None:
                self.call.set_error(self._stream_error)
            return
        self.call.set_response_model(self._model)
        self.call.set_response_id(self._id)
        self.call.set_finish_reasons([self._finish[i] for i in sorted(self._finish)])
        _set_usage(self.call, self._usage)
        if self._kwargs is not None:
            indexes = sorted(set(self._finish) | set(self._text) | set(self._tools))
            self._output(
                [
                    {
                        "role": "assistant",
                        "parts": ([{"type": "text", "content": "".join(self._text[i])}] if i in self._text else [])
                        + list(self._tools.get(i, {}).values()),
                        "finish_reason": self._finish.get(i),
                    }
                    for i in indexes
                ]
            )

    # -- content ---------------------------------------------------------------------
    def _output(self, output: list[dict[str, Any]]) -> None:
        kwargs = self._kwargs
        if kwargs is None:
            return
        kind = self.target.kind
        if kind == "responses":
            system, inputs = _content.responses_input(kwargs.get("input"), kwargs.get("instructions"))
        elif kind == "chat":
            system, inputs = _content.chat_input(kwargs.get("messages"))
        else:
            prompt = kwargs.get("prompt")
            system, inputs = (
                [],
                [{"role": "user", "parts": [{"type": "text", "content": prompt}]}] if isinstance(prompt, str) else [],
            )
        attributes: dict[str, Any] = {}
        if inputs:
            attributes[ga.GEN_AI_INPUT_MESSAGES] = _content.dumps(inputs)
        if output:
            attributes[ga.GEN_AI_OUTPUT_MESSAGES] = _content.dumps(output)
        if system:
            attributes[ga.GEN_AI_SYSTEM_INSTRUCTIONS] = _content.dumps(system)
        if not attributes:
            return
        span = self.call.span
        if self.capture_span and span.is_recording():
            span.set_attributes(attributes)
        event_logger = self.settings.event_logger
        if self.capture_event and event_logger is not None:
            event_attrs = {ga.GEN_AI_OPERATION_NAME: self.target.operation, **attributes}
            model = _scalar(kwargs.get("model"))
            if model is not None:
                event_attrs[ga.GEN_AI_REQUEST_MODEL] = model
            event_logger.emit(
                event_name=_content.EVENT_NAME,
                attributes=event_attrs,
                context=trace.set_span_in_context(span),
            )


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
        with guarded("llmtel_openai read chunk"):
            self._self_tracker.on_chunk(chunk)
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

    def __del__(self) -> None:
        try:
            self._self_tracker.finish()
        except Exception as error:  # a finalizer must never raise
            report("llmtel_openai finalize stream", error)


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
        with guarded("llmtel_openai read chunk"):
            self._self_tracker.on_chunk(chunk)
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

    def __del__(self) -> None:
        try:
            self._self_tracker.finish()
        except Exception as error:  # a finalizer must never raise
            report("llmtel_openai finalize stream", error)


# -- the wrappers ------------------------------------------------------------------
def _start(target: Target, instance: Any, kwargs: dict[str, Any], settings: Settings) -> Tracker | None:
    if _ACTIVE.get() or contrib_owns(instance, target.method):
        return None
    tracker = None
    with guarded("llmtel_openai start call"):  # telemetry must not stop the request
        tracker = Tracker(target, instance, kwargs, settings)
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
