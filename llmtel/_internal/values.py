"""Defined behaviour for bad input on the record path.

Every rule here is documented in docs/bad-input.md; each drop, clamp or
sanitisation is counted in ``llmtel.sdk.problems`` under the kind named below.

- Attribute values (models, providers, tool names...): ``None`` → attribute
  omitted; ``bytes`` → decoded as UTF-8 with replacement; int/float/bool →
  ``str()``; any other type (list, dict, object) → omitted ("invalid attribute
  type"). Strings lose NUL characters, lone surrogates become U+FFFD and values
  longer than ``max_attribute_length`` are truncated ("attribute truncated").
- Token counts: ``None`` → not recorded; non-numbers, bools, NaN/inf and
  negatives → not recorded ("invalid token count"); floats are truncated to int.
- Durations: non-finite or negative → not recorded ("invalid duration").
"""

from __future__ import annotations

import math
from typing import Any

from llmtel._internal import errors as _errors

_limit = 128


def set_max_length(limit: int) -> None:
    """Set the attribute value length limit (configure's ``max_attribute_length``)."""
    global _limit
    _limit = limit


def clean_str(value: Any) -> str | None:
    """Return ``value`` as a safe, bounded attribute string, or None to omit it."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", "replace")
        _errors.report("bytes attribute decoded")
    elif isinstance(value, bool | int | float):
        text = str(value)
    else:
        _errors.report("invalid attribute type", detail=type(value).__name__)
        return None
    if not text.isprintable() or "\x00" in text:
        # NULs break some exposition parsers; lone surrogates cannot be encoded
        # as UTF-8 and would make every later scrape fail.
        cleaned = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
        if cleaned != text:
            _errors.report("attribute sanitized")
            text = cleaned
    if len(text) > _limit:
        _errors.report("attribute truncated")
        text = text[:_limit]
    return text


def clean_count(value: Any) -> int | None:
    """Return a non-negative token count, or None when it must not be recorded."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        _errors.report("invalid token count", detail=repr(value)[:40])
        return None
    return int(value)


def clean_duration(value: Any) -> float | None:
    """Return a finite non-negative duration in seconds, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        _errors.report("invalid duration", detail=repr(value)[:40])
        return None
    return float(value)
