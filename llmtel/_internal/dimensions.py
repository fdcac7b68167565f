"""The application's own dimensions (tenant, route, workflow...) on llmtel's call metrics, by opt-in.

Metric attributes are a budget: every distinct value is one more series in
every histogram bucket, in every process, forever. So nothing the application
passes reaches a metric unless the user named its key (``metric_attributes``),
and each named key admits a bounded number of distinct values per process; any
further value is folded into ``_OTHER``. Spans are not budgeted: they get every
attribute, unfolded.

Values come from, in order of precedence: keyword attributes of the invocation
(``llm_call(..., tenant="acme")``), the innermost :func:`attributes` block, and
W3C baggage entries of the same key (set by an upstream service).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Final

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.context import Context

from llmtel import semconv
from llmtel._internal import errors as _errors
from llmtel._internal.errors import ConfigurationError
from llmtel._internal.values import clean_str

__all__ = ["CALL_INSTRUMENTS", "OTHER", "RESERVED_KEYS", "Dimensions", "attributes", "block_attributes"]

#: The value a key's values past its limit are folded into.
OTHER: Final = "_OTHER"
#: Every registry instrument an invocation object records into: where opted-in keys may go.
CALL_INSTRUMENTS: Final = frozenset(
    spec.name for spec in semconv.INSTRUMENTS if spec.group in ("llm", "server", "tool", "agent", "retrieval")
) | {"llmtel.gen_ai.requests.active"}
#: The ``metric_attributes`` mapping key meaning "every call instrument".
EVERYWHERE: Final = "*"
RESERVED_KEYS: Final = frozenset(key for spec in semconv.INSTRUMENTS for key in spec.attributes)

_BLOCK_KEY = otel_context.create_key("llmtel.attributes")
#: The attach tokens of the :class:`attributes` blocks open in this context, innermost last.
_TOKENS: ContextVar[tuple[object, ...]] = ContextVar("llmtel_attribute_blocks", default=())


class attributes:
    """Attach attributes to every llmtel invocation (LLM call, tool, agent, retrieval) inside the block.

    Typically set once per request by middleware::

        with llmtel.attributes(tenant=request.headers["x-tenant"], route=request.url.path):
            return await call_next(request)

    Every value goes on the spans; keys named in the ``metric_attributes`` option also
    go on the metrics (each key's distinct values are limited, see docs/dimensions.md).
    Blocks nest (inner values win; ``None`` removes an outer value) and follow the
    OpenTelemetry context, so they hold across ``await`` and in tasks started inside.
    Keyword attributes of an invocation win over the block's.
    """

    __slots__ = ("_values",)

    def __init__(self, **values: Any) -> None:
        self._values = values

    def __enter__(self) -> None:
        outer: Mapping[str, Any] | None = otel_context.get_value(_BLOCK_KEY)  # type: ignore[assignment]
        merged = {**outer, **self._values} if outer else self._values
        if any(value is None for value in merged.values()):  # identity: `None in` would call the values' __eq__
            merged = {key: value for key, value in merged.items() if value is not None}
        token = otel_context.attach(otel_context.set_value(_BLOCK_KEY, merged))
        _TOKENS.set((*_TOKENS.get(), token))

    def __exit__(self, *exc_info: object) -> None:
        # The tokens live in the context, not on the object: one block object (a module-level
        # constant, say) may be entered by several tasks or threads at once.
        *outer, token = _TOKENS.get()
        _TOKENS.set(tuple(outer))
        otel_context.detach(token)  # type: ignore[arg-type]


def block_attributes(context: Context | None = None) -> Mapping[str, Any] | None:
    """The attributes of the innermost :func:`attributes` block in ``context`` (None: the current one), if any."""
    if context is None:
        context = otel_context.get_current()
    return context.get(_BLOCK_KEY)  # type: ignore[return-value]  # get_value's work, a call less


class _ValueLimit:
    """The distinct values one key may take: the first ``limit`` seen in this process, then ``_OTHER``.

    First come, not most frequent: a series, once exported, cannot be taken back without
    breaking its counters, so admission is final, as in the SDK's own cardinality limit.
    """

    __slots__ = ("key", "limit", "lock", "seen")

    def __init__(self, key: str, limit: int) -> None:
        self.key = key
        self.limit = limit
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def admit(self, value: str) -> str:
        if value in self.seen:  # the common case: no lock
            return value
        with self.lock:
            if value in self.seen:
                return value
            if len(self.seen) < self.limit:
                self.seen.add(value)
                return value
        _errors.report("metric attribute value folded into _OTHER", detail=f"{self.key}: limit {self.limit}")
        return OTHER


class Dimensions:
    """The opted-in keys of one configuration, per instrument, with their value limits."""

    def __init__(
        self,
        keys: Mapping[str, Sequence[str]] | None = None,
        *,
        limit: int = 100,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        keys = keys or {}
        everywhere = tuple(keys.get(EVERYWHERE, ()))
        #: Keys per call instrument (the ``*`` keys plus the instrument's own).
        self.per_instrument: dict[str, tuple[str, ...]] = {
            name: tuple(dict.fromkeys((*everywhere, *keys.get(name, ())))) for name in sorted(CALL_INSTRUMENTS)
        }
        #: Every opted-in key: what an invocation resolves (instruments that take fewer are narrowed by a View).
        self.keys: tuple[str, ...] = tuple(dict.fromkeys(k for ks in self.per_instrument.values() for k in ks))
        #: Instruments that take only some of :attr:`keys`.
        self.narrowed: dict[str, frozenset[str]] = {
            name: frozenset(ks) for name, ks in self.per_instrument.items() if set(ks) != set(self.keys)
        }
        limits = limits or {}
        self._limits = {key: _ValueLimit(key, limits.get(key, limit)) for key in self.keys}

    def __bool__(self) -> bool:
        return bool(self.keys)

    def resolve(self, given: Mapping[str, Any]) -> dict[str, str]:
        """Metric values of the opted-in keys for one invocation, limited.

        ``given``: the invocation's keyword attributes over its :func:`attributes` block;
        a key missing there is looked up in the W3C baggage.
        """
        found: dict[str, str] = {}
        bag: Mapping[str, object] | None = None
        for key in self.keys:
            value = given.get(key)
            if value is None:
                if bag is None:
                    bag = baggage.get_all()
                value = bag.get(key)
                if value is None:
                    continue
            text = clean_str(value)
            if text is not None:
                found[key] = self._limits[key].admit(text)
        return found

    @classmethod
    def from_options(
        cls, keys: Sequence[str] | Mapping[str, Sequence[str]] | None, limit: int, limits: Mapping[str, int] | None
    ) -> Dimensions:
        """Validate the ``metric_attributes`` / ``metric_attribute_limit(s)`` options."""
        if keys is None:
            by_instrument: dict[str, list[str]] = {}
        elif isinstance(keys, str):
            raise ConfigurationError("metric_attributes: give a list of keys (or a mapping), not a string")
        elif isinstance(keys, Mapping):
            by_instrument = {str(name): _key_list(name, given) for name, given in keys.items()}
        else:
            by_instrument = {EVERYWHERE: _key_list(EVERYWHERE, keys)}
        for name, given in by_instrument.items():
            if name != EVERYWHERE and name not in CALL_INSTRUMENTS:
                raise ConfigurationError(
                    f"metric_attributes: {name!r} is not recorded by llm_call/tool/agent/retrieval; "
                    f"use '*' or one of {sorted(CALL_INSTRUMENTS)}"
                )
            for key in given:
                if not key or key != key.strip():
                    raise ConfigurationError(f"metric_attributes: {key!r} is not a valid attribute key")
                if key in RESERVED_KEYS:
                    raise ConfigurationError(f"metric_attributes: {key!r} is one of llmtel's own metric attributes")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ConfigurationError(f"metric_attribute_limit must be a positive integer, got {limit!r}")
        for key, value in (limits or {}).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(f"metric_attribute_limits: {key!r} needs a positive integer, got {value!r}")
        return cls(by_instrument, limit=limit, limits=limits)


def _key_list(name: object, given: object) -> list[str]:
    if isinstance(given, str) or not isinstance(given, Sequence | frozenset | set):
        raise ConfigurationError(f"metric_attributes: keys for {name!r} must be a list of strings")
    if not all(isinstance(key, str) for key in given):
        raise ConfigurationError(f"metric_attributes: keys for {name!r} must be strings")
    return list(given)
