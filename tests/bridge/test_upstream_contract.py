"""Fails loudly when opentelemetry-exporter-prometheus changes a private helper the bridge relies on.

llmtel.readers.prometheus imports these (pinned in pyproject:
opentelemetry-exporter-prometheus>=0.66b0,<0.67). If this file fails after an
upgrade, re-check the bridge's name translation against the new upstream code
before widening the pin.
"""

from __future__ import annotations

from importlib.metadata import version

from opentelemetry.sdk.metrics.export import AggregationTemporality, Gauge, Metric, NumberDataPoint, Sum


def test_supported_version_range() -> None:
    minor = int(version("opentelemetry-exporter-prometheus").split(".")[1].split("b")[0])
    assert 63 <= minor <= 66, (
        "llmtel's bridge reuses opentelemetry-exporter-prometheus's private _mapping module, verified on "
        "0.63b-0.66b (the SDK 1.42-1.45 range, docs/compatibility.md); re-verify tests/bridge before widening it"
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


SPEC_NAMES = (
    "_TARGET_INFO_NAME",
    "_TARGET_INFO_DESCRIPTION",
    "_OTEL_SCOPE_NAME_LABEL",
    "_OTEL_SCOPE_VERSION_LABEL",
    "_OTEL_SCOPE_SCHEMA_URL_LABEL",
    "_OTEL_SCOPE_ATTR_PREFIX",
)


def test_spec_names_agree_with_upstream_where_it_has_them() -> None:
    from opentelemetry.exporter import prometheus as upstream

    from llmtel.readers import prometheus as bridge

    assert bridge._TARGET_INFO_NAME == "target"
    assert bridge._OTEL_SCOPE_NAME_LABEL == "otel_scope_name"
    present = [name for name in SPEC_NAMES if hasattr(upstream, name)]
    assert "_TARGET_INFO_NAME" in present  # every supported release has it
    assert {name: getattr(bridge, name) for name in present} == {name: getattr(upstream, name) for name in present}


def test_sum_to_gauge_rule() -> None:
    from opentelemetry.exporter import prometheus as upstream

    from llmtel.readers.prometheus import _should_convert_sum_to_gauge

    def metric(data: object) -> Metric:
        return Metric("m", "", "", data)  # type: ignore[arg-type]

    point = [NumberDataPoint({}, 0, 1, 1)]
    cumulative, delta = AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA
    cases = [
        (Sum(point, cumulative, is_monotonic=False), True),
        (Sum(point, cumulative, is_monotonic=True), False),
        (Sum(point, delta, is_monotonic=False), False),
        (Gauge(point), False),
    ]
    for data, expected in cases:
        assert _should_convert_sum_to_gauge(metric(data)) is expected
        if hasattr(upstream, "_should_convert_sum_to_gauge"):  # upstream >= 0.65b0
            assert upstream._should_convert_sum_to_gauge(metric(data)) is expected


def test_stock_label_value_conversion_matches_ours() -> None:
    from opentelemetry.exporter.prometheus import _CustomCollector

    from llmtel.readers.prometheus import _label_value

    collector = _CustomCollector()
    for value in ("text", 3, 1.5, True, ("a", "b"), [1, 2]):
        assert _label_value(value) == collector._check_value(value)
