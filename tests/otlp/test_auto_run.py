"""Zero-code start: ``opentelemetry-instrument python app_auto.py`` with only environment variables.

Each test runs tests/otlp/app_auto.py as a real subprocess under the real ``opentelemetry-instrument``
launcher, so llmtel is found through its installed entry points exactly as in production.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from otlp_receiver import OtlpReceiver, free_port

from llmtel import semconv
from llmtel._internal.naming import prometheus_name

APP = Path(__file__).with_name("app_auto.py")
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
INSTRUMENT = BIN / "opentelemetry-instrument"
TTFC = semconv.spec("gen_ai.client.operation.time_to_first_chunk")
DURATION = semconv.spec("gen_ai.client.operation.duration")


def _names(group: str) -> set[str]:
    return {ep.name for ep in entry_points(group=group)}


pytestmark = [
    pytest.mark.realserver,
    pytest.mark.skipif(not INSTRUMENT.exists(), reason="opentelemetry-instrument not installed next to python"),
    pytest.mark.skipif(
        "llmtel" not in _names("opentelemetry_distro") or "llmtel" not in _names("opentelemetry_configurator"),
        reason="llmtel's entry points are not registered: run `pip install -e .`",
    ),
]

#: Set when another distro (opentelemetry-distro) is installed too: the loader would otherwise take
#: whichever entry point it finds first. Documented in docs/deployment.md.
OTHER_DISTRO = bool(_names("opentelemetry_distro") - {"llmtel"})
SELECT_LLMTEL = {"OTEL_PYTHON_DISTRO": "llmtel"} if OTHER_DISTRO else {}


@dataclass
class AppRun:
    facts: dict[str, Any]
    stdout: str = ""
    stderr: str = ""
    returncode: int | None = None
    exit_seconds: float | None = None


def _base_env(**env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTEL_", "PYTHONPATH"))}
    base["PATH"] = f"{BIN}{os.pathsep}{base.get('PATH', '')}"
    base["PYTHONUNBUFFERED"] = "1"
    base["LLMTEL_GPU_METRICS"] = "false"
    base["OTEL_METRIC_EXPORT_INTERVAL"] = "300"
    base["OTEL_BSP_SCHEDULE_DELAY"] = "100"
    base.update(env)
    return base


@contextmanager
def run_app(env: dict[str, str], *, startup_timeout: float = 30.0) -> Iterator[AppRun]:
    """Start the app under opentelemetry-instrument; yield once it printed its facts line."""
    proc = subprocess.Popen(
        [str(INSTRUMENT), sys.executable, str(APP)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # Not the checkout: its build leftovers (llmtel.egg-info) would be found before the installed
        # entry points (opentelemetry-instrument puts the cwd on PYTHONPATH) and change the load order.
        cwd=str(APP.parent),
    )
    lines: queue.Queue[str] = queue.Queue()
    stderr_chunks: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    err_thread = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    err_thread.start()
    run = AppRun(facts={})
    try:
        try:
            first = lines.get(timeout=startup_timeout)
        except queue.Empty:
            proc.kill()
            err_thread.join(5)
            stderr = "".join(stderr_chunks)
            raise AssertionError(f"app printed nothing in {startup_timeout}s; stderr:\n{stderr}") from None
        try:
            run.facts = json.loads(first)
        except ValueError:
            proc.kill()
            err_thread.join(5)
            raise AssertionError(f"unexpected app output {first!r}; stderr:\n{''.join(stderr_chunks)}") from None
        yield run
    finally:
        started = time.monotonic()
        try:
            proc.stdin.close()  # the app's cue to exit normally (atexit → llmtel.shutdown)
            run.returncode = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()  # by PID: this process only
            run.returncode = proc.wait()
        run.exit_seconds = time.monotonic() - started
        err_thread.join(5)
        run.stderr = "".join(stderr_chunks)
        rest: list[str] = []
        while not lines.empty():
            rest.append(lines.get_nowait())
        run.stdout = "".join(rest)


def _scrape(url: str, *, openmetrics: bool = True) -> str:
    accept = "application/openmetrics-text; version=1.0.0" if openmetrics else "text/plain; version=0.0.4"
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return str(resp.read().decode())


def _check_scrape(url: str, span_ids: set[tuple[bytes, bytes]]) -> None:
    """The scrape is valid and its TTFC exemplars point at spans the collector received."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    families = list(text_string_to_metric_families(_scrape(url)))  # raises on duplicate families
    samples = [
        s
        for f in families
        if f.name == prometheus_name(TTFC)
        for s in f.samples
        if s.name.endswith("_bucket") and s.labels.get("gen_ai_request_model") == "gpt-auto"
    ]
    assert samples, [f.name for f in families]
    exemplars = {(s.exemplar.labels["trace_id"], s.exemplar.labels["span_id"]) for s in samples if s.exemplar}
    assert exemplars, "no exemplar on the TTFC buckets"
    assert exemplars <= {(t.hex(), s.hex()) for t, s in span_ids}
    if shutil.which("promtool"):
        plain = _scrape(url, openmetrics=False)
        result = subprocess.run(["promtool", "check", "metrics"], input=plain, capture_output=True, text=True)
        assert result.returncode != 1, result.stdout + result.stderr  # 1: unparsable; 3: naming lint only


#: The one line the instrumentation loader prints when two configurators are installed
#: ("Configuration of X not loaded, Y already loaded" / "... not loaded because ...").
LOADER_LINE = "not loaded"


def _is_loader_line(line: str) -> bool:
    return line.startswith("Configuration of ") and LOADER_LINE in line


def _noise(stderr: str) -> list[str]:
    """Everything the app printed on stderr besides the loader's one line (a storm would be many)."""
    return [line for line in stderr.splitlines() if line.strip() and not _is_loader_line(line)]


def _otlp_env(
    rx: OtlpReceiver, protocol: str, prom_port: int, *, select: dict[str, str] = SELECT_LLMTEL, **extra: str
) -> dict[str, str]:
    """The env-only full pipeline: bridge + OTLP push; ``select`` picks the distro/configurator."""
    return _base_env(
        OTEL_SERVICE_NAME="auto-app",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=ci",
        OTEL_METRICS_EXPORTER="llmtel_prometheus,otlp",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=rx.endpoint(protocol),
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_PROMETHEUS_PORT=str(prom_port),
        **select,
        **extra,
    )


def _assert_pushed_and_linked(rx: OtlpReceiver, facts: dict[str, Any]) -> set[tuple[bytes, bytes]]:
    spans = rx.wait_for(lambda: rx.spans("chat gpt-auto") if len(rx.spans("chat gpt-auto")) >= 3 else None)
    assert {s.resource["service.name"] for s in spans} == {"auto-app"}
    span_ids = {(s.trace_id, s.span_id) for s in spans}
    assert (bytes.fromhex(facts["last_trace_id"]), bytes.fromhex(facts["last_span_id"])) in span_ids
    points = rx.wait_for(lambda: [p for p in rx.metric_points(TTFC.name) if p.point.count >= 3])
    exemplars = [e for p in points for e in p.point.exemplars]
    assert exemplars
    assert {(bytes(e.trace_id), bytes(e.span_id)) for e in exemplars} <= span_ids
    point = points[-1]
    assert point.resource["service.name"] == "auto-app"
    assert point.resource["deployment.environment.name"] == "ci"
    assert point.scope == "llmtel"
    return span_ids


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_env_only_app_pushes_otlp_and_serves_prometheus(receiver: OtlpReceiver, protocol: str) -> None:
    port = free_port()
    with run_app(_otlp_env(receiver, protocol, port)) as app:
        assert app.facts["configured"] and app.facts["from_auto_instrumentation"]
        assert app.facts["global_meter_provider_is_llmtels"] and app.facts["global_tracer_provider_is_llmtels"]
        assert app.facts["metrics_url"] == f"http://127.0.0.1:{port}/metrics"
        span_ids = _assert_pushed_and_linked(receiver, app.facts)
        _check_scrape(app.facts["metrics_url"], span_ids)
    # The distro's default OTEL_PYTHON_DISABLED_INSTRUMENTATIONS keeps system_metrics (same names as
    # llmtel's process metrics) out.
    assert {p.scope for p in receiver.metric_points()} == {"llmtel"}
    assert app.returncode == 0, app.stderr
    assert not _noise(app.stderr), app.stderr


def test_app_that_also_calls_configure_gets_one_set_of_providers(receiver: OtlpReceiver) -> None:
    env = _otlp_env(receiver, "grpc", free_port(), APP_CALLS_CONFIGURE="1")
    with run_app(env) as app:
        assert app.facts["from_auto_instrumentation"], "the app's configure() built a second configuration"
        assert app.facts["global_meter_provider_is_llmtels"] and app.facts["global_tracer_provider_is_llmtels"]
        _assert_pushed_and_linked(receiver, app.facts)
        time.sleep(0.7)  # a few more export intervals: a second pipeline would show up as a second resource
    resources = {tuple(sorted(p.resource.items())) for p in receiver.metric_points()}
    assert len(resources) == 1, resources
    # Each llm_call was recorded once: three calls, one cumulative count of three (not six).
    assert max(p.point.count for p in receiver.metric_points(DURATION.name)) == 3
    assert app.returncode == 0
    assert not _noise(app.stderr), app.stderr


def test_sdk_disabled_exports_nothing_and_app_runs(receiver: OtlpReceiver) -> None:
    port = free_port()
    env = _otlp_env(receiver, "http/protobuf", port, OTEL_SDK_DISABLED="true")
    with run_app(env) as app:
        assert app.facts["disabled"] or not app.facts["configured"]
        time.sleep(1.0)  # > 3 export intervals
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            _scrape(f"http://127.0.0.1:{port}/metrics")
    assert app.returncode == 0, app.stderr
    assert receiver.received == [] and receiver.rejected == 0
    assert not _noise(app.stderr), app.stderr


def test_port_clash_logs_one_error_and_app_starts(receiver: OtlpReceiver) -> None:
    """Auto-instrumentation never stops over the endpoint: push still flows, the port is retried."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with run_app(_otlp_env(receiver, "grpc", port)) as app:
            assert app.facts["configured"] and app.facts["metrics_url"] is None
            _assert_pushed_and_linked(receiver, app.facts)  # OTLP is not lost with the port
    assert app.returncode == 0, app.stderr
    error = (_noise(app.stderr) or [""])[0]
    assert "llmtel" in error and f"127.0.0.1:{port}" in error and "OTEL_EXPORTER_PROMETHEUS_PORT" in error, app.stderr
    assert len(_noise(app.stderr)) == 1, app.stderr


@pytest.mark.skipif(not OTHER_DISTRO, reason="opentelemetry-distro not installed (it is in the test extra)")
@pytest.mark.parametrize(
    "selection",
    [
        {"OTEL_PYTHON_DISTRO": "llmtel", "OTEL_PYTHON_CONFIGURATOR": "llmtel"},
        {"OTEL_PYTHON_DISTRO": "llmtel"},  # llmtel's distro defaults the configurator to llmtel's
        {"OTEL_PYTHON_CONFIGURATOR": "llmtel"},  # opentelemetry-distro's env defaults, llmtel configures
    ],
    ids=["both", "distro-only", "configurator-only"],
)
def test_llmtel_selected_when_opentelemetry_distro_is_installed_too(
    receiver: OtlpReceiver, selection: dict[str, str]
) -> None:
    port = free_port()
    env = _otlp_env(receiver, "grpc", port, select=selection)
    with run_app(env) as app:
        assert app.facts["configured"] and app.facts["from_auto_instrumentation"], app.facts
        assert app.facts["global_meter_provider_is_llmtels"]
        span_ids = _assert_pushed_and_linked(receiver, app.facts)
        _check_scrape(app.facts["metrics_url"], span_ids)
    assert app.returncode == 0, app.stderr
    # At most the loader's one line about the configurator it skipped.
    assert not _noise(app.stderr), app.stderr
    assert sum(map(_is_loader_line, app.stderr.splitlines())) <= 1


@pytest.mark.skipif(not OTHER_DISTRO, reason="opentelemetry-distro not installed (it is in the test extra)")
def test_telemetry_flows_whichever_configurator_the_loader_picks(receiver: OtlpReceiver) -> None:
    """No OTEL_PYTHON_DISTRO/CONFIGURATOR: the loader takes the first entry point it finds.

    Whether that is llmtel's configurator or the SDK's (which then builds its plain pipeline and
    finds the bridge through the ``llmtel_prometheus`` metrics-exporter entry point), llmtel's
    calls must still reach the collector with linked exemplars and be served at /metrics.
    """
    port = free_port()
    env = _otlp_env(receiver, "grpc", port, select={})
    with run_app(env) as app:
        span_ids = _assert_pushed_and_linked(receiver, app.facts)
        _check_scrape(f"http://127.0.0.1:{port}/metrics", span_ids)
    assert app.returncode == 0, app.stderr
    assert "Traceback" not in app.stderr
    assert not _noise(app.stderr), app.stderr
