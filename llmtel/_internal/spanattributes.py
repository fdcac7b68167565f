"""Attributes llmtel has cleaned already, stored on an SDK span without the SDK cleaning them again.

``Span.set_attributes`` cleans every value a second time (``BoundedAttributes``: the
immutability check, ``_clean_attribute_value``, ``_setitem_locked``, each a Python call):
about 9k CPython instructions per attribute, some 70k of the 510k llmtel-openai adds to a
non-streamed call (docs/performance.md, section 5b). The attributes an operation sets
when it ends are llmtel's own cleaned values (str, bool, int, float, and tuples of cleaned
scalars), which the SDK's cleaning returns unchanged. :func:`set_cleaned` stores them as
``set_attributes`` would, under the same two locks, in the same order.

It does so only where the outcome is the SDK's own: an SDK span (its exact class) on a
proven SDK version whose span and attribute container have the fields this module was
written against, not ended, no value length limit, room for every key (nothing dropped),
no key set already (the SDK moves a re-set key to the end) and every value of a plain
type. Anything else goes through ``span.set_attributes``.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from llmtel._internal.sdkcompat import SDK_PROVEN

__all__ = ["available", "set_cleaned"]

# The value types the SDK's cleaning returns unchanged (a tuple of cleaned scalars is copied into
# an equal tuple); anything else, a list say, is left to the SDK.
_PLAIN = frozenset({str, bool, int, float, tuple})
_ATTRIBUTES_FIELDS = frozenset({"_dict", "maxlen", "dropped", "max_value_len", "_lock", "_immutable"})
_SPAN_FIELDS = frozenset({"_lock", "_end_time", "_attributes"})

_span_class: type | None = None
try:  # SDK internals: a missing name or a different shape means "use the public API".
    from opentelemetry.attributes import BoundedAttributes
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import _Span

    _probe = _Span("llmtel.probe", trace.INVALID_SPAN_CONTEXT, resource=Resource.get_empty())  # never started
    if (
        SDK_PROVEN
        and _SPAN_FIELDS <= vars(_probe).keys()
        and type(_probe._attributes) is BoundedAttributes
        and set(vars(_probe._attributes)) == _ATTRIBUTES_FIELDS
    ):
        _span_class = _Span
    del _probe
except (ImportError, TypeError, ValueError):  # pragma: no cover - depends on the installed SDK
    pass

#: True where :func:`set_cleaned` may store attributes itself (else it always calls ``set_attributes``).
available = _span_class is not None


def set_cleaned(span: trace.Span, attributes: dict[str, Any]) -> None:
    """``span.set_attributes(attributes)`` for attributes llmtel has cleaned (non-empty str keys).

    On an SDK span, where storing them directly gives what the SDK would store, they are
    stored directly; everything else (other spans, limits, re-set keys, other value types,
    an ended span and its warning) is the SDK's ``set_attributes``.
    """
    if type(span) is _span_class and _PLAIN.issuperset(map(type, attributes.values())):
        container = span._attributes  # type: ignore[attr-defined]
        stored = container._dict
        with span._lock, container._lock:  # type: ignore[attr-defined]  # the SDK's order: span, then container
            if (
                span._end_time is None  # type: ignore[attr-defined]  # set_attributes's own check
                and type(container) is BoundedAttributes
                and container.max_value_len is None
                and (container.maxlen is None or len(stored) + len(attributes) <= container.maxlen)
                and stored.keys().isdisjoint(attributes)
            ):
                stored.update(attributes)
                return
    span.set_attributes(attributes)
