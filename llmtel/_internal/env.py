"""The one reader of the process environment.

Configuration resolves its options through here (``llmtel.config``), and so do the
few things that must work before or without ``configure()``: a vendor reader built
by another configurator from its entry point, and the error policy's test switch.
A set-but-blank variable counts as unset, as in the OpenTelemetry SDK.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from llmtel._internal.errors import ConfigurationError

__all__ = ["parsed", "snapshot", "text"]

T = TypeVar("T")


def snapshot() -> dict[str, str]:
    """A copy of the environment, so one resolution sees one consistent environment."""
    return dict(os.environ)


def text(*names: str) -> str | None:
    """The first of ``names`` that is set to something other than blanks, stripped; else None."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def parsed(name: str, parse: Callable[[str], T], default: T) -> T:
    """``parse(value)`` of variable ``name``, ``default`` when unset; ConfigurationError naming it when invalid."""
    raw = text(name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except (ValueError, OverflowError) as exc:
        raise ConfigurationError(f"{name}={raw!r} is not valid: {exc}") from None
