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

__all__ = ["CARDINALITY_LIMITS", "GAUGE_KEEPS_LAST_VALUE", "SDK_VERSION", "cardinality_limit"]

SDK_VERSION: Final = version("opentelemetry-sdk")

#: ``View(aggregation_cardinality_limit=...)`` and the ``otel.metric.overflow`` series: SDK 1.45+.
CARDINALITY_LIMITS: Final = "aggregation_cardinality_limit" in inspect.signature(View.__init__).parameters


def _gauge_keeps_last_value() -> bool:
    """Whether a synchronous gauge is reported in every collection after a set (older SDKs: only the next)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("llmtel.sdkcompat").create_gauge("probe").set(1)
    reader.get_metrics_data()
    kept = reader.get_metrics_data() is not None
    provider.shutdown()
    return kept


#: A set gauge value stays in every later collection (what a Prometheus scrape expects).
GAUGE_KEEPS_LAST_VALUE: Final = _gauge_keeps_last_value()


def cardinality_limit(limit: int) -> dict[str, Any]:
    """``View`` keyword arguments setting ``limit``, or none where the SDK has no limits."""
    return {"aggregation_cardinality_limit": limit} if CARDINALITY_LIMITS else {}
