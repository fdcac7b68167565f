"""Collectors: observable instruments fed by one read per collection.

``llmtel.collectors.gpu`` reads NVIDIA GPUs through NVML (``nvidia-ml-py``),
``llmtel.collectors.process`` reads this process through ``psutil`` and ``gc``.
``llmtel.configure()`` installs both on llmtel's meter; each ``install()``
returns a :class:`Collector` (or ``None`` when it stays off).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from llmtel.semconv import InstrumentSpec, Kind

__all__ = ["Collector", "Points", "SweepCache", "create_observable"]

#: One sweep's result: observations by instrument name.
Points = Mapping[str, list[Observation]]


class Collector(Protocol):
    """What ``install()`` returns: something ``llmtel.shutdown()`` can close."""

    def close(self) -> None:
        """Stop reporting and release what the collector holds (idempotent)."""


class SweepCache:
    """Run ``sweep`` once per collection and share its result between instruments.

    The SDK calls every observable callback exactly once per collection, one
    collection at a time (the measurement consumer holds a lock). So when an
    instrument asks again for a sweep it has already read, a new collection has
    begun and the hardware is read again; every other instrument of that
    collection gets the same result. This needs no assumption about the order of
    callbacks, and a second reader (Prometheus plus OTLP) gets its own fresh sweep.
    """

    def __init__(self, sweep: Callable[[], Points]) -> None:
        self._sweep = sweep
        self._lock = threading.Lock()
        self._current: Points | None = None
        self._seen: set[str] = set()
        self.sweeps = 0  # how many sweeps ran (tests, self-checks)

    def points(self, name: str) -> list[Observation]:
        """The observations of instrument ``name`` in the current collection."""
        with self._lock:
            if self._current is None or name in self._seen:
                self._current = self._sweep()
                self._seen = set()
                self.sweeps += 1
            self._seen.add(name)
            return list(self._current.get(name, ()))


def create_observable(
    meter: metrics.Meter,
    instrument: InstrumentSpec,
    callback: Callable[[CallbackOptions], Iterable[Observation]],
) -> Any:
    """Create one observable registry instrument with its callback."""
    args = (instrument.name, [callback], instrument.unit, instrument.description)
    if instrument.kind is Kind.OBSERVABLE_GAUGE:
        return meter.create_observable_gauge(*args)
    if instrument.kind is Kind.OBSERVABLE_COUNTER:
        return meter.create_observable_counter(*args)
    if instrument.kind is Kind.OBSERVABLE_UP_DOWN_COUNTER:
        return meter.create_observable_up_down_counter(*args)
    raise ValueError(f"{instrument.name} is not observable")
