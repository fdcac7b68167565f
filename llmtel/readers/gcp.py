"""Google Cloud Monitoring through Google's native OTLP endpoint (``llmtel_gcp``).

``opentelemetry-exporter-gcp-monitoring`` is deprecated in favour of OTLP ingestion at
``telemetry.googleapis.com``, so this is the SDK's own OTLP/gRPC metric exporter with Google's
endpoint, authentication and resource attributes preset:

* endpoint ``https://telemetry.googleapis.com:443`` (``LLMTEL_GCP_ENDPOINT`` to override);
* application default credentials (``google.auth.default``) sent per call as an OAuth bearer token
  through ``google.auth.transport.grpc.AuthMetadataPlugin``, over TLS;
* the project from ``GOOGLE_CLOUD_PROJECT`` (else the one ADC knows), sent as the
  ``gcp.project_id`` resource attribute and, unless the credentials carry a quota project
  already, the ``x-goog-user-project`` header.

Cloud Monitoring keeps cumulative series with a start time, so the exporter keeps the SDK's
default (cumulative) temporality.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

import grpc
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData

from llmtel._internal import env
from llmtel._internal.errors import ConfigurationError, export_failed, guarded

__all__ = ["GOOGLE_OTLP_ENDPOINT", "PROJECT_ATTRIBUTE", "SCOPES", "GcpOtlpMetricExporter"]

EXPORTER_NAME: Final = "gcp"
GOOGLE_OTLP_ENDPOINT: Final = "https://telemetry.googleapis.com:443"
#: Resource attribute Google's OTLP endpoint reads the project from.
PROJECT_ATTRIBUTE: Final = "gcp.project_id"
SCOPES: Final = ("https://www.googleapis.com/auth/cloud-platform",)


class GcpOtlpMetricExporter(OTLPMetricExporter):
    """OTLP/gRPC to Google Cloud's telemetry endpoint; instantiable with no arguments.

    Args:
        project_id: Google Cloud project (``GOOGLE_CLOUD_PROJECT``; else the ADC project, else the
            credentials' quota project).
        credentials: ``google.auth.credentials.Credentials`` to use instead of looking up
            application default credentials (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud, metadata server).
        endpoint: OTLP/gRPC endpoint (``LLMTEL_GCP_ENDPOINT``, default ``https://telemetry.googleapis.com:443``).
        channel_credentials: transport credentials; default TLS with the system roots, or with the CA
            file in ``OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE`` / ``OTEL_EXPORTER_OTLP_CERTIFICATE``.
        timeout: seconds per export including retries (``LLMTEL_EXPORT_TIMEOUT``, default 5).
        **kwargs: passed to ``OTLPMetricExporter`` (compression, preferred_temporality, ...).
    """

    def __init__(
        self,
        *,
        project_id: str | None = None,
        credentials: Any = None,
        endpoint: str | None = None,
        channel_credentials: grpc.ChannelCredentials | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            import google.auth
            import google.auth.exceptions
            from google.auth.transport.grpc import AuthMetadataPlugin
            from google.auth.transport.requests import Request
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigurationError("llmtel_gcp needs google-auth: pip install 'llmtel[gcp]'") from exc

        adc_project: str | None = None
        if credentials is None:
            try:
                credentials, adc_project = google.auth.default(scopes=SCOPES)
            except google.auth.exceptions.DefaultCredentialsError as exc:
                raise ConfigurationError(
                    "llmtel_gcp: no Google application default credentials; set GOOGLE_APPLICATION_CREDENTIALS "
                    "or run `gcloud auth application-default login`"
                ) from exc
        quota_project = getattr(credentials, "quota_project_id", None)
        project = project_id or env.text("GOOGLE_CLOUD_PROJECT") or adc_project or quota_project
        if not project:
            raise ConfigurationError("llmtel_gcp: no Google Cloud project; set GOOGLE_CLOUD_PROJECT")
        self.project_id: str = project

        # google-auth's gRPC plugin refreshes the token when needed and adds it to every call.
        plugin = AuthMetadataPlugin(credentials, Request())  # type: ignore[no-untyped-call]
        transport = channel_credentials or _tls_credentials()
        creds = grpc.composite_channel_credentials(transport, grpc.metadata_call_credentials(plugin))
        headers = {} if quota_project else {"x-goog-user-project": project}
        if timeout is None:
            timeout = env.parsed("LLMTEL_EXPORT_TIMEOUT", float, 5.0)
        super().__init__(
            endpoint=endpoint or env.text("LLMTEL_GCP_ENDPOINT") or GOOGLE_OTLP_ENDPOINT,
            insecure=False,
            credentials=creds,
            headers=headers,
            timeout=timeout,
            **kwargs,
        )

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        """Export with ``gcp.project_id`` on every resource; never raises."""
        result = MetricExportResult.FAILURE
        with guarded("export", exporter=EXPORTER_NAME) as block:
            result = super().export(self._with_project(metrics_data), timeout_millis, **kwargs)
        if block.failed:
            return MetricExportResult.FAILURE
        if result is not MetricExportResult.SUCCESS:
            export_failed(EXPORTER_NAME)
        return result

    def _with_project(self, metrics_data: MetricsData) -> MetricsData:
        from opentelemetry.sdk.resources import Resource

        extra = Resource({PROJECT_ATTRIBUTE: self.project_id})
        resource_metrics = [
            rm
            if PROJECT_ATTRIBUTE in rm.resource.attributes
            else dataclasses.replace(rm, resource=rm.resource.merge(extra))
            for rm in metrics_data.resource_metrics
        ]
        return dataclasses.replace(metrics_data, resource_metrics=resource_metrics)


def _tls_credentials() -> grpc.ChannelCredentials:
    """TLS with the system roots, or with the CA file named by the OTLP certificate variables."""
    path = env.text("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE")
    if path is None:
        return grpc.ssl_channel_credentials()
    try:
        with open(path, "rb") as handle:
            return grpc.ssl_channel_credentials(root_certificates=handle.read())
    except OSError as exc:
        raise ConfigurationError(f"llmtel_gcp: cannot read the CA certificate file {path!r}: {exc}") from exc
