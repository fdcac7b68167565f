"""What the recording API records into: set by configure(), usable before it.

Before ``configure()`` (or when an application never calls it) the handles are
built on the OpenTelemetry API's global providers, whose proxies start
forwarding once any SDK provider is installed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from opentelemetry import metrics, trace

from llmtel import semconv
from llmtel._internal import appmeters
from llmtel._internal.capture import CaptureMode
from llmtel._internal.dimensions import Dimensions
from llmtel._internal.instruments import Instruments
from llmtel._internal.pricing import PriceTable

SCOPE = "llmtel"
try:
    VERSION = version("llmtel")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0"


@dataclass
class Handles:
    """Everything a recording call needs, resolved once per configuration."""

    tracer: trace.Tracer
    instruments: Instruments
    prices: PriceTable
    capture_content: CaptureMode = CaptureMode.NO_CONTENT
    enabled: bool = True
    #: The opted-in metric attribute keys (``metric_attributes``); empty: none.
    dimensions: Dimensions = field(default_factory=Dimensions)
    #: The provider the instruments live on (the application's own instruments follow it).
    meter_provider: metrics.MeterProvider | None = None


_lock = threading.Lock()
_current: Handles | None = None


def build(meter_provider: metrics.MeterProvider, tracer_provider: trace.TracerProvider, **kwargs: object) -> Handles:
    """Create llmtel's tracer and instruments on the given providers."""
    meter = meter_provider.get_meter(SCOPE, VERSION, schema_url=semconv.SCHEMA_URL)
    tracer = tracer_provider.get_tracer(SCOPE, VERSION, schema_url=semconv.SCHEMA_URL)
    return Handles(
        tracer=tracer,
        instruments=Instruments(meter),
        meter_provider=meter_provider,
        **kwargs,  # type: ignore[arg-type]
    )


def current() -> Handles:
    """The active handles (global-provider defaults before configure)."""
    handles = _current
    if handles is None:
        with _lock:
            if _current is None:
                install(build(metrics.get_meter_provider(), trace.get_tracer_provider(), prices=PriceTable()))
            handles = _current
    assert handles is not None
    return handles


def install(handles: Handles | None) -> None:
    """Make ``handles`` current (None: back to global-provider defaults)."""
    global _current
    _current = handles
    if handles is not None and handles.meter_provider is not None:
        appmeters.rebind(handles.meter_provider)
