"""Fixtures for the instrumentation tests: the fake OpenAI server and instrumented clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fake_openai import FakeOpenAI


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def log_exporter() -> Any:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    exporter.provider = provider  # type: ignore[attr-defined]
    return exporter


@pytest.fixture
def instrumented(log_exporter: Any) -> Iterator[Any]:
    """llmtel_openai instrumented for one test (content events into ``log_exporter``)."""
    from llmtel_openai import OpenAIInstrumentor

    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(logger_provider=log_exporter.provider)
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


@pytest.fixture
def llmtel_capture() -> Iterator[Any]:
    """llmtel's capture fixture, with a price for gpt-4o-mini so cost is recorded."""
    import llmtel
    from llmtel.testing import Capture

    llmtel.shutdown()
    capture = Capture(price_table={"gpt-4o-mini": {"input": 0.15, "output": 0.60, "cache_read": 0.075}})
    try:
        yield capture
    finally:
        capture.close()
