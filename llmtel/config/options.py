"""Every ``configure()`` option, declared once: keyword, variable, default, meaning.

``configure()`` resolves each option as argument > environment > default, and
``docs/configuration.md`` is generated from this table (``llmtel docs``), so an
option has exactly one name everywhere.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from llmtel._internal.errors import ConfigurationError


def _text(raw: str) -> str:
    return raw.strip()


def _names(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


class CaptureMode(enum.Enum):
    """Where prompt/completion content goes, as in the contrib GenAI instrumentations."""

    NO_CONTENT = "no_content"
    SPAN_ONLY = "span_only"
    EVENT_ONLY = "event_only"
    SPAN_AND_EVENT = "span_and_event"

    @property
    def on_span(self) -> bool:
        """Content goes on span attributes."""
        return self in (CaptureMode.SPAN_ONLY, CaptureMode.SPAN_AND_EVENT)

    @property
    def as_event(self) -> bool:
        """Content goes into a ``gen_ai.client.inference.operation.details`` event."""
        return self in (CaptureMode.EVENT_ONLY, CaptureMode.SPAN_AND_EVENT)

    @classmethod
    def parse(cls, value: Any) -> CaptureMode:
        """The mode for a bool, a mode, or any spelling of
        ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (``true``/``false`` and the
        upstream mode names, any case). Raises ValueError naming the accepted values."""
        if isinstance(value, CaptureMode):
            return value
        if isinstance(value, bool):
            return cls.SPAN_AND_EVENT if value else cls.NO_CONTENT
        if isinstance(value, str):
            text = value.strip().lower()
            if text in cls._value2member_map_:
                return cls(text)
            try:
                return cls.SPAN_AND_EVENT if _boolean(text) else cls.NO_CONTENT
            except ValueError:
                pass
        modes = ", ".join(mode.value for mode in cls)
        raise ValueError(f"expected true, false, {modes} (any case), got {value!r}")


def _tristate(raw: str) -> bool | None:
    return None if raw.strip().lower() == "auto" else _boolean(raw)


ENDPOINT_MODES: Final = ("auto", "on", "off")


def _endpoint_mode(raw: str) -> str:
    value = raw.strip().lower()
    aliases = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off", "none": "off"}
    value = aliases.get(value, value)
    if value not in ENDPOINT_MODES:
        raise ValueError(f"expected auto, on or off, got {raw!r}")
    return value


def _port(raw: str) -> int:
    port = int(raw)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    return port


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {value}")
    return value


def _seconds(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError(f"expected a positive number of seconds, got {raw!r}")
    return value


def _metric_attributes(raw: str) -> dict[str, list[str]]:
    """``tenant,route,llmtel.gen_ai.client.cost:project``: bare keys go on every call instrument,
    ``instrument:key`` on that instrument only (instrument names cannot contain ``:``)."""
    keys: dict[str, list[str]] = {}
    for item in _names(raw):
        name, _, key = item.rpartition(":")
        keys.setdefault(name.strip() or "*", []).append(key.strip())
    return keys


def _key_values(raw: str) -> dict[str, str]:
    pairs = {}
    for item in raw.split(","):
        if "=" in item:
            key, value = item.split("=", 1)
            pairs[key.strip()] = value.strip()
    return pairs


@dataclass(frozen=True)
class Option:
    """One configure() option."""

    keyword: str
    env: str | None
    default: Any
    parse: Callable[[str], Any]
    meaning: str
    default_doc: str = ""
    #: A standard variable read when ``env`` is unset (shared with other OpenTelemetry packages).
    fallback_env: str | None = None


OPTIONS: Final[tuple[Option, ...]] = (
    Option("service_name", "OTEL_SERVICE_NAME", None, _text,
           "`service.name` resource attribute.", "`unknown_service`"),
    Option("resource_attributes", "OTEL_RESOURCE_ATTRIBUTES", None, _key_values,
           "Extra resource attributes (a dict; the variable is `k=v,k2=v2`)."),
    Option("metrics_exporter", "OTEL_METRICS_EXPORTER", ("llmtel_prometheus",), _names,
           "Metric exporters/readers by entry-point name, several allowed: `llmtel_prometheus` (the bridge on "
           "the embedded endpoint; `prometheus` is an alias), `otlp`, `console`, `none`, or any "
           "`opentelemetry_metrics_exporter` entry point such as `llmtel_cloudwatch`.", "`llmtel_prometheus`"),
    Option("traces_exporter", "OTEL_TRACES_EXPORTER", (), _names,
           "Span exporters besides the local trace store: `otlp`, `console`, `none`.", "none"),
    Option("logs_exporter", "OTEL_LOGS_EXPORTER", (), _names,
           "Log exporters (`otlp`, `console`, `none`) for GenAI content events. A LoggerProvider is built only "
           "when `capture_content` is on and an exporter is named (the app's own SDK LoggerProvider is used "
           "when it has one).", "none"),
    Option("prometheus_host", "OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1", _text,
           "Address the embedded endpoint binds (`/metrics`, `/health`, `/traces/<trace_id>`)."),
    Option("prometheus_port", "OTEL_EXPORTER_PROMETHEUS_PORT", 9464, _port,
           "Port of the embedded endpoint; 0 picks a free port (read it from `Telemetry.endpoint_url`). "
           "`prometheus_port=None` passed explicitly turns the endpoint off (like `endpoint=\"off\"`)."),
    Option("endpoint", "LLMTEL_ENDPOINT", "auto", _endpoint_mode,
           "The embedded endpoint (`/metrics`, `/health`, `/traces`): `auto` serves it when the Prometheus "
           "bridge is a metrics exporter (pull), not in push-only modes; `on` serves it anyway (`/health` and "
           "`/traces` next to OTLP); `off` never binds a port (the bridge's registry is still "
           "`Telemetry.bridge.registry`, to mount on your own server).", "`auto`"),
    Option("exemplar_filter", "OTEL_METRICS_EXEMPLAR_FILTER", "trace_based", _text,
           "`trace_based` (exemplars from sampled spans), `always_on` or `always_off`."),
    Option("traces_sampler", "OTEL_TRACES_SAMPLER", "parentbased_always_on", _text,
           "Sampler name as in the OpenTelemetry spec (`always_on`, `traceidratio`, `parentbased_traceidratio`, ...)."),
    Option("traces_sampler_arg", "OTEL_TRACES_SAMPLER_ARG", None, float,
           "Sampler argument (the ratio for the ratio samplers)."),
    Option("propagators", "OTEL_PROPAGATORS", None, _names,
           "Context propagators by entry-point name (e.g. `tracecontext,baggage`). Unset: OpenTelemetry's default.",
           "OpenTelemetry's (`tracecontext,baggage`)"),
    Option("views", None, (), _names,
           "Extra `opentelemetry.sdk.metrics.view.View` objects (argument only)."),
    Option("bucket_boundaries", None, None, _names,
           "`{instrument_name: [boundaries...]}` overriding the registry's advisory buckets (argument only)."),
    Option("cardinality_limit", "LLMTEL_CARDINALITY_LIMIT", 2000, _positive_int,
           "Series per instrument before the SDK folds new attribute sets into `otel.metric.overflow=true`."),
    Option("cardinality_limits", None, None, _names,
           "`{instrument_name: limit}` per-instrument override of `cardinality_limit` (argument only)."),
    Option("metric_attributes", "LLMTEL_METRIC_ATTRIBUTES", None, _metric_attributes,
           "Your own attribute keys (e.g. `tenant`, `route`) to put on the metrics of `llm_call`, `tool`, `agent` "
           "and `retrieval`, from their keyword attributes or an `llmtel.attributes()` block: a list for every "
           "call instrument, or `{instrument_name: [keys], \"*\": [keys]}`; the variable is `tenant,route` with "
           "`instrument:key` items for one instrument only (docs/dimensions.md).", "none"),
    Option("metric_attribute_limit", "LLMTEL_METRIC_ATTRIBUTE_LIMIT", 100, _positive_int,
           "Distinct values each `metric_attributes` key may take per process; later new values become `_OTHER`."),
    Option("metric_attribute_limits", None, None, _names,
           "`{key: limit}` per-key override of `metric_attribute_limit` (argument only)."),
    Option("max_attribute_length", "LLMTEL_MAX_ATTRIBUTE_LENGTH", 128, _positive_int,
           "Longer attribute values (model names, tool names...) are truncated to this many characters."),
    Option("metric_readers", None, (), _names,
           "Extra `MetricReader` instances (argument only), e.g. an `InMemoryMetricReader` in tests."),
    Option("span_processors", None, (), _names,
           "Extra `SpanProcessor` instances (argument only)."),
    Option("genai_span_metrics", "LLMTEL_GENAI_SPAN_METRICS", True, _boolean,
           "Turn every GenAI span on llmtel's TracerProvider (the Anthropic SDK's own, contrib's, OpenLLMetry's, "
           "OpenLIT's) into llmtel's GenAI metrics, each call counted once; GenAI spans a sampler drops are still "
           "recorded, not exported (docs/genai-spans.md)."),
    Option("trace_store_size", "LLMTEL_TRACE_STORE_SIZE", 1000, _positive_int,
           "Recent traces kept in memory for `/traces/<trace_id>` (up to 256 spans each)."),
    Option("capture_content", "LLMTEL_CAPTURE_CONTENT", CaptureMode.NO_CONTENT, CaptureMode.parse,
           "Record prompt/completion content. Off unless you opt in: `true` (= `span_and_event`), "
           "`span_only`, `event_only`, `span_and_event`, `false` (= `no_content`), any case; the argument also "
           "takes a bool or `llmtel.CaptureMode`. Falls back to "
           "`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`, the variable contrib's GenAI "
           "instrumentations read.", "`no_content`",
           fallback_env="OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"),
    Option("price_table", "LLMTEL_PRICE_TABLE", None, _text,
           "Prices per model (a path to a JSON file, or a dict) turning token usage into `llmtel.gen_ai.client.cost`; "
           "they override and extend the default prices (`default_prices`)."),
    Option("default_prices", "LLMTEL_DEFAULT_PRICES", True, _boolean,
           "Price models that `price_table` lacks from pydantic's `genai-prices` data (bundled, never fetched) when "
           "it is installed (`pip install \"llmtel[prices]\"`); unknown models still get no cost."),
    Option("export_timeout", "LLMTEL_EXPORT_TIMEOUT", 5.0, _seconds,
           "Timeout in seconds of one push export (OTLP), so a dead collector cannot stall exports."),
    Option("shutdown_timeout", "LLMTEL_SHUTDOWN_TIMEOUT", 10.0, _seconds,
           "`shutdown()` returns within this many seconds even when a collector is unreachable."),
    Option("gpu_metrics", "LLMTEL_GPU_METRICS", None, _tristate,
           "NVML GPU metrics: `auto` (on when NVML finds a GPU), `true`, `false`.", "`auto`"),
    Option("process_metrics", "LLMTEL_PROCESS_METRICS", True, _boolean,
           "Process CPU, memory, threads, GC metrics."),
    Option("prometheus_path", "LLMTEL_PROMETHEUS_PATH", "/metrics", _text,
           "Path of the Prometheus scrape endpoint."),
    Option("prometheus_basic_auth", "LLMTEL_PROMETHEUS_BASIC_AUTH", None, _text,
           "`user:password`: require HTTP basic auth on the scrape path, `/traces` and the live page (`/health` "
           "stays open)."),
    Option("prometheus_tls_cert", "LLMTEL_PROMETHEUS_TLS_CERT", None, _text,
           "PEM certificate (chain) file: serve the endpoint over HTTPS."),
    Option("prometheus_tls_key", "LLMTEL_PROMETHEUS_TLS_KEY", None, _text,
           "PEM private key of `prometheus_tls_cert` (leave unset when the certificate file holds it)."),
    Option("prometheus_resource_labels", "LLMTEL_PROMETHEUS_RESOURCE_LABELS", (), _names,
           "Resource attributes (keys or glob patterns, e.g. `service.name,deployment.*`) copied as labels "
           "onto every series (they are always in `target_info`)."),
    Option("prometheus_serve_default_registry", "LLMTEL_PROMETHEUS_SERVE_DEFAULT_REGISTRY", False, _boolean,
           "Also serve the application's own `prometheus_client` metrics (the default `REGISTRY`) on the scrape "
           "path; a family the bridge already serves is never repeated."),
    Option("ui", "LLMTEL_UI", True, _boolean,
           "Serve the live page on the embedded endpoint: overview at `/`, trace waterfall at `/traces/<trace_id>` "
           "for browsers, recent traces at `/traces` (docs/ui.md). Same auth/TLS as the scrape path."),
    Option("prometheus_workers", "LLMTEL_PROMETHEUS_WORKERS", 1, _positive_int,
           "Worker processes sharing `prometheus_port` (gunicorn/uvicorn workers): each serves on the first free "
           "port of `port .. port+N-1` with a `worker` label (docs/multiprocess.md)."),
    Option("meter_provider", None, None, _names,
           "Use this SDK `MeterProvider` instead of building one (argument only)."),
    Option("tracer_provider", None, None, _names,
           "Use this SDK `TracerProvider` instead of building one (argument only)."),
    Option("disabled", "OTEL_SDK_DISABLED", False, _boolean,
           "Turn llmtel off: configure() builds nothing and every recording call is a no-op."),
)  # fmt: skip

OPTIONS_BY_KEYWORD: Final = {option.keyword: option for option in OPTIONS}


def resolve(arguments: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Resolve every option: argument (when not None) > environment > default.

    Raises ConfigurationError naming the option for an unknown keyword or an
    unparsable environment value.
    """
    env = os.environ if environ is None else environ
    unknown = set(arguments) - set(OPTIONS_BY_KEYWORD)
    if unknown:
        raise ConfigurationError(f"unknown configure() option(s): {', '.join(sorted(unknown))}")
    resolved: dict[str, Any] = {}
    for option in OPTIONS:
        value = arguments.get(option.keyword)
        for variable in (option.env, option.fallback_env):
            if value is not None or not variable or not env.get(variable, "").strip():
                continue
            raw = env[variable]
            try:
                value = option.parse(raw)
            except ValueError as exc:
                raise ConfigurationError(f"{variable}={raw!r} is not valid for {option.keyword}: {exc}") from None
        if value is None:
            value = option.default
        resolved[option.keyword] = value
    if isinstance(resolved["metrics_exporter"], str):
        resolved["metrics_exporter"] = _names(resolved["metrics_exporter"])
    for key in ("traces_exporter", "logs_exporter"):
        if isinstance(resolved[key], str):
            resolved[key] = _names(resolved[key])
    if isinstance(resolved["propagators"], str):
        resolved["propagators"] = _names(resolved["propagators"])
    try:  # an argument gets the same parsing (and the same error) as the variable
        resolved["capture_content"] = CaptureMode.parse(resolved["capture_content"])
    except ValueError as exc:
        raise ConfigurationError(f"capture_content={resolved['capture_content']!r} is not valid: {exc}") from None
    return resolved
