"""Every ``configure()`` option, declared once: keyword, variable, default, meaning, where it lands.

``configure()`` resolves each option as argument > environment > default into the typed
:class:`~llmtel.config.settings.Settings`; ``docs/configuration.md`` is generated from this
table (``llmtel docs``), so an option has exactly one name everywhere. An argument and an
environment value go through the same parser, so both are validated alike and a bad one
raises the same :class:`ConfigurationError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from llmtel._internal.capture import CaptureMode, parse_capture_mode
from llmtel._internal.pricing import PriceTable

__all__ = ["OPTIONS", "OPTIONS_BY_KEYWORD", "Option"]

# -- parsers: each takes a string (from the environment) or the argument's own value ------------
# and returns the typed value, or raises ValueError saying what it expected.


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value.strip()


def _names(value: Any) -> tuple[str, ...]:
    """``a,b`` or a sequence of strings."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
        return tuple(item.strip() for item in value if item.strip())
    raise ValueError(f"expected names separated by commas, or a list of strings, got {value!r}")


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected true or false, got {value!r}")


def _auto_boolean(value: Any) -> bool | None:
    """``auto`` (None) or a boolean."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    return _boolean(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool):  # True is an int in Python, never a count or a port here
        raise ValueError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit() and len(value.strip()) <= 18:
        return int(value)
    raise ValueError(f"expected an integer, got {value!r}")


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _port(value: Any) -> int:
    port = _integer(value)
    if not 0 <= port <= 65535:
        raise ValueError(f"expected a port from 0 to 65535, got {port}")
    return port


def _positive_int(value: Any) -> int:
    number = _integer(value)
    if number <= 0:
        raise ValueError(f"expected a positive integer, got {number}")
    return number


def _positive_number(unit: str) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        number = _number(value)
        if number <= 0:
            raise ValueError(f"expected a positive number of {unit}, got {number:g}")
        return number

    return parse


_seconds = _positive_number("seconds")
_milliseconds = _positive_number("milliseconds")


def _ratio(value: Any) -> float:
    ratio = _number(value)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"expected a ratio from 0 to 1, got {ratio:g}")
    return ratio


def _choice(*words: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        word = _text(value).lower()
        if word not in words:
            raise ValueError(f"expected one of {', '.join(words)}, got {value!r}")
        return word

    return parse


ENDPOINT_MODES: Final = ("auto", "on", "off")


def _endpoint_mode(value: Any) -> str:
    """``auto``, ``on`` or ``off`` (booleans and ``none`` as aliases)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    word = _text(value).lower()
    aliases = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off", "none": "off"}
    word = aliases.get(word, word)
    if word not in ENDPOINT_MODES:
        raise ValueError(f"expected auto, on or off, got {value!r}")
    return word


def _key_values(value: Any) -> dict[str, str]:
    """``k=v,k2=v2`` or a mapping."""
    if isinstance(value, Mapping):
        return {str(key): str(item) for key, item in value.items()}
    if not isinstance(value, str):
        raise ValueError(f"expected k=v pairs separated by commas, or a dict, got {value!r}")
    pairs = {}
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected k=v, got {item.strip()!r}")
        pairs[key.strip()] = val.strip()
    return pairs


def _credentials(value: Any) -> str:
    text = _text(value)
    if ":" not in text or not text.partition(":")[0]:
        raise ValueError("expected 'user:password'")
    return text


def _buckets(value: Any) -> dict[str, tuple[float, ...]]:
    if not isinstance(value, Mapping):
        raise ValueError(f"expected {{instrument_name: [boundaries...]}}, got {value!r}")
    parsed = {}
    for name, bounds in value.items():
        if isinstance(bounds, str) or not isinstance(bounds, Sequence):
            raise ValueError(f"{name!r}: expected a list of boundaries, got {bounds!r}")
        numbers = tuple(_number(bound) for bound in bounds)
        if list(numbers) != sorted(set(numbers)):
            raise ValueError(f"{name!r}: boundaries must be strictly increasing")
        parsed[str(name)] = numbers
    return parsed


def _limits(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise ValueError(f"expected {{instrument_name: limit}}, got {value!r}")
    return {str(name): _positive_int(limit) for name, limit in value.items()}


def _metric_attributes(value: Any) -> Sequence[str] | Mapping[str, Sequence[str]]:
    """``tenant,route,llmtel.gen_ai.client.cost:project``, a list of keys, or ``{instrument: [keys]}``.

    In the string form bare keys go on every call instrument, ``instrument:key`` on that
    instrument only (instrument names cannot contain ``:``). Keys are checked by
    :class:`llmtel._internal.dimensions.Dimensions`.
    """
    if isinstance(value, str):
        keys: dict[str, list[str]] = {}
        for item in _names(value):
            name, _, key = item.rpartition(":")
            keys.setdefault(name.strip() or "*", []).append(key.strip())
        return keys
    if isinstance(value, (Sequence, Mapping)):
        return value
    raise ValueError(f"expected keys separated by commas, a list of keys or {{instrument: [keys]}}, got {value!r}")


def _instances(kind: type, what: str) -> Callable[[Any], tuple[Any, ...]]:
    def parse(value: Any) -> tuple[Any, ...]:
        if isinstance(value, str) or not isinstance(value, Sequence):
            value = (value,)
        for item in value:
            if not isinstance(item, kind):
                raise ValueError(f"expected {what} objects, got {type(item).__name__}")
        return tuple(value)

    return parse


def _instance(kind: type, what: str) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if not isinstance(value, kind):
            raise ValueError(f"expected {what}, got {type(value).__name__}")
        return value

    return parse


def _redaction(value: Any) -> bool | Callable[[str], str]:
    """A boolean (``true``: the built-in key redactor), or the argument's own function ``(str) -> str``."""
    if callable(value):
        return value  # type: ignore[no-any-return]
    return _boolean(value)


def _price_source(value: Any) -> str | Path | Mapping[str, Any] | PriceTable:
    if isinstance(value, (str, Path, Mapping, PriceTable)):
        return value.strip() if isinstance(value, str) else value
    raise ValueError(f"expected a JSON file path, a dict or a PriceTable, got {type(value).__name__}")


@dataclass(frozen=True)
class Option:
    """One configure() option."""

    keyword: str
    env: str | None
    default: Any
    parse: Callable[[Any], Any]
    meaning: str
    #: Where the value lands in :class:`~llmtel.config.settings.Settings` (``group.field``).
    setting: str
    default_doc: str = ""
    #: A standard variable read when ``env`` is unset (shared with other OpenTelemetry packages).
    fallback_env: str | None = None


OPTIONS: Final[tuple[Option, ...]] = (
    Option("service_name", "OTEL_SERVICE_NAME", None, _text,
           "`service.name` resource attribute.", "resource.service_name", "`unknown_service`"),
    Option("resource_attributes", "OTEL_RESOURCE_ATTRIBUTES", {}, _key_values,
           "Extra resource attributes (a dict; the variable is `k=v,k2=v2`).", "resource.attributes"),
    Option("metrics_exporter", "OTEL_METRICS_EXPORTER", ("llmtel_prometheus",), _names,
           "Metric exporters/readers by entry-point name, several allowed: `llmtel_prometheus` (the bridge on "
           "the embedded endpoint; `prometheus` is an alias), `otlp`, `console`, `none`, or any "
           "`opentelemetry_metrics_exporter` entry point such as `llmtel_cloudwatch`.", "export.metrics_exporters",
           "`llmtel_prometheus`"),
    Option("traces_exporter", "OTEL_TRACES_EXPORTER", (), _names,
           "Span exporters besides the local trace store: `otlp`, `console`, `none`.", "export.traces_exporters",
           "none"),
    Option("logs_exporter", "OTEL_LOGS_EXPORTER", (), _names,
           "Log exporters (`otlp`, `console`, `none`) for GenAI content events. A LoggerProvider is built only "
           "when `capture_content` puts content in events and an exporter is named (the app's own SDK "
           "LoggerProvider is used when it has one).", "export.logs_exporters", "none"),
    Option("metric_export_interval", "OTEL_METRIC_EXPORT_INTERVAL", 60000.0, _milliseconds,
           "Milliseconds between two exports of a push metric exporter (OTLP, cloud exporters).",
           "export.metric_interval_millis"),
    Option("prometheus_host", "OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1", _text,
           "Address the embedded endpoint binds (`/metrics`, `/health`, `/traces/<trace_id>`).", "endpoint.host"),
    Option("prometheus_port", "OTEL_EXPORTER_PROMETHEUS_PORT", 9464, _port,
           "Port of the embedded endpoint; 0 picks a free port (read it from `Telemetry.endpoint_url`). "
           "`prometheus_port=None` passed explicitly turns the endpoint off (like `endpoint=\"off\"`).",
           "endpoint.port"),
    Option("endpoint", "LLMTEL_ENDPOINT", "auto", _endpoint_mode,
           "The embedded endpoint (`/metrics`, `/health`, `/traces`): `auto` serves it when the Prometheus "
           "bridge is a metrics exporter (pull), not in push-only modes; `on` serves it anyway (`/health` and "
           "`/traces` next to OTLP); `off` never binds a port (the bridge's registry is still "
           "`Telemetry.bridge.registry`, to mount on your own server).", "endpoint.mode", "`auto`"),
    Option("exemplar_filter", "OTEL_METRICS_EXEMPLAR_FILTER", "trace_based",
           _choice("trace_based", "always_on", "always_off"),
           "`trace_based` (exemplars from sampled spans), `always_on` or `always_off`.", "metrics.exemplar_filter"),
    Option("traces_sampler", "OTEL_TRACES_SAMPLER", "parentbased_always_on", lambda v: _text(v).lower(),
           "Sampler name as in the OpenTelemetry spec (`always_on`, `traceidratio`, `parentbased_traceidratio`, ...).",
           "traces.sampler"),
    Option("traces_sampler_arg", "OTEL_TRACES_SAMPLER_ARG", None, _ratio,
           "Sampler argument (the ratio, 0 to 1, for the ratio samplers).", "traces.sampler_arg"),
    Option("propagators", "OTEL_PROPAGATORS", None, _names,
           "Context propagators by entry-point name (e.g. `tracecontext,baggage`). Unset: OpenTelemetry's default.",
           "traces.propagators", "OpenTelemetry's (`tracecontext,baggage`)"),
    Option("views", None, (), _instances(View, "View"),
           "Extra `opentelemetry.sdk.metrics.view.View` objects (argument only).", "metrics.views"),
    Option("bucket_boundaries", None, {}, _buckets,
           "`{instrument_name: [boundaries...]}` overriding the registry's advisory buckets (argument only).",
           "metrics.bucket_boundaries"),
    Option("cardinality_limit", "LLMTEL_CARDINALITY_LIMIT", 2000, _positive_int,
           "Series per instrument before the SDK folds new attribute sets into `otel.metric.overflow=true`.",
           "metrics.cardinality_limit"),
    Option("cardinality_limits", None, {}, _limits,
           "`{instrument_name: limit}` per-instrument override of `cardinality_limit` (argument only).",
           "metrics.cardinality_limits"),
    Option("metric_attributes", "LLMTEL_METRIC_ATTRIBUTES", None, _metric_attributes,
           "Your own attribute keys (e.g. `tenant`, `route`) to put on the metrics of `llm_call`, `tool`, `agent` "
           "and `retrieval`, from their keyword attributes or an `llmtel.attributes()` block: a list for every "
           "call instrument, or `{instrument_name: [keys], \"*\": [keys]}`; the variable is `tenant,route` with "
           "`instrument:key` items for one instrument only (docs/dimensions.md).", "metrics.attributes", "none"),
    Option("metric_attribute_limit", "LLMTEL_METRIC_ATTRIBUTE_LIMIT", 100, _positive_int,
           "Distinct values each `metric_attributes` key may take per process; later new values become `_OTHER`.",
           "metrics.attribute_limit"),
    Option("metric_attribute_limits", None, {}, _limits,
           "`{key: limit}` per-key override of `metric_attribute_limit` (argument only).", "metrics.attribute_limits"),
    Option("max_attribute_length", "LLMTEL_MAX_ATTRIBUTE_LENGTH", 128, _positive_int,
           "Longer attribute values (model names, tool names...) are truncated to this many characters.",
           "metrics.max_attribute_length"),
    Option("metric_readers", None, (), _instances(MetricReader, "MetricReader"),
           "Extra `MetricReader` instances (argument only), e.g. an `InMemoryMetricReader` in tests.",
           "metrics.readers"),
    Option("span_processors", None, (), _instances(SpanProcessor, "SpanProcessor"),
           "Extra `SpanProcessor` instances (argument only).", "traces.processors"),
    Option("genai_span_metrics", "LLMTEL_GENAI_SPAN_METRICS", True, _boolean,
           "Turn every GenAI span on llmtel's TracerProvider (the Anthropic SDK's own, contrib's, OpenLLMetry's, "
           "OpenLIT's) into llmtel's GenAI metrics, each call counted once; GenAI spans a sampler drops are still "
           "recorded, not exported (docs/genai-spans.md).", "traces.genai_span_metrics"),
    Option("trace_store_size", "LLMTEL_TRACE_STORE_SIZE", 1000, _positive_int,
           "Recent traces kept in memory for `/traces/<trace_id>` (up to 256 spans each).", "traces.store_size"),
    Option("capture_content", "LLMTEL_CAPTURE_CONTENT", CaptureMode.NO_CONTENT, parse_capture_mode,
           "Record prompt/completion content. Off unless you opt in: `true` (= `span_and_event`), `span_only` "
           "(span attributes), `event_only` (a `gen_ai.client.inference.operation.details` log event), "
           "`span_and_event`, `false` (= `no_content`), any case; the argument also takes a bool or "
           "`llmtel.CaptureMode`. Falls back to "
           "`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`, the variable contrib's GenAI "
           "instrumentations read, with the same values.", "content.capture", "`no_content`",
           fallback_env="OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"),
    Option("serve_traces", "LLMTEL_SERVE_TRACES", None, _auto_boolean,
           "Serve `/traces` and `/traces/<trace_id>` on the endpoint: `auto` serves them when the endpoint binds "
           "a loopback address or requires basic auth, and not on any other bind (no trace store is kept then); "
           "`true`, `false`. Without content capture they never serve content or exception text "
           "(docs/bad-input.md).", "endpoint.serve_traces", "`auto`"),
    Option("redact_exception_messages", "LLMTEL_REDACT_EXCEPTION_MESSAGES", False, _redaction,
           "Pass exception messages, stack traces and error status descriptions through a redactor before they "
           "are recorded, exported or served: `true` replaces API-key-like tokens (`sk-...`, `AKIA...`, bearer "
           "tokens) by `[REDACTED]`; the argument also takes your own function `(str) -> str`. Off by default.",
           "content.redact_exception_messages"),
    Option("price_table", "LLMTEL_PRICE_TABLE", None, _price_source,
           "Prices per model (a path to a JSON file, or a dict) turning token usage into `llmtel.gen_ai.client.cost`; "
           "they override and extend the default prices (`default_prices`).", "metrics.price_table"),
    Option("default_prices", "LLMTEL_DEFAULT_PRICES", True, _boolean,
           "Price models that `price_table` lacks from pydantic's `genai-prices` data (bundled, never fetched) when "
           "it is installed (the `prices` extra: `pip install -e \".[prices]\"` in a clone); unknown models still "
           "get no cost.",
           "metrics.default_prices"),
    Option("export_timeout", "LLMTEL_EXPORT_TIMEOUT", 5.0, _seconds,
           "Timeout in seconds of one push export (OTLP), so a dead collector cannot stall exports.",
           "export.timeout"),
    Option("shutdown_timeout", "LLMTEL_SHUTDOWN_TIMEOUT", 10.0, _seconds,
           "`shutdown()` returns within this many seconds even when a collector is unreachable.",
           "export.shutdown_timeout"),
    Option("gpu_metrics", "LLMTEL_GPU_METRICS", None, _auto_boolean,
           "NVML GPU metrics: `auto` (on when NVML finds a GPU), `true`, `false`.", "collectors.gpu", "`auto`"),
    Option("process_metrics", "LLMTEL_PROCESS_METRICS", True, _boolean,
           "Process CPU, memory, threads, GC metrics.", "collectors.process"),
    Option("prometheus_path", "LLMTEL_PROMETHEUS_PATH", "/metrics", _text,
           "Path of the Prometheus scrape endpoint.", "endpoint.path"),
    Option("prometheus_basic_auth", "LLMTEL_PROMETHEUS_BASIC_AUTH", None, _credentials,
           "`user:password`: require HTTP basic auth on the scrape path, `/traces` and the live page (`/health` "
           "stays open).", "endpoint.basic_auth"),
    Option("prometheus_tls_cert", "LLMTEL_PROMETHEUS_TLS_CERT", None, _text,
           "PEM certificate (chain) file: serve the endpoint over HTTPS.", "endpoint.tls_cert"),
    Option("prometheus_tls_key", "LLMTEL_PROMETHEUS_TLS_KEY", None, _text,
           "PEM private key of `prometheus_tls_cert` (leave unset when the certificate file holds it).",
           "endpoint.tls_key"),
    Option("prometheus_resource_labels", "LLMTEL_PROMETHEUS_RESOURCE_LABELS", (), _names,
           "Resource attributes (keys or glob patterns, e.g. `service.name,deployment.*`) copied as labels "
           "onto every series (they are always in `target_info`).", "endpoint.resource_labels"),
    Option("prometheus_serve_default_registry", "LLMTEL_PROMETHEUS_SERVE_DEFAULT_REGISTRY", False, _boolean,
           "Also serve the application's own `prometheus_client` metrics (the default `REGISTRY`) on the scrape "
           "path; a family the bridge already serves is never repeated.", "endpoint.serve_default_registry"),
    Option("prometheus_workers", "LLMTEL_PROMETHEUS_WORKERS", 1, _positive_int,
           "Worker processes sharing `prometheus_port` (gunicorn/uvicorn workers): each serves on the first free "
           "port of `port .. port+N-1` with a `worker` label (docs/multiprocess.md).", "endpoint.workers"),
    Option("ui", "LLMTEL_UI", True, _boolean,
           "Serve the live page on the embedded endpoint: overview at `/`, trace waterfall at `/traces/<trace_id>` "
           "for browsers, recent traces at `/traces` (docs/ui.md). Same auth/TLS as the scrape path.", "endpoint.ui"),
    Option("meter_provider", None, None, _instance(MeterProvider, "an SDK MeterProvider"),
           "Use this SDK `MeterProvider` instead of building one (argument only).", "metrics.meter_provider"),
    Option("tracer_provider", None, None, _instance(TracerProvider, "an SDK TracerProvider"),
           "Use this SDK `TracerProvider` instead of building one (argument only).", "traces.tracer_provider"),
    Option("disabled", "OTEL_SDK_DISABLED", False, _boolean,
           "Turn llmtel off: configure() builds nothing and every recording call is a no-op.", "disabled"),
)  # fmt: skip

OPTIONS_BY_KEYWORD: Final = {option.keyword: option for option in OPTIONS}
