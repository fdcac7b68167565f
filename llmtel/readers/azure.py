"""Azure Monitor (Application Insights) through Microsoft's own metric exporter (``llmtel_azure``).

``azure-monitor-opentelemetry-exporter``'s ``AzureMonitorMetricExporter`` configured from
``APPLICATIONINSIGHTS_CONNECTION_STRING`` (its ``IngestionEndpoint`` decides where envelopes go).
Its temporality is kept: counters and histograms as deltas (Application Insights sums what it
receives per interval), up-down counters and gauges as current values.

What Application Insights keeps of a data point: one ``MetricData`` envelope per point with the
metric name, ``value`` (a sum or the last value), ``count``, and for histograms ``min``/``max``,
attributes as ``properties``. Histogram buckets and exemplars are dropped, so percentiles are not
available from these metrics (use the Prometheus bridge or traces for those).
"""

from __future__ import annotations

from typing import Any, Final

from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData

from llmtel._internal import env
from llmtel._internal.errors import ConfigurationError, export_failed, guarded

try:
    from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter
except ImportError as _exc:  # pragma: no cover - depends on the install
    raise ImportError("llmtel_azure needs azure-monitor-opentelemetry-exporter: pip install 'llmtel[azure]'") from _exc

__all__ = ["CONNECTION_STRING_ENV", "AzureMetricExporter"]

EXPORTER_NAME: Final = "azure"
CONNECTION_STRING_ENV: Final = "APPLICATIONINSIGHTS_CONNECTION_STRING"


def _flag(name: str) -> bool | None:
    value = env.text(name)
    if value is None:
        return None
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {value!r}")


class AzureMetricExporter(AzureMonitorMetricExporter):
    """Application Insights metric exporter; instantiable with no arguments.

    Keyword arguments are those of ``AzureMonitorMetricExporter`` (``connection_string``,
    ``credential``, ``disable_offline_storage``, ``storage_directory``...); llmtel adds defaults:

    * ``connection_string`` from ``APPLICATIONINSIGHTS_CONNECTION_STRING`` (required);
    * ``disable_offline_storage`` from ``LLMTEL_AZURE_DISABLE_OFFLINE_STORAGE`` (default false: failed
      envelopes are kept on disk and resent, as Microsoft's exporter does by default);
    * ``storage_directory`` from ``LLMTEL_AZURE_STORAGE_DIRECTORY``;
    * ``timeout`` (seconds per request) from ``LLMTEL_EXPORT_TIMEOUT``, default 5;
    * ``retry_total=1``: one immediate in-process retry; the offline storage is the durable retry,
      and azure-core's default of 10 retries with back-off would hold shutdown for a long time.
    """

    def __init__(self, **kwargs: Any) -> None:
        connection_string = kwargs.get("connection_string") or env.text(CONNECTION_STRING_ENV)
        if not connection_string:
            raise ConfigurationError(
                f"llmtel_azure: no connection string; set {CONNECTION_STRING_ENV} "
                "(Application Insights resource → Overview → Connection String)"
            )
        kwargs["connection_string"] = connection_string
        disable_storage = _flag("LLMTEL_AZURE_DISABLE_OFFLINE_STORAGE")
        if disable_storage is not None:
            kwargs.setdefault("disable_offline_storage", disable_storage)
        storage_directory = env.text("LLMTEL_AZURE_STORAGE_DIRECTORY")
        if storage_directory:
            kwargs.setdefault("storage_directory", storage_directory)
        kwargs.setdefault("timeout", env.parsed("LLMTEL_EXPORT_TIMEOUT", float, 5.0))
        kwargs.setdefault("retry_total", 1)
        try:
            super().__init__(**kwargs)
        except ValueError as exc:  # the connection string parser's complaints
            raise ConfigurationError(f"llmtel_azure: invalid connection string: {exc}") from exc

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        """Send one collection; never raises (failures are counted in ``llmtel.sdk.export.failures``)."""
        result = MetricExportResult.FAILURE
        with guarded("export", exporter=EXPORTER_NAME) as block:
            result = super().export(metrics_data, timeout_millis, **kwargs)
        if block.failed:
            return MetricExportResult.FAILURE
        if result is not MetricExportResult.SUCCESS:
            export_failed(EXPORTER_NAME)
        return result
