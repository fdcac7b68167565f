"""Typed, frozen settings: what ``configure()`` resolved, grouped the way users think about it.

:func:`resolve` reads each option of :data:`~llmtel.config.options.OPTIONS` as argument >
environment > default, parses arguments and variables with the same parser (so both are
validated alike), and lands each value at the option's ``setting`` path. Everything
downstream (providers, readers, the endpoint, the bridge) takes these typed values and
reads no environment of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from llmtel._internal import env
from llmtel._internal.capture import CaptureMode
from llmtel._internal.errors import ConfigurationError
from llmtel._internal.pricing import PriceTable
from llmtel.config.options import OPTIONS, OPTIONS_BY_KEYWORD, Option

__all__ = [
    "CollectorSettings",
    "ContentSettings",
    "EndpointSettings",
    "ExportSettings",
    "MetricSettings",
    "ResourceSettings",
    "Settings",
    "TraceSettings",
    "resolve",
]


@dataclass(frozen=True)
class ResourceSettings:
    """Who is reporting: the OpenTelemetry resource."""

    service_name: str | None
    attributes: Mapping[str, str]


@dataclass(frozen=True)
class EndpointSettings:
    """The embedded HTTP endpoint: ``/metrics`` (the Prometheus bridge), ``/health``, ``/traces``."""

    #: ``auto`` (served when the bridge is a reader), ``on`` or ``off``.
    mode: str
    host: str
    port: int
    path: str
    basic_auth: str | None
    tls_cert: str | None
    tls_key: str | None
    resource_labels: tuple[str, ...]
    serve_default_registry: bool
    workers: int
    ui: bool
    #: Serve ``/traces``: None (auto: on for a loopback bind or with basic auth), True or False.
    serve_traces: bool | None


@dataclass(frozen=True)
class ExportSettings:
    """Where telemetry goes, and how long exporting may take."""

    metrics_exporters: tuple[str, ...]
    traces_exporters: tuple[str, ...]
    logs_exporters: tuple[str, ...]
    metric_interval_millis: float
    timeout: float
    shutdown_timeout: float


@dataclass(frozen=True)
class MetricSettings:
    """The MeterProvider llmtel builds (or joins) and what it aggregates."""

    exemplar_filter: str
    views: tuple[View, ...]
    bucket_boundaries: Mapping[str, tuple[float, ...]]
    cardinality_limit: int
    cardinality_limits: Mapping[str, int]
    attributes: Sequence[str] | Mapping[str, Sequence[str]] | None
    attribute_limit: int
    attribute_limits: Mapping[str, int]
    max_attribute_length: int
    readers: tuple[MetricReader, ...]
    meter_provider: MeterProvider | None
    price_table: str | Path | Mapping[str, Any] | PriceTable | None
    default_prices: bool


@dataclass(frozen=True)
class TraceSettings:
    """The TracerProvider llmtel builds (or joins), its sampler, propagation and the local trace store."""

    sampler: str
    sampler_arg: float | None
    propagators: tuple[str, ...] | None
    processors: tuple[SpanProcessor, ...]
    genai_span_metrics: bool
    store_size: int
    tracer_provider: TracerProvider | None


@dataclass(frozen=True)
class CollectorSettings:
    """Observable-gauge collectors: GPU (``None`` = on when NVML finds a GPU) and process."""

    gpu: bool | None
    process: bool


@dataclass(frozen=True)
class ContentSettings:
    """Prompt and completion content: off unless the user opts in."""

    capture: CaptureMode
    #: Exception-text redactor: False (off), True (the built-in key redactor) or a function.
    redact_exception_messages: bool | Callable[[str], str]


@dataclass(frozen=True)
class Settings:
    """Everything ``configure()`` resolved; each field is one option of docs/configuration.md."""

    disabled: bool
    resource: ResourceSettings
    endpoint: EndpointSettings
    export: ExportSettings
    metrics: MetricSettings
    traces: TraceSettings
    collectors: CollectorSettings
    content: ContentSettings


#: Group name in ``Option.setting`` → the dataclass holding that group.
GROUPS: dict[str, type] = {
    "resource": ResourceSettings,
    "endpoint": EndpointSettings,
    "export": ExportSettings,
    "metrics": MetricSettings,
    "traces": TraceSettings,
    "collectors": CollectorSettings,
    "content": ContentSettings,
}


def _parsed(option: Option, value: Any, source: str) -> Any:
    try:
        return option.parse(value)
    except ValueError as exc:
        raise ConfigurationError(f"{source} is not valid for {option.keyword}: {exc}") from None


def _value(option: Option, arguments: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    """Argument (when not None) > environment > default, parsed."""
    given = arguments.get(option.keyword)
    if given is not None:
        return _parsed(option, given, f"{option.keyword}={given!r}")
    for variable in (option.env, option.fallback_env):
        raw = environ.get(variable, "") if variable else ""
        if raw.strip():
            return _parsed(option, raw, f"{variable}={raw!r}")
    return option.default


def resolve(arguments: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve every option into :class:`Settings`.

    Raises :class:`ConfigurationError` naming the option (and the argument or variable
    that carried the bad value) for an unknown keyword or any invalid value.
    """
    unknown = set(arguments) - set(OPTIONS_BY_KEYWORD)
    if unknown:
        raise ConfigurationError(f"unknown configure() option(s): {', '.join(sorted(unknown))}")
    source = env.snapshot() if environ is None else environ
    groups: dict[str, dict[str, Any]] = {name: {} for name in GROUPS}
    top: dict[str, Any] = {}
    for option in OPTIONS:
        group, _, name = option.setting.rpartition(".")
        (groups[group] if group else top)[name or option.setting] = _value(option, arguments, source)
    return Settings(**top, **{name: GROUPS[name](**values) for name, values in groups.items()})
