"""What the installed OpenTelemetry SDK can do, decided once at import.

llmtel supports a range of SDK releases (docs/compatibility.md). Features that only
newer releases have are switched on here, in one place, and everything that uses
them asks these flags instead of catching errors or comparing versions itself.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version
from typing import Any, Final

from opentelemetry.sdk.metrics.view import View

__all__ = ["CARDINALITY_LIMITS", "PROVEN_SDK_VERSIONS", "SDK_PROVEN", "SDK_VERSION", "cardinality_limit"]

SDK_VERSION: Final = version("opentelemetry-sdk")

#: ``(major, minor)`` SDK versions whose internals llmtel's fast paths (``fastpath``,
#: ``spanattributes``) are written and tested against.
PROVEN_SDK_VERSIONS: Final = frozenset({(1, 45)})
#: The installed SDK is a proven version: the fast paths may use its internals (each still checks their shape).
SDK_PROVEN: Final = tuple(int(part) for part in SDK_VERSION.split(".")[:2]) in PROVEN_SDK_VERSIONS

#: ``View(aggregation_cardinality_limit=...)`` and the ``otel.metric.overflow`` series: SDK 1.45+.
CARDINALITY_LIMITS: Final = "aggregation_cardinality_limit" in inspect.signature(View.__init__).parameters


def cardinality_limit(limit: int) -> dict[str, Any]:
    """``View`` keyword arguments setting ``limit``, or none where the SDK has no limits."""
    return {"aggregation_cardinality_limit": limit} if CARDINALITY_LIMITS else {}
