"""Collectors: observable instruments fed by one read per collection.

``llmtel.collectors.gpu`` reads NVIDIA GPUs through NVML (``nvidia-ml-py``),
``llmtel.collectors.process`` reads this process through ``psutil`` and ``gc``.
``llmtel.configure()`` installs both on llmtel's meter; each ``install()``
returns a :class:`Collector` (or ``None`` when it stays off).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from llmtel import semconv
from llmtel.semconv import InstrumentSpec, Kind

__all__ = ["Collector", "Points", "SweepCache", "bind", "create_observable", "unbind"]

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


class _Binding:
    """The observable instruments of one collector kind on one meter, and who feeds them."""

    def __init__(self) -> None:
        self.owner: object | None = None
        self.source: Callable[[str], list[Observation]] | None = None

    def callback(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            source = self.source
            return source(name) if source is not None else []

        return observe


_bindings: weakref.WeakKeyDictionary[Any, dict[str, _Binding]] = weakref.WeakKeyDictionary()
_bindings_lock = threading.Lock()


def bind(
    meter: metrics.Meter, kind: str, names: Iterable[str], owner: object, source: Callable[[str], list[Observation]]
) -> None:
    """Feed the registry instruments ``names`` on ``meter`` from ``source(name)``.

    The instruments are created once per meter and kind: the SDK caches meters and
    silently drops the callbacks of an instrument registered twice, so a collector
    installed again on the same meter (``configure()`` called again with the
    application's provider) takes over the existing instruments instead.
    """
    with _bindings_lock:
        per_meter = _bindings.setdefault(meter, {})
        binding = per_meter.get(kind)
        created = binding is None
        if binding is None:
            binding = per_meter[kind] = _Binding()
        binding.owner, binding.source = owner, source
    if created:
        for name in names:
            create_observable(meter, semconv.spec(name), binding.callback(name))


def unbind(meter: metrics.Meter, kind: str, owner: object) -> None:
    """Stop ``owner`` feeding ``kind`` on ``meter`` (its instruments then report nothing)."""
    with _bindings_lock:
        binding = _bindings.get(meter, {}).get(kind)
        if binding is not None and binding.owner is owner:
            binding.owner = binding.source = None
