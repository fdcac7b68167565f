"""Server-role GenAI metrics for gRPC inference services.

``opentelemetry-instrumentation-grpc`` already makes the RPC spans; this package
adds, for the methods you name as inference methods, one
``llmtel.llm_call(role="server")`` per RPC, so the service gets
``gen_ai.server.request.duration``, ``gen_ai.server.time_to_first_token`` and
``gen_ai.server.time_per_output_token`` (server-streaming methods: the first
response message is the first token) plus token usage, with llmtel's span
nested under the gRPC server span::

    from llmtel_grpc import GrpcInferenceInstrumentor, InferenceMethod

    GrpcInferenceInstrumentor().instrument(methods={
        "/inference.Generator/Generate*": InferenceMethod(
            model="model", input_tokens="prompt_token_ids", output_tokens="token_ids"),
    })
    server = grpc.server(...)   # servers made after instrument() get the interceptor

Under ``opentelemetry-instrument`` (entry point ``llmtel_grpc``) the methods
come from ``LLMTEL_GRPC_INFERENCE_METHODS`` and the ``LLMTEL_GRPC_*_FIELD``
variables (docs/instrumentations.md). Or add :func:`server_interceptor` to a
server yourself.
"""

from __future__ import annotations

import asyncio
import contextvars
import fnmatch
import inspect
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

import llmtel
from llmtel.instrumentation import guarded

__all__ = [
    "AioInferenceServerInterceptor",
    "GrpcInferenceInstrumentor",
    "InferenceMethod",
    "InferenceServerInterceptor",
    "aio_server_interceptor",
    "server_interceptor",
]
__version__ = "0.1.0"

logger = logging.getLogger("llmtel_grpc")

_instruments = ("grpcio >= 1.60, < 2",)

# wrapt 2 types ObjectProxy as a generic; wrapt 1 cannot subscript it at run time.
if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy

#: A way to read a value from a protobuf message: a dotted field path (a repeated
#: field gives its length, so ``"token_ids"`` counts tokens) or a callable.
Reader = str | Callable[[Any], Any]


@dataclass(frozen=True)
class InferenceMethod:
    """How to read one inference method's messages.

    ``model`` and ``input_tokens`` are read from the request; when the request
    has no value they are read from response messages (the last one that has
    it wins), so servers that report usage at the end of a stream work too.
    ``output_tokens`` is read from each response message and summed, or — with
    ``cumulative_output_tokens`` — taken from the last message (a running
    total). Without ``output_tokens``, each streamed message counts as one
    token for ``gen_ai.server.time_per_output_token``.
    """

    model: Reader | None = "model"
    input_tokens: Reader | None = None
    output_tokens: Reader | None = None
    cumulative_output_tokens: bool = False
    provider: str | None = None
    operation: str = "chat"


def _read(message: Any, reader: Reader | None) -> Any:
    if reader is None or message is None:
        return None
    if callable(reader):
        return reader(message)
    value = message
    for part in reader.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    if isinstance(value, str | bytes | int | float):
        return value if value != "" else None
    try:
        return len(value)  # repeated field: its length
    except TypeError:
        return None


def _status_name(context: Any) -> str | None:
    code = getattr(context, "code", None)
    status = None
    with guarded("llmtel_grpc read status", expected=True):  # older grpc contexts have no code()
        status = code() if callable(code) else None
    name = getattr(status, "name", None)
    return None if name in (None, "OK") else str(name)


def _active(context: Any) -> bool:
    is_active = getattr(context, "is_active", None)
    active = True  # a context that cannot tell: assume active
    with guarded("llmtel_grpc read is_active", expected=True):
        active = bool(is_active()) if callable(is_active) else True
    return active


class _ServerCall:
    """One inference RPC: an ``LLMCall`` begun and ended in a private context copy."""

    def __init__(self, spec: InferenceMethod, method: str, request: Any, stream: bool) -> None:
        self.spec = spec
        self.request_model = _read(request, spec.model)
        self.input_tokens = _read(request, spec.input_tokens)
        self.output_tokens: int | None = None
        self.response_model: Any = None
        self.call = llmtel.llm_call(
            provider=spec.provider,
            model=self.request_model,
            operation=spec.operation,
            stream=stream,
            role="server",
            **{"rpc.system": "grpc", "rpc.method": method},
        )
        # Started detached: the span is made current only around the handler's own work (attach()),
        # never left current across a yield of a streaming handler.
        self.call.start(attach=False)
        self._done = False

    def attach(self) -> contextvars.Token[otel_context.Context] | None:
        span = self.call.span
        if not span.get_span_context().is_valid:  # llmtel is off: leave the RPC span current
            return None
        return otel_context.attach(trace.set_span_in_context(span))

    def on_response(self, response: Any, *, chunk: bool) -> None:
        if chunk:
            self.call.mark_chunk()
        with guarded("llmtel_grpc read response"):
            spec = self.spec
            if self.request_model is None:
                self.response_model = _read(response, spec.model) or self.response_model
            if spec.input_tokens is not None and self.input_tokens is None:
                self.input_tokens = _read(response, spec.input_tokens)
            if spec.output_tokens is not None:
                value = _read(response, spec.output_tokens)
                if isinstance(value, int | float):
                    if spec.cumulative_output_tokens:
                        self.output_tokens = int(value)
                    else:
                        self.output_tokens = (self.output_tokens or 0) + int(value)

    def finish(self, exc: BaseException | None, context: Any, error: str | None = None) -> None:
        if self._done:
            return
        self._done = True
        call = self.call
        with guarded("llmtel_grpc finish"):
            status = error or _status_name(context)
            if status is None and exc is None and not _active(context):
                status = "CANCELLED"  # the client went away (cancel, deadline) while the handler ran
            if status is not None:
                call.set_error(status)
            if self.response_model is not None:
                call.set_response_model(self.response_model)
            call.set_usage(input_tokens=self.input_tokens, output_tokens=self.output_tokens)
        if exc is not None:
            call.fail(exc)
        else:
            call.stop()


def _detach(token: contextvars.Token[otel_context.Context] | None) -> None:
    if token is not None:
        otel_context.detach(token)


def _wrap_unary(behavior: Callable[..., Any], spec: InferenceMethod, method: str) -> Callable[..., Any]:
    def unary(request: Any, context: Any) -> Any:
        call = None
        with guarded("llmtel_grpc start call"):
            call = _ServerCall(spec, method, request, stream=False)
        if call is None:
            return behavior(request, context)
        token = call.attach()
        try:
            response = behavior(request, context)
        except BaseException as exc:
            call.finish(exc, context)
            raise
        finally:
            _detach(token)
        call.on_response(response, chunk=False)
        call.finish(None, context)
        return response

    return unary


def _wrap_stream(behavior: Callable[..., Any], spec: InferenceMethod, method: str) -> Callable[..., Any]:
    def server_stream(request: Any, context: Any) -> Iterator[Any]:
        call = None
        with guarded("llmtel_grpc start call"):
            call = _ServerCall(spec, method, request, stream=True)
        if call is None:
            yield from behavior(request, context)
            return
        try:
            # The handler's own code runs with llmtel's span current (its spans nest under it),
            # but the span is never left attached across a yield.
            token = call.attach()
            try:
                responses = iter(behavior(request, context))
            finally:
                _detach(token)
            while True:
                token = call.attach()
                try:
                    response = next(responses)
                except StopIteration:
                    break
                finally:
                    _detach(token)
                call.on_response(response, chunk=True)
                yield response
        except GeneratorExit:
            # grpc closes the generator when the client cancels or the deadline passes.
            call.finish(None, context, error="CANCELLED")
            raise
        except BaseException as exc:
            call.finish(exc, context)
            raise
        call.finish(None, context)

    return server_stream


def _wrap_unary_async(behavior: Callable[..., Any], spec: InferenceMethod, method: str) -> Callable[..., Any]:
    async def unary(request: Any, context: Any) -> Any:
        call = None
        with guarded("llmtel_grpc start call"):
            call = _ServerCall(spec, method, request, stream=False)
        if call is None:
            return await behavior(request, context)
        token = call.attach()
        try:
            response = await behavior(request, context)
        except BaseException as exc:
            call.finish(exc, context, error="CANCELLED" if isinstance(exc, asyncio.CancelledError) else None)
            raise
        finally:
            _detach(token)
        call.on_response(response, chunk=False)
        call.finish(None, context)
        return response

    return unary


class _WritingContext(_Proxy):
    """A ``grpc.aio`` servicer context whose ``write()`` is timed (handlers that stream by writing)."""

    def __init__(self, context: Any, call: _ServerCall) -> None:
        super().__init__(context)
        self._self_call = call

    async def write(self, message: Any) -> None:
        await self.__wrapped__.write(message)
        self._self_call.on_response(message, chunk=True)


def _wrap_stream_async(behavior: Callable[..., Any], spec: InferenceMethod, method: str) -> Callable[..., Any]:
    if not inspect.isasyncgenfunction(behavior):
        # A coroutine handler that streams with ``await context.write(...)``.
        async def writer(request: Any, context: Any) -> Any:
            call = None
            with guarded("llmtel_grpc start call"):
                call = _ServerCall(spec, method, request, stream=True)
            if call is None:
                return await behavior(request, context)
            token = call.attach()
            try:
                result = await behavior(request, _WritingContext(context, call))
            except BaseException as exc:
                call.finish(exc, context, error="CANCELLED" if isinstance(exc, asyncio.CancelledError) else None)
                raise
            finally:
                _detach(token)
            call.finish(None, context)
            return result

        return writer

    async def server_stream(request: Any, context: Any) -> AsyncIterator[Any]:
        call = None
        with guarded("llmtel_grpc start call"):
            call = _ServerCall(spec, method, request, stream=True)
        if call is None:
            async for response in behavior(request, context):
                yield response
            return
        try:
            token = call.attach()
            try:
                responses = behavior(request, context).__aiter__()
            finally:
                _detach(token)
            while True:
                token = call.attach()
                try:
                    response = await responses.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    _detach(token)
                call.on_response(response, chunk=True)
                yield response
        except (GeneratorExit, asyncio.CancelledError):
            call.finish(None, context, error="CANCELLED")
            raise
        except BaseException as exc:
            call.finish(exc, context)
            raise
        call.finish(None, context)

    return server_stream


#: gRPC's own services (health checking, reflection, channelz): never inference methods, even when
#: a pattern such as ``/*`` or ``/grpc.*`` covers them. Naming one exactly still records it.
INFRASTRUCTURE_SERVICES: Final = ("/grpc.health.v1.Health/*", "/grpc.reflection.*", "/grpc.channelz.*")


class InferenceServerInterceptor:
    """A ``grpc.ServerInterceptor`` that records inference methods through llmtel.

    ``methods`` maps full method names (``/package.Service/Method``) or
    ``fnmatch`` patterns (``/package.Service/*``) to :class:`InferenceMethod`;
    a method (or pattern) mapped to ``None`` is excluded, so
    ``{"/inference.Generator/*": spec, "/inference.Generator/ListModels": None}``
    records every method of the service but one. An exact name wins over
    patterns, an exclusion over an inclusion. Only matched methods become
    ``gen_ai.server.*`` points; every other RPC passes through untouched (its
    server span and HTTP/RPC metrics stay the transport instrumentation's).
    Unary-unary and unary-stream methods are recorded; client-streaming and
    bidirectional methods pass through untouched.
    """

    def __init__(self, methods: Mapping[str, InferenceMethod | None]) -> None:
        exact = {k: v for k, v in methods.items() if not any(c in k for c in "*?[")}
        self._exact = exact
        self._patterns = [(k, v) for k, v in methods.items() if k not in exact and v is not None]
        self._excluded = [k for k, v in methods.items() if k not in exact and v is None]
        self._excluded.extend(INFRASTRUCTURE_SERVICES)
        self._cache: dict[str, InferenceMethod | None] = {}

    def match(self, method: str) -> InferenceMethod | None:
        """The spec for ``method``, or None when it is not an inference method."""
        if method in self._cache:
            return self._cache[method]
        if method in self._exact:
            spec = self._exact[method]
        elif any(fnmatch.fnmatchcase(method, pattern) for pattern in self._excluded):
            spec = None
        else:
            spec = next((v for pattern, v in self._patterns if fnmatch.fnmatchcase(method, pattern)), None)
        if len(self._cache) < 1024:  # method names are a small fixed set; the bound is a guard
            self._cache[method] = spec
        return spec

    def _wrap(self, handler: Any, handler_call_details: Any, *, aio: bool) -> Any:
        method = getattr(handler_call_details, "method", None) or ""
        spec = self.match(method) if handler is not None else None
        if spec is None or handler.request_streaming:
            return handler
        if handler.unary_stream is not None:
            wrap_stream = _wrap_stream_async if aio else _wrap_stream
            return handler._replace(unary_stream=wrap_stream(handler.unary_stream, spec, method))
        if handler.unary_unary is not None:
            wrap_unary = _wrap_unary_async if aio else _wrap_unary
            return handler._replace(unary_unary=wrap_unary(handler.unary_unary, spec, method))
        return handler

    def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        return self._wrap(continuation(handler_call_details), handler_call_details, aio=False)


class AioInferenceServerInterceptor(InferenceServerInterceptor):
    """The ``grpc.aio`` counterpart (async-generator handlers and handlers that ``await context.write()``)."""

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any) -> Any:
        return self._wrap(await continuation(handler_call_details), handler_call_details, aio=True)


def _interceptor_class() -> type:
    import grpc

    # Subclassed lazily so importing llmtel_grpc does not import grpc.
    return type("LlmtelInferenceInterceptor", (InferenceServerInterceptor, grpc.ServerInterceptor), {})


def server_interceptor(methods: Mapping[str, InferenceMethod | None]) -> Any:
    """An interceptor to pass to ``grpc.server(interceptors=[...])`` yourself."""
    return _interceptor_class()(methods)


def aio_server_interceptor(methods: Mapping[str, InferenceMethod | None]) -> Any:
    """An interceptor to pass to ``grpc.aio.server(interceptors=[...])`` yourself."""
    import grpc.aio

    cls = type("LlmtelAioInferenceInterceptor", (AioInferenceServerInterceptor, grpc.aio.ServerInterceptor), {})
    return cls(methods)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def methods_from_env(environ: Mapping[str, str] | None = None) -> dict[str, InferenceMethod | None]:
    """Inference methods from ``LLMTEL_GRPC_INFERENCE_METHODS`` and the ``LLMTEL_GRPC_*`` field variables.

    A name or pattern prefixed with ``!`` excludes those methods
    (``/inference.Generator/*,!/inference.Generator/ListModels``).
    """
    env = os.environ if environ is None else environ
    names = [m.strip() for m in env.get("LLMTEL_GRPC_INFERENCE_METHODS", "").split(",") if m.strip()]
    excluded = {n[1:].strip(): None for n in names if n.startswith("!")}
    names = [n for n in names if not n.startswith("!")]
    if not names:
        return {}
    spec = InferenceMethod(
        model=env.get("LLMTEL_GRPC_MODEL_FIELD", "model").strip() or None,
        input_tokens=env.get("LLMTEL_GRPC_INPUT_TOKENS_FIELD", "").strip() or None,
        output_tokens=env.get("LLMTEL_GRPC_OUTPUT_TOKENS_FIELD", "").strip() or None,
        cumulative_output_tokens=_truthy(env.get("LLMTEL_GRPC_OUTPUT_TOKENS_CUMULATIVE")),
        provider=env.get("LLMTEL_GRPC_PROVIDER", "").strip() or None,
        operation=env.get("LLMTEL_GRPC_OPERATION", "").strip() or "chat",
    )
    return {**dict.fromkeys(names, spec), **excluded}


class GrpcInferenceInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Adds llmtel's interceptor to every ``grpc.server()`` and ``grpc.aio.server()`` made after ``instrument()``.

    ``instrument(methods={...})`` names the inference methods; without it they
    come from the environment (:func:`methods_from_env`). The interceptor is
    appended after the application's and OpenTelemetry's interceptors, so
    llmtel's span nests under the gRPC server span whichever instrumentor ran
    first.
    """

    def __init__(self) -> None:
        self._patched: list[tuple[Any, str, Any, Any]] = []  # (module, name, original, replacement)

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _patch(self, module: Any, name: str, interceptor: Any) -> None:
        original = getattr(module, name)

        def server(*args: Any, **server_kwargs: Any) -> Any:
            if any(entry[3] is server for entry in self._patched):  # a pass-through once uninstrumented
                server_kwargs["interceptors"] = [*(server_kwargs.get("interceptors") or ()), interceptor]
            return original(*args, **server_kwargs)

        setattr(module, name, server)
        self._patched.append((module, name, original, server))

    def _instrument(self, **kwargs: Any) -> None:
        import grpc
        import grpc.aio

        methods = kwargs.get("methods")
        methods = dict(methods) if methods is not None else methods_from_env()
        if not methods:
            logger.info("llmtel_grpc: no inference methods configured (LLMTEL_GRPC_INFERENCE_METHODS); nothing to do")
            return
        self._patch(grpc, "server", server_interceptor(methods))
        self._patch(grpc.aio, "server", aio_server_interceptor(methods))

    def _uninstrument(self, **kwargs: Any) -> None:
        for module, name, original, replacement in reversed(self._patched):
            if getattr(module, name) is replacement:
                setattr(module, name, original)
            # Otherwise someone wrapped it after us: their wrapper stays, ours turns into a pass-through.
        self._patched = []
