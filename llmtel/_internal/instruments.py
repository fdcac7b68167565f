"""Every synchronous registry instrument, created once per meter.

Observable (asynchronous) instruments belong to the collectors that feed them
(``llmtel.collectors``). Attribute allowlists are enforced here, in llmtel's own
record path, because Views cannot be added to a MeterProvider the application
(or ``opentelemetry-instrument``) already built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics

from llmtel import semconv
from llmtel.semconv import InstrumentSpec, Kind

Attributes = Mapping[str, Any]


def create(meter: metrics.Meter, instrument: InstrumentSpec, *, latest: bool | None = None) -> Any:
    """Create one synchronous instrument from its registry entry (with advisory buckets)."""
    name = semconv.emitted_name(instrument, latest=latest)
    if instrument.kind is Kind.COUNTER:
        return meter.create_counter(name, instrument.unit, instrument.description)
    if instrument.kind is Kind.UP_DOWN_COUNTER:
        return meter.create_up_down_counter(name, instrument.unit, instrument.description)
    if instrument.kind is Kind.GAUGE:
        return meter.create_gauge(name, instrument.unit, instrument.description)
    if instrument.kind is Kind.HISTOGRAM:
        return meter.create_histogram(
            name,
            instrument.unit,
            instrument.description,
            explicit_bucket_boundaries_advisory=list(instrument.buckets) if instrument.buckets else None,
        )
    raise ValueError(f"{instrument.name} is observable: its collector creates it")


class Instruments:
    """The synchronous instruments of one meter, by registry name."""

    def __init__(self, meter: metrics.Meter, *, latest: bool | None = None) -> None:
        self.meter = meter
        self._by_name: dict[str, Any] = {}
        self._allowed: dict[str, frozenset[str]] = {}
        self._kinds: dict[str, Kind] = {}
        for instrument in semconv.INSTRUMENTS:
            if instrument.kind.observable:
                continue
            self._by_name[instrument.name] = create(meter, instrument, latest=latest)
            self._allowed[instrument.name] = instrument.attributes
            self._kinds[instrument.name] = instrument.kind
        g = self._by_name
        # Hot-path handles, looked up once.
        self.client_duration = g[semconv.CLIENT_OPERATION_DURATION]
        self.client_tokens = g[semconv.CLIENT_TOKEN_USAGE]
        self.client_ttfc = g[semconv.CLIENT_TIME_TO_FIRST_CHUNK]
        self.client_tpoc = g[semconv.CLIENT_TIME_PER_OUTPUT_CHUNK]
        self.server_duration = g[semconv.SERVER_REQUEST_DURATION]
        self.server_ttft = g[semconv.SERVER_TIME_TO_FIRST_TOKEN]
        self.server_tpot = g[semconv.SERVER_TIME_PER_OUTPUT_TOKEN]
        self.cost = g["llmtel.gen_ai.client.cost"]
        self.active = g["llmtel.gen_ai.requests.active"]
        self.tool_duration = g["llmtel.tool.duration"]
        self.agent_duration = g["llmtel.agent.duration"]
        self.retrieval_duration = g["llmtel.retrieval.duration"]
        self.retrieval_documents = g["llmtel.retrieval.documents"]
        self.retrieval_judged = g["llmtel.retrieval.judged"]
        self.retrieval_rr = g["llmtel.retrieval.reciprocal_rank"]

    def get(self, name: str) -> Any:
        """The instrument registered as ``name``."""
        return self._by_name[name]

    def has_histogram(self, name: object) -> bool:
        """True when ``name`` is a registry histogram (``record_duration`` takes any of them)."""
        return isinstance(name, str) and name in self._by_name and self._kinds[name] is Kind.HISTOGRAM

    def allowed(self, name: str, attributes: Attributes) -> dict[str, Any]:
        """Keep only the attribute keys the registry allows on ``name``."""
        keys = self._allowed[name]
        return {key: value for key, value in attributes.items() if key in keys and value is not None}
