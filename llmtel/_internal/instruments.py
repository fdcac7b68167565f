"""Every synchronous registry instrument, created once per meter.

Observable (asynchronous) instruments belong to the collectors that feed them
(``llmtel.collectors``). Attribute allowlists are enforced here, in llmtel's own
record path, because Views cannot be added to a MeterProvider the application
(or ``opentelemetry-instrument``) already built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

from opentelemetry import metrics

from llmtel import semconv
from llmtel.semconv import InstrumentSpec, Kind

Attributes = Mapping[str, Any]


#: What :func:`create` makes: the synchronous instrument kinds of the metrics API.
SyncInstrument: TypeAlias = metrics.Counter | metrics.UpDownCounter | metrics.Histogram | metrics._Gauge


def create(meter: metrics.Meter, instrument: InstrumentSpec, *, latest: bool | None = None) -> SyncInstrument:
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
    """The synchronous instruments of one meter, by registry name, typed by kind."""

    def __init__(self, meter: metrics.Meter, *, latest: bool | None = None) -> None:
        self.meter = meter
        self._by_name: dict[str, SyncInstrument] = {}
        self._histograms: dict[str, metrics.Histogram] = {}
        self._adders: dict[str, metrics.Counter | metrics.UpDownCounter] = {}
        self._gauges: dict[str, metrics._Gauge] = {}
        self._allowed: dict[str, frozenset[str]] = {}
        for instrument in semconv.INSTRUMENTS:
            if instrument.kind.observable:
                continue
            created = create(meter, instrument, latest=latest)
            self._by_name[instrument.name] = created
            self._allowed[instrument.name] = instrument.attributes
            if isinstance(created, metrics.Histogram):
                self._histograms[instrument.name] = created
            elif isinstance(created, (metrics.Counter, metrics.UpDownCounter)):
                self._adders[instrument.name] = created
            else:
                self._gauges[instrument.name] = created
        h, c = self._histograms, self._adders
        # Hot-path handles, looked up once.
        self.client_duration = h[semconv.CLIENT_OPERATION_DURATION]
        self.client_tokens = h[semconv.CLIENT_TOKEN_USAGE]
        self.client_ttfc = h[semconv.CLIENT_TIME_TO_FIRST_CHUNK]
        self.client_tpoc = h[semconv.CLIENT_TIME_PER_OUTPUT_CHUNK]
        self.server_duration = h[semconv.SERVER_REQUEST_DURATION]
        self.server_ttft = h[semconv.SERVER_TIME_TO_FIRST_TOKEN]
        self.server_tpot = h[semconv.SERVER_TIME_PER_OUTPUT_TOKEN]
        self.cost = c["llmtel.gen_ai.client.cost"]
        self.active = c["llmtel.gen_ai.requests.active"]
        self.tool_duration = h["llmtel.tool.duration"]
        self.agent_duration = h["llmtel.agent.duration"]
        self.retrieval_duration = h["llmtel.retrieval.duration"]
        self.retrieval_documents = h["llmtel.retrieval.documents"]
        self.retrieval_judged = c["llmtel.retrieval.judged"]
        self.retrieval_rr = h["llmtel.retrieval.reciprocal_rank"]
        #: Record-path layouts of these instruments (``llmtel._internal.api`` builds them on first use).
        self.layouts: dict[str, Any] = {}

    def get(self, name: str) -> SyncInstrument:
        """The instrument registered as ``name``."""
        return self._by_name[name]

    def histogram(self, name: str) -> metrics.Histogram:
        """The registry histogram ``name`` (KeyError when ``name`` is no histogram)."""
        return self._histograms[name]

    def adder(self, name: str) -> metrics.Counter | metrics.UpDownCounter:
        """The registry counter or up-down counter ``name`` (KeyError when it is neither)."""
        return self._adders[name]

    def gauge(self, name: str) -> metrics._Gauge:
        """The registry gauge ``name`` (KeyError when ``name`` is no gauge)."""
        return self._gauges[name]

    def has_histogram(self, name: object) -> bool:
        """True when ``name`` is a registry histogram (``record_duration`` takes any of them)."""
        return isinstance(name, str) and name in self._histograms

    def allowed(self, name: str, attributes: Attributes) -> dict[str, Any]:
        """Keep only the attribute keys the registry allows on ``name``."""
        keys = self._allowed[name]
        return {key: value for key, value in attributes.items() if key in keys and value is not None}
