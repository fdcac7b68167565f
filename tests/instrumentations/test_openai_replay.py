"""llmtel_openai on recorded-style exchanges (tests/instrumentations/openai_replay.py), sync and async.

Every call shape of docs/instrumentations.md and every row of issue 15, through the
real ``openai`` client and its HTTP client's mock transport; captured content is
checked against the v1.41.0 message schemas' rules (genai_schema.py).
"""

from __future__ import annotations

import gc
import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any
from unittest.mock import ANY

import openai
import openai_replay as rp
import pytest
from genai_schema import CHECKS, check_input_messages, check_output_messages, check_tool_definitions
from opentelemetry.trace import StatusCode

import llmtel
from llmtel import semconv
from llmtel.testing import Capture

DURATION = "gen_ai.client.operation.duration"
TOKENS = "gen_ai.client.token.usage"
TTFC = "gen_ai.client.operation.time_to_first_chunk"
TPOC = "gen_ai.client.operation.time_per_output_chunk"
TIER = "openai.response.service_tier"
FINGERPRINT = "openai.response.system_fingerprint"
CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello!"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]

pytestmark = [
    pytest.mark.usefixtures("instrumented"),
    pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"]),
]


async def run(value: Any) -> Any:
    """The call's result, sync or async client alike."""
    return await value if inspect.isawaitable(value) else value


async def drain(stream: Any) -> list[Any]:
    if hasattr(stream, "__aiter__"):
        return [chunk async for chunk in stream]
    return list(stream)


@pytest.fixture
def capture_with() -> Iterator[Callable[..., Capture]]:
    """llmtel configured for one test with a content-capture mode (the argument, else the environment)."""
    made: list[Capture] = []

    def make(value: str | None = None) -> Capture:
        llmtel.shutdown()
        cap = Capture(capture_content=value) if value is not None else Capture()
        made.append(cap)
        return cap

    yield make
    for cap in made:
        cap.close()


def only_span(cap: Capture) -> Any:
    spans = cap.spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def content(span: Any) -> dict[str, Any]:
    """The captured content attributes of ``span``, parsed and checked against the schema rules."""
    found = {}
    for key, check in CHECKS.items():
        if key in span.attributes:
            found[key] = json.loads(span.attributes[key])
            check(found[key])
    return found


def point_attrs(cap: Capture, metric: str) -> list[dict[str, Any]]:
    return [dict(p.attributes) for p in cap.points(metric)]


# -- chat completions -----------------------------------------------------------------
async def test_chat_create_service_tier_and_fingerprint_on_metrics(is_async: bool, llmtel_capture: Capture) -> None:
    replay = rp.Replay(rp.chat({"model": rp.MODEL}))
    completion = await run(replay.client(is_async=is_async).chat.completions.create(model=rp.MODEL, messages=MESSAGES))
    assert completion.choices[0].message.content == "".join(rp.ANSWER)
    a = only_span(llmtel_capture).attributes
    assert a[TIER] == "default" and a[FINGERPRINT] == "fp_06737a9306"
    assert a["gen_ai.usage.cache_read.input_tokens"] == 8
    assert a["server.address"] == "api.openai.com" and a["server.port"] == 443
    # item 2: Recommended on both metrics (semconv openai.md)
    (duration,) = point_attrs(llmtel_capture, DURATION)
    assert duration[TIER] == "default" and duration[FINGERPRINT] == "fp_06737a9306"
    tokens = point_attrs(llmtel_capture, TOKENS)
    assert sorted(t[semconv.TOKEN_TYPE] for t in tokens) == ["input", "output"]
    assert all(t[TIER] == "default" and t[FINGERPRINT] == "fp_06737a9306" for t in tokens)
    assert TTFC not in llmtel_capture.metric_names()


async def test_chat_stream_reads_tier_fingerprint_and_uses_the_conventions_buckets(
    is_async: bool, llmtel_capture: Capture
) -> None:
    replay = rp.Replay(rp.chat_stream({"stream_options": {"include_usage": True}}))
    stream = await run(
        replay.client(is_async=is_async).chat.completions.create(
            model=rp.MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert isinstance(stream, openai.AsyncStream if is_async else openai.Stream)
    await drain(stream)
    a = only_span(llmtel_capture).attributes
    assert a[TIER] == "default" and a[FINGERPRINT] == "fp_44709d6fcb"  # item 3: from the chunks
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.output_tokens"] == len(rp.ANSWER)
    (ttfc,) = llmtel_capture.points(TTFC)  # the first collection: it holds the exemplars
    # the stream ended after create() returned, yet its samples link to the call's span
    assert [e.span_id for e in ttfc.exemplars] == [only_span(llmtel_capture).context.span_id]
    assert tuple(ttfc.explicit_bounds) == semconv.DURATION_BUCKETS  # item 10: 0.01 ... 81.92 s
    assert tuple(llmtel_capture.points(TPOC)[0].explicit_bounds) == semconv.DURATION_BUCKETS
    assert llmtel_capture.points(TPOC)[0].count == len(rp.ANSWER) + 1  # role, words, finish; not usage
    assert TIER not in ttfc.attributes  # chunk timings do not carry them (not in their allowlist)
    assert point_attrs(llmtel_capture, DURATION)[0][TIER] == "default"


async def test_chat_parse_and_stream_helper(is_async: bool, llmtel_capture: Capture) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        answer: str

    structured = rp.chat({"response_format": {"type": "json_schema", "json_schema": ANY}})
    structured.json_body["choices"][0]["message"]["content"] = json.dumps({"answer": "hi"})
    replay = rp.Replay(structured, rp.chat_stream())
    c = replay.client(is_async=is_async)
    parsed = await run(c.chat.completions.parse(model=rp.MODEL, messages=MESSAGES, response_format=Answer))
    assert parsed.choices[0].message.parsed == Answer(answer="hi")
    helper = c.chat.completions.stream(model=rp.MODEL, messages=MESSAGES)
    if is_async:
        async with helper as events:
            async for _ in events:
                pass
            final = await events.get_final_completion()
    else:
        with helper as events:
            for _ in events:
                pass
            final = events.get_final_completion()
    assert final.choices[0].message.content == "".join(rp.ANSWER)
    spans = llmtel_capture.spans()
    assert [s.attributes["gen_ai.output.type"] for s in spans[:1]] == ["json"]
    assert [s.attributes["gen_ai.request.stream"] for s in spans] == [False, True]
    assert spans[1].attributes["gen_ai.response.time_to_first_chunk"] > 0


# -- item 4: raw and streaming responses --------------------------------------------------
async def test_raw_response_stream_is_recorded_like_a_plain_stream(is_async: bool, llmtel_capture: Capture) -> None:
    replay = rp.Replay(rp.chat_stream({"stream_options": {"include_usage": True}}))
    raw = await run(
        replay.client(is_async=is_async).chat.completions.with_raw_response.create(
            model=rp.MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert raw.headers["x-request-id"] == "req_replay"
    assert llmtel_capture.spans() == []  # not ended at the headers
    stream = raw.parse()
    await drain(stream)
    span = only_span(llmtel_capture)
    a = span.attributes
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18" and a["gen_ai.response.id"] == "chatcmpl-123"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.output_tokens"] == len(rp.ANSWER)
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    assert llmtel_capture.points(TTFC)[0].count == 1 and llmtel_capture.points(TPOC)[0].count == len(rp.ANSWER) + 1
    assert {t[semconv.TOKEN_TYPE] for t in point_attrs(llmtel_capture, TOKENS)} == {"input", "output"}
    assert llmtel_capture.points(DURATION)[0].sum >= a["gen_ai.response.time_to_first_chunk"]


async def test_streaming_response_stream_and_body(is_async: bool, llmtel_capture: Capture) -> None:
    replay = rp.Replay(rp.chat_stream(), rp.chat())
    c = replay.client(is_async=is_async)
    if is_async:
        async with c.chat.completions.with_streaming_response.create(
            model=rp.MODEL, messages=MESSAGES, stream=True
        ) as r:
            await drain(await r.parse())
        async with c.chat.completions.with_streaming_response.create(model=rp.MODEL, messages=MESSAGES) as r:
            body = await r.parse()
    else:
        with c.chat.completions.with_streaming_response.create(model=rp.MODEL, messages=MESSAGES, stream=True) as r:
            list(r.parse())
        with c.chat.completions.with_streaming_response.create(model=rp.MODEL, messages=MESSAGES) as r:
            body = r.parse()
    assert body.usage.prompt_tokens == 19
    streamed, plain = llmtel_capture.spans()
    assert streamed.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert streamed.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert plain.attributes["gen_ai.usage.input_tokens"] == 19
    assert plain.attributes["gen_ai.response.id"] == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"


async def test_streaming_response_closed_unread_ends_the_call(is_async: bool, llmtel_capture: Capture) -> None:
    replay = rp.Replay(rp.chat())
    c = replay.client(is_async=is_async)
    if is_async:
        async with c.chat.completions.with_streaming_response.create(model=rp.MODEL, messages=MESSAGES) as r:
            assert r.status_code == 200
    else:
        with c.chat.completions.with_streaming_response.create(model=rp.MODEL, messages=MESSAGES) as r:
            assert r.status_code == 200
    span = only_span(llmtel_capture)  # ended by the close, without a body to read
    assert "gen_ai.usage.input_tokens" not in span.attributes
    assert span.status.status_code is StatusCode.UNSET


# -- items 5, 6, 9: content ----------------------------------------------------------------
async def test_content_system_message_stays_and_tools_are_defined(
    is_async: bool, capture_with: Callable[..., Capture]
) -> None:
    llmtel_capture = capture_with("span_only")
    replay = rp.Replay(rp.chat({"tools": TOOLS}, tool_call=True))
    await run(replay.client(is_async=is_async).chat.completions.create(model=rp.MODEL, messages=MESSAGES, tools=TOOLS))
    found = content(only_span(llmtel_capture))
    assert found["gen_ai.input.messages"][0] == {
        "role": "system",
        "parts": [{"type": "text", "content": "You are terse."}],
    }
    assert "gen_ai.system_instructions" not in found  # item 5
    assert found["gen_ai.tool.definitions"] == [  # item 9
        {
            "type": "function",
            "name": "get_weather",
            "description": "Current weather of a city",
            "parameters": TOOLS[0]["function"]["parameters"],
        }
    ]
    (output,) = found["gen_ai.output.messages"]
    assert output["finish_reason"] == "tool_calls"
    assert output["parts"] == [
        {"type": "tool_call", "id": "call_abc", "name": "get_weather", "arguments": '{"city":"Paris"}'}
    ]


async def test_abandoned_and_failed_streams_say_error(is_async: bool, capture_with: Callable[..., Capture]) -> None:
    llmtel_capture = capture_with("true")
    replay = rp.Replay(rp.chat_stream(), rp.chat_stream(cut_after=4))
    c = replay.client(is_async=is_async)
    stream = await run(c.chat.completions.create(model=rp.MODEL, messages=MESSAGES, stream=True))
    if is_async:
        async for _ in stream:
            break
        await stream.close()
    else:
        for _ in stream:
            break
        del stream
        gc.collect()
    stream = await run(c.chat.completions.create(model=rp.MODEL, messages=MESSAGES, stream=True))
    with pytest.raises(openai.APIError):
        await drain(stream)
    abandoned, failed = llmtel_capture.spans()
    for span in (abandoned, failed):
        (output,) = content(span)["gen_ai.output.messages"]  # the schema wants a string: "error", not null
        assert output["finish_reason"] == "error"
    assert failed.attributes["error.type"] == "openai.APIError"
    assert abandoned.status.status_code is StatusCode.UNSET


# -- item 7: Responses API ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        ({}, "stop"),
        ({"function_call": True}, "tool_calls"),
        ({"status": "incomplete", "incomplete": "max_output_tokens"}, "length"),
    ],
    ids=["text", "function_call", "incomplete"],
)
async def test_responses_finish_reasons_agree(
    is_async: bool, shape: dict[str, Any], reason: str, capture_with: Callable[..., Capture]
) -> None:
    llmtel_capture = capture_with("span_only")
    replay = rp.Replay(rp.responses({"instructions": "Be terse."}, **shape))
    c = replay.client(is_async=is_async)
    await run(c.responses.create(model="gpt-4.1", input="Weather in Paris?", instructions="Be terse."))
    span = only_span(llmtel_capture)
    assert span.attributes["gen_ai.response.finish_reasons"] == (reason,)
    found = content(span)
    assert [m["finish_reason"] for m in found["gen_ai.output.messages"]] == [reason]
    assert found["gen_ai.system_instructions"] == [{"type": "text", "content": "Be terse."}]  # given apart from input
    assert span.attributes["openai.api.type"] == "responses"


async def test_responses_parse_and_stream(is_async: bool, llmtel_capture: Capture) -> None:
    from pydantic import BaseModel

    class Weather(BaseModel):
        sky: str

    structured = rp.responses()
    structured.json_body["output"][0]["content"][0]["text"] = json.dumps({"sky": "clear"})
    replay = rp.Replay(structured, rp.responses_stream(), rp.responses_stream())
    c = replay.client(is_async=is_async)
    parsed = await run(c.responses.parse(model="gpt-4.1", input="Sky?", text_format=Weather))
    assert parsed.output_parsed == Weather(sky="clear")
    await drain(await run(c.responses.create(model="gpt-4.1", input="Hi", stream=True)))
    helper = c.responses.stream(model="gpt-4.1", input="Hi")
    if is_async:
        async with helper as events:
            await drain(events)
    else:
        with helper as events:
            list(events)
    spans = llmtel_capture.spans()
    assert spans[0].attributes["gen_ai.output.type"] == "json"
    for span in spans[1:]:
        assert span.attributes["gen_ai.usage.output_tokens"] == 87
        assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
        assert span.attributes[TIER] == "default"
    assert llmtel_capture.points(TPOC)[0].count == 2 * (len(rp.ANSWER) - 1)


# -- item 8: extra_body ---------------------------------------------------------------------
async def test_service_tier_through_extra_body(is_async: bool, llmtel_capture: Capture) -> None:
    replay = rp.Replay(rp.chat({"service_tier": "flex", "max_completion_tokens": 40}))
    await run(
        replay.client(is_async=is_async).chat.completions.create(
            model=rp.MODEL,
            messages=MESSAGES,
            max_tokens=10,
            extra_body={"service_tier": "flex", "max_completion_tokens": 40},
        )
    )
    a = only_span(llmtel_capture).attributes
    assert a["openai.request.service_tier"] == "flex"
    assert a["gen_ai.request.max_tokens"] == 40  # max_completion_tokens wins, and extra_body is sent last


# -- embeddings, legacy completions, n > 1 -----------------------------------------------------
async def test_embeddings_completions_and_choices(is_async: bool, llmtel_capture: Capture) -> None:
    replay = rp.Replay(rp.embeddings(), rp.completion(), rp.chat({"n": 2}, n=2))
    c = replay.client(is_async=is_async)
    await run(c.embeddings.create(model="text-embedding-3-small", input=["a", "b"], encoding_format="float"))
    await run(c.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say this is a test", max_tokens=7))
    await run(c.chat.completions.create(model=rp.MODEL, messages=MESSAGES, n=2))
    emb, text, chat = llmtel_capture.spans()
    assert emb.attributes["gen_ai.embeddings.dimension.count"] == 3
    assert emb.attributes["gen_ai.request.encoding_formats"] == ("float",)
    assert emb.attributes["gen_ai.usage.input_tokens"] == 8
    assert text.name == "text_completion gpt-3.5-turbo-instruct"
    assert text.attributes["gen_ai.response.finish_reasons"] == ("length",)
    assert chat.attributes["gen_ai.request.choice.count"] == 2
    assert chat.attributes["gen_ai.response.finish_reasons"] == ("stop", "stop")


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exchange", "exc", "error_type"),
    [
        (rp.model_not_found, openai.NotFoundError, "openai.NotFoundError"),
        (rp.rate_limited, openai.RateLimitError, "openai.RateLimitError"),
        (rp.connection_refused, openai.APIConnectionError, "openai.APIConnectionError"),
    ],
    ids=["404", "429", "connection"],
)
async def test_errors(is_async: bool, exchange: Any, exc: type, error_type: str, llmtel_capture: Capture) -> None:
    replay = rp.Replay(exchange())
    with pytest.raises(exc):
        await run(replay.client(is_async=is_async).chat.completions.create(model=rp.MODEL, messages=MESSAGES))
    span = only_span(llmtel_capture)
    assert span.attributes["error.type"] == error_type and span.status.status_code is StatusCode.ERROR
    (duration,) = point_attrs(llmtel_capture, DURATION)
    assert duration["error.type"] == error_type


# -- item 1: capture modes -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "on_span", "as_event"),
    [("span_only", True, False), ("event_only", False, True), ("SPAN_AND_EVENT", True, True), ("true", True, True),
     ("no_content", False, False), ("false", False, False)],
)  # fmt: skip
async def test_capture_modes(
    is_async: bool,
    value: str,
    on_span: bool,
    as_event: bool,
    capture_with: Callable[..., Capture],
    log_exporter: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CAPTURE, value)
    llmtel_capture = capture_with()  # configure() reads the variable
    replay = rp.Replay(rp.chat({"tools": TOOLS}))
    await run(replay.client(is_async=is_async).chat.completions.create(model=rp.MODEL, messages=MESSAGES, tools=TOOLS))
    span = only_span(llmtel_capture)
    assert ("gen_ai.output.messages" in span.attributes) is on_span
    records = [r.log_record for r in log_exporter.get_finished_logs()]
    assert len(records) == int(as_event)
    if as_event:
        attrs = json.loads(json.dumps(dict(records[0].attributes)))  # structured on events (tuples -> lists)
        check_input_messages(attrs["gen_ai.input.messages"])
        check_output_messages(attrs["gen_ai.output.messages"])
        check_tool_definitions(attrs["gen_ai.tool.definitions"])
        assert records[0].trace_id == span.context.trace_id


async def test_content_of_tool_turns_completions_and_embeddings(
    is_async: bool, capture_with: Callable[..., Capture]
) -> None:
    llmtel_capture = capture_with("span_only")
    turn = [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": '{"sky":"clear"}'},
    ]
    responses_tools = [
        {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
        {"type": "web_search"},
    ]
    replay = rp.Replay(rp.responses(), rp.completion(), rp.embeddings(1))
    c = replay.client(is_async=is_async)
    await run(c.responses.create(model="gpt-4.1", input=turn, tools=responses_tools))
    await run(c.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say this is a test"))
    await run(c.embeddings.create(model="text-embedding-3-small", input="secret text", encoding_format="float"))
    responses_span, completion_span, embeddings_span = llmtel_capture.spans()
    found = content(responses_span)
    assert [m["role"] for m in found["gen_ai.input.messages"]] == ["user", "assistant", "tool"]
    assert found["gen_ai.input.messages"][2]["parts"] == [
        {"type": "tool_call_response", "id": "call_1", "response": '{"sky":"clear"}'}
    ]
    assert [t["name"] for t in found["gen_ai.tool.definitions"]] == ["get_weather", "web_search"]
    found = content(completion_span)
    assert found["gen_ai.input.messages"] == [
        {"role": "user", "parts": [{"type": "text", "content": "Say this is a test"}]}
    ]
    assert found["gen_ai.output.messages"][0]["finish_reason"] == "length"
    assert not any(k.startswith("gen_ai.input") for k in embeddings_span.attributes)  # no messages in embeddings
