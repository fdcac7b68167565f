"""A pytest plugin for asserting on your own telemetry (registered as ``pytest11``).

Use the ``llmtel_capture`` fixture: llmtel is configured with in-memory
readers (no endpoint, no exporters), and the fixture reads back what was
recorded::

    def test_chat(llmtel_capture):
        with llmtel.llm_call(provider="openai", model="m") as call:
            call.set_usage(input_tokens=3, output_tokens=5)
        assert llmtel_capture.sum("gen_ai.client.token.usage", {"gen_ai.token.type": "output"}) == 5
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmtel

__all__ = ["Capture", "llmtel_capture"]


class Capture:
    """In-memory view of the spans and metrics recorded while it is active."""

    def __init__(self, **configure_options: Any) -> None:
        self.reader = InMemoryMetricReader()
        self.exporter = InMemorySpanExporter()
        options: dict[str, Any] = {
            "metrics_exporter": "none",
            "traces_exporter": "none",
            "prometheus_port": 0,
            "process_metrics": False,
            "gpu_metrics": False,
            **configure_options,
        }
        options["metric_readers"] = [self.reader, *options.get("metric_readers", ())]
        options["span_processors"] = [SimpleSpanProcessor(self.exporter), *options.get("span_processors", ())]
        self.telemetry = llmtel.configure(**options)

    def close(self) -> None:
        """Shut llmtel down (the fixture does it for you)."""
        llmtel.shutdown()

    # -- spans ---------------------------------------------------------------
    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans, optionally only those named ``name``."""
        spans = list(self.exporter.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    # -- metrics -------------------------------------------------------------
    def points(self, metric: str) -> list[Any]:
        """Data points of ``metric`` from a fresh collection (cumulative)."""
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        if data is None:
            return found
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == metric:
                        found.extend(m.data.data_points)
        return found

    def metric_names(self) -> set[str]:
        """Names of every metric recorded so far."""
        data = self.reader.get_metrics_data()
        if data is None:
            return set()
        return {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}

    def point(self, metric: str, attributes: Mapping[str, Any] | None = None) -> Any:
        """The one data point whose attributes include ``attributes`` (AssertionError otherwise)."""
        want = dict(attributes or {})
        matches = [p for p in self.points(metric) if all(p.attributes.get(k) == v for k, v in want.items())]
        assert len(matches) == 1, f"{metric}{want}: expected one point, found {len(matches)}: {matches}"
        return matches[0]

    def sum(self, metric: str, attributes: Mapping[str, Any] | None = None) -> float:
        """Sum of a histogram, or value of a counter/gauge, for one attribute set."""
        p = self.point(metric, attributes)
        if isinstance(p, HistogramDataPoint):
            return float(p.sum)
        assert isinstance(p, NumberDataPoint)
        return float(p.value)

    def count(self, metric: str, attributes: Mapping[str, Any] | None = None) -> int:
        """Number of samples of a histogram for one attribute set."""
        p = self.point(metric, attributes)
        assert isinstance(p, HistogramDataPoint), f"{metric} is not a histogram"
        return int(p.count)


@pytest.fixture
def llmtel_capture() -> Iterator[Capture]:
    """llmtel configured with in-memory readers for the duration of one test."""
    llmtel.shutdown()
    capture = Capture()
    try:
        yield capture
    finally:
        capture.close()
