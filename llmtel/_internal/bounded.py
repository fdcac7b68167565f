"""Bounded memories (caches of resolved values): the oldest entry makes room for a new one.

Insertion order is age (a plain ``dict``): a read costs one dictionary lookup, with no
recency bookkeeping, and a full memory never clears all at once (no cliff). Entries
are cheap to resolve again, so first-in-first-out is enough where these are used.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["remember"]

K = TypeVar("K")
V = TypeVar("V")


def remember(items: dict[K, V], key: K, value: V, limit: int) -> None:
    """``items[key] = value``, first dropping the oldest entries so that at most ``limit`` remain."""
    while len(items) >= limit:
        try:
            del items[next(iter(items))]
        except (StopIteration, KeyError):  # emptied, or that entry removed, by another thread meanwhile
            break
    items[key] = value
