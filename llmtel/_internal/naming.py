"""How registry names become Prometheus names, in one place.

Uses the upstream OTel Prometheus exporter's own translation (units become
suffixes such as ``_seconds``/``_bytes``, ``{annotations}`` vanish, counters get
``_total``) so docs, dashboards and rules always match what the bridge serves.
"""

from __future__ import annotations

from opentelemetry.exporter.prometheus._mapping import map_unit, sanitize_full_name

from llmtel.semconv import InstrumentSpec, Kind, emitted_name

__all__ = ["prometheus_label", "prometheus_name", "prometheus_series"]


def prometheus_label(attribute_key: str) -> str:
    """The Prometheus label an attribute key becomes (``gen_ai.request.model`` → ``gen_ai_request_model``)."""
    from opentelemetry.exporter.prometheus._mapping import sanitize_attribute

    return sanitize_attribute(attribute_key)


def prometheus_name(instrument: InstrumentSpec, *, latest: bool | None = None) -> str:
    """The metric family name the bridge exposes (without ``_total``/``_bucket`` suffixes)."""
    name = sanitize_full_name(emitted_name(instrument, latest=latest))
    unit = map_unit(instrument.unit)
    if unit and not name.endswith("_" + unit):
        name = f"{name}_{unit}"
    return name


def prometheus_series(instrument: InstrumentSpec, *, latest: bool | None = None) -> list[str]:
    """Every sample name one instrument produces in a scrape."""
    base = prometheus_name(instrument, latest=latest)
    if instrument.kind is Kind.HISTOGRAM:
        return [f"{base}_bucket", f"{base}_count", f"{base}_sum"]
    if instrument.kind in (Kind.COUNTER, Kind.OBSERVABLE_COUNTER):
        return [f"{base}_total"]
    return [base]
