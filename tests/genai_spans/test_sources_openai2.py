"""contrib's openai-v2 and openai-agents-v2 instrumentations, turned into llmtel metrics.

Both need ``openai<3`` (openai-v2 2.4b0 imports ``httpx`` through openai, which openai 3 no longer
uses), so they run in their own nox session, ``genai_sources_openai2`` (the `genai-sources-openai2`
extra), which ``nox -s tests`` queues after the main suite. Elsewhere these tests skip; the rules
they prove are also tested with spans under the same scopes in test_span_metrics.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from genai_readers import DURATION, TOKENS, Reading, span_ids, sse
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from llmtel._internal import errors
from llmtel.testing import Capture

openai_v2 = pytest.importorskip(
    "opentelemetry.instrumentation.openai_v2",
    reason="openai-v2 needs openai<3: run in the genai_sources_openai2 nox session",
    exc_type=ImportError,
)
import httpx  # noqa: E402
import openai  # noqa: E402

HANDLER_SCOPE = "opentelemetry.util.genai.handler"  # openai-v2 2.4b0 traces through opentelemetry-util-genai
AGENTS_SCOPE = "opentelemetry.instrumentation.openai_agents"


def _completion(n: int, message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {
        "id": f"c{n}",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
    }


def _chunks() -> bytes:
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18"}
    body = sse(
        [
            (None, {**base, "choices": [{"index": 0, "delta": {"content": "h"}, "finish_reason": None}]}),
            (None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            (None, {**base, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}),
        ]
    )
    return body + b"data: [DONE]\n\n"


def _handler(request: Any) -> Any:
    body = json.loads(request.content)
    if body.get("stream"):
        return httpx.Response(200, content=_chunks(), headers={"content-type": "text/event-stream"})
    if body.get("tools") and not any(m.get("role") == "tool" for m in body["messages"]):
        call = {"id": "t1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
        return httpx.Response(200, json=_completion(1, {"role": "assistant", "tool_calls": [call]}, "tool_calls"))
    return httpx.Response(200, json=_completion(2, {"role": "assistant", "content": "done"}, "stop"))


@pytest.fixture
def capture() -> Iterator[Capture]:
    errors.reset()
    c = Capture()
    yield c
    c.close()


@pytest.fixture
def openai_v2_on(capture: Capture) -> Iterator[None]:
    instrumentor = openai_v2.OpenAIInstrumentor()
    instrumentor.instrument(
        tracer_provider=capture.telemetry.tracer_provider, meter_provider=capture.telemetry.meter_provider
    )
    yield
    instrumentor.uninstrument()


def _chat(client: Any, **extra: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], **extra)


def test_openai_v2_spans_replace_its_own_metrics(capture: Capture, openai_v2_on: None) -> None:
    client = openai.OpenAI(api_key="k", http_client=httpx.Client(transport=httpx.MockTransport(_handler)))
    _chat(client)
    for _ in _chat(client, stream=True, stream_options={"include_usage": True}):
        pass
    reading = Reading(capture)
    assert reading.foreign() == set()  # openai-v2's own gen_ai.client.* dropped on llmtel's MeterProvider
    assert reading.count(gen_ai__provider__name="openai", gen_ai__response__model="gpt-4o-mini-2024-07-18") == 2
    assert reading.total(TOKENS, gen_ai__token__type="input") == 2 * 9
    assert reading.total(TOKENS, gen_ai__token__type="output") == 2 * 4
    assert reading.exemplar_ids(DURATION) and reading.exemplar_ids(DURATION) <= span_ids(capture, HANDLER_SCOPE)


def test_openai_v2_on_the_apps_meter_provider_keeps_its_own_metrics_only() -> None:
    reader = InMemoryMetricReader()
    app_meters = MeterProvider(metric_readers=[reader])
    capture = Capture(meter_provider=app_meters)
    instrumentor = openai_v2.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=capture.telemetry.tracer_provider, meter_provider=app_meters)
    try:
        client = openai.OpenAI(api_key="k", http_client=httpx.Client(transport=httpx.MockTransport(_handler)))
        for _ in range(3):
            _chat(client)
    finally:
        instrumentor.uninstrument()
        capture.close()
    data = reader.get_metrics_data()
    assert data is not None
    by_scope = {
        sm.scope.name: sum(p.count for p in m.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == DURATION
    }
    assert by_scope == {HANDLER_SCOPE: 3}  # a View cannot be added here: llmtel skips these spans instead
    app_meters.shutdown()


def test_openai_agents_with_openai_v2_counts_each_model_call_once(capture: Capture, openai_v2_on: None) -> None:
    import agents
    from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool
    from opentelemetry.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    agents.set_trace_processors([])  # no export to OpenAI's tracing backend
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument(
        tracer_provider=capture.telemetry.tracer_provider, meter_provider=capture.telemetry.meter_provider
    )

    @function_tool
    def lookup(q: str) -> str:
        """Look something up."""
        return "found"

    try:
        client = openai.AsyncOpenAI(
            api_key="k", http_client=httpx.AsyncClient(transport=httpx.MockTransport(_handler)), max_retries=0
        )
        model = OpenAIChatCompletionsModel(model="gpt-4o-mini", openai_client=client)
        result = Runner.run_sync(Agent(name="planner", instructions="x", tools=[lookup], model=model), "hello")
    finally:
        instrumentor.uninstrument()
    assert result.final_output == "done"
    agent_chats = [
        s for s in capture.spans() if s.instrumentation_scope.name == AGENTS_SCOPE and s.name.startswith("chat")
    ]
    assert len(agent_chats) == 2 and len(span_ids(capture, HANDLER_SCOPE)) == 2  # each model call traced twice, nested
    reading = Reading(capture)
    assert reading.foreign() == set()
    assert reading.count(gen_ai__operation__name="chat") == 2  # the innermost (openai-v2's) span of each call
    assert reading.count(gen_ai__response__model="gpt-4o-mini-2024-07-18") == 2
    assert reading.exemplar_ids() <= span_ids(capture, HANDLER_SCOPE)
    assert reading.count("llmtel.tool.duration", gen_ai__tool__name="lookup") == 1
    assert reading.count("llmtel.agent.duration", gen_ai__agent__name="planner") == 1
