"""Shared helpers for the collector tests: a real SDK provider and readable points."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric


def provider() -> tuple[MeterProvider, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return MeterProvider(metric_readers=[reader]), reader


def collect(reader: InMemoryMetricReader) -> dict[str, Metric]:
    """One collection, as {metric name: Metric}."""
    data = reader.get_metrics_data()
    out: dict[str, Metric] = {}
    if data is None:
        return out
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                out[metric.name] = metric
    return out


def points(metric: Metric) -> list[tuple[dict[str, Any], Any]]:
    """(attributes, value) of every point, sorted for stable comparisons."""
    found = [(dict(p.attributes or {}), p.value) for p in metric.data.data_points]  # type: ignore[attr-defined]
    return sorted(found, key=lambda item: sorted((k, str(v)) for k, v in item[0].items()))


def by(metric: Metric, match: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
    """Points whose attributes contain every item of ``match``."""
    return [(a, v) for a, v in points(metric) if all(a.get(k) == v for k, v in match.items())]
