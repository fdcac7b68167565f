"""The application's own instruments, kept working across ``shutdown()`` + ``configure()``.

An instrument made on an SDK meter belongs to that meter's provider for good:
once the provider is shut down, recording into it does nothing and a new
meter cannot come from it ("A shutdown MeterProvider can not provide a
Meter"). Every ``configure()`` builds a new provider (OpenTelemetry lets the
global one be set only once), and every ``llmtel_capture`` test configures
anew, so instruments an application made at import time would silently stop
after the first reconfiguration.

:func:`get_meter` hands out meters whose instruments forward to a real
instrument on the *current* configuration's provider, and every time llmtel
installs a configuration (:func:`rebind`, called by the state module) each
one is created again there, observable callbacks included. Recording costs
one extra Python call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackT
from opentelemetry.metrics._internal.instrument import Gauge
from opentelemetry.util.types import Attributes

__all__ = ["AppMeter", "meter", "rebind"]


class _Forwarding:
    """An instrument that forwards to the real one of the current configuration."""

    def __init__(self, create: Callable[[metrics.Meter], Any]) -> None:
        self._create = create
        self._real: Any = None

    def _bind(self, real_meter: metrics.Meter) -> None:
        self._real = self._create(real_meter)


class _Counter(_Forwarding, metrics.Counter):
    def add(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._real.add(amount, attributes, context)


class _UpDownCounter(_Forwarding, metrics.UpDownCounter):
    def add(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._real.add(amount, attributes, context)


class _Histogram(_Forwarding, metrics.Histogram):
    def record(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._real.record(amount, attributes, context)


class _Gauge(_Forwarding, Gauge):
    def set(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._real.set(amount, attributes, context)


class _ObservableCounter(_Forwarding, metrics.ObservableCounter):
    pass


class _ObservableUpDownCounter(_Forwarding, metrics.ObservableUpDownCounter):
    pass


class _ObservableGauge(_Forwarding, metrics.ObservableGauge):
    pass


class AppMeter(metrics.Meter):
    """A meter whose instruments follow llmtel's configuration (see the module docstring)."""

    def __init__(self, name: str, version: str | None, schema_url: str | None, attributes: Attributes) -> None:
        super().__init__(name, version=version, schema_url=schema_url)
        self._attributes = attributes
        self._instruments: dict[tuple[str, str], _Forwarding] = {}
        self._real: metrics.Meter | None = None
        self._lock = threading.Lock()

    def _bind(self, provider: metrics.MeterProvider) -> None:
        kwargs: dict[str, Any] = {"version": self.version, "schema_url": self.schema_url}
        if self._attributes:
            kwargs["attributes"] = self._attributes
        real = provider.get_meter(self.name, **kwargs)
        with self._lock:
            self._real = real
            instruments = list(self._instruments.values())
        for instrument in instruments:
            instrument._bind(real)

    def _add(self, kind: str, name: str, instrument: _Forwarding) -> Any:
        # One proxy per name and kind, as the SDK returns one instrument per name.
        with self._lock:
            existing = self._instruments.setdefault((kind, name.lower()), instrument)
            real = self._real
        if existing is instrument and real is not None:
            instrument._bind(real)
        return existing

    def create_counter(self, name: str, unit: str = "", description: str = "") -> metrics.Counter:
        proxy = _Counter(lambda m: m.create_counter(name, unit, description))
        return self._add("counter", name, proxy)  # type: ignore[no-any-return]

    def create_up_down_counter(self, name: str, unit: str = "", description: str = "") -> metrics.UpDownCounter:
        proxy = _UpDownCounter(lambda m: m.create_up_down_counter(name, unit, description))
        return self._add("updowncounter", name, proxy)  # type: ignore[no-any-return]

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> metrics.Histogram:
        proxy = _Histogram(
            lambda m: m.create_histogram(
                name, unit, description, explicit_bucket_boundaries_advisory=explicit_bucket_boundaries_advisory
            )
        )
        return self._add("histogram", name, proxy)  # type: ignore[no-any-return]

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> Gauge:
        proxy = _Gauge(lambda m: m.create_gauge(name, unit, description))
        return self._add("gauge", name, proxy)  # type: ignore[no-any-return]

    def create_observable_counter(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> metrics.ObservableCounter:
        given = list(callbacks or ())
        proxy = _ObservableCounter(lambda m: m.create_observable_counter(name, given, unit, description))
        return self._add("observable_counter", name, proxy)  # type: ignore[no-any-return]

    def create_observable_up_down_counter(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> metrics.ObservableUpDownCounter:
        given = list(callbacks or ())
        proxy = _ObservableUpDownCounter(lambda m: m.create_observable_up_down_counter(name, given, unit, description))
        return self._add("observable_updowncounter", name, proxy)  # type: ignore[no-any-return]

    def create_observable_gauge(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> metrics.ObservableGauge:
        given = list(callbacks or ())
        proxy = _ObservableGauge(lambda m: m.create_observable_gauge(name, given, unit, description))
        return self._add("observable_gauge", name, proxy)  # type: ignore[no-any-return]


_lock = threading.Lock()
_meters: dict[tuple[str, str | None, str | None], AppMeter] = {}
_provider: metrics.MeterProvider | None = None


def meter(
    name: str, version: str | None = None, schema_url: str | None = None, attributes: Attributes = None
) -> AppMeter:
    """The application meter for this scope, bound to ``provider`` (the current configuration's)."""
    key = (name, version, schema_url)
    with _lock:
        found = _meters.get(key)
        if found is None:
            found = _meters[key] = AppMeter(name, version, schema_url, attributes)
            created = True
        else:
            created = False
        provider = _provider
    if created and provider is not None:
        found._bind(provider)
    return found


def rebind(provider: metrics.MeterProvider) -> None:
    """Re-create every application instrument on ``provider`` (a configuration was installed)."""
    global _provider
    with _lock:
        _provider = provider
        meters = list(_meters.values())
    for app_meter in meters:
        app_meter._bind(provider)
