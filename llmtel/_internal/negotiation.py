"""HTTP content negotiation: the quality an ``Accept`` header gives a set of media types."""

from __future__ import annotations

from collections.abc import Collection

__all__ = ["best_quality"]


def best_quality(accept: str | None, media_types: Collection[str]) -> float:
    """The highest ``q`` the ``Accept`` header gives any of ``media_types`` (0.0 when none is listed).

    A range without ``q`` counts 1.0; an unreadable ``q`` counts 0.0 (refused).
    """
    best = 0.0
    for part in (accept or "").split(","):
        fields = [field.strip() for field in part.split(";")]
        if fields[0].lower() not in media_types:
            continue
        q = 1.0
        for field in fields[1:]:
            if field.startswith("q="):
                try:
                    q = float(field[2:])
                except ValueError:
                    q = 0.0
        best = max(best, q)
    return best
