"""configure(): options, precedence, the embedded endpoint, second calls, cooperation."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

import llmtel
from llmtel import ConfigurationError
from llmtel.config.options import OPTIONS
from llmtel.config.settings import GROUPS, Settings, resolve
from llmtel.instrumentation import CaptureMode
from llmtel.testing import Capture


def _get(url: str, accept: str = "") -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode()


def test_argument_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "9999")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp, llmtel_prometheus")
    settings = resolve({"service_name": "from-arg"})
    assert settings.resource.service_name == "from-arg"
    assert settings.endpoint.port == 9999
    assert settings.export.metrics_exporters == ("otlp", "llmtel_prometheus")
    assert settings.endpoint.host == "127.0.0.1"  # default


def test_content_capture_falls_back_to_the_standard_genai_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve({}).content.capture is CaptureMode.NO_CONTENT  # off by default
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    assert resolve({}).content.capture is CaptureMode.SPAN_AND_EVENT
    monkeypatch.setenv("LLMTEL_CAPTURE_CONTENT", "false")  # llmtel's own variable wins
    assert resolve({}).content.capture is CaptureMode.NO_CONTENT
    assert resolve({"capture_content": True}).content.capture is CaptureMode.SPAN_AND_EVENT


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        ("true", CaptureMode.SPAN_AND_EVENT),
        ("1", CaptureMode.SPAN_AND_EVENT),
        ("span_and_event", CaptureMode.SPAN_AND_EVENT),
        ("SPAN_AND_EVENT", CaptureMode.SPAN_AND_EVENT),  # contrib's util-genai spells them upper case
        ("span_only", CaptureMode.SPAN_ONLY),
        ("Span_Only", CaptureMode.SPAN_ONLY),
        ("event_only", CaptureMode.EVENT_ONLY),
        ("no_content", CaptureMode.NO_CONTENT),
        ("NO_CONTENT", CaptureMode.NO_CONTENT),
        ("false", CaptureMode.NO_CONTENT),
        ("off", CaptureMode.NO_CONTENT),
    ],
)
def test_every_documented_capture_value_maps_to_a_mode(
    raw: str, mode: CaptureMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raw)
    assert resolve({}).content.capture is mode
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
    monkeypatch.setenv("LLMTEL_CAPTURE_CONTENT", raw)
    assert resolve({}).content.capture is mode
    monkeypatch.delenv("LLMTEL_CAPTURE_CONTENT")
    assert resolve({"capture_content": raw}).content.capture is mode  # the argument takes the same values
    assert resolve({"capture_content": mode}).content.capture is mode


def test_capture_mode_says_where_content_goes() -> None:
    assert [(m.on_span, m.as_event) for m in CaptureMode] == [
        (False, False),
        (True, False),
        (False, True),
        (True, True),
    ]


def test_bad_capture_value_is_one_clear_error_for_argument_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="span_only") as from_argument:
        resolve({"capture_content": "spans"})
    monkeypatch.setenv("LLMTEL_CAPTURE_CONTENT", "spans")
    with pytest.raises(ConfigurationError, match="span_only") as from_variable:
        resolve({})
    assert "expected true, false, no_content, span_only, event_only, span_and_event" in str(from_argument.value)
    assert "expected true, false, no_content, span_only, event_only, span_and_event" in str(from_variable.value)


@pytest.mark.parametrize(
    ("raw", "on_span", "logger_provider"),
    [
        ("span_only", True, False),
        ("event_only", False, True),
        ("SPAN_AND_EVENT", True, True),
        ("no_content", False, False),
    ],
)
def test_configure_accepts_upstream_capture_modes(
    raw: str, on_span: bool, logger_provider: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # opentelemetry-instrument users set these values; configure() must not refuse them.
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raw)
    llmtel.shutdown()
    cap = Capture(logs_exporter="console")
    try:
        assert cap.telemetry.settings.content.capture is CaptureMode.parse(raw)
        assert (cap.telemetry.logger_provider is not None) is logger_provider  # events need one
        with llmtel.llm_call(provider="openai", model="m") as call:
            call.set_content(input_messages=[{"role": "user", "parts": []}])
        assert ("gen_ai.input.messages" in cap.spans()[0].attributes) is on_span
    finally:
        cap.close()


def test_every_option_lands_in_exactly_one_typed_setting() -> None:
    settings = resolve({}, environ={})
    assert isinstance(settings, Settings)
    paths = [option.setting for option in OPTIONS]
    assert len(paths) == len(set(paths))
    declared = {"disabled"} | {f"{group}.{name}" for group, cls in GROUPS.items() for name in cls.__dataclass_fields__}
    assert set(paths) == declared
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.endpoint.port = 1  # type: ignore[misc]


# The same bad value gives the same complaint whether it came as an argument or a variable.
BAD_VALUES = [
    ("prometheus_port", "OTEL_EXPORTER_PROMETHEUS_PORT", "abc", "expected an integer"),
    ("prometheus_port", "OTEL_EXPORTER_PROMETHEUS_PORT", "70000", "from 0 to 65535"),
    ("prometheus_port", "OTEL_EXPORTER_PROMETHEUS_PORT", "-1", "from 0 to 65535"),
    ("cardinality_limit", "LLMTEL_CARDINALITY_LIMIT", "0", "positive integer"),
    ("traces_sampler_arg", "OTEL_TRACES_SAMPLER_ARG", "5", "ratio from 0 to 1"),
    ("metric_export_interval", "OTEL_METRIC_EXPORT_INTERVAL", "abc", "expected a number"),
    ("export_timeout", "LLMTEL_EXPORT_TIMEOUT", "-1", "positive number of seconds"),
    ("shutdown_timeout", "LLMTEL_SHUTDOWN_TIMEOUT", "-1", "positive number of seconds"),
    ("max_attribute_length", "LLMTEL_MAX_ATTRIBUTE_LENGTH", "-1", "positive integer"),
    ("prometheus_workers", "LLMTEL_PROMETHEUS_WORKERS", "0", "positive integer"),
    ("exemplar_filter", "OTEL_METRICS_EXEMPLAR_FILTER", "sometimes", "expected one of"),
    ("prometheus_basic_auth", "LLMTEL_PROMETHEUS_BASIC_AUTH", "nocolon", "user:password"),
]


@pytest.mark.parametrize(("keyword", "variable", "raw", "reason"), BAD_VALUES)
def test_arguments_and_variables_are_validated_alike(
    monkeypatch: pytest.MonkeyPatch, keyword: str, variable: str, raw: str, reason: str
) -> None:
    with pytest.raises(llmtel.ConfigurationError) as from_env:
        resolve({}, environ={variable: raw})
    typed = int(raw) if raw.lstrip("-").isdigit() else raw
    with pytest.raises(llmtel.ConfigurationError) as from_argument:
        resolve({keyword: typed}, environ={})
    for error in (from_env.value, from_argument.value):
        assert keyword in str(error) and reason in str(error)
    assert str(from_env.value).split(" is not valid ")[1] == str(from_argument.value).split(" is not valid ")[1]


def test_a_comma_string_argument_works_like_the_variable() -> None:
    from_argument = resolve({"prometheus_resource_labels": "service.name, deployment.*"}, environ={})
    from_env = resolve({}, environ={"LLMTEL_PROMETHEUS_RESOURCE_LABELS": "service.name, deployment.*"})
    assert (
        from_argument.endpoint.resource_labels
        == from_env.endpoint.resource_labels
        == (
            "service.name",
            "deployment.*",
        )
    )


def test_every_option_has_one_name_and_a_meaning() -> None:
    keywords = [o.keyword for o in OPTIONS]
    envs = [o.env for o in OPTIONS if o.env]
    assert len(keywords) == len(set(keywords))
    assert len(envs) == len(set(envs))
    assert all(o.meaning for o in OPTIONS)
    import inspect

    params = set(inspect.signature(llmtel.configure).parameters) - {"_from_auto_instrumentation"}
    assert params == set(keywords)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics_exporter": "nonexistent"}, "unknown exporter 'nonexistent'"),
        ({"exemplar_filter": "sometimes"}, "exemplar_filter='sometimes' is not valid for exemplar_filter"),
        ({"propagators": "b3"}, r"propagators \(OTEL_PROPAGATORS\): 'b3' is not installed; installed: .*tracecontext"),
        ({"traces_sampler": "maybe"}, "traces_sampler 'maybe'"),
        ({"bucket_boundaries": {"llmtel.no.such.metric": [1.0]}}, "not an llmtel instrument"),
        ({"cardinality_limits": {"gen_ai.client.operation.durations": 5}}, "not an llmtel instrument"),
        ({"bucket_boundaries": {"gen_ai.client.operation.duration": [2.0, 1.0]}}, "strictly increasing"),
        ({"bucket_boundaries": {"llmtel.queue.depth": [1.0]}}, "not a histogram"),
        ({"price_table": {"m": {"input": 1}}}, "needs at least 'input' and 'output'"),
    ],
)
def test_misuse_gets_a_specific_error(kwargs: dict, message: str) -> None:
    with pytest.raises(llmtel.ConfigurationError, match=message):
        llmtel.configure(prometheus_port=0, **kwargs)
    assert llmtel.current() is None


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "ninety")
    with pytest.raises(llmtel.ConfigurationError, match="OTEL_EXPORTER_PROMETHEUS_PORT='ninety'"):
        llmtel.configure()


def test_embedded_endpoint_serves_metrics_health_and_traces() -> None:
    telemetry = llmtel.configure(service_name="chat-api", prometheus_port=0, process_metrics=False)
    assert telemetry.endpoint_url.startswith("http://127.0.0.1:")
    with llmtel.llm_call(provider="openai", model="gpt-4o-mini", stream=True) as call:
        for _ in call.wrap_stream(range(3)):
            pass
    status, content_type, body = _get(telemetry.metrics_url, "application/openmetrics-text; version=1.0.0")
    assert status == 200 and content_type.startswith("application/openmetrics-text")
    assert "gen_ai_client_operation_time_to_first_chunk_seconds_bucket{" in body
    assert 'service_name="chat-api"' in body  # target_info
    status, content_type, body = _get(telemetry.metrics_url)
    assert status == 200 and content_type.startswith("text/plain")
    assert _get(telemetry.endpoint_url + "/health")[0] == 200
    trace_id = format(call.span.get_span_context().trace_id, "032x")
    status, _, body = _get(f"{telemetry.endpoint_url}/traces/{trace_id}")
    assert status == 200
    (span,) = json.loads(body)["spans"]
    assert span["name"] == "chat gpt-4o-mini" and span["span_id"] == format(
        call.span.get_span_context().span_id, "016x"
    )
    assert _get(f"{telemetry.endpoint_url}/traces/{'0' * 31}1")[0] == 404


def test_port_in_use_is_a_clear_configure_error() -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        with pytest.raises(llmtel.ConfigurationError, match=f"127.0.0.1:{port}.*prometheus_port"):
            llmtel.configure(prometheus_port=port)
    finally:
        blocker.close()
    assert llmtel.current() is None


def test_second_configure_keeps_the_first(caplog: pytest.LogCaptureFixture) -> None:
    first = llmtel.configure(prometheus_port=0, process_metrics=False)
    with caplog.at_level(logging.WARNING, logger="llmtel"):
        second = llmtel.configure(prometheus_port=0, service_name="other")
    assert second is first
    assert "called again" in caplog.text
    llmtel.shutdown()
    assert first.closed
    third = llmtel.configure(prometheus_port=0, process_metrics=False)
    assert third is not first and not third.closed


def test_bucket_boundaries_and_views_override() -> None:
    reader = InMemoryMetricReader()
    llmtel.configure(
        metrics_exporter="none",
        metric_readers=[reader],
        prometheus_port=0,
        bucket_boundaries={"gen_ai.client.operation.time_to_first_chunk": [0.1, 0.35, 1.0]},
        views=[View(instrument_name="llmtel.queue.wait", aggregation=ExplicitBucketHistogramAggregation([1.0]))],
    )
    with llmtel.llm_call(provider="p", model="m") as call:
        call.mark_chunk()
    with llmtel.queued("q"):
        pass
    points = {
        m.name: m.data.data_points[0]
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert list(points["gen_ai.client.operation.time_to_first_chunk"].explicit_bounds) == [0.1, 0.35, 1.0]
    assert list(points["llmtel.queue.wait"].explicit_bounds) == [1.0]
    # others keep the conventions' advisory buckets
    assert list(points["gen_ai.client.operation.duration"].explicit_bounds)[:3] == [0.01, 0.02, 0.04]


def test_sdk_disabled_builds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    telemetry = llmtel.configure(prometheus_port=0)
    assert telemetry.disabled and telemetry.endpoint is None and telemetry.meter_provider is None
    with llmtel.llm_call(provider="p", model="m") as call:
        call.set_usage(input_tokens=1)
    assert not call.span.is_recording()


def test_cost_uses_the_price_table_and_skips_unknown_models() -> None:
    capture = Capture(price_table={"gpt-4o-mini": {"input": 0.15, "output": 0.60, "cache_read": 0.075}})
    try:
        with llmtel.llm_call(provider="openai", model="gpt-4o-mini") as call:
            call.set_usage(input_tokens=1_000_000, output_tokens=500_000, cache_read_input_tokens=200_000)
            call.set_response_model("gpt-4o-mini-2024-07-18")  # prefix match
        with llmtel.llm_call(provider="openai", model="unknown-model") as call:
            call.set_usage(input_tokens=10, output_tokens=10)
        points = capture.points("llmtel.gen_ai.client.cost")
        # no point at all for the unknown model, not a 0; the priced one split by token type
        assert {p.attributes["gen_ai.request.model"] for p in points} == {"gpt-4o-mini"}
        by_type = {p.attributes["gen_ai.token.type"]: p.value for p in points}
        assert by_type == {"input": pytest.approx(0.8 * 0.15 + 0.2 * 0.075), "output": pytest.approx(0.5 * 0.60)}
        assert {p.attributes["llmtel.cost.source"] for p in points} == {"price_table"}
    finally:
        capture.close()


def test_price_table_from_file(tmp_path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"m": {"input": 1.0, "output": 2.0}}))
    table = llmtel.PriceTable.load(str(path))
    assert table.cost("m", input_tokens=1_000_000, output_tokens=1_000_000) == 3.0
    assert table.cost("other", input_tokens=5) is None


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "LLMTEL_RAISE_INTERNAL_ERRORS": "1"},
    )


def test_cooperates_with_providers_the_app_installed() -> None:
    result = _run(
        """
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        reader, spans = InMemoryMetricReader(), InMemorySpanExporter()
        tp = TracerProvider(); tp.add_span_processor(SimpleSpanProcessor(spans))
        trace.set_tracer_provider(tp)
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        import llmtel
        t = llmtel.configure(prometheus_port=0, process_metrics=False)
        assert t.meter_provider is metrics.get_meter_provider() and not t.owns_meter_provider
        assert t.tracer_provider is tp and not t.owns_tracer_provider
        with llmtel.llm_call(provider="p", model="m") as call:
            pass
        names = {m.name for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
                 for m in sm.metrics}
        assert "gen_ai.client.operation.duration" in names, names
        assert [s.name for s in spans.get_finished_spans()] == ["chat m"]
        tid = format(call.span.get_span_context().trace_id, "032x")
        assert t.trace_store.get(tid)
        llmtel.shutdown()
        with trace.get_tracer("app").start_as_current_span("after"):  # the app's provider still runs
            pass
        assert len(spans.get_finished_spans()) == 2
        print("OK")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert "Overriding" not in result.stderr


def test_installs_global_providers_when_the_app_has_none() -> None:
    result = _run(
        """
        from opentelemetry import metrics, trace
        import llmtel
        t = llmtel.configure(prometheus_port=0, process_metrics=False)
        assert trace.get_tracer_provider() is t.tracer_provider
        assert metrics.get_meter_provider() is t.meter_provider
        with trace.get_tracer("app").start_as_current_span("app-span") as span:
            with llmtel.llm_call(provider="p", model="m") as call:
                pass
        assert call.span.parent.span_id == span.get_span_context().span_id
        llmtel.shutdown()
        print("OK")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "Overriding" not in result.stderr


def test_content_capture_with_a_logs_exporter_sets_up_a_logger_provider() -> None:
    result = _run(
        """
        from opentelemetry._logs import LogRecord, get_logger, get_logger_provider
        import llmtel
        t = llmtel.configure(prometheus_port=0, process_metrics=False, capture_content=True, logs_exporter="console")
        assert get_logger_provider() is t.logger_provider and t.owns_logger_provider
        get_logger("llmtel-test").emit(LogRecord(body="gen_ai content event"))
        assert llmtel.force_flush()
        llmtel.shutdown()
        """
    )
    assert result.returncode == 0, result.stderr
    assert "gen_ai content event" in result.stdout


def test_no_logger_provider_without_content_capture() -> None:
    telemetry = llmtel.configure(prometheus_port=0, process_metrics=False, logs_exporter="console")
    assert telemetry.logger_provider is None
