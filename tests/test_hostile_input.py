"""Regression tests for hostile input (issue 14, items 1-5 and 10): each failed on the code before the fix.

Nothing a caller passes may raise, break the scrape (both formats, prometheus_client's parsers
and promtool) or break OTLP export (a real receiver from the official protos), and nothing secret
is served without content capture.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from otlp_receiver import OtlpReceiver
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

import llmtel
from llmtel._internal import errors as _errors
from llmtel.instrumentation import report_problem

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


class Unprintable:
    """An object whose __repr__ and __str__ raise (llmtel must not call them unguarded)."""

    def __repr__(self) -> str:
        raise RuntimeError("repr refused")

    def __str__(self) -> str:
        raise RuntimeError("str refused")


@pytest.fixture(autouse=True)
def _reset_problems() -> None:
    _errors.reset()


def _scrape(url: str, accept: str = "text/plain") -> str:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return str(response.read().decode("utf-8"))


def _get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def check_scrape(metrics_url: str) -> dict[str, Any]:
    """Both formats parse with prometheus_client's parsers, the text format passes promtool; families by name.

    (Debian's promtool parses the classic text format only.)
    """
    text = _scrape(metrics_url)
    families = {family.name: family for family in parse_text(text)}
    openmetrics = _scrape(metrics_url, OPENMETRICS)
    om_families = {family.name: family for family in parse_openmetrics(openmetrics)}
    promtool = shutil.which("promtool")
    if promtool is not None:
        result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr + result.stdout
    assert set(families) and set(om_families)
    return om_families


# -- item 1: no exception escapes a recording call ------------------------------------------------


def _gen() -> Iterator[int]:
    yield from (1, 3)


CALLS: dict[str, Callable[[], Any]] = {
    "finish_reasons object": lambda: llmtel.llm_call(provider="p", model="m").set_finish_reasons(Unprintable()),  # type: ignore[arg-type]
    "relevance None": lambda: llmtel.retrieval("d").record_relevance(None),  # type: ignore[arg-type]
    "relevance int": lambda: llmtel.retrieval("d").record_relevance(3),  # type: ignore[arg-type]
    "usage 10**400": lambda: llmtel.llm_call(provider="p", model="m").set_usage(input_tokens=10**400),
    "documents 10**400": lambda: llmtel.retrieval("d").set_documents(10**400),
    "rate limit 10**400": lambda: llmtel.rate_limit_wait(10**400),
    "circuit breaker dict state": lambda: llmtel.set_circuit_breaker_state("cb", {}),  # type: ignore[arg-type]
    "model 10**5000": lambda: llmtel.llm_call(provider="p", model=10**5000),
    "response model 10**5000": lambda: llmtel.llm_call(provider="p", model="m").set_response_model(10**5000),
    "set_error 10**5000": lambda: llmtel.llm_call(provider="p", model="m").set_error(10**5000),  # type: ignore[arg-type]
    "response id 10**5000": lambda: llmtel.llm_call(provider="p", model="m").set_response_id(10**5000),
    "usage unprintable": lambda: llmtel.llm_call(provider="p", model="m").set_usage(input_tokens=Unprintable()),
    "circuit breaker unprintable": lambda: llmtel.set_circuit_breaker_state("cb", Unprintable()),  # type: ignore[arg-type]
    "role unprintable": lambda: llmtel.llm_call(provider="p", model="m", role=Unprintable()),  # type: ignore[arg-type]
    "record_duration unknown": lambda: llmtel.record_duration("no.such.histogram", 1.0),
}


def test_a_scalar_finish_reason_is_one_reason(llmtel_capture: Any) -> None:
    with llmtel.llm_call(provider="p", model="m") as call:
        call.set_finish_reasons(5)  # type: ignore[arg-type]
    assert llmtel_capture.spans()[0].attributes["gen_ai.response.finish_reasons"] == ("5",)


@pytest.mark.parametrize("name", list(CALLS))
def test_no_recording_call_raises(name: str) -> None:
    llmtel.configure(prometheus_port=0, process_metrics=False, gpu_metrics=False)
    CALLS[name]()
    assert _errors.problem_counts(), "the bad input was not counted"


def test_a_problem_kind_is_bounded_and_encodable() -> None:
    telemetry = llmtel.configure(prometheus_port=0, process_metrics=False, gpu_metrics=False)
    assert telemetry.metrics_url is not None
    report_problem("my instrumentation: bad \ud800 " + "x" * 500)
    report_problem(10**5000)  # type: ignore[arg-type]
    check_scrape(telemetry.metrics_url)
    assert all(len(kind) <= 128 for kind in _errors.problem_counts())


def test_a_relevance_generator_is_read_once(llmtel_capture: Any) -> None:
    with llmtel.retrieval("docs", top_k=5) as query:
        query.record_relevance(_gen())
    assert llmtel_capture.sum("llmtel.retrieval.judged", {"llmtel.retrieval.hit": "true"}) == 1
    assert llmtel_capture.point("llmtel.retrieval.reciprocal_rank").sum == 1.0
    assert not _errors.problem_counts()


# -- items 2 and 3: one call must not truncate or poison the scrape ---------------------------------


def test_a_huge_server_port_is_rejected_at_record_time_and_the_scrape_stays_whole() -> None:
    telemetry = llmtel.configure(prometheus_port=0, process_metrics=False, gpu_metrics=False)
    assert telemetry.metrics_url is not None
    with llmtel.llm_call(provider="p", model="ok", server_port=443) as call:
        call.set_usage(input_tokens=1, output_tokens=1)
    before = set(check_scrape(telemetry.metrics_url))
    with llmtel.llm_call(provider="p", model="bad", server_port=10**5000) as call:
        call.set_usage(input_tokens=1, output_tokens=1)
    after = check_scrape(telemetry.metrics_url)
    assert before <= set(after)
    models = {s.labels.get("gen_ai_request_model") for s in after["gen_ai_client_operation_duration_seconds"].samples}
    assert {"ok", "bad"} <= models
    assert _errors.problem_counts()["invalid server port"] == 1


def test_a_series_that_cannot_be_rendered_is_skipped_and_counted_not_the_scrape() -> None:
    telemetry = llmtel.configure(prometheus_port=0, process_metrics=False, gpu_metrics=False)
    assert telemetry.metrics_url is not None
    with llmtel.llm_call(provider="p", model="m") as call:
        call.set_usage(input_tokens=1)
    # The app's own instrument on llmtel's meter, with an attribute no renderer can print.
    counter = llmtel.get_meter().create_counter("app.requests", description="Requests.")
    counter.add(1, {"shard": 10**5000})
    counter.add(2, {"shard": 7})
    counter.add(3, {"shard": "lone\ud800"})  # rendered as "lone?": one unencodable label must not fail the response
    families = check_scrape(telemetry.metrics_url)
    assert "gen_ai_client_operation_duration_seconds" in families
    totals = {s.labels["shard"]: s.value for s in families["app_requests"].samples if s.name == "app_requests_total"}
    assert totals == {"7": 2, "lone?": 3}
    assert _errors.problem_counts()["prometheus series skipped"] >= 1


@pytest.mark.realserver
def test_huge_counts_keep_sums_finite_in_the_scrape_and_in_otlp(monkeypatch: pytest.MonkeyPatch) -> None:
    with OtlpReceiver() as receiver:
        _point_to(monkeypatch, receiver)
        telemetry = llmtel.configure(
            metrics_exporter=["otlp", "llmtel_prometheus"],
            prometheus_port=0,
            process_metrics=False,
            gpu_metrics=False,
        )
        assert telemetry.metrics_url is not None
        for _ in range(2):
            with llmtel.llm_call(provider="p", model="huge") as call:
                call.set_usage(input_tokens=1e308, output_tokens=2**53)
        llmtel.rate_limit_wait(1e308, provider="p")
        check_scrape(telemetry.metrics_url)
        assert llmtel.force_flush(10)
        with llmtel.llm_call(provider="p", model="sentinel") as call:
            call.set_usage(input_tokens=3)
        assert llmtel.force_flush(10)
        points = receiver.wait_for(
            lambda: [
                p
                for p in receiver.metric_points("gen_ai.client.token.usage")
                if p.attributes.get("gen_ai.request.model") == "sentinel"
            ]
        )
        assert points[-1].point.sum == 3
        llmtel.shutdown()
    counts = _errors.problem_counts()
    assert counts["invalid token count"] == 2 and counts["invalid duration"] == 1


# -- item 4: span attributes are cleaned like metric attributes -------------------------------------


def _point_to(monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver) -> None:
    for key in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_METRIC_EXPORT_INTERVAL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "60000")


@pytest.mark.realserver
def test_span_attributes_that_cannot_be_encoded_never_reach_the_exporter(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with OtlpReceiver() as receiver:
        _point_to(monkeypatch, receiver)
        llmtel.configure(
            metrics_exporter="otlp", traces_exporter="otlp", prometheus_port=0, process_metrics=False, gpu_metrics=False
        )
        with caplog.at_level(logging.WARNING):
            for _ in range(2):
                with llmtel.llm_call(
                    provider="p", model="m", server_port=2**70, **{"app.note": "lone\ud800", "\udfff": 1, "big": 2**70}
                ):
                    pass
                with llmtel.retrieval("docs", top_k=2**70):
                    pass
                with llmtel.tool("search", tool_type="\ud800"):
                    pass
            assert llmtel.force_flush(10)
            spans = receiver.wait_for(lambda: receiver.spans() if len(receiver.spans()) >= 6 else None)
            llmtel.shutdown()
        assert not [r for r in caplog.records if "encode" in r.getMessage().lower()]
    by_name = {span.name: span.attributes for span in spans}
    assert by_name["chat m"]["app.note"] == "lone?"
    assert "server.port" not in by_name["chat m"] and "big" not in by_name["chat m"]
    assert "gen_ai.request.top_k" not in by_name["retrieval docs"]
    assert by_name["execute_tool search"]["gen_ai.tool.type"] == "?"


# -- item 5 and 10: every stored span renders; nothing secret is served -----------------------------

SECRET = "sk-proj-abcdefghijklmnop1234"


def _failing_call() -> str:
    try:
        with llmtel.llm_call(provider="openai", model="m") as call:
            raise ValueError(f"bad request for prompt 'my diary' with key {SECRET}")
    except ValueError:
        pass
    return format(call.span.get_span_context().trace_id, "032x")


def test_every_stored_span_renders() -> None:
    telemetry = llmtel.configure(prometheus_port=0, process_metrics=False, gpu_metrics=False)
    with llmtel.tool("search", tool_type=b"x") as invocation:
        tracer = llmtel.current().tracer_provider.get_tracer("app")  # type: ignore[union-attr]
        with tracer.start_as_current_span("app") as span:
            span.set_attribute("blob", b"\xff\x00raw")
            span.set_attribute("ratio", float("nan"))
            span.set_attribute("huge", 2**70)
    trace_id = format(invocation.span.get_span_context().trace_id, "032x")
    status, body = _get_json(f"{telemetry.endpoint_url}/traces/{trace_id}")
    assert status == 200
    by_name = {span["name"]: span["attributes"] for span in body["spans"]}
    assert by_name["execute_tool search"]["gen_ai.tool.type"] == "x"
    assert by_name["app"]["ratio"] == "nan"
    tracer = llmtel.current().tracer_provider.get_tracer("app")  # type: ignore[union-attr]
    with tracer.start_as_current_span("odd model") as span:
        span.set_attribute("gen_ai.request.model", 10**5000)
        span.set_attribute("error.type", b"\xff")
    status, listing = _get_json(f"{telemetry.endpoint_url}/traces")
    assert status == 200 and len(listing["traces"]) == 2


def test_no_exception_text_or_content_served_without_capture() -> None:
    telemetry = llmtel.configure(prometheus_port=0, process_metrics=False, gpu_metrics=False)
    trace_id = _failing_call()
    tracer = llmtel.current().tracer_provider.get_tracer("app")  # type: ignore[union-attr]
    with tracer.start_as_current_span("other instrumentation") as span:
        app_trace = format(span.get_span_context().trace_id, "032x")
        span.set_attribute("gen_ai.input.messages", '[{"role": "user", "content": "my diary"}]')
        span.set_attribute("gen_ai.prompt.0.content", "my diary")
        span.set_attribute("gen_ai.request.model", "m")
        span.record_exception(ValueError(f"failed on 'my diary' {SECRET}"))
    for tid in (trace_id, app_trace):
        status, body = _get_json(f"{telemetry.endpoint_url}/traces/{tid}")
        assert status == 200
        served = json.dumps(body)
        assert "my diary" not in served and SECRET not in served
        assert "exception.message" not in served and "exception.stacktrace" not in served
    status, body = _get_json(f"{telemetry.endpoint_url}/traces/{app_trace}")
    assert body["spans"][0]["attributes"] == {"gen_ai.request.model": "m"}
    assert body["spans"][0]["events"][0]["attributes"]["exception.type"] == "ValueError"


def test_exception_text_with_capture_goes_through_the_redactor() -> None:
    telemetry = llmtel.configure(
        prometheus_port=0,
        process_metrics=False,
        gpu_metrics=False,
        capture_content=True,
        redact_exception_messages=True,
    )
    trace_id = _failing_call()
    status, body = _get_json(f"{telemetry.endpoint_url}/traces/{trace_id}")
    assert status == 200
    [event] = body["spans"][0]["events"]
    assert "my diary" in event["attributes"]["exception.message"]
    assert SECRET not in json.dumps(body) and "[REDACTED]" in event["attributes"]["exception.message"]


@pytest.mark.realserver
def test_the_redactor_applies_to_exported_spans_of_any_instrumentation(monkeypatch: pytest.MonkeyPatch) -> None:
    with OtlpReceiver() as receiver:
        _point_to(monkeypatch, receiver)
        llmtel.configure(
            metrics_exporter="none",
            traces_exporter="otlp",
            prometheus_port=0,
            process_metrics=False,
            gpu_metrics=False,
            redact_exception_messages=lambda text: text.replace("diary", "***"),
        )
        tracer = llmtel.current().tracer_provider.get_tracer("app")  # type: ignore[union-attr]
        try:
            with tracer.start_as_current_span("app work"):
                raise RuntimeError(f"my diary {SECRET}")
        except RuntimeError:
            pass
        assert llmtel.force_flush(10)
        [span] = receiver.wait_for(lambda: receiver.spans("app work"))
        llmtel.shutdown()
    [event] = span.span.events
    message = {kv.key: kv.value.string_value for kv in event.attributes}["exception.message"]
    assert message == f"my *** {SECRET}"
    assert "diary" not in span.span.status.message


def test_trace_pages_can_be_switched_off_and_are_off_on_an_open_bind_without_auth() -> None:
    from llmtel.config.settings import resolve
    from llmtel.config.setup import _serve_traces

    assert not _serve_traces(resolve({"prometheus_host": "0.0.0.0"}, environ={}))
    assert _serve_traces(resolve({"prometheus_host": "0.0.0.0", "prometheus_basic_auth": "a:b"}, environ={}))
    assert _serve_traces(resolve({"prometheus_host": "0.0.0.0", "serve_traces": True}, environ={}))
    assert _serve_traces(resolve({"prometheus_host": "::1"}, environ={}))
    telemetry = llmtel.configure(prometheus_port=0, process_metrics=False, gpu_metrics=False, serve_traces=False)
    trace_id = _failing_call()
    assert _get_json(f"{telemetry.endpoint_url}/traces/{trace_id}")[0] == 404
    assert _get_json(f"{telemetry.endpoint_url}/traces")[0] == 404
    assert telemetry.trace_store is None


def test_captured_content_is_encodable_and_never_raises() -> None:
    from llmtel.testing import Capture

    capture = Capture(capture_content="span_only")
    try:
        with llmtel.llm_call(provider="p", model="m") as call:
            call.set_content(
                input_messages=[{"role": "user", "content": "lone \ud800"}],
                output_messages=[Unprintable()],
                system_instructions=[10**5000],
            )
        attributes = capture.spans()[0].attributes
        assert attributes["gen_ai.input.messages"] == '[{"role": "user", "content": "lone ?"}]'
        assert "gen_ai.output.messages" not in attributes and "gen_ai.system_instructions" not in attributes
        assert _errors.problem_counts()["invalid content"] == 2
    finally:
        capture.close()
