"""Fails loudly when opentelemetry-exporter-prometheus changes a private helper the bridge relies on.

llmtel.readers.prometheus imports these (pinned in pyproject:
opentelemetry-exporter-prometheus>=0.66b0,<0.67). If this file fails after an
upgrade, re-check the bridge's name translation against the new upstream code
before widening the pin.
"""

from __future__ import annotations

from importlib.metadata import version

from opentelemetry.sdk.metrics.export import AggregationTemporality, Gauge, Metric, NumberDataPoint, Sum


def test_pinned_version_range() -> None:
    assert version("opentelemetry-exporter-prometheus").startswith("0.66b"), (
        "llmtel's bridge reuses private helpers of opentelemetry-exporter-prometheus 0.66bN; "
        "re-verify tests/bridge before changing the pin"
    )


def test_mapping_helpers() -> None:
    from opentelemetry.exporter.prometheus._mapping import map_unit, sanitize_attribute, sanitize_full_name

    assert map_unit("s") == "seconds"
    assert map_unit("By") == "bytes"
    assert map_unit("{token}") == ""
    assert map_unit("1") == ""
    assert map_unit("USD") == "USD"
    assert sanitize_full_name("gen_ai.client.operation.duration") == "gen_ai_client_operation_duration"
    assert sanitize_full_name("1st.metric") == "_st_metric"
    assert sanitize_attribute("gen_ai.request.model") == "gen_ai_request_model"


def test_constants_and_sum_to_gauge_rule() -> None:
    from opentelemetry.exporter import prometheus as upstream

    assert upstream._TARGET_INFO_NAME == "target"
    assert upstream._TARGET_INFO_DESCRIPTION == "Target metadata"
    assert upstream._OTEL_SCOPE_NAME_LABEL == "otel_scope_name"
    assert upstream._OTEL_SCOPE_VERSION_LABEL == "otel_scope_version"
    assert upstream._OTEL_SCOPE_SCHEMA_URL_LABEL == "otel_scope_schema_url"
    assert upstream._OTEL_SCOPE_ATTR_PREFIX == "otel_scope_"

    def metric(data: object) -> Metric:
        return Metric("m", "", "", data)  # type: ignore[arg-type]

    point = [NumberDataPoint({}, 0, 1, 1)]
    cumulative, delta = AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA
    assert upstream._should_convert_sum_to_gauge(metric(Sum(point, cumulative, is_monotonic=False))) is True
    assert upstream._should_convert_sum_to_gauge(metric(Sum(point, cumulative, is_monotonic=True))) is False
    assert upstream._should_convert_sum_to_gauge(metric(Sum(point, delta, is_monotonic=False))) is False
    assert upstream._should_convert_sum_to_gauge(metric(Gauge(point))) is False


def test_stock_label_value_conversion_matches_ours() -> None:
    from opentelemetry.exporter.prometheus import _CustomCollector

    from llmtel.readers.prometheus import _label_value

    collector = _CustomCollector()
    for value in ("text", 3, 1.5, True, ("a", "b"), [1, 2]):
        assert _label_value(value) == collector._check_value(value)
