"""The ``llmtel_prometheus`` metric-exporter entry point, for configurators other than llmtel's own."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from llmtel._internal.errors import ConfigurationError, report
from llmtel.config.settings import EndpointSettings, Settings, resolve
from llmtel.readers.prometheus import PrometheusBridgeReader
from llmtel.serving.endpoint import Endpoint
from llmtel.serving.tracestore import TraceStore

__all__ = ["AutoPrometheusBridgeReader", "bridge_arguments", "start_endpoint"]


def bridge_arguments(settings: Settings) -> dict[str, Any]:
    """The bridge's constructor arguments from resolved settings."""
    return {
        "resource_labels": list(settings.endpoint.resource_labels) or None,
        "exemplars": settings.metrics.exemplar_filter != "always_off",
    }


def start_endpoint(
    settings: EndpointSettings,
    *,
    registry: CollectorRegistry | None,
    trace_store: TraceStore | None,
    must_bind: bool = True,
) -> Endpoint:
    """Start the embedded endpoint ``configure()`` resolved (``must_bind=False``: a worker retries a taken port)."""
    return Endpoint(
        settings.host,
        settings.port,
        registry=registry,
        trace_store=trace_store,
        metrics_path=settings.path,
        basic_auth=settings.basic_auth,
        tls_cert=settings.tls_cert,
        tls_key=settings.tls_key,
        serve_default_registry=settings.serve_default_registry,
        workers=settings.workers,
        ui=settings.ui,
        must_bind=must_bind,
    )


class AutoPrometheusBridgeReader(PrometheusBridgeReader):
    """The bridge plus the embedded endpoint, built from the environment alone.

    The SDK's configurator (e.g. opentelemetry-distro's) instantiates metric
    exporters with no arguments; this one then starts the embedded endpoint
    itself from the same environment variables ``llmtel.configure()`` reads.
    (``llmtel.configure()`` recognises the name and never instantiates this.)
    It lives in :mod:`llmtel.config` because it resolves settings and starts
    serving, both layers above the readers.
    """

    def __init__(self) -> None:
        settings = resolve({})
        super().__init__(**bridge_arguments(settings))
        self.endpoint: Endpoint | None = None
        if settings.endpoint.mode == "off":  # LLMTEL_ENDPOINT=off: the registry is there to mount elsewhere
            return
        # An auto-instrumented app never stops over its endpoint: a taken port is logged and retried.
        try:
            self.endpoint = start_endpoint(settings.endpoint, registry=self.registry, trace_store=None, must_bind=False)
        except ConfigurationError as exc:
            report("endpoint not served", exc)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Stop the endpoint, then stop exposing families."""
        if self.endpoint is not None:
            self.endpoint.close()
        super().shutdown(timeout_millis, **kwargs)
