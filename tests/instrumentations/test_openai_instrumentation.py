"""llmtel_openai against the real ``openai`` client and a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import json
import time
from typing import Any

import openai
import pytest
from fake_openai import RETRY_AFTER, WORDS, FakeOpenAI
from llmtel_openai._wrappers import Tracker
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import HistogramDataPoint
from opentelemetry.trace import StatusCode

from llmtel import semconv
from llmtel._internal import errors
from llmtel.testing import Capture

DURATION = "gen_ai.client.operation.duration"
TOKENS = "gen_ai.client.token.usage"
TTFC = "gen_ai.client.operation.time_to_first_chunk"
TPOC = "gen_ai.client.operation.time_per_output_chunk"
COST = "llmtel.gen_ai.client.cost"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]

pytestmark = pytest.mark.usefixtures("instrumented")


def client(server: FakeOpenAI, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="test-key", **kwargs)


def aclient(server: FakeOpenAI, **kwargs: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="test-key", **kwargs)


def helpers(c: openai.OpenAI) -> Any:
    """Where .stream()/.parse() live: chat.completions, or beta.chat.completions before openai 1.92."""
    return c.chat.completions if hasattr(c.chat.completions, "stream") else c.beta.chat.completions


def only_span(cap: Capture) -> Any:
    spans = cap.spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def call_attrs(server: FakeOpenAI, model: str, response_model: str | None = None, operation: str = "chat") -> dict:
    attrs = {
        semconv.OPERATION_NAME: operation,
        semconv.PROVIDER_NAME: "openai",
        semconv.REQUEST_MODEL: model,
        semconv.SERVER_ADDRESS: "127.0.0.1",
        semconv.SERVER_PORT: server.port,
    }
    if response_model:
        attrs[semconv.RESPONSE_MODEL] = response_model
    return attrs


# -- chat completions -----------------------------------------------------------------
def test_chat_sync(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    completion = client(fake_openai).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=50, stop=["\n"], seed=7
    )
    assert completion.choices[0].message.content == "".join(WORDS)

    span = only_span(llmtel_capture)
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is trace.SpanKind.CLIENT
    a = span.attributes
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024"
    assert a["gen_ai.response.id"] == "chatcmpl-fake"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] == 11
    assert a["gen_ai.usage.output_tokens"] == len(WORDS)
    assert a["gen_ai.request.temperature"] == 0.2
    assert a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.request.seed"] == 7
    assert a["gen_ai.request.stop_sequences"] == ("\n",)
    assert a["gen_ai.request.stream"] is False
    assert a["server.address"] == "127.0.0.1"
    assert a["server.port"] == fake_openai.port
    assert a["openai.response.system_fingerprint"] == "fp_fake"
    assert a["openai.api.type"] == "chat_completions"
    assert "gen_ai.input.messages" not in a  # content is opt-in
    assert span.status.status_code is StatusCode.UNSET

    attrs = call_attrs(fake_openai, "gpt-4o-mini", "gpt-4o-mini-2024")
    # the duration sample links to the span (exemplars belong to the first collection only)
    point = llmtel_capture.point(DURATION, attrs)
    assert isinstance(point, HistogramDataPoint)
    assert any(e.trace_id == span.context.trace_id for e in point.exemplars), point.exemplars
    assert llmtel_capture.count(DURATION, attrs) == 1
    assert llmtel_capture.sum(TOKENS, {**attrs, "gen_ai.token.type": "input"}) == 11
    assert llmtel_capture.sum(TOKENS, {**attrs, "gen_ai.token.type": "output"}) == len(WORDS)
    for token_type in ("input", "output"):  # gpt-4o-mini is in the price table: cost split by token type
        assert llmtel_capture.sum(COST, {**attrs, "gen_ai.token.type": token_type}) > 0
    assert TTFC not in llmtel_capture.metric_names()  # not a stream


def test_chat_stream_with_usage_chunk(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    stream = client(fake_openai).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, openai.Stream)  # the proxy keeps the type
    assert trace.get_current_span() is trace.INVALID_SPAN  # llmtel's span is not left attached
    assert llmtel_capture.spans() == []  # still open while the stream is read
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "".join(WORDS)

    span = only_span(llmtel_capture)
    a = span.attributes
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.usage.input_tokens"] == 11  # from the include_usage chunk
    assert a["gen_ai.usage.output_tokens"] == len(WORDS)
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024"
    assert 0 < a["gen_ai.response.time_to_first_chunk"]

    attrs = call_attrs(fake_openai, "gpt-4o-mini", "gpt-4o-mini-2024")
    assert llmtel_capture.count(TTFC, attrs) == 1
    # role chunk + one per word + finish chunk are output chunks; the usage-only chunk is not
    assert llmtel_capture.count(TPOC, attrs) == len(WORDS) + 1
    assert llmtel_capture.sum(TOKENS, {**attrs, "gen_ai.token.type": "output"}) == len(WORDS)
    duration = llmtel_capture.sum(DURATION, attrs)
    assert duration >= llmtel_capture.sum(TTFC, attrs)


def test_chat_stream_without_usage(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    with client(fake_openai).chat.completions.create(model="local-llama", messages=MESSAGES, stream=True) as stream:
        assert stream.response.status_code == 200  # the openai Stream API still works
        list(stream)
    span = only_span(llmtel_capture)
    assert "gen_ai.usage.input_tokens" not in span.attributes
    assert TOKENS not in llmtel_capture.metric_names()
    assert llmtel_capture.count(TTFC, call_attrs(fake_openai, "local-llama", "local-llama-2024")) == 1


def test_chat_reasoning_and_cached_tokens(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    client(fake_openai).chat.completions.create(model="reasoner", messages=MESSAGES)
    a = only_span(llmtel_capture).attributes
    assert a["gen_ai.usage.cache_read.input_tokens"] == 4
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 2
    assert a["gen_ai.usage.reasoning.output_tokens"] == 3


async def test_chat_async(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    c = aclient(fake_openai)
    completion = await c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.usage is not None and completion.usage.total_tokens == 11 + len(WORDS)
    stream = await c.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, openai.AsyncStream)
    text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
    assert text == "".join(WORDS)
    spans = llmtel_capture.spans()
    assert [s.attributes["gen_ai.request.stream"] for s in spans] == [False, True]
    assert all(s.attributes["gen_ai.usage.output_tokens"] == len(WORDS) for s in spans)
    attrs = call_attrs(fake_openai, "gpt-4o-mini", "gpt-4o-mini-2024")
    assert llmtel_capture.count(DURATION, attrs) == 2
    assert llmtel_capture.count(TTFC, attrs) == 1


async def test_async_stream_abandoned_with_aclose(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    c = aclient(fake_openai)
    async with await c.chat.completions.create(model="trickle", messages=MESSAGES, stream=True) as stream:
        async for _chunk in stream:
            break
    span = only_span(llmtel_capture)
    assert span.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert "gen_ai.response.finish_reasons" not in span.attributes


# -- abandoned streams -----------------------------------------------------------------
def test_stream_abandoned_by_break_then_garbage_collected(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    started = time.perf_counter()
    stream = client(fake_openai).chat.completions.create(model="trickle", messages=MESSAGES, stream=True)
    for i, _chunk in enumerate(stream):
        if i == 2:
            break
    assert llmtel_capture.spans() == []
    del stream
    gc.collect()
    span = only_span(llmtel_capture)
    assert span.end_time is not None
    assert (span.end_time - span.start_time) / 1e9 < time.perf_counter() - started + 0.01
    attrs = call_attrs(fake_openai, "trickle", "trickle-2024")
    assert llmtel_capture.count(TTFC, attrs) == 1
    assert llmtel_capture.count(TPOC, attrs) == 2  # the three chunks seen
    assert span.status.status_code is StatusCode.UNSET  # abandoning is not an error of the call


def test_stream_abandoned_by_exception_and_close(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    stream = client(fake_openai).chat.completions.create(model="trickle", messages=MESSAGES, stream=True)
    with pytest.raises(ValueError), stream:
        for _chunk in stream:
            raise ValueError("consumer gave up")
    span = only_span(llmtel_capture)  # ended by the with-exit, not later
    assert span.attributes["gen_ai.response.model"] == "trickle-2024"
    stream.close()  # a second close is harmless
    assert len(llmtel_capture.spans()) == 1


def test_stream_error_mid_stream(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    stream = client(fake_openai).chat.completions.create(model="stream-error", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError, match="overloaded"):
        for _chunk in stream:
            pass
    span = only_span(llmtel_capture)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "openai.APIError"
    attrs = {**call_attrs(fake_openai, "stream-error", "stream-error-2024"), "error.type": "openai.APIError"}
    assert llmtel_capture.count(DURATION, attrs) == 1
    assert llmtel_capture.count(TTFC, attrs) == 1


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_failing_chunk_reader_is_counted_and_the_stream_goes_on(
    fake_openai: FakeOpenAI, llmtel_capture: Capture, monkeypatch: pytest.MonkeyPatch, is_async: bool
) -> None:
    def broken(self: Tracker, chunk: Any) -> None:
        raise RuntimeError("reader bug")

    monkeypatch.setattr(Tracker, "on_chunk", broken)
    with pytest.raises(RuntimeError, match="reader bug"):  # under tests an llmtel bug surfaces
        for _chunk in client(fake_openai).chat.completions.create(model="m", messages=MESSAGES, stream=True):
            pass
    monkeypatch.setenv("LLMTEL_RAISE_INTERNAL_ERRORS", "0")
    errors.reset()

    async def read_async() -> list[Any]:
        stream = await aclient(fake_openai).chat.completions.create(model="m", messages=MESSAGES, stream=True)
        return [chunk async for chunk in stream]

    if is_async:
        chunks = asyncio.run(read_async())
    else:
        chunks = list(client(fake_openai).chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "".join(WORDS)
    assert errors.problem_counts() == {"llmtel_openai read chunk": len(chunks)}
    assert llmtel_capture.spans()[-1].end_time is not None  # the call still ended


# -- helpers: raw responses, .stream(), .parse() ------------------------------------------
def test_with_raw_response(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    raw = client(fake_openai).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.headers["x-request-id"] == "req_fake"
    completion = raw.parse()
    assert completion.choices[0].message.content == "".join(WORDS)
    a = only_span(llmtel_capture).attributes
    assert a["gen_ai.usage.output_tokens"] == len(WORDS)
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024"


def test_with_streaming_response(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    with client(fake_openai).chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    ) as response:
        assert response.headers["x-request-id"] == "req_fake"
        completion = response.parse()
    assert completion.choices[0].message.content == "".join(WORDS)
    span = only_span(llmtel_capture)  # the body the caller's parse() read is recorded too
    assert span.name == "chat gpt-4o-mini"
    assert span.attributes["gen_ai.usage.output_tokens"] == len(WORDS)


def test_stream_helper(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    with helpers(client(fake_openai)).stream(
        model="gpt-4o-mini", messages=MESSAGES, stream_options={"include_usage": True}
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == "".join(WORDS)
    assert final.usage is not None and final.usage.prompt_tokens == 11
    a = only_span(llmtel_capture).attributes
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.usage.input_tokens"] == 11


def test_parse_structured_output(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        answer: str

    completion = helpers(client(fake_openai)).parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Answer)
    assert completion.choices[0].message.parsed == Answer(answer="".join(WORDS))
    a = only_span(llmtel_capture).attributes
    assert a["gen_ai.output.type"] == "json"
    assert a["gen_ai.usage.input_tokens"] == 11


# -- embeddings, completions, Responses API ------------------------------------------------
def test_embeddings(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    result = client(fake_openai).embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert result.data[1].embedding == [0.25, -0.5, 0.75, 1.0]
    span = only_span(llmtel_capture)
    assert span.name == "embeddings text-embedding-3-small"
    assert span.attributes["gen_ai.operation.name"] == "embeddings"
    assert span.attributes["gen_ai.usage.input_tokens"] == 8
    assert span.attributes["gen_ai.embeddings.dimension.count"] == 4
    attrs = call_attrs(fake_openai, "text-embedding-3-small", "text-embedding-3-small", operation="embeddings")
    assert llmtel_capture.sum(TOKENS, {**attrs, "gen_ai.token.type": "input"}) == 8
    assert llmtel_capture.count(DURATION, attrs) == 1


async def test_embeddings_async(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    await aclient(fake_openai).embeddings.create(model="text-embedding-3-small", input="a")
    assert only_span(llmtel_capture).attributes["gen_ai.usage.input_tokens"] == 4


def test_text_completions(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    client(fake_openai).completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hello", max_tokens=5)
    span = only_span(llmtel_capture)
    assert span.name == "text_completion gpt-3.5-turbo-instruct"
    assert span.attributes["gen_ai.response.finish_reasons"] == ("length",)


def test_responses_create(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    response = client(fake_openai).responses.create(model="reasoner", input="Say hello", max_output_tokens=64)
    assert response.output_text == "".join(WORDS)
    span = only_span(llmtel_capture)
    a = span.attributes
    assert span.name == "chat reasoner"
    assert a["openai.api.type"] == "responses"
    assert a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.response.id"] == "resp_fake"
    assert a["gen_ai.response.model"] == "reasoner-2024"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] == 9
    assert a["gen_ai.usage.cache_read.input_tokens"] == 4
    assert a["gen_ai.usage.reasoning.output_tokens"] == 3


def test_responses_stream_and_helper(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    c = client(fake_openai)
    events = list(c.responses.create(model="gpt-4o-mini", input="Say hello", stream=True))
    assert events[-1].type == "response.completed"
    with c.responses.stream(model="gpt-4o-mini", input="Say hello") as stream:
        for _event in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == "".join(WORDS)
    spans = llmtel_capture.spans()
    assert len(spans) == 2
    for span in spans:
        assert span.attributes["gen_ai.usage.output_tokens"] == len(WORDS)
        assert span.attributes["gen_ai.response.model"] == "gpt-4o-mini-2024"
    attrs = call_attrs(fake_openai, "gpt-4o-mini", "gpt-4o-mini-2024")
    assert llmtel_capture.count(TTFC, attrs) == 2
    assert llmtel_capture.count(TPOC, attrs) == 2 * (len(WORDS) - 1)  # one chunk per text delta


async def test_responses_async_stream(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    stream = await aclient(fake_openai).responses.create(model="gpt-4o-mini", input="Say hello", stream=True)
    kinds = [event.type async for event in stream]
    assert kinds[-1] == "response.completed"
    assert only_span(llmtel_capture).attributes["gen_ai.usage.input_tokens"] == 9


# -- errors, retries, timeouts -------------------------------------------------------------
def test_rate_limit_retried_then_success(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    before = len(fake_openai.requests)
    client(fake_openai, max_retries=2).chat.completions.create(model="rate-limited-once", messages=MESSAGES)
    assert len(fake_openai.requests) - before == 2  # 429, then the retry
    span = only_span(llmtel_capture)  # the retries are inside one call
    assert span.status.status_code is StatusCode.UNSET
    assert (span.end_time - span.start_time) / 1e9 >= RETRY_AFTER * 0.9  # Retry-After was honoured inside it
    assert llmtel_capture.count(DURATION, call_attrs(fake_openai, "rate-limited-once", "rate-limited-once-2024")) == 1


def test_rate_limit_error_without_retries(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    fake_openai._server.seen.pop("rate-limited-once", None)
    with pytest.raises(openai.RateLimitError):
        client(fake_openai, max_retries=0).chat.completions.create(model="rate-limited-once", messages=MESSAGES)
    span = only_span(llmtel_capture)
    assert span.attributes["error.type"] == "openai.RateLimitError"


def test_server_error(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    with pytest.raises(openai.InternalServerError):
        client(fake_openai, max_retries=0).chat.completions.create(model="broken", messages=MESSAGES)
    span = only_span(llmtel_capture)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "openai.InternalServerError"
    assert any(e.name == "exception" for e in span.events)
    attrs = {**call_attrs(fake_openai, "broken"), "error.type": "openai.InternalServerError"}
    assert llmtel_capture.count(DURATION, attrs) == 1
    assert TOKENS not in llmtel_capture.metric_names()


def test_timeout(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    with pytest.raises(openai.APITimeoutError):
        client(fake_openai, max_retries=0, timeout=0.2).chat.completions.create(model="slow", messages=MESSAGES)
    span = only_span(llmtel_capture)
    assert span.attributes["error.type"] == "openai.APITimeoutError"
    assert 0.15 < (span.end_time - span.start_time) / 1e9 < 1.0


async def test_timeout_async(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    with pytest.raises(openai.APITimeoutError):
        await aclient(fake_openai, max_retries=0, timeout=0.2).embeddings.create(model="slow", input="x")
    assert only_span(llmtel_capture).attributes["error.type"] == "openai.APITimeoutError"


# -- provider, content, parenting ------------------------------------------------------------
def test_azure_provider(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    azure = openai.AzureOpenAI(
        azure_endpoint=f"http://127.0.0.1:{fake_openai.port}", api_key="k", api_version="2024-10-21"
    )
    azure.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = only_span(llmtel_capture).attributes
    assert a["gen_ai.provider.name"] == "azure.ai.openai"
    assert a["server.port"] == fake_openai.port


def test_parent_span_and_no_leak(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    import llmtel

    with llmtel.agent("helper") as run:
        client(fake_openai).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert trace.get_current_span() is run.span
    chat = llmtel_capture.spans("chat gpt-4o-mini")[0]
    assert chat.parent is not None and chat.parent.span_id == run.span.get_span_context().span_id


def _reconfigured(monkeypatch: pytest.MonkeyPatch, variable: str | None, **options: Any) -> Capture:
    """A fresh configuration that sees OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=variable.

    The capture mode is resolved once, by configure(), not on every call.
    """
    import llmtel

    llmtel.shutdown()
    if variable is None:
        monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    else:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", variable)
    return Capture(**options)


def test_content_capture_opt_in(fake_openai: FakeOpenAI, log_exporter: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    llmtel_capture = _reconfigured(monkeypatch, "true")
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    stream = client(fake_openai).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, tools=tools, stream=True
    )
    for _chunk in stream:
        pass
    span = only_span(llmtel_capture)
    inputs = json.loads(span.attributes["gen_ai.input.messages"])
    # a system message in the chat history stays in the input messages (semconv v1.41.0)
    assert inputs == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]},
    ]
    assert "gen_ai.system_instructions" not in span.attributes
    assert json.loads(span.attributes["gen_ai.tool.definitions"]) == [
        {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    ]
    outputs = json.loads(span.attributes["gen_ai.output.messages"])
    assert outputs[0]["finish_reason"] == "tool_calls"
    assert outputs[0]["parts"][0] == {"type": "text", "content": "".join(WORDS)}
    assert outputs[0]["parts"][1] == {
        "type": "tool_call",
        "id": "call_1",
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    records = [r.log_record for r in log_exporter.get_finished_logs()]
    assert [r.event_name for r in records] == ["gen_ai.client.inference.operation.details"]
    assert records[0].trace_id == span.context.trace_id
    # events carry the structured form (the SDK stores sequences as tuples)
    assert json.loads(json.dumps(records[0].attributes["gen_ai.input.messages"])) == inputs
    llmtel_capture.close()


def test_content_not_captured_by_default(fake_openai: FakeOpenAI, llmtel_capture: Capture, log_exporter: Any) -> None:
    client(fake_openai).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert not any(k.startswith("gen_ai.input") for k in only_span(llmtel_capture).attributes)
    assert log_exporter.get_finished_logs() == ()


def test_uninstrument(fake_openai: FakeOpenAI, llmtel_capture: Capture, instrumented: Any) -> None:
    instrumented.uninstrument()
    client(fake_openai).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert llmtel_capture.spans() == []
    instrumented.instrument()
    client(fake_openai).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(llmtel_capture.spans()) == 1


def test_works_without_configure(fake_openai: FakeOpenAI) -> None:
    import llmtel

    llmtel.shutdown()
    completion = client(fake_openai).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.choices[0].message.content == "".join(WORDS)
    asyncio.run(aclient(fake_openai).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES))


# -- contrib's openai_v2 instrumentation also present: one wins, never both ----------------------
def _fake_contrib_wrapper(calls: list[str]) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        calls.append("contrib")
        return wrapped(*args, **kwargs)

    # What llmtel_openai looks for: a wrapt wrapper defined in contrib's package.
    wrapper.__module__ = "opentelemetry.instrumentation.openai_v2.patch"
    return wrapper


@pytest.mark.parametrize("contrib_first", [True, False], ids=["contrib-then-llmtel", "llmtel-then-contrib"])
def test_contrib_openai_v2_wins_whatever_the_order(
    fake_openai: FakeOpenAI, llmtel_capture: Capture, instrumented: Any, contrib_first: bool
) -> None:
    import wrapt
    from openai.resources.chat.completions import Completions
    from opentelemetry.instrumentation.utils import unwrap

    calls: list[str] = []
    if contrib_first:
        instrumented.uninstrument()
        wrapt.wrap_function_wrapper(Completions, "create", _fake_contrib_wrapper(calls))
        instrumented.instrument()  # llmtel's wrapper now outside contrib's
    else:
        wrapt.wrap_function_wrapper(Completions, "create", _fake_contrib_wrapper(calls))
    try:
        c = client(fake_openai)
        c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        c.embeddings.create(model="text-embedding-3-small", input="x")  # not wrapped by contrib
    finally:
        if contrib_first:
            instrumented.uninstrument()
            unwrap(Completions, "create")
            instrumented.instrument()
        else:
            unwrap(Completions, "create")
    assert calls == ["contrib"]
    assert [s.name for s in llmtel_capture.spans()] == ["embeddings text-embedding-3-small"]  # no llmtel chat span


def test_real_contrib_openai_v2_wins(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    contrib = pytest.importorskip(
        "opentelemetry.instrumentation.openai_v2",
        reason="openai-v2 not importable: not installed, or 2.4b0 missing httpx (openai 3 uses httpx2)",
    )
    instrumentor = contrib.OpenAIInstrumentor()
    instrumentor.instrument(
        tracer_provider=llmtel_capture.telemetry.tracer_provider,
        meter_provider=llmtel_capture.telemetry.meter_provider,
    )
    try:
        client(fake_openai).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        instrumentor.uninstrument()
    spans = llmtel_capture.spans()
    assert len(spans) == 1  # one span for the call: contrib's
    assert spans[0].instrumentation_scope.name != "llmtel"  # contrib's (its own or util-genai's scope)
    durations = llmtel_capture.points(DURATION)
    assert len(durations) == 1 and durations[0].count == 1  # recorded once, not twice


def _client_seeing_current_span(server: FakeOpenAI, seen: list[Any]) -> openai.OpenAI:
    import importlib

    # httpx (openai 1.x) or httpx2 (openai 3.x): whichever the installed client uses.
    httpx = importlib.import_module("httpx2" if importlib.util.find_spec("httpx2") else "httpx")
    http_client = httpx.Client(event_hooks={"request": [lambda request: seen.append(trace.get_current_span())]})
    return openai.OpenAI(base_url=server.base_url, api_key="k", http_client=http_client)


def test_span_current_during_http_request(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    seen: list[Any] = []
    _client_seeing_current_span(fake_openai, seen).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert [s.get_span_context().span_id for s in seen] == [only_span(llmtel_capture).context.span_id]


def test_app_parent_kept_when_llmtel_is_off(fake_openai: FakeOpenAI) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    import llmtel

    llmtel.shutdown()
    seen: list[Any] = []
    with TracerProvider().get_tracer("app").start_as_current_span("app-request") as app_span:
        _client_seeing_current_span(fake_openai, seen).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert seen == [app_span]


def test_output_type_from_request_formats(fake_openai: FakeOpenAI, llmtel_capture: Capture) -> None:
    c = client(fake_openai)
    c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, response_format={"type": "json_object"})
    c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, response_format={"type": "text"})
    c.responses.create(model="gpt-4o-mini", input="x", text={"format": {"type": "json_object"}})
    assert [s.attributes["gen_ai.output.type"] for s in llmtel_capture.spans()] == ["json", "text", "json"]


def test_content_via_llmtel_option_and_span_only(
    fake_openai: FakeOpenAI, log_exporter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmtel

    llmtel.shutdown()
    cap = Capture(capture_content=True)  # llmtel's own switch: span attributes and the event
    try:
        client(fake_openai).responses.create(model="gpt-4o-mini", input="Say hello", instructions="Be brief.")
        a = only_span(cap).attributes
        assert json.loads(a["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]}
        ]
        assert json.loads(a["gen_ai.output.messages"])[0]["parts"] == [{"type": "text", "content": "".join(WORDS)}]
        assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
        assert len(log_exporter.get_finished_logs()) == 1

        cap = _reconfigured(monkeypatch, "span_only")
        client(fake_openai).embeddings.create(model="text-embedding-3-small", input="x")  # no messages to capture
        client(fake_openai).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert "gen_ai.output.messages" in cap.spans()[-1].attributes
        assert len(log_exporter.get_finished_logs()) == 1  # span_only: no new event

        cap = _reconfigured(monkeypatch, "span_only", capture_content="false")  # the argument wins
        client(fake_openai).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert "gen_ai.output.messages" not in cap.spans()[-1].attributes
    finally:
        cap.close()


# -- the app's own dimensions ---------------------------------------------------------
def test_tenant_from_an_attributes_block_reaches_the_calls_metrics(fake_openai: FakeOpenAI) -> None:
    import llmtel

    capture = Capture(metric_attributes=["tenant"], default_prices=False)
    try:
        with llmtel.attributes(tenant="acme", route="/chat"):
            client(fake_openai).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        attrs = {**call_attrs(fake_openai, "gpt-4o-mini", "gpt-4o-mini-2024"), "tenant": "acme"}
        assert capture.count(DURATION, attrs) == 1
        assert capture.sum(TOKENS, {**attrs, "gen_ai.token.type": "output"}) == len(WORDS)
        assert "route" not in capture.point(DURATION, attrs).attributes  # not opted in: span only
        assert only_span(capture).attributes["route"] == "/chat"
    finally:
        capture.close()
