"""Property-based fuzzing of every public recording entry point and argument (hypothesis).

Each example is a short program of recording calls whose every argument is drawn from hostile
values: huge and out-of-range ints (``10**5000``, ``2**70``), NaN/inf, lone surrogates and NULs,
bytes, containers, unhashable values, objects whose ``__repr__``/``__str__``/``__bool__``/``__iter__``
raise, generators, exceptions with unprintable messages. The property: no call raises (the suite
runs with internal errors re-raised, so an llmtel bug fails too). After the fuzz, against one
configuration with both pipelines on:

* the scrape, in both formats, parses with prometheus_client's parsers, the classic text passes
  ``promtool check metrics``, and every later scrape still holds llmtel's families;
* OTLP export to a real receiver (tests/otlp_receiver.py) keeps working: ``force_flush()`` reports
  success, a sentinel recorded afterwards arrives, and the SDK never logged an encoding failure;
* ``/traces/<id>`` answers 200 with JSON for every stored trace;
* every problem kind was logged once at most.

Bounded and deterministic: ``derandomize=True`` (the same examples on every run, in CI too), no
example database, ``LLMTEL_FUZZ_EXAMPLES`` examples per capture mode (150 by default; raise it locally to dig).
It runs twice: without content capture, and with content on spans (exception text and ``set_content``
recorded, through the redactor).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from otlp_receiver import OtlpReceiver
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

import llmtel
from llmtel import semconv
from llmtel._internal import errors as _errors
from llmtel.instrumentation import report_problem

EXAMPLES = int(os.environ.get("LLMTEL_FUZZ_EXAMPLES", "150"))
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


# -- hostile values ----------------------------------------------------------------------------


class Unprintable:
    """Refuses to be printed, compared, hashed, iterated or made a bool."""

    def __repr__(self) -> str:
        raise RuntimeError("repr refused")

    def __str__(self) -> str:
        raise RuntimeError("str refused")

    def __bool__(self) -> bool:
        raise RuntimeError("bool refused")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq refused")

    def __hash__(self) -> int:
        raise RuntimeError("hash refused")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("iter refused")


class Weird(Exception):
    """An exception whose message cannot be printed."""

    def __str__(self) -> str:
        raise RuntimeError("exception str refused")


_HUGE_VALUES = (10**5000, -(10**5000), 10**400, 2**70, -(2**70), 2**63, 2**53 + 1, 2**53, 1e308, -1e308)
# Drawn by index: hypothesis cannot repr an int of more than 4300 digits.
_HUGE = st.integers(0, len(_HUGE_VALUES) - 1).map(_HUGE_VALUES.__getitem__)
_TEXT = st.text(st.characters(codec=None, categories=None), max_size=40) | st.sampled_from(
    ["\ud800", "a\udfffb", "nul\x00", 'quote"\\\n', "x" * 300, "", " ", "sk-abcdefghijklmnop"]
)
_SCALARS = (
    st.none(),
    st.booleans(),
    st.integers(),
    _HUGE,
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT,
    st.binary(max_size=20),
    st.builds(Unprintable),
    st.builds(object),
)
_SCALAR = st.one_of(*_SCALARS)
# Every kind of scalar and container equally likely (a recursive strategy would mostly nest containers).
VALUE = st.one_of(
    *_SCALARS,
    st.lists(_SCALAR, max_size=4),
    st.tuples(_SCALAR, _SCALAR),
    st.dictionaries(st.text(max_size=5), _SCALAR, max_size=3),
    st.lists(_SCALAR, max_size=4).map(iter),  # an iterator, readable once
)
# For numeric arguments (counts, durations, ports, ranks): numbers in and out of range more often.
NUMBER = st.one_of(_HUGE, st.integers(), st.floats(allow_nan=True, allow_infinity=True), VALUE)
KEYS = st.one_of(_TEXT, st.sampled_from(["server.port", "gen_ai.request.model", "tenant", "\udfff"]))
EXTRAS = st.dictionaries(KEYS, VALUE, max_size=3)
HISTOGRAMS = [spec.name for spec in semconv.INSTRUMENTS if spec.kind is semconv.Kind.HISTOGRAM]


def str_or(value: Any) -> str:
    """``value`` when it is a str, else a fixed str (for arguments whose type is part of the contract)."""
    return value if isinstance(value, str) else "not-a-str"


def _kwargs(extras: dict[str, Any], reserved: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in extras.items() if key not in reserved}


# -- one program step per public entry point ----------------------------------------------------

Step = Callable[[], None]


@st.composite
def llm_call_step(draw: st.DrawFn) -> Step:
    args = {name: draw(VALUE) for name in ("provider", "model", "operation", "stream", "role", "server_address")}
    args["server_port"] = draw(NUMBER | st.integers(-5, 70000))
    extras = _kwargs(draw(EXTRAS), (*args, "attributes"))
    usage = {
        name: draw(NUMBER)
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "reasoning_output_tokens",
        )
    }
    setters = draw(
        st.lists(
            st.sampled_from(
                ["response_model", "response_id", "finish_reasons", "error", "cost", "attributes", "content", "chunks"]
            ),
            max_size=4,
        )
    )
    values = [draw(NUMBER if setter == "cost" else VALUE) for setter in setters]
    explicit = draw(st.booleans())
    failure = draw(st.sampled_from([None, ValueError, Weird]))
    message = draw(_TEXT)

    def step() -> None:
        call = llmtel.llm_call(**args, **extras)
        try:
            with call if not explicit else _started(call):
                call.set_usage(**usage)
                for setter, value in zip(setters, values, strict=True):
                    if setter == "finish_reasons":
                        call.set_finish_reasons(value)
                    elif setter == "error":
                        call.set_error(value)
                    elif setter == "cost":
                        call.set_cost(value)
                    elif setter == "attributes":
                        call.set_attributes(value)
                    elif setter == "content":
                        call.set_content(
                            input_messages=value,
                            output_messages=[value],
                            system_instructions={"text": value},
                            tool_definitions=value,
                        )
                    elif setter == "chunks":
                        for _ in call.wrap_stream([1, 2, 3]):
                            call.mark_first_token()
                    else:
                        getattr(call, f"set_{setter}")(value)
                if failure is not None:
                    raise failure(message)
        except (ValueError, Weird):
            pass

    return step


class _started:
    """The kit's explicit lifecycle: start(), then stop() or fail(exc)."""

    def __init__(self, operation: Any) -> None:
        self.operation = operation

    def __enter__(self) -> Any:
        return self.operation.start()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.operation.stop()
        else:
            self.operation.fail(exc)
            self.operation.fail(exc)  # finishing twice is a no-op


@st.composite
def named_step(draw: st.DrawFn) -> Step:
    kind = draw(st.sampled_from(["tool", "agent", "retrieval"]))
    first = draw(VALUE)
    second, third = draw(NUMBER if kind == "retrieval" else VALUE), draw(VALUE)
    extras = draw(EXTRAS)
    documents, ranks = draw(NUMBER), draw(VALUE | st.lists(NUMBER, max_size=5))
    as_decorator = draw(st.booleans())

    def step() -> None:
        if kind == "tool":
            extra = _kwargs(extras, ("name", "tool_type", "call_id"))
            operation: Any = llmtel.tool(first, tool_type=second, call_id=third, **extra)
        elif kind == "agent":
            extra = _kwargs(extras, ("name", "agent_id", "provider"))
            operation = llmtel.agent(first, agent_id=second, provider=third, **extra)
        else:
            operation = llmtel.retrieval(first, top_k=second, **_kwargs(extras, ("data_source", "top_k")))
        if as_decorator:
            operation(lambda: None)()
            return
        with operation:
            if kind == "retrieval":
                operation.set_documents(documents)
                operation.record_relevance(ranks)
            if third is not None:
                operation.set_error(third)

    return step


@st.composite
def runtime_step(draw: st.DrawFn) -> Step:
    kind = draw(
        st.sampled_from(
            [
                "duration",
                "session",
                "queued",
                "admission",
                "breaker",
                "rate_limit",
                "cache",
                "model_load",
                "block",
                "problem",
            ]
        )
    )
    a, b, c = draw(NUMBER if kind in ("duration", "rate_limit") else VALUE), draw(VALUE), draw(VALUE)
    name = draw(st.sampled_from(HISTOGRAMS) | VALUE)
    extras = draw(EXTRAS)
    state = draw(st.sampled_from(["closed", "half_open", "open"]) | VALUE)

    def step() -> None:
        if kind == "duration":
            llmtel.record_duration(name, a, **extras)
        elif kind == "session":
            with llmtel.session(a):
                pass
        elif kind == "queued":
            with llmtel.queued(a) as ticket:
                ticket.start()
        elif kind == "admission":
            llmtel.admission_rejected(a, b)
        elif kind == "breaker":
            llmtel.set_circuit_breaker_state(a, state)
        elif kind == "rate_limit":
            llmtel.rate_limit_wait(a, provider=b, model=c)
        elif kind == "cache":
            llmtel.cache_lookup(a, b)
        elif kind == "model_load":
            with llmtel.model_load(a):
                pass
        elif kind == "problem":  # the kit's report_problem, as an instrumentation author would call it
            report_problem(str_or(a), Weird("boom") if b is True else None)
        else:
            with llmtel.attributes(**extras), llmtel.llm_call(provider="p", model="in-block") as call:
                call.set_usage(input_tokens=1)

    return step


PROGRAM = st.lists(st.one_of(llm_call_step(), named_step(), runtime_step()), min_size=1, max_size=6)


# -- the suite ----------------------------------------------------------------------------------


def _scrape(url: str, accept: str) -> str:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return str(response.read().decode("utf-8"))


@pytest.fixture(params=["no_content", "span_only"])
def pipelines(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[llmtel.Telemetry, OtlpReceiver]]:
    """Both pipelines; without content capture, and with it (content and exception text recorded, redacted)."""
    for key in list(os.environ):
        if key.startswith(("OTEL_", "LLMTEL_")) and key not in ("LLMTEL_RAISE_INTERNAL_ERRORS", "LLMTEL_FUZZ_EXAMPLES"):
            monkeypatch.delenv(key)
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        telemetry = llmtel.configure(
            metrics_exporter=["llmtel_prometheus", "otlp"],
            traces_exporter="otlp",
            metric_export_interval=3_600_000,  # exports happen at force_flush
            prometheus_port=0,
            process_metrics=False,
            gpu_metrics=False,
            metric_attributes=["tenant"],
            capture_content=request.param,
            redact_exception_messages=request.param != "no_content",
        )
        try:
            yield telemetry, receiver
        finally:
            llmtel.shutdown()


@pytest.mark.realserver
def test_fuzzed_recording_never_raises_nor_breaks_scrape_or_export(
    pipelines: tuple[llmtel.Telemetry, OtlpReceiver], caplog: pytest.LogCaptureFixture
) -> None:
    telemetry, receiver = pipelines
    assert telemetry.metrics_url is not None and telemetry.endpoint_url is not None
    _errors.reset()
    caplog.set_level(logging.WARNING)
    trace_ids: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(program=PROGRAM)
    def run(program: list[Step]) -> None:
        with llmtel.tool("fuzz-example") as marker:
            for step in program:
                step()
        trace_ids.append(format(marker.span.get_span_context().trace_id, "032x"))

    run()

    # The scrape: both formats, both parsers, promtool (classic text; Debian's promtool has no OpenMetrics).
    text = _scrape(telemetry.metrics_url, "text/plain")
    families = {family.name for family in parse_text(text)}
    assert "gen_ai_client_operation_duration_seconds" in families
    om = {family.name for family in parse_openmetrics(_scrape(telemetry.metrics_url, OPENMETRICS))}
    assert "gen_ai_client_operation_duration_seconds" in om
    promtool = shutil.which("promtool")
    if promtool is None and os.environ.get("CI") == "true":
        pytest.fail("promtool not installed, and CI=true requires it")
    if promtool is not None:
        checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        # Lint findings (e.g. a fuzzed unit) are not failures; a scrape promtool cannot parse is.
        assert "error while linting" not in checked.stderr + checked.stdout, checked.stderr[-2000:]

    # OTLP keeps working after the fuzz: the export succeeds and a sentinel recorded afterwards arrives.
    with llmtel.llm_call(provider="fuzz", model="sentinel") as call:
        call.set_usage(input_tokens=7)
    assert llmtel.force_flush(20), "an OTLP export failed after the fuzz"
    receiver.wait_for(
        lambda: [
            p
            for p in receiver.metric_points("gen_ai.client.token.usage")
            if p.attributes.get("gen_ai.request.model") == "sentinel"
        ]
    )
    receiver.wait_for(lambda: receiver.spans("chat sentinel"))
    sdk_errors = [r for r in caplog.records if r.name.startswith("opentelemetry") and r.levelno >= logging.WARNING]
    assert not sdk_errors, [r.getMessage()[:200] for r in sdk_errors]

    # Every stored trace renders, and so does the list.
    with urllib.request.urlopen(f"{telemetry.endpoint_url}/traces?limit=1000", timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read())["traces"]
    for trace_id in trace_ids[-50:]:
        with urllib.request.urlopen(f"{telemetry.endpoint_url}/traces/{trace_id}", timeout=10) as response:
            assert response.status == 200
            json.loads(response.read())

    # Each problem kind logged at most once (later ones only counted).
    logged = Counter(
        r.getMessage().split(" (")[0].split(";")[0]
        for r in caplog.records
        if r.name == "llmtel" and "llmtel:" in r.getMessage()
    )
    assert all(count == 1 for count in logged.values()), logged
    assert _errors.problem_counts(), "the fuzz produced no bad input at all"
