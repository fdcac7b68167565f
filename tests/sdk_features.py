"""Skip markers for features the oldest supported OpenTelemetry SDKs lack (docs/compatibility.md).

``nox -s tests_oldest_sdk`` runs the suite there; these tests then skip, with the reason.
"""

from __future__ import annotations

import pytest
from opentelemetry.exporter import prometheus as _upstream_exporter

from llmtel._internal import fastpath, sdkcompat


def _gauge_keeps_last_value() -> bool:
    """Whether a synchronous gauge is reported in every collection after a set (older SDKs: only the next)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("llmtel.tests.sdk_features").create_gauge("probe").set(1)
    reader.get_metrics_data()
    kept = reader.get_metrics_data() is not None
    provider.shutdown()
    return kept


needs_cardinality_limits = pytest.mark.skipif(
    not sdkcompat.CARDINALITY_LIMITS, reason=f"opentelemetry-sdk {sdkcompat.SDK_VERSION} has no cardinality limits"
)
needs_gauge_last_value = pytest.mark.skipif(
    not _gauge_keeps_last_value(),
    reason=f"opentelemetry-sdk {sdkcompat.SDK_VERSION} reports a set gauge in one collection only",
)
needs_fast_path = pytest.mark.skipif(
    not fastpath.available,
    reason=f"the fast path is proven on SDK 1.45 only; {sdkcompat.SDK_VERSION} takes the public API",
)
needs_upstream_scope_labels = pytest.mark.skipif(
    not hasattr(_upstream_exporter, "_OTEL_SCOPE_NAME_LABEL"),
    reason="this opentelemetry-exporter-prometheus has no otel_scope_* labels to compare with (0.65b0+ has)",
)
benchmarked_sdk = pytest.mark.skipif(
    not fastpath.available,
    reason=f"benchmarks run on the newest supported SDK; {sdkcompat.SDK_VERSION} also warns about views that "
    "share a name across meters (its conflict check ignores the meter)",
)
