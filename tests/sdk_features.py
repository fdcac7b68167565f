"""Skip markers for features the oldest supported OpenTelemetry SDKs lack (docs/compatibility.md).

``nox -s tests_oldest_sdk`` runs the suite there; these tests then skip, with the reason.
"""

from __future__ import annotations

import pytest
from opentelemetry.exporter import prometheus as _upstream_exporter

from llmtel._internal import fastpath, sdkcompat

needs_cardinality_limits = pytest.mark.skipif(
    not sdkcompat.CARDINALITY_LIMITS, reason=f"opentelemetry-sdk {sdkcompat.SDK_VERSION} has no cardinality limits"
)
needs_gauge_last_value = pytest.mark.skipif(
    not sdkcompat.GAUGE_KEEPS_LAST_VALUE,
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
