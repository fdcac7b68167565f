"""GenAI spans of other instrumentations become llmtel metrics: rules, dialects, exactly-once, sampling, bad input.

Spans here are made with the plain OpenTelemetry API under the instrumentation scopes and
attribute keys the real packages use (tests/genai_spans/test_sources.py runs the packages).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from sdk_features import needs_cardinality_limits

import llmtel
from llmtel._internal import errors
from llmtel.testing import Capture

DURATION = "gen_ai.client.operation.duration"
TOKENS = "gen_ai.client.token.usage"
TTFC = "gen_ai.client.operation.time_to_first_chunk"
COST = "llmtel.gen_ai.client.cost"
ANTHROPIC_SDK = "com.anthropic.sdk.python"
OPENLLMETRY_ANTHROPIC = "opentelemetry.instrumentation.anthropic"
PRICES = {"claude-test-1": {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_creation": 3.75}}


@pytest.fixture
def capture() -> Iterator[Capture]:
    errors.reset()
    c = Capture(price_table=PRICES)
    yield c
    c.close()


def _tracer(capture: Capture, scope: str) -> trace.Tracer:
    assert capture.telemetry.tracer_provider is not None
    return capture.telemetry.tracer_provider.get_tracer(scope)


def _sdk_chat(tracer: trace.Tracer, **extra: Any) -> trace.Span:
    """A span as the Anthropic SDK's own tracing writes it."""
    with tracer.start_as_current_span(
        "anthropic.messages.create",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-test",
            "server.address": "api.anthropic.com",
            "server.port": 443,
            "http.route": "/v1/messages",
        },
    ) as span:
        span.set_attributes(
            {
                "gen_ai.response.model": "claude-test-1",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 100,
                "gen_ai.usage.cache_read.input_tokens": 200,
                "gen_ai.usage.cache_write.input_tokens": 100,
                **extra,
            }
        )
        return span


def _count(capture: Capture, metric: str = DURATION) -> int:
    return sum(int(p.count) for p in capture.points(metric))


def test_a_foreign_chat_span_gives_duration_tokens_ttfc_cost_and_exemplars(capture: Capture) -> None:
    span = _sdk_chat(_tracer(capture, ANTHROPIC_SDK), **{"gen_ai.response.time_to_first_chunk": 0.25})
    want = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-test",
        "gen_ai.response.model": "claude-test-1",
        "server.address": "api.anthropic.com",
        "server.port": 443,
    }
    ttfc = capture.point(TTFC)  # first: a collection hands each exemplar out once
    (exemplar,) = ttfc.exemplars
    assert exemplar.span_id == span.get_span_context().span_id
    assert exemplar.trace_id == span.get_span_context().trace_id
    duration = capture.point(DURATION)
    assert dict(duration.attributes) == want  # allowlisted: no http.route, no usage attributes
    assert duration.count == 1
    assert capture.sum(TOKENS, {"gen_ai.token.type": "input"}) == 1000
    assert capture.sum(TOKENS, {"gen_ai.token.type": "output"}) == 100
    assert capture.sum(TTFC) == 0.25
    # 700 plain + 200 cache read + 100 cache write (the SDK's key) input, 100 output, per million tokens
    assert math.isclose(capture.sum(COST, {"gen_ai.token.type": "input"}), (700 * 3.0 + 200 * 0.3 + 100 * 3.75) / 1e6)
    assert math.isclose(capture.sum(COST, {"gen_ai.token.type": "output"}), 100 * 15.0 / 1e6)
    assert {p.attributes["llmtel.cost.source"] for p in capture.points(COST)} == {"price_table"}


def test_exemplars_link_to_the_genai_span_not_the_span_current_at_its_end(capture: Capture) -> None:
    tracer = _tracer(capture, ANTHROPIC_SDK)
    with tracer.start_as_current_span("request handler") as outer:
        span = tracer.start_span("anthropic.messages.create", attributes={"gen_ai.operation.name": "chat"})
        span.end()  # ended while "request handler" is current
    (exemplar,) = capture.point(DURATION).exemplars
    assert exemplar.span_id == span.get_span_context().span_id != outer.get_span_context().span_id


def test_opted_in_metric_attributes_come_from_the_span_or_the_block_it_ends_in() -> None:
    capture = Capture(metric_attributes=["tenant", "route"], price_table=PRICES)
    try:
        tracer = _tracer(capture, ANTHROPIC_SDK)
        with llmtel.attributes(tenant="from-block", route="/chat"):
            _sdk_chat(tracer, tenant="on-span")
            with tracer.start_as_current_span("execute_tool search", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}):  # fmt: skip
                pass
        assert capture.count(DURATION, {"tenant": "on-span", "route": "/chat"}) == 1
        assert capture.sum(COST, {"tenant": "on-span", "gen_ai.token.type": "output"}) > 0
        assert capture.count("llmtel.tool.duration", {"tenant": "from-block", "route": "/chat"}) == 1
    finally:
        capture.close()


def test_llmtel_own_calls_are_not_counted_again(capture: Capture) -> None:
    with llmtel.llm_call(provider="anthropic", model="claude-test") as call:
        call.set_usage(input_tokens=5, output_tokens=6)
        _sdk_chat(_tracer(capture, ANTHROPIC_SDK))  # the SDK's span inside llm_call: the same call
    assert _count(capture) == 1
    assert capture.sum(TOKENS, {"gen_ai.token.type": "input"}) == 5  # llm_call's, not the inner span's


def test_nested_calls_count_once_the_innermost(capture: Capture) -> None:
    outer_tracer = _tracer(capture, "opentelemetry.instrumentation.langchain")
    for _ in range(3):
        with outer_tracer.start_as_current_span(
            "ChatAnthropic.chat", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "outer"}
        ):
            with outer_tracer.start_as_current_span("a non-GenAI span between them"):
                _sdk_chat(_tracer(capture, ANTHROPIC_SDK))
    assert _count(capture) == 3
    assert capture.count(DURATION, {"gen_ai.request.model": "claude-test"}) == 3
    # The next call without nesting is counted again: the state of the last one is gone.
    with outer_tracer.start_as_current_span("chat", attributes={"gen_ai.operation.name": "chat"}):
        pass
    assert _count(capture) == 4


def test_agents_and_tools_around_calls_are_counted_besides_them(capture: Capture) -> None:
    tracer = _tracer(capture, "openai_agents")
    with tracer.start_as_current_span(
        "invoke_agent planner", attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}
    ):
        _sdk_chat(_tracer(capture, ANTHROPIC_SDK))
        with tracer.start_as_current_span(
            "execute_tool search", attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}
        ) as tool:
            tool.set_status(Status(StatusCode.ERROR))
        with tracer.start_as_current_span(
            "retrieval docs", attributes={"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "docs"}
        ):
            pass
    assert _count(capture) == 1
    assert capture.count("llmtel.agent.duration", {"gen_ai.agent.name": "planner"}) == 1
    assert capture.count("llmtel.tool.duration", {"gen_ai.tool.name": "search", "error.type": "_OTHER"}) == 1
    assert capture.count("llmtel.retrieval.duration", {"gen_ai.data_source.id": "docs"}) == 1


def test_openllmetry_beside_the_sdks_own_span_counts_once(capture: Capture) -> None:
    # OpenLLMetry's anthropic.chat span is started beside the SDK's span (not around it), and ends after it.
    for _ in range(2):
        sibling = _tracer(capture, OPENLLMETRY_ANTHROPIC).start_span(
            "anthropic.chat", attributes={"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic"}
        )
        _sdk_chat(_tracer(capture, ANTHROPIC_SDK))
        sibling.end()
    assert _count(capture) == 2


def test_openllmetry_alone_is_counted(capture: Capture) -> None:
    span = _tracer(capture, OPENLLMETRY_ANTHROPIC).start_span(
        "anthropic.chat", attributes={"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic"}
    )
    span.end()
    assert _count(capture) == 1


def test_older_dialects_are_normalised(capture: Capture) -> None:
    tracer = _tracer(capture, "traceloop.old")
    with tracer.start_as_current_span("openai.completion") as span:
        span.set_attributes(
            {
                "llm.request.type": "completion",
                "gen_ai.system": "OpenAI",
                "gen_ai.request.model": "gpt-x",
                "gen_ai.usage.prompt_tokens": 12,
                "gen_ai.usage.completion_tokens": 3,
            }
        )
    point = capture.point(DURATION)
    assert dict(point.attributes) == {
        "gen_ai.operation.name": "text_completion",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-x",
    }
    assert capture.sum(TOKENS, {"gen_ai.token.type": "input"}) == 12
    assert capture.sum(TOKENS, {"gen_ai.token.type": "output"}) == 3


def test_unknown_provider_and_model_are_omitted_and_errors_typed(capture: Capture) -> None:
    tracer = _tracer(capture, "x")
    with tracer.start_as_current_span("embed", attributes={"gen_ai.operation.name": "embeddings"}) as span:
        span.set_status(Status(StatusCode.ERROR))
    with tracer.start_as_current_span("chat", attributes={"gen_ai.operation.name": "chat"}) as span:
        span.set_attribute("error.type", "rate_limit_error")
    assert dict(capture.point(DURATION, {"gen_ai.operation.name": "embeddings"}).attributes) == {
        "gen_ai.operation.name": "embeddings",
        "error.type": "_OTHER",
    }
    assert capture.point(DURATION, {"gen_ai.operation.name": "chat"}).attributes["error.type"] == "rate_limit_error"
    assert capture.points(TOKENS) == [] and capture.points(COST) == []


def test_other_spans_and_other_operations_give_nothing(capture: Capture) -> None:
    tracer = _tracer(capture, "x")
    with tracer.start_as_current_span("GET /", attributes={"http.route": "/"}):
        pass
    with tracer.start_as_current_span("workflow", attributes={"gen_ai.operation.name": "invoke_workflow"}):
        pass
    with tracer.start_as_current_span("count", attributes={"gen_ai.provider.name": "anthropic"}):
        pass  # the Anthropic SDK's non-inference methods: a provider, no operation, no usage
    assert capture.points(DURATION) == []
    assert "genai span without operation" not in errors.problem_counts()


@needs_cardinality_limits
def test_junk_attributes_never_raise_never_grow_series_and_are_counted() -> None:
    errors.reset()
    capture = Capture(cardinality_limit=20)
    tracer = _tracer(capture, "junk")
    junk: list[dict[str, Any]] = [
        {"gen_ai.usage.input_tokens": -5, "gen_ai.usage.output_tokens": "12"},
        {"gen_ai.response.time_to_first_chunk": math.nan},
        {"gen_ai.response.time_to_first_chunk": -1.0},
        {"gen_ai.request.model": "m" * 10_000},
        {"gen_ai.request.model": ["a", "list"]},
        {"gen_ai.operation.name": 42},
        {"server.port": "443"},
    ]
    for attrs in junk:
        with tracer.start_as_current_span("junk", attributes={"gen_ai.operation.name": "chat", **attrs}):
            pass
    with tracer.start_as_current_span(
        "no operation", attributes={"gen_ai.system": "x", "gen_ai.usage.input_tokens": 1}
    ):
        pass
    for i in range(500):  # a model name per call: the cardinality limit holds
        with tracer.start_as_current_span("chat", attributes={"gen_ai.operation.name": "chat"}) as span:
            span.set_attribute("gen_ai.request.model", f"model-{i}")
    problems = errors.problem_counts()
    assert problems["invalid token count"] == 2
    assert problems["invalid duration"] == 2
    assert problems["attribute truncated"] == 1
    assert problems["invalid attribute type"] == 1
    assert problems["genai span without operation"] == 1
    models = {p.attributes.get("gen_ai.request.model") for p in capture.points(DURATION)}
    assert max(len(m or "") for m in models) == 128
    assert len(capture.points(DURATION)) <= 21  # 20 + the overflow series
    assert _count(capture) == len(junk) - 1 + 500  # operation 42 is no GenAI operation llmtel knows
    capture.close()


def test_traceidratio_sampling_does_not_thin_the_counts() -> None:
    capture = Capture(traces_sampler="traceidratio", traces_sampler_arg=0.1)
    tracer = _tracer(capture, ANTHROPIC_SDK)
    calls = 300
    spans = [_sdk_chat(tracer) for _ in range(calls)]
    sampled = {s.get_span_context().span_id for s in spans if s.get_span_context().trace_flags.sampled}
    assert 0 < len(sampled) < calls / 4
    points = capture.points(DURATION)  # one collection: exemplars and counts
    assert sum(p.count for p in points) == calls
    exemplar_spans = {e.span_id for p in points for e in p.exemplars}
    assert capture.sum(TOKENS, {"gen_ai.token.type": "output"}) == 100 * calls
    assert {s.context.span_id for s in capture.spans()} == sampled  # exported: the sampled spans only
    assert exemplar_spans and exemplar_spans <= sampled  # exemplars only from sampled spans
    store = capture.telemetry.trace_store
    assert store is not None and len(store.trace_ids()) == len(sampled)
    # Non-GenAI spans are still dropped as the sampler says.
    unrelated = [tracer.start_span("GET /") for _ in range(50)]
    assert sum(s.is_recording() for s in unrelated) < 25
    capture.close()


def test_nested_calls_stay_exact_when_the_parent_trace_is_dropped() -> None:
    capture = Capture(traces_sampler="parentbased_traceidratio", traces_sampler_arg=0.0)
    outer_tracer = _tracer(capture, "opentelemetry.instrumentation.langchain")
    for _ in range(5):
        with outer_tracer.start_as_current_span("request"):  # dropped, not recorded
            with outer_tracer.start_as_current_span("chain", attributes={"gen_ai.operation.name": "chat"}):
                with outer_tracer.start_as_current_span("httpx"):  # inside a call: recorded for nesting
                    _sdk_chat(_tracer(capture, ANTHROPIC_SDK))
    assert _count(capture) == 5
    assert capture.spans() == []
    capture.close()


def test_option_off_derives_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_GENAI_SPAN_METRICS", "false")
    capture = Capture()
    assert capture.telemetry.span_metrics is None
    _sdk_chat(_tracer(capture, ANTHROPIC_SDK))
    assert capture.points(DURATION) == []
    capture.close()
    with pytest.raises(llmtel.ConfigurationError, match="LLMTEL_GENAI_SPAN_METRICS"):
        monkeypatch.setenv("LLMTEL_GENAI_SPAN_METRICS", "maybe")
        llmtel.configure(metrics_exporter="none")


def test_other_meters_same_named_metrics_are_dropped_on_llmtels_provider(capture: Capture) -> None:
    assert capture.telemetry.meter_provider is not None
    meter = capture.telemetry.meter_provider.get_meter("opentelemetry.instrumentation.openai_v2")
    meter.create_histogram(DURATION, unit="s").record(1.0, {"gen_ai.operation.name": "chat"})
    meter.create_histogram("gen_ai.client.other").record(1.0)  # other names are left alone
    span = _tracer(capture, "opentelemetry.instrumentation.openai_v2").start_span(
        "chat gpt", attributes={"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
    )
    span.end()
    with llmtel.llm_call(provider="openai", model="m"):
        pass
    data = capture.reader.get_metrics_data()
    assert data is not None
    scopes = {(sm.scope.name, m.name) for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert ("opentelemetry.instrumentation.openai_v2", DURATION) not in scopes
    assert ("opentelemetry.instrumentation.openai_v2", "gen_ai.client.other") in scopes
    assert _count(capture) == 2  # the openai-v2 span (derived) and llm_call


def test_on_the_apps_meter_provider_sources_with_own_metrics_are_skipped() -> None:
    reader = InMemoryMetricReader()
    app_meters = MeterProvider(metric_readers=[reader])
    capture = Capture(meter_provider=app_meters, tracer_provider=TracerProvider())
    span = _tracer(capture, "opentelemetry.instrumentation.openai_v2").start_span(
        "chat", attributes={"gen_ai.operation.name": "chat"}
    )
    span.end()  # openai-v2 records its own gen_ai.client.* here: llmtel must not add a second count
    _sdk_chat(_tracer(capture, ANTHROPIC_SDK))  # the SDK records no metrics: derived
    data = reader.get_metrics_data()
    assert data is not None
    counts = [
        p.count
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == DURATION
        for p in m.data.data_points
    ]
    assert counts == [1]
    capture.close()
    app_meters.shutdown()


def test_a_joined_tracer_provider_stops_deriving_after_shutdown() -> None:
    provider = TracerProvider()
    first = Capture(tracer_provider=provider)
    first.close()
    second = Capture(tracer_provider=provider)  # a second processor on the same provider
    _sdk_chat(provider.get_tracer(ANTHROPIC_SDK))
    assert _count(second) == 1
    second.close()


def test_the_global_api_providers_are_left_alone() -> None:
    # Deriving needs no global provider: the processor is on the provider configure() built or joined.
    capture = Capture()
    assert isinstance(metrics.get_meter_provider(), object)
    _sdk_chat(_tracer(capture, ANTHROPIC_SDK))
    assert _count(capture) == 1
    capture.close()


def test_an_outer_call_span_that_says_so_only_at_its_end_is_not_counted(capture: Capture) -> None:
    tracer = _tracer(capture, "late.framework")
    for _ in range(2):
        with tracer.start_as_current_span("llm") as outer:  # no GenAI attribute when it starts
            with tracer.start_as_current_span("step"):
                _sdk_chat(_tracer(capture, ANTHROPIC_SDK))
            outer.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.request.model": "outer"})
    assert _count(capture) == 2
    assert capture.count(DURATION, {"gen_ai.request.model": "claude-test"}) == 2


def test_calls_inside_llmtel_retrieval_tool_agent_or_server_spans_are_counted(capture: Capture) -> None:
    with llmtel.retrieval(data_source="docs"):
        _sdk_chat(_tracer(capture, ANTHROPIC_SDK))  # e.g. an embeddings or rerank call inside the retrieval
    with llmtel.agent("planner"), llmtel.tool("search"):
        _sdk_chat(_tracer(capture, ANTHROPIC_SDK))
    with llmtel.llm_call(provider="vllm", model="served", role="server"):
        _sdk_chat(_tracer(capture, ANTHROPIC_SDK))  # a server handler calling a provider: a client call
    assert capture.count(DURATION, {"gen_ai.provider.name": "anthropic"}) == 3


def test_repeated_calls_share_their_cleaned_attributes_but_junk_is_counted_every_time(capture: Capture) -> None:
    tracer = _tracer(capture, ANTHROPIC_SDK)
    for _ in range(3):  # cleaned attributes are remembered per raw values, but never a value cleaning changed
        _sdk_chat(tracer, **{"gen_ai.response.model": "m" * 200})
    assert errors.problem_counts()["attribute truncated"] == 3
    # Equal as dictionary keys, not as attributes: only the int is a server.port (as on the uncached path).
    for port in (8443, 8443.0, True, 8443):
        with tracer.start_as_current_span("chat", attributes={"gen_ai.operation.name": "chat", "server.port": port}):
            pass
    counts = {p.attributes.get("server.port"): int(p.count) for p in capture.points(DURATION)}
    assert counts == {443: 3, 8443: 2, None: 2}


def test_the_cleaned_attributes_memory_is_bounded(capture: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmtel._internal import spanmetrics

    monkeypatch.setattr(spanmetrics, "MAX_CALL_SERIES", 4)
    processor = capture.telemetry.span_metrics
    assert processor is not None
    tracer = _tracer(capture, ANTHROPIC_SDK)
    for i in range(10):
        for _ in range(2):
            with tracer.start_as_current_span(
                "chat", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": f"m{i}"}
            ):
                pass
    assert len(processor._calls) == 4
    assert {p.attributes["gen_ai.request.model"]: int(p.count) for p in capture.points(DURATION)} == {
        f"m{i}": 2 for i in range(10)
    }
