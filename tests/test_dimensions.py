"""The application's own metric dimensions: ``metric_attributes``, ``llmtel.attributes()``, value limits."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import llmtel
from llmtel._internal import errors as _errors
from llmtel.testing import Capture

DURATION = "gen_ai.client.operation.duration"
TOKENS = "gen_ai.client.token.usage"


def _call(**attributes: object) -> None:
    with llmtel.llm_call(provider="openai", model="m", **attributes) as call:
        call.set_usage(input_tokens=3, output_tokens=5)


def test_keys_not_opted_in_stay_off_metrics_but_reach_the_span(llmtel_capture: Capture) -> None:
    with llmtel.attributes(route="/chat"):
        _call(tenant="acme")
    (point,) = llmtel_capture.points(DURATION)
    assert "tenant" not in point.attributes and "route" not in point.attributes
    (span,) = llmtel_capture.spans()
    assert span.attributes["tenant"] == "acme" and span.attributes["route"] == "/chat"


def test_opted_in_keys_reach_every_call_instrument() -> None:
    capture = Capture(metric_attributes=["tenant", "route"])
    with llmtel.attributes(tenant="acme", route="/chat"):
        _call()
        with llmtel.tool("search"):
            pass
        with llmtel.agent("planner"):
            pass
        with llmtel.retrieval("docs", top_k=3) as found:
            found.set_documents(2)
            found.record_relevance([1])
    want = {"tenant": "acme", "route": "/chat"}
    assert capture.count(DURATION, want) == 1
    assert capture.sum(TOKENS, {**want, "gen_ai.token.type": "output"}) == 5
    assert capture.point("llmtel.gen_ai.requests.active", want).value == 0
    for name in ("llmtel.tool.duration", "llmtel.agent.duration", "llmtel.retrieval.duration"):
        assert capture.count(name, want) == 1
    assert capture.sum("llmtel.retrieval.judged", want) == 1
    assert capture.count("llmtel.retrieval.reciprocal_rank", want) == 1


def test_keyword_beats_block_beats_baggage_and_blocks_nest() -> None:
    capture = Capture(metric_attributes=["tenant", "route", "team"])
    token = otel_context.attach(baggage.set_baggage("team", "search", baggage.set_baggage("tenant", "from-bag")))
    try:
        with llmtel.attributes(tenant="outer", route="/a"):
            with llmtel.attributes(tenant="inner", route=None):
                _call()
                _call(tenant="kw")
            _call()
    finally:
        otel_context.detach(token)
    _call()  # outside everything: no dimension at all
    assert capture.count(DURATION, {"tenant": "inner", "team": "search"}) == 1
    assert "route" not in capture.point(DURATION, {"tenant": "inner"}).attributes  # None removed it
    assert capture.count(DURATION, {"tenant": "kw"}) == 1
    assert capture.count(DURATION, {"tenant": "outer", "route": "/a"}) == 1
    bare = [p for p in capture.points(DURATION) if "tenant" not in p.attributes]
    assert len(bare) == 1 and "team" not in bare[0].attributes


def test_one_block_object_can_be_entered_again_and_nested_in_itself() -> None:
    capture = Capture(metric_attributes=["tenant"])
    acme = llmtel.attributes(tenant="acme")
    with acme:
        with llmtel.attributes(tenant="globex"), acme:
            _call()
        _call()
    with acme:
        _call()
    _call()
    counts = {p.attributes.get("tenant"): p.count for p in capture.points(DURATION)}
    assert counts == {"acme": 3, None: 1}


async def test_one_block_object_shared_by_concurrent_tasks() -> None:
    capture = Capture(metric_attributes=["tenant"])
    shared = llmtel.attributes(tenant="acme")

    async def work(delay: float) -> None:
        with shared:  # entered by both tasks before either leaves
            await asyncio.sleep(delay)
            async with llmtel.llm_call(provider="openai", model="m"):
                pass
        async with llmtel.llm_call(provider="openai", model="m"):
            pass  # after the block: no tenant, in this task

    await asyncio.gather(work(0.0), work(0.02))  # the first to enter leaves first
    counts = {p.attributes.get("tenant"): p.count for p in capture.points(DURATION)}
    assert counts == {"acme": 2, None: 2}


async def test_block_holds_across_await_and_in_tasks() -> None:
    capture = Capture(metric_attributes=["tenant"])

    async def work(name: str) -> None:
        with llmtel.attributes(tenant=name):
            await asyncio.sleep(0.01)
            async with llmtel.llm_call(provider="openai", model="m"):
                await asyncio.sleep(0)

    await asyncio.gather(work("a"), work("b"), work("c"))
    assert {p.attributes["tenant"]: p.count for p in capture.points(DURATION)} == {"a": 1, "b": 1, "c": 1}


def test_decorated_tools_keep_their_keyword_attributes() -> None:
    capture = Capture(metric_attributes=["tenant"])

    @llmtel.tool("fetch", tenant="acme")
    def fetch() -> int:
        return 1

    assert fetch() + fetch() == 2
    assert capture.count("llmtel.tool.duration", {"tenant": "acme"}) == 2


def test_per_instrument_keys() -> None:
    capture = Capture(metric_attributes={"*": ["tenant"], "llmtel.gen_ai.client.cost": ["project"]},
                      price_table={"m": {"input": 1.0, "output": 2.0}})  # fmt: skip
    _call(tenant="acme", project="p1")
    cost = capture.points("llmtel.gen_ai.client.cost")
    assert cost and all(p.attributes["project"] == "p1" and p.attributes["tenant"] == "acme" for p in cost)
    (duration,) = capture.points(DURATION)
    assert duration.attributes["tenant"] == "acme" and "project" not in duration.attributes


def test_environment_variable_takes_keys_and_per_instrument_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_METRIC_ATTRIBUTES", "tenant, llmtel.tool.duration:route")
    capture = Capture()
    with llmtel.attributes(tenant="acme", route="/r"):
        _call()
        with llmtel.tool("t"):
            pass
    assert "route" not in capture.point(DURATION, {"tenant": "acme"}).attributes
    assert capture.count("llmtel.tool.duration", {"tenant": "acme", "route": "/r"}) == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"gen_ai.client.operation.durations": ["tenant"]}, "is not recorded by llm_call"),
        (["error.type"], "one of llmtel's own metric attributes"),
        ([" tenant"], "not a valid attribute key"),
    ],
)
def test_misuse_is_a_configuration_error_alike_from_argument_and_environment(
    value: object, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(llmtel.ConfigurationError, match=message):
        Capture(metric_attributes=value)
    llmtel.shutdown()
    if isinstance(value, dict):
        ((name, (key,)),) = value.items()
        raw = f"{name}:{key}"
    else:
        (raw,) = value  # type: ignore[misc]
    if raw.strip() != raw:
        return  # the variable's items are stripped: " tenant" is just tenant there
    monkeypatch.setenv("LLMTEL_METRIC_ATTRIBUTES", raw)
    with pytest.raises(llmtel.ConfigurationError, match=message):
        Capture()


def test_values_past_the_limit_fold_into_other_per_key() -> None:
    _errors.reset()
    capture = Capture(metric_attributes=["tenant", "route"], metric_attribute_limit=3,
                      metric_attribute_limits={"route": 1})  # fmt: skip
    for i in range(6):
        _call(tenant=f"t{i}", route=f"/r{i}")
    _call(tenant="t0", route="/r0")  # admitted values stay admitted
    tenants = {p.attributes["tenant"]: p.count for p in capture.points(DURATION)}
    assert tenants == {"t0": 2, "t1": 1, "t2": 1, "_OTHER": 3}
    routes = sorted({p.attributes["route"] for p in capture.points(DURATION)})
    assert routes == ["/r0", "_OTHER"]
    assert _errors.problem_counts()["metric attribute value folded into _OTHER"] == 3 + 5
    spans = capture.spans()
    assert {s.attributes["tenant"] for s in spans} == {f"t{i}" for i in range(6)}  # spans are not folded


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_100k_distinct_tenants_stay_bounded() -> None:
    """100,000 tenants through the public API: 50 series, the rest in _OTHER, memory flat."""
    capture = Capture(metric_attributes=["tenant"], metric_attribute_limit=50, traces_sampler="always_off")
    _call(tenant="warm-up")
    before = _rss_bytes()
    for i in range(100_000):
        with llmtel.llm_call(provider="openai", model="m", tenant=f"tenant-{i}"):
            pass
    grown = _rss_bytes() - before
    counts = {p.attributes["tenant"]: p.count for p in capture.points(DURATION)}
    assert len(counts) == 51
    assert counts["_OTHER"] == 100_000 - 49
    assert all(counts[f"tenant-{i}"] == 1 for i in range(49))
    # What 100k admitted series would cost is tens of MiB; folded, the process does not grow.
    assert grown < 8 * 1024 * 1024, f"RSS grew {grown} bytes while recording 100k tenants"


def test_on_the_apps_meter_provider_narrowing_is_impossible_and_said(caplog: pytest.LogCaptureFixture) -> None:
    """The SDK cannot add Views to a built MeterProvider: every call instrument then gets every key."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        with caplog.at_level(logging.WARNING, logger="llmtel"):
            llmtel.configure(meter_provider=provider, metrics_exporter="none", prometheus_port=0,
                             metric_attributes={"*": ["tenant"], "llmtel.gen_ai.client.cost": ["project"]})  # fmt: skip
        assert "views are not added" in caplog.text
        _call(tenant="acme", project="p1")
        data = reader.get_metrics_data()
        (duration,) = [
            p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == DURATION
            for p in m.data.data_points
        ]  # fmt: skip
        assert duration.attributes["tenant"] == "acme" and duration.attributes["project"] == "p1"
    finally:
        llmtel.shutdown()
        provider.shutdown()
