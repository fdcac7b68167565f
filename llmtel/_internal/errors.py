"""The one place where llmtel swallows errors.

Record, collect and export paths must never raise into the host application.
Every problem is counted in ``llmtel.sdk.problems`` (by kind) and logged once
per kind, not once per call. Tests set ``LLMTEL_RAISE_INTERNAL_ERRORS=1`` (the
shipped pytest plugin does) so genuine bugs are not hidden.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics

from llmtel import semconv
from llmtel._internal import fastpath as _fastpath

logger = logging.getLogger("llmtel")

_lock = threading.Lock()
_logged: set[str] = set()
_counts: dict[str, int] = {}
_export_failures = 0  # every failed push export since import; force_flush() compares before and after
_problem_counter: metrics.Counter | None = None
_export_counter: metrics.Counter | None = None


class ConfigurationError(ValueError):
    """Raised by ``llmtel.configure()`` for misuse: a bad option, a taken port."""


def bind(meter: metrics.Meter | None) -> None:
    """Point self-telemetry at ``meter`` (called by configure; ``None`` unbinds)."""
    global _problem_counter, _export_counter
    if meter is None:
        _problem_counter = _export_counter = None
        return
    problems = semconv.spec("llmtel.sdk.problems")
    failures = semconv.spec("llmtel.sdk.export.failures")
    _problem_counter = meter.create_counter(problems.name, problems.unit, problems.description)
    _export_counter = meter.create_counter(failures.name, failures.unit, failures.description)


def _raise_internal() -> bool:
    return os.environ.get("LLMTEL_RAISE_INTERNAL_ERRORS", "").lower() in ("1", "true", "yes")


def report(problem: str, exc: BaseException | None = None, detail: str = "") -> None:
    """Count a problem of kind ``problem`` and log it the first time it is seen."""
    with _lock:
        _counts[problem] = _counts.get(problem, 0) + 1
        first = problem not in _logged
        _logged.add(problem)
    if first:
        if exc is not None:
            logger.warning("llmtel: %s (%s); further occurrences are counted in llmtel.sdk.problems", problem, exc)
        else:
            logger.warning(
                "llmtel: %s%s; further occurrences are counted in llmtel.sdk.problems",
                problem,
                f" ({detail})" if detail else "",
            )
    counter = _problem_counter
    if counter is not None:
        try:
            # The fast path: some problems (values folded into _OTHER) can come once per call.
            _fastpath.add(counter, 1, {semconv.SELF_PROBLEM: problem})
        except Exception:
            pass


def export_failed(exporter: str, exc: BaseException | None = None) -> None:
    """Count a failed export by exporter name (logs once per exporter)."""
    global _export_failures
    with _lock:
        _export_failures += 1
    report(f"export failed: {exporter}", exc)
    counter = _export_counter
    if counter is not None:
        try:
            counter.add(1, {semconv.EXPORTER_NAME: exporter})
        except Exception:
            pass


def export_failures() -> int:
    """How many push exports failed in this process so far (any exporter)."""
    return _export_failures


def problem_counts() -> dict[str, int]:
    """Problems seen in this process so far, by kind (for tests and the demo)."""
    with _lock:
        return dict(_counts)


def reset() -> None:
    """Forget logged kinds and counts (tests)."""
    with _lock:
        _counts.clear()
        _logged.clear()


@contextmanager
def guarded(problem: str) -> Iterator[None]:
    """Run a block whose failure must not reach the host application."""
    try:
        yield
    except Exception as exc:
        if _raise_internal():
            raise
        report(problem, exc)


def guard(problem: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator form of :func:`guarded`; the wrapped function returns None on failure."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                if _raise_internal():
                    raise
                report(problem, exc)
                return None

        wrapper.__name__ = func.__name__
        wrapper.__doc__ = func.__doc__
        wrapper.__wrapped__ = func  # type: ignore[attr-defined]
        return wrapper

    return decorate
