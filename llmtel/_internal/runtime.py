"""Serving-runtime helpers: the gauges and counters LLM services keep hand-writing.

Active sessions, queue depth and wait, admission rejects, circuit-breaker
state, rate-limit waits, cache hits/misses and model load time — all on the
registry's ``llmtel.*`` instruments, all safe to call from any thread, none
raising into the caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import Any

from llmtel import semconv
from llmtel._internal import errors as _errors
from llmtel._internal import state as _state
from llmtel._internal.values import clean_duration, clean_flag, clean_str

__all__ = [
    "CIRCUIT_STATES",
    "admission_rejected",
    "cache_lookup",
    "model_load",
    "queued",
    "rate_limit_wait",
    "record_duration",
    "session",
    "set_circuit_breaker_state",
]

#: Circuit-breaker states and the gauge values that encode them.
CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}


def _attrs(instrument_name: str, attributes: dict[str, Any]) -> dict[str, Any]:
    cleaned = {key: clean_str(value) for key, value in attributes.items()}
    return _state.current().instruments.allowed(instrument_name, cleaned)


def record_duration(instrument_name: str, seconds: Any, **attributes: Any) -> None:
    """Record a duration on any registry histogram by name (bad durations dropped and counted)."""
    value = clean_duration(seconds)
    if value is None:
        return
    instruments = _state.current().instruments
    if not instruments.has_histogram(instrument_name):
        _errors.report("unknown histogram", detail=_errors.describe(instrument_name))
        return
    with _errors.guarded("record duration"):
        instruments.histogram(instrument_name).record(value, _attrs(instrument_name, attributes))


def _add(instrument_name: str, amount: int, attributes: dict[str, Any]) -> None:
    with _errors.guarded("record counter"):
        _state.current().instruments.adder(instrument_name).add(amount, _attrs(instrument_name, attributes))


@contextmanager
def session(kind: Any = "chat") -> Iterator[None]:
    """Count an open session for the duration of the block (``llmtel.sessions.active``)."""
    attributes = {semconv.SESSION_KIND: kind}
    _add("llmtel.sessions.active", 1, attributes)
    try:
        yield
    finally:
        _add("llmtel.sessions.active", -1, attributes)


class QueueTicket:
    """A request waiting in a queue; call :meth:`start` when service begins."""

    def __init__(self, queue: Any) -> None:
        self._attributes = {semconv.QUEUE_NAME: queue}
        self._enqueued = perf_counter()
        self._started = False
        _add("llmtel.queue.depth", 1, self._attributes)

    def start(self) -> float:
        """Leave the queue: depth -1 and the wait recorded. Returns the wait in seconds."""
        wait = perf_counter() - self._enqueued
        if not self._started:
            self._started = True
            _add("llmtel.queue.depth", -1, self._attributes)
            record_duration("llmtel.queue.wait", wait, **self._attributes)
        return wait

    def abandon(self) -> None:
        """Leave the queue without being served (no wait recorded)."""
        if not self._started:
            self._started = True
            _add("llmtel.queue.depth", -1, self._attributes)


@contextmanager
def queued(queue: Any) -> Iterator[QueueTicket]:
    """Track a request from enqueue to the end of the block, or until ``ticket.start()``."""
    ticket = QueueTicket(queue)
    try:
        yield ticket
    finally:
        ticket.start()


def admission_rejected(queue: Any, reason: Any = "full") -> None:
    """Count a request rejected by admission control."""
    _add("llmtel.admission.rejected", 1, {semconv.QUEUE_NAME: queue, semconv.REASON: reason})


def set_circuit_breaker_state(name: Any, state: str) -> None:
    """Set a circuit breaker's state: ``closed``, ``half_open`` or ``open``."""
    value = CIRCUIT_STATES.get(state) if isinstance(state, str) else None
    if value is None:
        _errors.report("invalid circuit breaker state", detail=_errors.describe(state))
        return
    with _errors.guarded("record gauge"):
        instrument_name = "llmtel.circuit_breaker.state"
        _state.current().instruments.gauge(instrument_name).set(
            value, _attrs(instrument_name, {semconv.CIRCUIT_BREAKER_NAME: name})
        )


def rate_limit_wait(seconds: Any, *, provider: Any = None, model: Any = None) -> None:
    """Record time spent waiting on a provider's rate limit."""
    record_duration(
        "llmtel.rate_limit.wait", seconds, **{semconv.PROVIDER_NAME: provider, semconv.REQUEST_MODEL: model}
    )


def cache_lookup(cache: Any, hit: bool) -> None:
    """Count a cache look-up as a hit or a miss."""
    result = "hit" if clean_flag(hit, "invalid cache hit flag") else "miss"
    _add("llmtel.cache.requests", 1, {semconv.CACHE_NAME: cache, semconv.CACHE_RESULT: result})


@contextmanager
def model_load(model: Any) -> Iterator[None]:
    """Time a model load (``llmtel.model.load.duration``)."""
    start = perf_counter()
    try:
        yield
    finally:
        record_duration("llmtel.model.load.duration", perf_counter() - start, **{semconv.REQUEST_MODEL: model})
