"""llmtel_grpc with a real grpc server and client on 127.0.0.1, composed with opentelemetry-instrumentation-grpc.

The test service ``llmtel.test.Generator`` (messages from grpc_messages.py, no generated code) has a
unary ``Generate``, a server-streaming ``GenerateStream`` and a non-inference ``Health``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from grpc_messages import Request, Response
from llmtel_grpc import GrpcInferenceInstrumentor, InferenceMethod, methods_from_env, server_interceptor
from opentelemetry import propagate
from opentelemetry.instrumentation.grpc import GrpcInstrumentorServer
from opentelemetry.trace import SpanKind

import llmtel
from llmtel.testing import Capture

SERVICE = "/llmtel.test.Generator"
SERVER_DURATION = "gen_ai.server.request.duration"
TTFT = "gen_ai.server.time_to_first_token"
TPOT = "gen_ai.server.time_per_output_token"
TOKENS = "gen_ai.client.token.usage"
STEP = 0.02  # seconds between streamed messages


class Generator:
    """The servicer: two tokens per streamed message."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def generate(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.fail:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "no capacity")
        return Response(text="hi", token_ids=[1, 2, 3], model=f"{request.model}-v1")

    def generate_stream(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        if request.fail:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "no capacity")
        for i in range(request.max_tokens // 2):
            time.sleep(STEP)
            if not context.is_active():
                self.cancelled.set()
                return
            yield Response(text=f"t{i}", token_ids=[i, i])

    def health(self, request: Any, context: grpc.ServicerContext) -> Any:
        return Response(text="ok")


def _handlers(servicer: Generator) -> grpc.GenericRpcHandler:
    opts = {"request_deserializer": Request.FromString, "response_serializer": Response.SerializeToString}
    return grpc.method_handlers_generic_handler(
        "llmtel.test.Generator",
        {
            "Generate": grpc.unary_unary_rpc_method_handler(servicer.generate, **opts),
            "GenerateStream": grpc.unary_stream_rpc_method_handler(servicer.generate_stream, **opts),
            "Health": grpc.unary_unary_rpc_method_handler(servicer.health, **opts),
        },
    )


class Running:
    def __init__(self, server: grpc.Server, port: int, servicer: Generator) -> None:
        self.server, self.port, self.servicer = server, port, servicer
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")

    def unary(self, name: str, request: Any) -> Any:
        return self.channel.unary_unary(
            f"{SERVICE}/{name}", request_serializer=Request.SerializeToString, response_deserializer=Response.FromString
        )(request, timeout=5)

    def stream(self, request: Any) -> Any:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # what contrib's client interceptor would send
        return self.channel.unary_stream(
            f"{SERVICE}/GenerateStream",
            request_serializer=Request.SerializeToString,
            response_deserializer=Response.FromString,
        )(request, timeout=5, metadata=tuple(carrier.items()))


def _start() -> Running:
    servicer = Generator()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((_handlers(servicer),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return Running(server, port, servicer)


@pytest.fixture
def otel_grpc(llmtel_capture: Capture) -> Iterator[None]:
    """contrib's gRPC server instrumentation (RPC server spans, trace context from metadata)."""
    server = GrpcInstrumentorServer()
    # llmtel's provider is the global one only for the first configure() of the process.
    server.instrument(tracer_provider=llmtel_capture.telemetry.tracer_provider)
    try:
        yield
    finally:
        server.uninstrument()


METHODS = {
    f"{SERVICE}/Generate*": InferenceMethod(
        model="model", input_tokens="prompt_token_ids", output_tokens="token_ids", provider="llmtel-test"
    ),
}


@pytest.fixture
def service(otel_grpc: None, llmtel_capture: Capture) -> Iterator[Running]:
    instrumentor = GrpcInferenceInstrumentor()
    instrumentor.instrument(methods=METHODS)
    running = _start()
    try:
        yield running
    finally:
        running.channel.close()
        running.server.stop(None).wait(5)
        instrumentor.uninstrument()


def attrs(model: str = "tiny", response_model: str | None = None) -> dict[str, Any]:
    a = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "llmtel-test", "gen_ai.request.model": model}
    if response_model:
        a["gen_ai.response.model"] = response_model
    return a


def test_server_streaming_records_server_metrics(service: Running, llmtel_capture: Capture) -> None:
    with llmtel.agent("caller") as caller:
        replies = list(service.stream(Request(model="tiny", prompt_token_ids=[5, 6, 7, 8], max_tokens=10)))
    assert len(replies) == 5
    service.server.stop(None).wait(5)  # spans end on the server's threads

    llm = [s for s in llmtel_capture.spans() if s.name == "chat tiny"]
    assert len(llm) == 1
    span = llm[0]
    assert span.attributes["rpc.method"] == f"{SERVICE}/GenerateStream"
    assert span.attributes["gen_ai.usage.input_tokens"] == 4
    assert span.attributes["gen_ai.usage.output_tokens"] == 10
    # nested under contrib's RPC server span, which continues the caller's trace
    rpc_server = [s for s in llmtel_capture.spans() if s.kind is SpanKind.SERVER]
    assert len(rpc_server) == 1
    assert span.parent is not None and span.parent.span_id == rpc_server[0].context.span_id
    assert rpc_server[0].context.trace_id == caller.span.get_span_context().trace_id

    a = attrs()
    assert llmtel_capture.count(SERVER_DURATION, a) == 1
    assert llmtel_capture.count(TTFT, a) == 1
    assert llmtel_capture.count(TPOT, a) == 1
    duration = llmtel_capture.sum(SERVER_DURATION, a)
    ttft = llmtel_capture.sum(TTFT, a)
    assert STEP * 0.8 <= ttft < duration
    assert duration >= 5 * STEP * 0.8
    # (duration - ttft) / (output tokens - 1), from the token counts read off the messages
    assert llmtel_capture.sum(TPOT, a) == pytest.approx((duration - ttft) / 9, rel=0.2)
    assert llmtel_capture.sum(TOKENS, {**a, "gen_ai.token.type": "input"}) == 4
    assert llmtel_capture.sum(TOKENS, {**a, "gen_ai.token.type": "output"}) == 10
    assert "gen_ai.client.operation.duration" not in llmtel_capture.metric_names()


def test_unary_inference(service: Running, llmtel_capture: Capture) -> None:
    reply = service.unary("Generate", Request(model="tiny", prompt_token_ids=[1, 2]))
    assert reply.text == "hi"
    service.server.stop(None).wait(5)
    a = attrs()
    assert llmtel_capture.count(SERVER_DURATION, a) == 1
    assert TTFT not in llmtel_capture.metric_names()  # no stream, no first token
    assert llmtel_capture.sum(TOKENS, {**a, "gen_ai.token.type": "output"}) == 3


def test_non_inference_method_untouched(service: Running, llmtel_capture: Capture) -> None:
    assert service.unary("Health", Request()).text == "ok"
    service.server.stop(None).wait(5)
    assert SERVER_DURATION not in llmtel_capture.metric_names()
    assert [s.kind for s in llmtel_capture.spans()] == [SpanKind.SERVER]  # contrib's span only


def test_aborted_rpc_is_an_error(service: Running, llmtel_capture: Capture) -> None:
    with pytest.raises(grpc.RpcError) as info:
        list(service.stream(Request(model="tiny", fail=True, max_tokens=4)))
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    service.server.stop(None).wait(5)
    assert llmtel_capture.count(SERVER_DURATION, {**attrs(), "error.type": "RESOURCE_EXHAUSTED"}) == 1
    assert TTFT not in llmtel_capture.metric_names()  # only successful responses count


def test_client_cancels_stream(service: Running, llmtel_capture: Capture) -> None:
    call = service.stream(Request(model="tiny", max_tokens=400))
    next(call)
    call.cancel()  # grpc stops pulling from the handler's iterator and closes it
    deadline = time.time() + 5
    while "chat tiny" not in [s.name for s in llmtel_capture.spans()] and time.time() < deadline:
        time.sleep(0.05)
    span = next(s for s in llmtel_capture.spans() if s.name == "chat tiny")
    assert span.attributes["error.type"] == "CANCELLED"
    assert 2 <= span.attributes["gen_ai.usage.output_tokens"] < 400  # what was generated before the cancel


def test_response_model_read_from_responses(otel_grpc: None, llmtel_capture: Capture) -> None:
    instrumentor = GrpcInferenceInstrumentor()
    instrumentor.instrument(methods={f"{SERVICE}/Generate": InferenceMethod(model=lambda m: m.model or None)})
    running = _start()
    try:
        running.unary("Generate", Request(model="", prompt_token_ids=[1]))
        running.server.stop(None).wait(5)
    finally:
        running.channel.close()
        instrumentor.uninstrument()
    point = llmtel_capture.point(SERVER_DURATION, {"gen_ai.operation.name": "chat"})
    assert point.attributes["gen_ai.response.model"] == "-v1"


def test_configured_from_environment(llmtel_capture: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_GRPC_INFERENCE_METHODS", f"{SERVICE}/GenerateStream")
    monkeypatch.setenv("LLMTEL_GRPC_OUTPUT_TOKENS_FIELD", "token_ids")
    monkeypatch.setenv("LLMTEL_GRPC_INPUT_TOKENS_FIELD", "prompt_token_ids")
    monkeypatch.setenv("LLMTEL_GRPC_PROVIDER", "vllm")
    spec = methods_from_env()[f"{SERVICE}/GenerateStream"]
    assert (spec.model, spec.output_tokens, spec.provider) == ("model", "token_ids", "vllm")
    instrumentor = GrpcInferenceInstrumentor()
    instrumentor.instrument()  # no contrib instrumentation here: works on its own too
    running = _start()
    try:
        list(running.stream(Request(model="m", prompt_token_ids=[1, 2], max_tokens=4)))
        running.unary("Generate", Request(model="m"))  # not listed
        running.server.stop(None).wait(5)
    finally:
        running.channel.close()
        instrumentor.uninstrument()
    a = {"gen_ai.provider.name": "vllm", "gen_ai.request.model": "m"}
    assert llmtel_capture.count(SERVER_DURATION, a) == 1
    assert llmtel_capture.sum(TOKENS, {**a, "gen_ai.token.type": "output"}) == 4
    assert [s.name for s in llmtel_capture.spans()] == ["chat m"]


def test_uninstrumented_server_records_nothing(llmtel_capture: Capture) -> None:
    instrumentor = GrpcInferenceInstrumentor()
    instrumentor.instrument(methods=METHODS)
    instrumentor.uninstrument()
    running = _start()
    try:
        list(running.stream(Request(model="tiny", max_tokens=4)))
        running.server.stop(None).wait(5)
    finally:
        running.channel.close()
    assert SERVER_DURATION not in llmtel_capture.metric_names()


# -- grpc.aio servers -------------------------------------------------------------------------
class AioGenerator:
    """Async servicer: an async-generator stream, a write()-style stream and a unary method."""

    async def generate(self, request: Any, context: Any) -> Any:
        if request.fail:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "no capacity")
        return Response(text="hi", token_ids=[1, 2, 3])

    async def generate_stream(self, request: Any, context: Any) -> Any:
        for i in range(request.max_tokens // 2):
            await asyncio.sleep(STEP)
            yield Response(text=f"t{i}", token_ids=[i, i])

    async def generate_written(self, request: Any, context: Any) -> None:
        for i in range(request.max_tokens // 2):
            await asyncio.sleep(STEP)
            await context.write(Response(text=f"t{i}", token_ids=[i, i]))


@asynccontextmanager
async def _aio_server(capture: Capture, *, with_contrib: bool) -> AsyncIterator[Any]:
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer

    contrib = GrpcAioInstrumentorServer()
    if with_contrib:
        contrib.instrument(tracer_provider=capture.telemetry.tracer_provider)
    ours = GrpcInferenceInstrumentor()
    ours.instrument(methods={**METHODS, f"{SERVICE}/Written": METHODS[f"{SERVICE}/Generate*"]})
    servicer = AioGenerator()
    opts = {"request_deserializer": Request.FromString, "response_serializer": Response.SerializeToString}
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "llmtel.test.Generator",
                {
                    "Generate": grpc.unary_unary_rpc_method_handler(servicer.generate, **opts),
                    "GenerateStream": grpc.unary_stream_rpc_method_handler(servicer.generate_stream, **opts),
                    "Written": grpc.unary_stream_rpc_method_handler(servicer.generate_written, **opts),
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        await channel.close()
        await server.stop(None)
        ours.uninstrument()
        if with_contrib:
            contrib.uninstrument()


@pytest.fixture
async def aio_service(llmtel_capture: Capture) -> AsyncIterator[Any]:
    """A grpc.aio server with contrib's aio server instrumentation and llmtel_grpc."""
    async with _aio_server(llmtel_capture, with_contrib=True) as channel:
        yield channel


def _aio_stream(channel: Any, name: str, request: Any) -> Any:
    return channel.unary_stream(
        f"{SERVICE}/{name}", request_serializer=Request.SerializeToString, response_deserializer=Response.FromString
    )(request, timeout=5)


async def test_aio_async_generator_stream(aio_service: Any, llmtel_capture: Capture) -> None:
    replies = [r async for r in _aio_stream(aio_service, "GenerateStream", Request(model="tiny", max_tokens=8))]
    assert len(replies) == 4
    a = attrs()
    assert llmtel_capture.count(SERVER_DURATION, a) == 1
    assert llmtel_capture.count(TTFT, a) == 1
    assert llmtel_capture.count(TPOT, a) == 1
    assert llmtel_capture.sum(TOKENS, {**a, "gen_ai.token.type": "output"}) == 8
    assert STEP * 0.8 <= llmtel_capture.sum(TTFT, a)
    llm = [s for s in llmtel_capture.spans() if s.name == "chat tiny"]
    rpc = [s for s in llmtel_capture.spans() if s.kind is SpanKind.SERVER]
    assert len(llm) == 1 and len(rpc) == 1
    assert llm[0].parent is not None and llm[0].parent.span_id == rpc[0].context.span_id


async def test_aio_write_style_stream(llmtel_capture: Capture) -> None:
    # contrib's aio server interceptor only handles async-generator streams, so this runs without it.
    async with _aio_server(llmtel_capture, with_contrib=False) as channel:
        written = [r async for r in _aio_stream(channel, "Written", Request(model="tiny", max_tokens=6))]
    assert len(written) == 3
    a = attrs()
    assert llmtel_capture.count(TTFT, a) == 1
    assert llmtel_capture.count(TPOT, a) == 1
    assert llmtel_capture.sum(TOKENS, {**a, "gen_ai.token.type": "output"}) == 6


async def test_aio_unary_and_abort(aio_service: Any, llmtel_capture: Capture) -> None:
    unary = aio_service.unary_unary(
        f"{SERVICE}/Generate", request_serializer=Request.SerializeToString, response_deserializer=Response.FromString
    )
    assert (await unary(Request(model="tiny"), timeout=5)).text == "hi"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await unary(Request(model="tiny", fail=True), timeout=5)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    # The client has the status as soon as the server sends it; the server's handler ends its call after.
    deadline = time.time() + 5
    while [s.name for s in llmtel_capture.spans()].count("chat tiny") < 2 and time.time() < deadline:
        await asyncio.sleep(0.05)
    errors = {p.attributes.get("error.type"): p.count for p in llmtel_capture.points(SERVER_DURATION)}
    assert errors == {None: 1, "RESOURCE_EXHAUSTED": 1}
    assert TTFT not in llmtel_capture.metric_names()


async def test_aio_client_cancels(aio_service: Any, llmtel_capture: Capture) -> None:
    call = _aio_stream(aio_service, "GenerateStream", Request(model="tiny", max_tokens=400))
    await call.read()
    call.cancel()
    deadline = time.time() + 5
    while "chat tiny" not in [s.name for s in llmtel_capture.spans()] and time.time() < deadline:
        await asyncio.sleep(0.05)
    span = next(s for s in llmtel_capture.spans() if s.name == "chat tiny")
    assert span.attributes["error.type"] == "CANCELLED"
    assert 2 <= span.attributes["gen_ai.usage.output_tokens"] < 400


def test_wildcards_leave_non_llm_rpcs_alone(otel_grpc: None, llmtel_capture: Capture) -> None:
    """A pattern covering a whole service (or every service) records its inference methods only:
    an excluded method and gRPC's own health service stay plain RPCs, with no gen_ai.server points."""
    spec = InferenceMethod(model="model", output_tokens="token_ids", provider="llmtel-test")
    instrumentor = GrpcInferenceInstrumentor()
    instrumentor.instrument(methods={"/*": spec, f"{SERVICE}/Health": None})
    running = _start()
    opts = {"request_deserializer": Request.FromString, "response_serializer": Response.SerializeToString}
    health = Generator().health
    running.server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(health, **opts)}
            ),
        )
    )
    try:
        assert running.unary("Health", Request(model="probe")).text == "ok"
        checked = running.channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=Request.SerializeToString,
            response_deserializer=Response.FromString,
        )(Request(model="probe"), timeout=5)
        assert checked.text == "ok"
        running.unary("Generate", Request(model="tiny"))
        running.server.stop(None).wait(5)
    finally:
        running.channel.close()
        instrumentor.uninstrument()
    # Without the exclusions the two probes would be points of model "probe".
    points = llmtel_capture.points(SERVER_DURATION)
    assert [p.attributes["gen_ai.request.model"] for p in points] == ["tiny"]
    assert llmtel_capture.count(SERVER_DURATION, {"gen_ai.request.model": "tiny"}) == 1
    assert [s.name for s in llmtel_capture.spans() if s.kind is not SpanKind.SERVER] == ["chat tiny"]
    assert len([s for s in llmtel_capture.spans() if s.kind is SpanKind.SERVER]) == 3  # contrib: every RPC


def test_exclusions_from_environment() -> None:
    methods = methods_from_env({"LLMTEL_GRPC_INFERENCE_METHODS": f"{SERVICE}/*, !{SERVICE}/Health"})
    assert methods[f"{SERVICE}/Health"] is None and methods[f"{SERVICE}/*"] is not None
    interceptor = server_interceptor(methods)
    assert interceptor.match(f"{SERVICE}/Generate") is not None
    assert interceptor.match(f"{SERVICE}/Health") is None
    assert interceptor.match("/grpc.health.v1.Health/Check") is None
    # Naming gRPC's own service exactly still records it (the user asked for it).
    assert server_interceptor({"/grpc.health.v1.Health/Check": InferenceMethod()}).match("/grpc.health.v1.Health/Check")
