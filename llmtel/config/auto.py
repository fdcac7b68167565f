"""The ``llmtel_prometheus`` metric-exporter entry point, for configurators other than llmtel's own."""

from __future__ import annotations

from typing import Any

from llmtel._internal.errors import ConfigurationError, report
from llmtel.config.options import resolve
from llmtel.readers.prometheus import PrometheusBridgeReader, bridge_kwargs
from llmtel.serving.endpoint import Endpoint


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
        opts = resolve({})
        super().__init__(**bridge_kwargs(opts))
        self.endpoint: Endpoint | None = None
        if opts["endpoint"] == "off":  # LLMTEL_ENDPOINT=off: the registry is there to mount elsewhere
            return
        # An auto-instrumented app never stops over its endpoint: a taken port is logged and retried.
        try:
            self.endpoint = Endpoint.from_options(opts, registry=self.registry, trace_store=None, must_bind=False)
        except ConfigurationError as exc:
            report("endpoint not served", exc)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Stop the endpoint, then stop exposing families."""
        if self.endpoint is not None:
            self.endpoint.close()
        super().shutdown(timeout_millis, **kwargs)
