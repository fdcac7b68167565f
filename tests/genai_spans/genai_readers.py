"""Helpers for the real-source tests: canned provider responses and metric readers.

No network: every client talks to an in-memory transport (``httpx``/``httpx2`` ``MockTransport``).
"""

from __future__ import annotations

import json
from typing import Any

from llmtel.testing import Capture

DURATION = "gen_ai.client.operation.duration"
TOKENS = "gen_ai.client.token.usage"
TTFC = "gen_ai.client.operation.time_to_first_chunk"
DERIVED = (DURATION, TOKENS, TTFC, "gen_ai.client.operation.time_per_output_chunk")


def sse(events: list[tuple[str | None, dict[str, Any]]]) -> bytes:
    """A server-sent-events body."""
    out = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        out.append(f"{head}data: {json.dumps(data)}\n\n")
    return "".join(out).encode()


class Reading:
    """One collection of a Capture's reader: each exemplar is handed out once, so read everything at once."""

    def __init__(self, capture: Capture) -> None:
        data = capture.reader.get_metrics_data()
        self.points: list[tuple[str, str, Any]] = []
        for rm in data.resource_metrics if data is not None else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        self.points.append((sm.scope.name, metric.name, point))

    def of(self, metric: str, **attributes: Any) -> list[Any]:
        """llmtel's points of ``metric`` whose attributes include ``attributes`` (keys with ``_`` for ``.``)."""
        want = {key.replace("__", "."): value for key, value in attributes.items()}
        return [
            p
            for scope, name, p in self.points
            if scope == "llmtel" and name == metric and all(p.attributes.get(k) == v for k, v in want.items())
        ]

    def count(self, metric: str = DURATION, **attributes: Any) -> int:
        return sum(int(p.count) for p in self.of(metric, **attributes))

    def total(self, metric: str, **attributes: Any) -> float:
        """Sum of a histogram's samples, or a counter's value."""
        return sum(float(p.sum if hasattr(p, "sum") else p.value) for p in self.of(metric, **attributes))

    def exemplar_ids(self, metric: str = DURATION) -> set[tuple[int, int]]:
        return {(e.trace_id, e.span_id) for p in self.of(metric) for e in p.exemplars}

    def foreign(self) -> set[tuple[str, str]]:
        """(scope, name) of every derived-name metric recorded by another meter (must be none)."""
        return {(scope, name) for scope, name, _ in self.points if scope != "llmtel" and name in DERIVED}


def span_ids(capture: Capture, scope: str) -> set[tuple[int, int]]:
    """(trace id, span id) of the exported spans of ``scope``."""
    return {
        (s.context.trace_id, s.context.span_id)
        for s in capture.spans()
        if s.instrumentation_scope is not None and s.instrumentation_scope.name == scope
    }
