"""force_flush() tells whether the data went out; shutdown() keeps its whole time bound (issue 14, items 13-14)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest
from otlp_receiver import OtlpReceiver

import llmtel


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith(("OTEL_", "LLMTEL_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("LLMTEL_RAISE_INTERNAL_ERRORS", "1")
    monkeypatch.setenv("LLMTEL_GPU_METRICS", "false")
    monkeypatch.setenv("LLMTEL_PROCESS_METRICS", "false")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "60000")  # the test decides when to export
    yield
    llmtel.shutdown(timeout=2)


def _one_call(model: str) -> None:
    with llmtel.llm_call(provider="openai", model=model) as call:
        call.set_usage(input_tokens=3, output_tokens=2)


@pytest.mark.realserver
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_force_flush_is_false_while_the_collector_is_down(
    receiver: OtlpReceiver, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint(protocol))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    llmtel.configure(metrics_exporter="otlp", traces_exporter="otlp", export_timeout=0.5)
    receiver.stop()
    _one_call("gpt-down")
    assert llmtel.force_flush(5) is False  # was True: nothing reached the collector
    receiver.start()
    _one_call("gpt-up")
    assert llmtel.force_flush(5) is True
    assert receiver.spans("chat gpt-up")


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A collector that accepts connections and never answers (a dead host behind a load balancer)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


@pytest.mark.realserver
def test_shutdown_returns_within_its_bound_with_a_dead_collector(
    blackhole: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{blackhole}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    bound = 1.0
    llmtel.configure(
        metrics_exporter="otlp", traces_exporter="otlp", export_timeout=30, shutdown_timeout=bound, prometheus_port=0
    )  # the endpoint (trace store) is up too: stopping it is part of the bound
    _one_call("gpt-blackhole")
    started = time.monotonic()
    llmtel.shutdown()
    elapsed = time.monotonic() - started
    assert elapsed <= bound, f"shutdown took {elapsed:.3f}s for shutdown_timeout={bound}"
    assert llmtel.current() is None
