"""The one place where llmtel swallows errors.

Record, collect and export paths must never raise into the host application.
Every problem is counted in ``llmtel.sdk.problems`` (by kind) and logged once
per kind, not once per call. Under pytest (``PYTEST_CURRENT_TEST`` is set) the
guards re-raise instead, so llmtel's own suite and the application's test suites
see llmtel bugs; ``LLMTEL_RAISE_INTERNAL_ERRORS=1`` does the same anywhere, ``=0``
keeps swallowing under pytest (for tests of the swallowing itself).

This is the only module with a broad ``except`` that does not re-raise
(``tests/architecture`` and ruff's BLE001 enforce it): everything else uses
:func:`guarded` or :func:`guard`.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from opentelemetry import metrics
from typing_extensions import Self

from llmtel import semconv
from llmtel._internal import fastpath as _fastpath

logger = logging.getLogger("llmtel")
T = TypeVar("T")

P = ParamSpec("P")
R = TypeVar("R")

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
    """Re-raise instead of swallowing: asked for, or running under pytest and not told otherwise."""
    flag = os.environ.get("LLMTEL_RAISE_INTERNAL_ERRORS", "").strip().lower()
    if flag in ("0", "false", "no", "off"):
        return False
    return flag in ("1", "true", "yes", "on") or "PYTEST_CURRENT_TEST" in os.environ


def describe(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for problem messages; never raises.

    Bad input is what problem messages describe, so its ``__repr__`` may raise, or
    be an int too long to print (Python refuses more than 4300 digits).
    """
    try:
        if isinstance(value, int) and value.bit_length() > 128:
            return f"<int of {value.bit_length()} bits>"
        text = repr(value)
    except Exception:
        try:
            return f"<{type(value).__name__} object, repr failed>"
        except Exception:
            return "<object, repr failed>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _exception_text(exc: BaseException) -> str:
    try:
        text = f"{type(exc).__name__}: {exc}"[:200]
        return text.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates into log handlers
    except Exception:
        return describe(exc)


def report(problem: str, exc: BaseException | None = None, detail: str = "") -> None:
    """Count a problem of kind ``problem`` and log it the first time it is seen (never raises)."""
    if not isinstance(problem, str) or not problem.isascii() or len(problem) > 128:
        # A kind is a label value on llmtel.sdk.problems: bounded and encodable, whoever reports it.
        text = problem if isinstance(problem, str) else describe(problem)
        problem = text[:128].encode("utf-8", "replace").decode("utf-8")
    with _lock:
        _counts[problem] = _counts.get(problem, 0) + 1
        first = problem not in _logged
        _logged.add(problem)
    if first:
        if exc is not None:
            logger.warning(
                "llmtel: %s (%s); further occurrences are counted in llmtel.sdk.problems", problem, _exception_text(exc)
            )
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


class guarded:
    """Run a block whose failure must not reach the host application.

    A swallowed exception is counted (``llmtel.sdk.problems`` by ``problem``, or
    ``llmtel.sdk.export.failures`` by ``exporter``) and logged once per kind; the
    block's ``failed`` / ``error`` tell the caller what happened::

        with guarded("export", exporter="otlp") as block:
            send(batch)
        return FAILURE if block.failed else SUCCESS

    ``expected=True`` marks failures the environment causes (a vendor API down, no
    GPU driver): counted, but never re-raised under tests. Everything else is a
    bug in llmtel and re-raises under pytest. A class, not a generator, because it
    runs on record paths: entering and leaving costs a fraction of a microsecond.

    ``shared=True`` makes a block for record paths, made once (a module constant)
    and entered by every call and thread at once, which saves making an object per
    call (most of the block's cost); it keeps no ``error``, so ``failed`` stays False::

        _RECORD = guarded("record metrics", shared=True)
        with _RECORD:
            record(...)

    On the per-call path a ``with`` statement's two Python calls cost more than
    the work they guard; there a plain ``try``/``except`` asks the block whether
    to swallow (:meth:`swallowed`), same policy::

        try:
            record(...)
        except Exception as exc:
            if not _RECORD.swallowed(exc):
                raise
    """

    __slots__ = ("error", "expected", "exporter", "problem", "shared")

    def __init__(
        self, problem: str, *, expected: bool = False, exporter: str | None = None, shared: bool = False
    ) -> None:
        self.problem = problem
        self.expected = expected or exporter is not None
        self.exporter = exporter
        self.shared = shared
        self.error: Exception | None = None

    @property
    def failed(self) -> bool:
        """True when the block raised and the exception was swallowed."""
        return self.error is not None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if not isinstance(exc, Exception):  # no exception, or KeyboardInterrupt/SystemExit: let it go
            return False
        return self.swallowed(exc)

    def swallowed(self, exc: Exception) -> bool:
        """Count and log ``exc`` as this block's failure and return True; False: it must propagate
        (an llmtel bug, under tests)."""
        if not self.expected and _raise_internal():
            return False
        if not self.shared:  # a shared block's callers cannot tell their failure from another call's
            self.error = exc
        if self.exporter is not None:
            export_failed(self.exporter, exc)
        else:
            report(self.problem, exc)
        return True


def call_app_code(problem: str, func: Callable[..., R], *args: Any, default: R) -> R:
    """``func(*args)`` where ``func`` runs the application's code: an object's ``__str__``/``__bool__``/
    ``__iter__``, a hook it configured. Its failure is bad input, not an llmtel bug: counted as
    ``problem`` and answered with ``default``, never raised (also under tests).
    """
    with guarded(problem, expected=True):
        return func(*args)
    return default


def guard(problem: str, *, expected: bool = False) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
    """Decorator form of :class:`guarded`: the wrapped function returns None when it fails."""

    def decorate(func: Callable[P, R]) -> Callable[P, R | None]:
        # A plain try/except, not ``with guarded(...)``: it wraps per-chunk paths, where the
        # context manager's object and its two calls would be most of the cost. Same policy.
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                if not expected and _raise_internal():
                    raise
                report(problem, exc)
                return None

        return wrapper

    return decorate
