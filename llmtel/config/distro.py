"""Zero-code start: ``opentelemetry-instrument python app.py`` configures llmtel.

Two entry points, both named ``llmtel`` (see ``pyproject.toml``):

* ``opentelemetry_distro`` → :class:`LlmtelDistro`: runs first and only fills in environment
  defaults (never overrides what the user set), so that the standard ``OTEL_*`` variables keep
  working exactly as documented by OpenTelemetry;
* ``opentelemetry_configurator`` → :class:`LlmtelConfigurator`: calls :func:`llmtel.configure`,
  which builds the providers from those variables.

When another distro (e.g. ``opentelemetry-distro``) is installed too, the instrumentation loader
takes whichever entry point it finds first; ``OTEL_PYTHON_DISTRO=llmtel`` and
``OTEL_PYTHON_CONFIGURATOR=llmtel`` pick llmtel's. Choosing the llmtel distro also defaults the
configurator to llmtel's, so the pair always matches.
"""

from __future__ import annotations

import logging
import os
from typing import Any

# The upstream module opts out of type checking (``# type: ignore`` at its top).
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.sdk._configuration import _BaseConfigurator

__all__ = ["DEFAULTS", "DUPLICATING_INSTRUMENTATIONS", "LlmtelConfigurator", "LlmtelDistro"]

logger = logging.getLogger("llmtel")

#: Environment defaults applied by the distro with ``os.environ.setdefault``.
DEFAULTS: dict[str, str] = {
    # Serve /metrics from the embedded Prometheus bridge (pull); add ",otlp" to also push.
    "OTEL_METRICS_EXPORTER": "llmtel_prometheus",
    # Spans stay in-process (exemplars and the local trace store) unless an exporter is asked for.
    "OTEL_TRACES_EXPORTER": "none",
    # llmtel does not ship a logs pipeline; without this the SDK would try to export logs via OTLP.
    "OTEL_LOGS_EXPORTER": "none",
    # Picking this distro means picking its configurator, even when others are installed.
    "OTEL_PYTHON_CONFIGURATOR": "llmtel",
}


#: Instrumentations whose metrics duplicate llmtel's own process metrics under the same names
#: (``process.cpu.time``, ``cpython.gc.*``...): served side by side, the Prometheus text has two
#: ``# TYPE`` lines for one family and the whole scrape is rejected.
DUPLICATING_INSTRUMENTATIONS = "system_metrics"


def _disable_duplicating_instrumentations() -> None:
    """Default ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` when llmtel's process metrics are on.

    Only a default: setting the variable (even to an empty string) keeps the user's choice.
    """
    if os.environ.get("LLMTEL_PROCESS_METRICS", "").strip().lower() in ("0", "false", "no", "off"):
        return
    os.environ.setdefault("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", DUPLICATING_INSTRUMENTATIONS)


class LlmtelDistro(BaseDistro):  # type: ignore[misc]  # subclassing an untyped (Any) base
    """Fills in llmtel's environment defaults; instrumentors load as with any distro."""

    def _configure(self, **kwargs: Any) -> None:
        for key, value in DEFAULTS.items():
            os.environ.setdefault(key, value)
        _disable_duplicating_instrumentations()


class LlmtelConfigurator(_BaseConfigurator):
    """Runs :func:`llmtel.configure` from the environment under ``opentelemetry-instrument``.

    Auto-instrumentation must never stop the application from starting: any configuration error
    (a taken Prometheus port, a bad variable) is logged once, clearly, and the app runs without
    llmtel's exporters.
    """

    def _configure(self, **kwargs: Any) -> None:
        # No environment edits here: another distro may be in charge (configure() drops
        # system_metrics' duplicates of llmtel's process metrics with views instead).
        import llmtel
        from llmtel._internal.errors import guarded

        with guarded("configure under opentelemetry-instrument"):  # an llmtel bug: counted, never fatal
            try:
                llmtel.configure(_from_auto_instrumentation=True)
            except llmtel.ConfigurationError as exc:
                logger.error(
                    "llmtel: auto-instrumentation could not configure telemetry, the application continues "
                    "without it: %s",
                    exc,
                )
