"""The recording API: spans, metrics, exemplars, sync and async."""

from __future__ import annotations

import asyncio
import time

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from sdk_features import needs_gauge_last_value

import llmtel
from llmtel.testing import Capture

TTFC = "gen_ai.client.operation.time_to_first_chunk"
TPOC = "gen_ai.client.operation.time_per_output_chunk"
DURATION = "gen_ai.client.operation.duration"
TOKENS = "gen_ai.client.token.usage"


def _chunks(n: int, delay: float = 0.0):
    for i in range(n):
        if delay:
            time.sleep(delay)
        yield f"chunk{i}"


def test_streamed_call_records_ttfc_with_the_calls_exemplar(llmtel_capture: Capture) -> None:
    with llmtel.llm_call(provider="openai", model="gpt-4o-mini", operation="chat", stream=True) as call:
        seen = list(call.wrap_stream(_chunks(4, delay=0.01)))
        call.set_usage(input_tokens=812, output_tokens=96)
        call.set_response_model("gpt-4o-mini-2024-07-18")
        call.set_finish_reasons(["stop"])
    assert seen == ["chunk0", "chunk1", "chunk2", "chunk3"]

    (span,) = llmtel_capture.spans("chat gpt-4o-mini")
    assert span.kind is SpanKind.CLIENT
    assert span.attributes["gen_ai.provider.name"] == "openai"
    assert span.attributes["gen_ai.usage.output_tokens"] == 96
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)

    ttfc = llmtel_capture.point(TTFC)
    assert ttfc.count == 1
    assert 0.005 < ttfc.sum < 1.0
    (exemplar,) = [e for e in ttfc.exemplars]
    ctx = span.get_span_context()
    assert exemplar.trace_id == ctx.trace_id
    assert exemplar.span_id == ctx.span_id
    assert exemplar.value == pytest.approx(ttfc.sum)

    tpoc = llmtel_capture.point(TPOC)
    assert tpoc.count == 3  # one per chunk after the first
    assert tpoc.sum == pytest.approx(0.03, abs=0.02)
    attrs = dict(llmtel_capture.point(DURATION).attributes)
    assert attrs == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    }
    assert llmtel_capture.sum(TOKENS, {"gen_ai.token.type": "input"}) == 812
    assert llmtel_capture.sum(TOKENS, {"gen_ai.token.type": "output"}) == 96


def test_late_attributes_go_where_the_registry_allows(llmtel_capture: Capture) -> None:
    tier, fingerprint = "openai.response.service_tier", "openai.response.system_fingerprint"
    with llmtel.llm_call(provider="openai", model="m", stream=True) as call:
        call.mark_chunk()
        call.mark_chunk()
        call.set_usage(input_tokens=3, output_tokens=2)
        call.set_attributes({tier: "default", fingerprint: "fp_1", "app.note": "x", "app.none": None})
    late = {tier: "default", fingerprint: "fp_1"}
    (span,) = llmtel_capture.spans()
    assert {k: span.attributes[k] for k in (tier, fingerprint, "app.note")} == {**late, "app.note": "x"}
    assert "app.none" not in span.attributes
    # duration and token usage carry them (semconv openai.md: Recommended); chunk timings and cost do not
    assert dict(llmtel_capture.point(DURATION).attributes).items() >= late.items()
    for point in llmtel_capture.points(TOKENS):
        assert dict(point.attributes).items() >= late.items()
    for name in (TTFC, TPOC, "llmtel.gen_ai.client.cost"):
        for point in llmtel_capture.points(name):
            assert not set(point.attributes) & {tier, fingerprint, "app.note"}, name
    assert "app.note" not in llmtel_capture.point(DURATION).attributes  # not in any allowlist


def test_hand_driven_stream(llmtel_capture: Capture) -> None:
    with llmtel.llm_call(provider="p", model="m", stream=True) as call:
        time.sleep(0.02)
        call.mark_first_token()
        call.mark_first_token()  # ignored: already marked
        for _ in range(2):
            call.mark_chunk()
    assert llmtel_capture.point(TTFC).sum >= 0.02
    assert llmtel_capture.point(TPOC).count == 2


async def test_async_with_and_async_stream(llmtel_capture: Capture) -> None:
    async def agen():
        for i in range(3):
            await asyncio.sleep(0.005)
            yield i

    async with llmtel.llm_call(provider="anthropic", model="claude", stream=True) as call:
        assert trace.get_current_span() is call.span
        got = [chunk async for chunk in call.wrap_stream(agen())]
        call.set_usage(input_tokens=1, output_tokens=3)
    assert got == [0, 1, 2]
    ttfc = llmtel_capture.point(TTFC)  # one collection: the SDK hands out exemplars once
    assert ttfc.count == 1
    (span,) = llmtel_capture.spans("chat claude")
    assert ttfc.exemplars[0].span_id == span.get_span_context().span_id
    assert llmtel_capture.point(TPOC).count == 2


def test_exception_records_error_type_and_reraises(llmtel_capture: Capture) -> None:
    class RateLimited(Exception):
        pass

    with pytest.raises(RateLimited):
        with llmtel.llm_call(provider="openai", model="m"):
            raise RateLimited("429")
    point = llmtel_capture.point(DURATION)
    assert point.attributes["error.type"].endswith("RateLimited")
    (span,) = llmtel_capture.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"].endswith("RateLimited")
    assert [e.name for e in span.events] == ["exception"]


def test_spans_nest_and_are_current(llmtel_capture: Capture) -> None:
    tracer = llmtel_capture.telemetry.tracer_provider.get_tracer("app")
    with llmtel.agent("planner") as run:
        assert trace.get_current_span() is run.span
        with llmtel.tool("search") as t:
            assert trace.get_current_span() is t.span
            with tracer.start_as_current_span("app-work"):
                pass
        with llmtel.llm_call(provider="openai", model="m"):
            pass
    spans = {s.name: s for s in llmtel_capture.spans()}
    agent_id = spans["invoke_agent planner"].get_span_context().span_id
    assert spans["execute_tool search"].parent.span_id == agent_id
    assert spans["chat m"].parent.span_id == agent_id
    assert spans["app-work"].parent.span_id == spans["execute_tool search"].get_span_context().span_id
    # tool/agent durations never go into the inference-call histogram
    assert llmtel_capture.count(DURATION) == 1
    assert llmtel_capture.count("llmtel.tool.duration", {"gen_ai.tool.name": "search"}) == 1
    assert llmtel_capture.count("llmtel.agent.duration", {"gen_ai.agent.name": "planner"}) == 1


def test_tool_decorator_sync_async_and_errors(llmtel_capture: Capture) -> None:
    @llmtel.tool("calc")
    def add(a: int, b: int) -> int:
        return a + b

    @llmtel.tool("fetch")
    async def fetch() -> str:
        await asyncio.sleep(0)
        return "ok"

    @llmtel.tool("boom")
    def boom() -> None:
        raise ValueError("bad")

    assert add(2, 3) == 5 and add(1, 1) == 2
    assert asyncio.run(fetch()) == "ok"
    with pytest.raises(ValueError):
        boom()
    assert llmtel_capture.count("llmtel.tool.duration", {"gen_ai.tool.name": "calc"}) == 2
    assert llmtel_capture.count("llmtel.tool.duration", {"gen_ai.tool.name": "fetch"}) == 1
    failed = llmtel_capture.point("llmtel.tool.duration", {"gen_ai.tool.name": "boom"})
    assert failed.attributes["error.type"] == "ValueError"
    assert len(llmtel_capture.spans("execute_tool calc")) == 2


def test_retrieval_hit_at_k_and_mrr(llmtel_capture: Capture) -> None:
    for ranks in ([2, 5], [], [1], [9]):
        with llmtel.retrieval(data_source="kb", top_k=5) as r:
            r.set_documents(5)
            r.record_relevance(ranks)
    source = {"gen_ai.data_source.id": "kb"}
    assert llmtel_capture.count("llmtel.retrieval.duration", source) == 4
    assert llmtel_capture.sum("llmtel.retrieval.documents", source) == 20
    hits = llmtel_capture.sum("llmtel.retrieval.judged", {**source, "llmtel.retrieval.hit": "true"})
    misses = llmtel_capture.sum("llmtel.retrieval.judged", {**source, "llmtel.retrieval.hit": "false"})
    assert (hits, misses) == (2, 2)  # rank 9 is outside top_k=5
    rr = llmtel_capture.point("llmtel.retrieval.reciprocal_rank", source)
    assert rr.count == 4
    assert rr.sum == pytest.approx(0.5 + 0 + 1 + 1 / 9)
    span_attributes = llmtel_capture.spans("retrieval kb")[0].attributes
    assert span_attributes["gen_ai.request.top_k"] == 5
    # llmtel's own addition lives under llmtel.: the GenAI conventions define no documents count.
    assert span_attributes["llmtel.retrieval.documents.count"] == 5
    assert not any(key.startswith("gen_ai.retrieval") for key in span_attributes)


def test_server_role_records_server_metrics_only(llmtel_capture: Capture) -> None:
    with llmtel.llm_call(provider="vllm", model="llama", role="server", stream=True) as call:
        time.sleep(0.01)
        call.mark_first_token()
        for _ in range(4):
            time.sleep(0.002)
            call.mark_chunk()
        call.set_usage(input_tokens=10, output_tokens=5)
    assert llmtel_capture.spans()[0].kind is SpanKind.INTERNAL
    ttft_point = llmtel_capture.point("gen_ai.server.time_to_first_token")
    names = llmtel_capture.metric_names()
    assert {
        "gen_ai.server.request.duration",
        "gen_ai.server.time_to_first_token",
        "gen_ai.server.time_per_output_token",
    } <= names
    assert not {DURATION, TTFC, TPOC} & names
    (span,) = llmtel_capture.spans()
    assert ttft_point.exemplars[0].trace_id == span.get_span_context().trace_id
    duration = llmtel_capture.sum("gen_ai.server.request.duration")
    tpot = llmtel_capture.sum("gen_ai.server.time_per_output_token")
    assert tpot == pytest.approx((duration - ttft_point.sum) / 4)


@needs_gauge_last_value
def test_runtime_helpers(llmtel_capture: Capture) -> None:
    with llmtel.session("websocket"):
        assert llmtel_capture.sum("llmtel.sessions.active", {"llmtel.session.kind": "websocket"}) == 1
    assert llmtel_capture.sum("llmtel.sessions.active", {"llmtel.session.kind": "websocket"}) == 0
    with llmtel.queued("gpu-0") as ticket:
        assert llmtel_capture.sum("llmtel.queue.depth", {"llmtel.queue.name": "gpu-0"}) == 1
        time.sleep(0.01)
        wait = ticket.start()
    assert llmtel_capture.sum("llmtel.queue.depth", {"llmtel.queue.name": "gpu-0"}) == 0
    assert llmtel_capture.sum("llmtel.queue.wait") == pytest.approx(wait)
    llmtel.admission_rejected("gpu-0", "full")
    llmtel.set_circuit_breaker_state("openai", "open")
    llmtel.set_circuit_breaker_state("openai", "bogus")  # dropped, counted
    llmtel.rate_limit_wait(0.5, provider="openai", model="m")
    llmtel.cache_lookup("prompt", hit=True)
    llmtel.cache_lookup("prompt", hit=False)
    llmtel.cache_lookup("prompt", hit=True)
    with llmtel.model_load("llama"):
        pass
    assert llmtel_capture.sum("llmtel.admission.rejected", {"llmtel.reason": "full"}) == 1
    assert llmtel_capture.sum("llmtel.circuit_breaker.state", {"llmtel.circuit_breaker.name": "openai"}) == 2
    assert llmtel_capture.sum("llmtel.rate_limit.wait") == 0.5
    assert llmtel_capture.sum("llmtel.cache.requests", {"llmtel.cache.result": "hit"}) == 2
    assert llmtel_capture.sum("llmtel.cache.requests", {"llmtel.cache.result": "miss"}) == 1
    assert llmtel_capture.count("llmtel.model.load.duration", {"gen_ai.request.model": "llama"}) == 1
    assert llmtel_capture.sum("llmtel.sdk.problems", {"llmtel.problem": "invalid circuit breaker state"}) == 1


def test_unsampled_spans_give_no_exemplars() -> None:
    capture = Capture(traces_sampler="always_off")
    try:
        with llmtel.llm_call(provider="p", model="m", stream=True) as call:
            call.mark_chunk()
        assert capture.point(TTFC).exemplars == []
        assert capture.spans() == []
    finally:
        capture.close()


def test_exemplar_filter_always_off() -> None:
    capture = Capture(exemplar_filter="always_off")
    try:
        with llmtel.llm_call(provider="p", model="m", stream=True) as call:
            call.mark_chunk()
        assert capture.point(TTFC).exemplars == []
        assert len(capture.spans()) == 1
    finally:
        capture.close()


def test_usable_before_configure_records_nothing_and_never_raises() -> None:
    llmtel.shutdown()
    with llmtel.llm_call(provider="p", model="m", stream=True) as call:
        for _ in call.wrap_stream(range(3)):
            pass
        call.set_usage(input_tokens=1, output_tokens=2)
    assert call.time_to_first_chunk is not None


def test_a_detached_call_stopped_anywhere_keeps_its_exemplar(llmtel_capture: Capture) -> None:
    """The kit's explicit lifecycle: start(attach=False) ... stop() outside activated() still links the span."""
    from llmtel.instrumentation import llm_call

    call = llm_call(provider="openai", model="m", operation="chat").start(attach=False)
    assert trace.get_current_span() is not call.span  # never made current in the caller's context
    call.stop()
    call.stop()  # only the first finish counts
    span = llmtel_capture.spans()[0]
    point = llmtel_capture.point("gen_ai.client.operation.duration")
    assert point.count == 1
    assert [e.span_id for e in point.exemplars] == [span.context.span_id]


@pytest.mark.parametrize("sampled", [True, False])
def test_a_call_starts_in_the_current_context(llmtel_capture: Capture, sampled: bool) -> None:
    """The span's parent, the parent-based sampler's decision and the attribute block: all the caller's context."""
    flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else trace.TraceFlags.DEFAULT)
    parent = trace.SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=flags)
    with trace.use_span(trace.NonRecordingSpan(parent)), llmtel.attributes(team="search"):
        with llmtel.llm_call(provider="openai", model="m") as call:
            assert trace.get_current_span() is call.span
        detached = llmtel.llm_call(provider="openai", model="m").start(attach=False)
        assert trace.get_current_span().get_span_context() == parent
        detached.stop()
    spans = llmtel_capture.spans()
    if not sampled:
        assert spans == []
        return
    assert len(spans) == 2
    for span in spans:
        assert span.parent == parent
        assert span.context.trace_id == parent.trace_id
        assert span.attributes["team"] == "search"
    assert detached.span.get_span_context().span_id == spans[1].context.span_id
