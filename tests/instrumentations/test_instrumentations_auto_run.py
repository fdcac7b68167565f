"""``opentelemetry-instrument python app.py``: llmtel_openai and llmtel_grpc found by their entry points, env vars only.

Each test runs a small app that knows nothing about telemetry as a real subprocess under the real
``opentelemetry-instrument`` launcher and scrapes llmtel's Prometheus endpoint while the app runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from fake_openai import WORDS, FakeOpenAI
from prometheus_client.parser import text_string_to_metric_families
from realservers import free_port

from llmtel import semconv
from llmtel._internal.naming import prometheus_label, prometheus_name

OPENAI_APP = Path(__file__).with_name("app_openai_auto.py")
GRPC_APP = Path(__file__).with_name("app_grpc_auto.py")
BIN = Path(sys.executable).parent
INSTRUMENT = BIN / "opentelemetry-instrument"
DURATION = prometheus_name(semconv.spec("gen_ai.client.operation.duration"))
TTFC = prometheus_name(semconv.spec("gen_ai.client.operation.time_to_first_chunk"))
TOKENS = prometheus_name(semconv.spec("gen_ai.client.token.usage"))
SERVER_DURATION = prometheus_name(semconv.spec("gen_ai.server.request.duration"))
TTFT = prometheus_name(semconv.spec("gen_ai.server.time_to_first_token"))
TPOT = prometheus_name(semconv.spec("gen_ai.server.time_per_output_token"))
MODEL = prometheus_label(semconv.REQUEST_MODEL)
OPERATION = prometheus_label(semconv.OPERATION_NAME)

_instrumentors = {ep.name for ep in entry_points(group="opentelemetry_instrumentor")}
pytestmark = [
    pytest.mark.realserver,
    pytest.mark.skipif(not INSTRUMENT.exists(), reason="opentelemetry-instrument not installed next to python"),
    pytest.mark.skipif(
        "llmtel_openai" not in _instrumentors, reason="run `pip install -e instrumentations/llmtel-openai`"
    ),
]


@contextmanager
def _app(app: Path, **extra_env: str) -> Iterator[tuple[dict[str, Any], int]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTEL_", "PYTHONPATH"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        OTEL_PYTHON_DISTRO="llmtel",  # opentelemetry-distro may be installed too
        OTEL_PYTHON_CONFIGURATOR="llmtel",
        OTEL_METRICS_EXPORTER="llmtel_prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
        LLMTEL_GPU_METRICS="false",
        **extra_env,
    )
    if "openai" in _instrumentors:  # contrib's openai_v2 is installed: it would win (docs/instrumentations.md)
        env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = ",".join(
            filter(None, [env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"), "openai"])
        )
    proc = subprocess.Popen(
        [str(INSTRUMENT), sys.executable, str(app)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(app.parent),  # not the checkout root (its egg-info would shadow installed entry points)
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise AssertionError(f"app printed nothing; stderr:\n{proc.communicate(timeout=10)[1]}")
        yield json.loads(line), port
    finally:
        try:
            proc.communicate(input="", timeout=20)  # closing stdin lets the app exit normally
        except subprocess.TimeoutExpired:
            proc.kill()  # by PID: this process only
            proc.wait()


def _samples(port: int) -> dict[str, list[Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    found: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def test_openai_app_serves_genai_metrics(fake_openai: FakeOpenAI) -> None:
    with _app(OPENAI_APP, FAKE_OPENAI_BASE_URL=fake_openai.base_url) as (facts, port):
        assert facts == {"text": "".join(WORDS), "create_is_wrapped": True}
        samples = _samples(port)
    chat = [s for s in samples[f"{DURATION}_count"] if s.labels.get(OPERATION) == "chat"]
    assert [(s.labels[MODEL], s.value) for s in chat] == [("gpt-4o-mini", 1.0)]
    assert [s.value for s in samples[f"{TTFC}_count"]] == [1.0]
    embeddings = [s for s in samples[f"{DURATION}_count"] if s.labels.get(OPERATION) == "embeddings"]
    assert [s.value for s in embeddings] == [1.0]
    token_sums = {(s.labels[OPERATION], s.labels["gen_ai_token_type"]): s.value for s in samples[f"{TOKENS}_sum"]}
    assert token_sums == {("chat", "input"): 11, ("chat", "output"): len(WORDS), ("embeddings", "input"): 4}


def test_openai_app_with_an_upstream_capture_mode(fake_openai: FakeOpenAI) -> None:
    # span_only (like event_only, no_content...) made configure() raise, leaving the app with no telemetry at
    # all (issue 15); every value's parsing is tested in-process (tests/test_configure.py).
    with _app(
        OPENAI_APP,
        FAKE_OPENAI_BASE_URL=fake_openai.base_url,
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY",
    ) as (facts, port):
        assert facts == {"text": "".join(WORDS), "create_is_wrapped": True}
        samples = _samples(port)
    chat = [s for s in samples[f"{DURATION}_count"] if s.labels.get(OPERATION) == "chat"]
    assert [s.value for s in chat] == [1.0]
    # the stream's chunks said which tier served it: on the duration series (semconv openai.md)
    assert chat[0].labels[prometheus_label("openai.response.service_tier")] == "default"


def test_openai_disabled_by_entry_point_name(fake_openai: FakeOpenAI) -> None:
    with _app(
        OPENAI_APP, FAKE_OPENAI_BASE_URL=fake_openai.base_url, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="llmtel_openai"
    ) as (facts, port):
        assert facts == {"text": "".join(WORDS), "create_is_wrapped": False}
        samples = _samples(port)
    assert samples  # the endpoint is up (llmtel itself is configured)...
    assert f"{DURATION}_count" not in samples  # ...but no openai call was recorded
    assert f"{TTFC}_count" not in samples


GRPC_ENV = {
    "LLMTEL_GRPC_INFERENCE_METHODS": "/llmtel.test.Generator/*",
    "LLMTEL_GRPC_INPUT_TOKENS_FIELD": "prompt_token_ids",
    "LLMTEL_GRPC_OUTPUT_TOKENS_FIELD": "token_ids",
    "LLMTEL_GRPC_PROVIDER": "llmtel-test",
}


def test_grpc_server_app_serves_server_metrics() -> None:
    with _app(GRPC_APP, **GRPC_ENV) as (facts, port):
        assert facts == {"replies": 3}
        samples = _samples(port)
    assert [(s.labels[MODEL], s.value) for s in samples[f"{SERVER_DURATION}_count"]] == [("tiny", 1.0)]
    assert [s.value for s in samples[f"{TTFT}_count"]] == [1.0]
    assert [s.value for s in samples[f"{TPOT}_count"]] == [1.0]
    token_sums = {s.labels["gen_ai_token_type"]: s.value for s in samples[f"{TOKENS}_sum"]}
    assert token_sums == {"input": 3, "output": 6}


def test_grpc_disabled_by_entry_point_name() -> None:
    with _app(GRPC_APP, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="llmtel_grpc", **GRPC_ENV) as (facts, port):
        assert facts == {"replies": 3}
        samples = _samples(port)
    assert samples
    assert f"{SERVER_DURATION}_count" not in samples
