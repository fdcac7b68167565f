"""llmtel's Prometheus reader: the bridge served at the embedded endpoint's ``/metrics``.

Built on ``opentelemetry-exporter-prometheus`` (its name translation: unit
suffixes, ``_total``, ``target_info``) with a private prometheus_client
registry, so llmtel never touches the process-global ``REGISTRY`` unless asked.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from prometheus_client import CollectorRegistry

__all__ = ["PrometheusBridgeReader"]


class PrometheusBridgeReader(PrometheusMetricReader):
    """A pull reader whose metrics are rendered from :attr:`registry` on each scrape."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        super().__init__(registry=self.registry)

    @classmethod
    def from_options(cls, opts: dict[str, Any]) -> PrometheusBridgeReader:
        """Build the bridge from configure()'s resolved options."""
        return cls()
