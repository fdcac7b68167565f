"""Defined behaviour for bad input on the record path.

Every rule here is documented in docs/bad-input.md; each drop, clamp or
sanitisation is counted in ``llmtel.sdk.problems`` under the kind named below.
No function here raises, whatever it is given.

- Attribute values (models, providers, tool names...): ``None`` → attribute
  omitted; ``bytes`` → decoded as UTF-8 with replacement; int/float/bool →
  ``str()``; an int outside the signed 64-bit range → omitted ("invalid
  attribute value"); any other type (list, dict, object) → omitted ("invalid
  attribute type"). Strings lose NUL characters, lone surrogates become ``?``
  and values longer than ``max_attribute_length`` are truncated ("attribute
  truncated").
- Span-only attributes (extra keywords): the same rules, except that bool, int
  and float keep their type and lists/tuples of those are kept element-wise.
- Counts (tokens, documents): ``None`` → not recorded; non-numbers, bools,
  NaN/inf, negatives and values above :data:`MAX_VALUE` → not recorded;
  floats are truncated to int.
- Durations: the same, in seconds ("invalid duration").

:data:`MAX_VALUE` (2**53) keeps every sum finite: a histogram's sum would need
about 10**292 such samples to leave the float64 range that the Prometheus
formats and OTLP's ``double`` sums carry.
"""

from __future__ import annotations

import json
import math
import re
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from llmtel._internal import errors as _errors
from llmtel._internal.errors import describe

#: The largest count or duration (seconds) recorded: the largest integer a float64 holds exactly.
MAX_VALUE = 2**53
#: OTLP carries integer attributes as int64.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: Elements kept of a list-valued span attribute.
MAX_SEQUENCE = 128

_limit = 128


def set_max_length(limit: int) -> None:
    """Set the attribute value length limit (configure's ``max_attribute_length``)."""
    global _limit
    _limit = limit


def _text(text: str) -> str:
    """Bounded, encodable text (NULs removed, lone surrogates replaced, truncated)."""
    if not text.isprintable() or "\x00" in text:
        # NULs break some exposition parsers; lone surrogates cannot be encoded
        # as UTF-8 and would make every later scrape and span export fail.
        cleaned = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
        if cleaned != text:
            _errors.report("attribute sanitized")
            text = cleaned
    if len(text) > _limit:
        _errors.report("attribute truncated")
        text = text[:_limit]
    return text


def _int64(value: int) -> int | None:
    value = int.__int__(value)  # an int subclass may override everything else
    if _INT64_MIN <= value <= _INT64_MAX:
        return value
    _errors.report("invalid attribute value", detail=describe(value))
    return None


def clean_str(value: Any) -> str | None:
    """Return ``value`` as a safe, bounded attribute string, or None to omit it."""
    if value is None:
        return None
    if type(value) is str and value.isprintable() and len(value) <= _limit:
        return value  # the common case, nothing to clean ("\x00" and lone surrogates are not printable)
    if isinstance(value, str):
        text = str.__str__(value)  # an exact str, whatever a subclass overrides
    elif isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", "replace")
        _errors.report("bytes attribute decoded")
    elif isinstance(value, bool):
        text = "True" if value else "False"
    elif isinstance(value, int):
        number = _int64(value)
        if number is None:
            return None
        text = str(number)
    elif isinstance(value, float):
        text = repr(float.__float__(value))
    else:
        _errors.report("invalid attribute type", detail=_type_name(value))
        return None
    return _text(text)


def _type_name(value: Any) -> str:
    return type(value).__qualname__


def clean_span_value(value: Any) -> Any:
    """A span attribute value with the metric attribute rules, keeping bool/int/float types (None: omit)."""
    if type(value) is str:
        return clean_str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _int64(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, list | tuple):
        items = [clean_span_value(item) for item in value[:MAX_SEQUENCE] if not isinstance(item, list | tuple)]
        kept = [item for item in items if item is not None]
        if len(kept) != len(value):
            _errors.report("invalid attribute value", detail="sequence element dropped")
        if len({type(item) for item in kept}) > 1:  # OpenTelemetry arrays are homogeneous
            kept = [clean_str(item) for item in kept]
        return tuple(kept)
    return clean_str(value)


def clean_attributes(attributes: Any) -> dict[str, Any]:
    """Span attributes cleaned key by key: str keys only (sanitized like values), values by :func:`clean_span_value`."""
    cleaned: dict[str, Any] = {}
    if attributes.__class__ is dict and not attributes:  # the common case: no extra attributes
        return cleaned
    if attributes.__class__ is not dict and not isinstance(attributes, Mapping):
        if attributes is not None:
            _errors.report("invalid attribute type", detail=_type_name(attributes))
        return cleaned
    for key, value in list(attributes.items()):
        if not isinstance(key, str) or not key:
            _errors.report("invalid attribute key", detail=describe(key))
            continue
        clean_value = clean_span_value(value)
        if clean_value is not None:
            cleaned[clean_str(key) or ""] = clean_value  # a non-empty str key stays non-empty
    return cleaned


def _bounded(value: Any, problem: str) -> int | float | None:
    """``value`` when it is a number in [0, MAX_VALUE], else None (counted as ``problem``)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number: int | float = int.__int__(value)
        ok = 0 <= number <= MAX_VALUE
    elif isinstance(value, float):
        number = float.__float__(value)
        ok = math.isfinite(number) and 0 <= number <= MAX_VALUE
    else:
        number, ok = 0, False
    if not ok:
        _errors.report(problem, detail=describe(value))
        return None
    return number


def clean_count(value: Any, problem: str = "invalid token count") -> int | None:
    """Return a count in [0, MAX_VALUE], or None when it must not be recorded."""
    if type(value) is int and 0 <= value <= MAX_VALUE:
        return value  # the common case, without _bounded's call
    number = _bounded(value, problem)
    return None if number is None else int(number)


def clean_duration(value: Any) -> float | None:
    """Return a finite duration in [0, MAX_VALUE] seconds, or None."""
    number = _bounded(value, "invalid duration")
    return None if number is None else float(number)


def clean_amount(value: Any, problem: str) -> float | None:
    """A finite amount (a cost in USD) in [0, MAX_VALUE], or None (counted as ``problem``)."""
    if type(value) is float and 0 <= value <= MAX_VALUE:
        return value  # the common case (NaN and infinities fail the comparison)
    number = _bounded(value, problem)
    return None if number is None else float(number)


def clean_port(value: Any) -> int | None:
    """A ``server.port``: an int in 0..65535, else None (counted)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
        return int.__int__(value)
    _errors.report("invalid server port", detail=describe(value))
    return None


def clean_positive_int(value: Any, problem: str) -> int | None:
    """An int in [1, MAX_VALUE] (``top_k``), else None (counted as ``problem``)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_VALUE:
        return int.__int__(value)
    _errors.report(problem, detail=describe(value))
    return None


def clean_flag(value: Any, problem: str) -> bool:
    """``bool(value)``, or False when the object refuses to be truthy (counted as ``problem``)."""
    if value.__class__ is bool:  # the common case, without the guard
        return bool(value)
    return _errors.call_app_code(problem, bool, value, default=False)


def content_json(value: Any) -> str | None:
    """Captured content as JSON text, encodable (lone surrogates → ``?``); None (counted) when it cannot be.

    ``str()`` stands in for what JSON cannot hold; content the application's own objects
    refuse to print, or numbers too long to print, is left out ("invalid content").
    """
    if value is None:
        return None
    text: str | None = _errors.call_app_code(
        "invalid content", lambda: json.dumps(value, default=str, ensure_ascii=False), default=None
    )
    if text is None or text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


# -- exception text -------------------------------------------------------------------------
# Exception messages may hold prompt text or keys. llmtel records them only with content capture
# on, and passes them, and every span exported or served, through the redactor when one is set
# (configure's ``redact_exception_messages``).

_SECRETS = re.compile(
    r"sk-[A-Za-z0-9_\-]{8,}"  # OpenAI / Anthropic style keys
    r"|AKIA[0-9A-Z]{16}"  # AWS access key ids
    r"|AIza[0-9A-Za-z_\-]{30,}"  # Google API keys
    r"|gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|hf_[A-Za-z0-9]{20,}"  # Hugging Face tokens
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}"  # Slack tokens
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"  # Authorization: Bearer ...
)
REDACTED = "[REDACTED]"
_redactor: Callable[[str], str] | None = None


def redact_secrets(text: str) -> str:
    """The built-in redactor: replace API-key-like tokens (``sk-...``, ``AKIA...``, bearer tokens) by ``[REDACTED]``."""
    return _SECRETS.sub(REDACTED, text)


def set_redactor(redactor: Callable[[str], str] | None) -> None:
    """Install the exception-message redactor (None: off, the default)."""
    global _redactor
    _redactor = redactor


def redacting() -> bool:
    """True when a redactor is installed."""
    return _redactor is not None


def redact(text: str) -> str:
    """``text`` through the installed redactor (unchanged when none); never raises."""
    redactor = _redactor
    if redactor is None:
        return text
    result = _errors.call_app_code("exception redactor failed", redactor, text, default=REDACTED)
    if not isinstance(result, str):
        _errors.report("exception redactor failed", detail=f"returned {_type_name(result)}")
        return REDACTED
    return result


def exception_message(exc: BaseException) -> str:
    """``str(exc)``, encodable and redacted; never raises."""
    text = _errors.call_app_code("exception str() failed", str, exc, default=f"<{_type_name(exc)}: str() failed>")
    return redact(text.encode("utf-8", "replace").decode("utf-8"))


def exception_stacktrace(exc: BaseException) -> str:
    """The formatted traceback, encodable and redacted; never raises."""
    lines: list[str] = _errors.call_app_code(
        "exception traceback failed", lambda: traceback.format_exception(type(exc), exc, exc.__traceback__), default=[]
    )
    text = "".join(lines) or f"<{_type_name(exc)}: traceback unavailable>"
    return redact(text.encode("utf-8", "replace").decode("utf-8"))
