"""The real GenAI span sources, run against fake HTTP transports, turned into llmtel metrics.

The Anthropic SDK's own tracing (sync, async, streaming), OpenLLMetry's Anthropic instrumentation
stacked on it, contrib's google-genai instrumentation and OpenLLMetry's Bedrock instrumentation
(which both record gen_ai.client.* themselves).
Versions: the `genai-sources` extra in pyproject.toml (docs/genai-spans.md lists them).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from genai_readers import DURATION, TOKENS, TTFC, Reading, span_ids, sse

from llmtel._internal import errors
from llmtel.testing import Capture

SKIP = "the genai-sources extra is not installed: run in the genai_sources nox session"
anthropic = pytest.importorskip("anthropic", reason=SKIP)
httpx2 = pytest.importorskip("httpx2", reason=SKIP)

ANTHROPIC_SDK = "com.anthropic.sdk.python"
OPENLLMETRY = "opentelemetry.instrumentation.anthropic"
PRICES = {"claude-sonnet-4-5-20250929": {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_creation": 3.75}}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 11, "output_tokens": 7, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2},
}
STREAM = sse(
    [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    **MESSAGE,
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": 11, "output_tokens": 1},
                },
            },
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "h"}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
)
ASK = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}


def _anthropic_handler(request: Any) -> Any:
    body = json.loads(request.content)
    if body.get("model") == "overloaded":
        return httpx2.Response(529, json={"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    if body.get("stream"):
        return httpx2.Response(200, content=STREAM, headers={"content-type": "text/event-stream"})
    return httpx2.Response(200, json=MESSAGE)


@pytest.fixture
def capture() -> Iterator[Capture]:
    errors.reset()
    c = Capture(price_table=PRICES)
    yield c
    c.close()


def _client(capture: Capture, *, asynchronous: bool = False) -> Any:
    options = {"tracer_provider": capture.telemetry.tracer_provider}
    transport = httpx2.MockTransport(_anthropic_handler)
    if asynchronous:
        return anthropic.AsyncAnthropic(
            api_key="k", http_client=httpx2.AsyncClient(transport=transport), max_retries=0, open_telemetry=options
        )
    return anthropic.Anthropic(
        api_key="k", http_client=httpx2.Client(transport=transport), max_retries=0, open_telemetry=options
    )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_anthropic_sdk_native_spans_sync_async_stream(capture: Capture) -> None:
    client = _client(capture)
    client.messages.create(**ASK)
    with client.messages.stream(**ASK) as stream:
        for _ in stream:
            pass
    for _ in client.messages.create(**ASK, stream=True):
        pass
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(**{**ASK, "model": "overloaded"})

    async def calls() -> None:
        aclient = _client(capture, asynchronous=True)
        await aclient.messages.create(**ASK)
        async with aclient.messages.stream(**ASK) as astream:
            async for _ in astream:
                pass

    asyncio.run(calls())
    reading = Reading(capture)
    assert reading.count(gen_ai__provider__name="anthropic", error__type=None) == 5
    assert reading.count(gen_ai__request__model="overloaded", error__type="overloaded_error") == 1
    assert reading.count() == 6
    ok = {"gen_ai.response.model": "claude-sonnet-4-5-20250929"}
    (point,) = [p for p in reading.of(DURATION) if dict(p.attributes).items() >= ok.items()]
    assert dict(point.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.response.model": "claude-sonnet-4-5-20250929",
        "server.address": "api.anthropic.com",
        "server.port": 443,
    }
    # Non-streamed calls report 16 input tokens (11 + cached 3 + 2), streamed ones 11 (the fake's message_start).
    assert reading.total(TOKENS, gen_ai__token__type="input") == 2 * 16 + 3 * 11
    assert reading.total(TOKENS, gen_ai__token__type="output") == 5 * 7
    assert reading.count(TTFC) == 3  # the three streams
    assert reading.total("llmtel.gen_ai.client.cost") > 0
    sdk_spans = span_ids(capture, ANTHROPIC_SDK)
    assert len(sdk_spans) == 6
    assert reading.exemplar_ids(DURATION) <= sdk_spans and reading.exemplar_ids(DURATION)
    assert reading.exemplar_ids(TTFC) <= sdk_spans and reading.exemplar_ids(TTFC)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_openllmetry_stacked_on_the_sdks_own_tracing_counts_each_call_once(capture: Capture) -> None:
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(
        tracer_provider=capture.telemetry.tracer_provider, meter_provider=capture.telemetry.meter_provider
    )
    try:
        client = _client(capture)
        client.messages.create(**ASK)
        for _ in client.messages.create(**ASK, stream=True):
            pass
        with pytest.raises(anthropic.APIStatusError):
            client.messages.create(**{**ASK, "model": "overloaded"})
    finally:
        instrumentor.uninstrument()
    assert len(span_ids(capture, OPENLLMETRY)) == 3  # both sources traced every call
    assert len(span_ids(capture, ANTHROPIC_SDK)) == 3
    reading = Reading(capture)
    assert reading.count() == 3
    assert reading.total(TOKENS, gen_ai__token__type="output") == 2 * 7
    assert reading.count(error__type="overloaded_error") == 1  # the SDK's error.type, OpenLLMetry's skipped
    assert reading.foreign() == set()  # OpenLLMetry's own gen_ai.client.* dropped on llmtel's provider
    assert reading.exemplar_ids() and reading.exemplar_ids() <= span_ids(capture, ANTHROPIC_SDK)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_openllmetry_alone_when_the_sdks_tracing_is_off(capture: Capture) -> None:
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(
        tracer_provider=capture.telemetry.tracer_provider, meter_provider=capture.telemetry.meter_provider
    )
    try:
        client = anthropic.Anthropic(
            api_key="k",
            http_client=httpx2.Client(transport=httpx2.MockTransport(_anthropic_handler)),
            open_telemetry=False,
        )
        client.messages.create(**ASK)
        client.messages.create(**ASK)
    finally:
        instrumentor.uninstrument()
    reading = Reading(capture)
    assert reading.count(gen_ai__provider__name="anthropic") == 2
    # OpenLLMetry's cache keys (cache_creation / cache_read) price the call like the SDK's own span does.
    want = 2 * ((11 * 3.0 + 3 * 0.3 + 2 * 3.75) + 7 * 15.0) / 1e6
    assert math.isclose(reading.total("llmtel.gen_ai.client.cost"), want)
    assert reading.exemplar_ids() and reading.exemplar_ids() <= span_ids(capture, OPENLLMETRY)


google_genai = pytest.importorskip("google.genai", reason=SKIP)
httpx = pytest.importorskip("httpx", reason=SKIP)

GEMINI = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 5, "thoughtsTokenCount": 2},
    "modelVersion": "gemini-2.5-flash-001",
    "responseId": "r1",
}


def _gemini_handler(request: Any) -> Any:
    url = str(request.url)
    if "streamGenerateContent" in url:
        body = "".join(f"data: {json.dumps(GEMINI)}\r\n\r\n" for _ in range(3))
        return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})
    if "embed" in url.lower():
        return httpx.Response(200, json={"embeddings": [{"values": [0.1, 0.2]}]})
    return httpx.Response(200, json=GEMINI)


def test_google_genai_contrib_spans_replace_its_own_metrics(capture: Capture) -> None:
    from google.genai import types
    from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor

    instrumentor = GoogleGenAiSdkInstrumentor()
    instrumentor.instrument(
        tracer_provider=capture.telemetry.tracer_provider, meter_provider=capture.telemetry.meter_provider
    )
    try:
        http = httpx.Client(transport=httpx.MockTransport(_gemini_handler))
        client = google_genai.Client(api_key="k", http_options=types.HttpOptions(httpx_client=http))
        client.models.generate_content(model="gemini-2.5-flash", contents="x")
        for _ in client.models.generate_content_stream(model="gemini-2.5-flash", contents="x"):
            pass
        client.models.embed_content(model="text-embedding-004", contents="x")
    finally:
        instrumentor.uninstrument()
    reading = Reading(capture)
    assert reading.foreign() == set()  # contrib records gen_ai.client.* itself: dropped, derived instead
    assert reading.count(gen_ai__operation__name="generate_content", gen_ai__provider__name="gemini") == 2
    assert reading.count(gen_ai__operation__name="embeddings", gen_ai__request__model="text-embedding-004") == 1
    assert reading.total(TOKENS, gen_ai__token__type="input") == 2 * 12
    assert reading.total(TOKENS, gen_ai__token__type="output") == 2 * 7  # candidates + thoughts
    assert reading.count(TTFC) == 1
    assert reading.exemplar_ids() == span_ids(capture, "opentelemetry.instrumentation.google_genai")


def test_openllmetry_bedrock_converse_through_botocores_stubber(capture: Capture) -> None:
    boto3 = pytest.importorskip("boto3", reason="the aws extra is not installed")
    from botocore.stub import Stubber
    from opentelemetry.instrumentation.bedrock import BedrockInstrumentor

    instrumentor = BedrockInstrumentor()
    instrumentor.instrument(
        tracer_provider=capture.telemetry.tracer_provider, meter_provider=capture.telemetry.meter_provider
    )
    try:
        client = boto3.client(
            "bedrock-runtime", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
        )
        with Stubber(client) as stub:  # botocore's own stub: no HTTP at all
            for _ in range(2):
                stub.add_response(
                    "converse",
                    {
                        "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
                        "stopReason": "end_turn",
                        "usage": {"inputTokens": 12, "outputTokens": 5, "totalTokens": 17},
                        "metrics": {"latencyMs": 100},
                    },
                )
                client.converse(
                    modelId="anthropic.claude-3-haiku-20240307-v1:0",
                    messages=[{"role": "user", "content": [{"text": "x"}]}],
                )
    finally:
        instrumentor.uninstrument()
    reading = Reading(capture)
    assert reading.foreign() == set()  # OpenLLMetry's own gen_ai.client.* (response model "") dropped
    want = {"gen_ai__provider__name": "aws.bedrock", "gen_ai__request__model": "claude-3-haiku-20240307-v1:0"}
    assert reading.count(gen_ai__operation__name="chat", **want) == 2
    assert reading.total(TOKENS, gen_ai__token__type="input") == 2 * 12
    assert reading.total(TOKENS, gen_ai__token__type="output") == 2 * 5
    assert reading.exemplar_ids() and reading.exemplar_ids() <= span_ids(
        capture, "opentelemetry.instrumentation.bedrock"
    )
