"""Bad input has a defined behaviour, never raises, and never breaks an exporter."""

from __future__ import annotations

import math
import threading
import tracemalloc
import urllib.request

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from sdk_features import needs_cardinality_limits

import llmtel
from llmtel._internal import errors as _errors
from llmtel.testing import Capture

DURATION = "gen_ai.client.operation.duration"
TOKENS = "gen_ai.client.token.usage"


@pytest.fixture(autouse=True)
def _swallow(monkeypatch: pytest.MonkeyPatch) -> None:
    _errors.reset()


@pytest.mark.parametrize("bad", [-5, float("nan"), float("inf"), "12", [3], True])
def test_bad_token_counts_are_dropped_and_counted(llmtel_capture: Capture, bad: object) -> None:
    with llmtel.llm_call(provider="p", model="m") as call:
        call.set_usage(input_tokens=bad, output_tokens=7)
    assert llmtel_capture.sum(TOKENS, {"gen_ai.token.type": "output"}) == 7
    assert llmtel_capture.points(TOKENS)[0].attributes["gen_ai.token.type"] == "output"
    assert len(llmtel_capture.points(TOKENS)) == 1
    assert _errors.problem_counts()["invalid token count"] == 1
    assert llmtel_capture.sum("llmtel.sdk.problems", {"llmtel.problem": "invalid token count"}) == 1


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (None, None),
        (["gpt", "4"], None),
        (object(), None),
        (b"bytes-model", "bytes-model"),
        (42, "42"),
        ("nul\x00model", "nulmodel"),
        ("lone\ud800surrogate", "lone?surrogate"),
        ("x" * 10_000, "x" * 128),
    ],
)
def test_bad_models_are_omitted_or_sanitized(llmtel_capture: Capture, model: object, expected: str | None) -> None:
    with llmtel.llm_call(provider="p", model=model) as call:
        call.set_usage(input_tokens=1)
    attributes = llmtel_capture.point(DURATION).attributes
    assert attributes.get("gen_ai.request.model") == expected
    (span,) = llmtel_capture.spans()
    assert span.name == ("chat" if expected is None else f"chat {expected}")


def test_one_log_line_per_kind_of_problem(llmtel_capture: Capture, caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(50):
        with llmtel.llm_call(provider="p", model="m") as call:
            call.set_usage(input_tokens=-1)
    assert sum("invalid token count" in r.getMessage() for r in caplog.records) == 1
    assert llmtel_capture.sum("llmtel.sdk.problems", {"llmtel.problem": "invalid token count"}) == 50


def test_bad_durations_are_dropped(llmtel_capture: Capture) -> None:
    for bad in (float("nan"), -1.0, None, "1s", math.inf):
        llmtel.rate_limit_wait(bad, provider="p")
    llmtel.rate_limit_wait(0.25, provider="p")
    assert llmtel_capture.count("llmtel.rate_limit.wait") == 1


def test_unencodable_labels_never_break_a_scrape() -> None:
    telemetry = llmtel.configure(prometheus_port=0, process_metrics=False)
    for model in ("ok", "lone\udfffsurrogate", "nul\x00", 'quote"and\\backslash\nnewline', b"\xff\xfe"):
        with llmtel.llm_call(provider="p", model=model) as call:
            call.set_usage(input_tokens=1, output_tokens=1)
    bodies = {}
    for accept in ("application/openmetrics-text; version=1.0.0", "text/plain"):
        for _ in range(2):  # every later scrape too
            request = urllib.request.Request(telemetry.metrics_url, headers={"Accept": accept})
            bodies[accept] = urllib.request.urlopen(request, timeout=5).read().decode("utf-8")
            assert "gen_ai_client_operation_duration_seconds" in bodies[accept]
    openmetrics = bodies["application/openmetrics-text; version=1.0.0"]
    families = {f.name: f for f in text_string_to_metric_families(openmetrics)}
    samples = families["gen_ai_client_operation_duration_seconds"].samples
    models = {s.labels.get("gen_ai_request_model") for s in samples}
    assert {"ok", "lone?surrogate", "nul", 'quote"and\\backslash\nnewline', "\ufffd\ufffd"} <= models


@needs_cardinality_limits
def test_label_explosion_stays_capped_and_bounded() -> None:
    reader = InMemoryMetricReader()
    llmtel.configure(
        metrics_exporter="none",
        metric_readers=[reader],
        prometheus_port=0,
        traces_sampler="always_off",
        process_metrics=False,
        gpu_metrics=False,
    )

    def burst(start: int, count: int) -> None:
        for i in range(start, start + count):
            with llmtel.llm_call(provider="p", model=f"model-{i}") as call:
                call.set_usage(input_tokens=1, output_tokens=1)

    burst(0, 100_000)
    data = reader.get_metrics_data()
    series = {m.name: m.data.data_points for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    duration_points = series[DURATION]
    assert len(duration_points) == 2001  # the SDK's default limit + one otel.metric.overflow series
    overflow = [p for p in duration_points if p.attributes.get("otel.metric.overflow")]
    assert overflow[0].count == 100_000 - 2000
    assert sum(p.count for p in duration_points) == 100_000
    # Once capped, more new names cost no memory: every new attribute set folds into overflow (what is
    # allocated for them, such as the record path's bounded caches and buffers, replaces what was there).
    tracemalloc.start()
    burst(100_000, 5_000)
    before = tracemalloc.get_traced_memory()[0]
    burst(105_000, 10_000)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 2 * 1024 * 1024, f"memory grew by {grown / 1e6:.1f} MB over 10k new names"


@needs_cardinality_limits
def test_cardinality_limit_per_instrument() -> None:
    reader = InMemoryMetricReader()
    llmtel.configure(
        metrics_exporter="none",
        metric_readers=[reader],
        prometheus_port=0,
        cardinality_limits={DURATION: 10},
        process_metrics=False,
        gpu_metrics=False,
    )
    for i in range(50):
        with llmtel.llm_call(provider="p", model=f"m{i}"):
            pass
    data = reader.get_metrics_data()
    series = {m.name: m.data.data_points for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert len(series[DURATION]) == 11  # 10 + the overflow series
    assert len(series["llmtel.gen_ai.requests.active"]) == 50


def test_eight_threads_give_exact_counts(llmtel_capture: Capture) -> None:
    calls_per_thread = 300

    def work(n: int) -> None:
        for _ in range(calls_per_thread):
            with llmtel.llm_call(provider="p", model=f"m{n % 2}", stream=True) as call:
                for _ in call.wrap_stream(range(3)):
                    pass
                call.set_usage(input_tokens=2, output_tokens=3)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for model in ("m0", "m1"):
        attrs = {"gen_ai.request.model": model}
        assert llmtel_capture.count(DURATION, attrs) == 4 * calls_per_thread
        assert llmtel_capture.count("gen_ai.client.operation.time_per_output_chunk", attrs) == 4 * calls_per_thread * 2
        assert llmtel_capture.sum(TOKENS, {**attrs, "gen_ai.token.type": "output"}) == 4 * calls_per_thread * 3
        assert llmtel_capture.sum("llmtel.gen_ai.requests.active", attrs) == 0
    assert len(llmtel_capture.spans()) == 8 * calls_per_thread


def test_content_is_not_captured_unless_opted_in(llmtel_capture: Capture) -> None:
    with llmtel.llm_call(provider="p", model="m") as call:
        call.set_content(input_messages=[{"role": "user", "content": "secret"}], output_messages=["reply"])
    assert "gen_ai.input.messages" not in llmtel_capture.spans()[0].attributes
    llmtel.shutdown()
    capture = Capture(capture_content=True)
    try:
        with llmtel.llm_call(provider="p", model="m") as call:
            call.set_content(input_messages=[{"role": "user", "content": "hello"}])
        assert "hello" in capture.spans()[0].attributes["gen_ai.input.messages"]
    finally:
        capture.close()


def test_guard_decorator_follows_the_error_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmtel._internal import errors

    @errors.guard("test guard")
    def boom(value: int) -> int:
        if value < 0:
            raise ValueError(value)
        if value == 0:
            raise KeyboardInterrupt
        return value * 2

    assert boom(2) == 4
    with pytest.raises(ValueError):  # under pytest an llmtel bug surfaces
        boom(-1)
    monkeypatch.setenv("LLMTEL_RAISE_INTERNAL_ERRORS", "0")
    errors.reset()
    assert boom(-1) is None  # swallowed, counted
    assert errors.problem_counts() == {"test guard": 1}
    with pytest.raises(KeyboardInterrupt):  # never swallowed
        boom(0)
