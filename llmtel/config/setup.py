"""``llmtel.configure()``: providers, readers, views, exemplars and the embedded endpoint.

Options resolve as argument > environment > default (``llmtel.config.options``).
Providers the application already installed are used, never overridden: the
SDK refuses a second global provider, so llmtel attaches to the existing one
(its trace store as one more span processor) instead of building its own.
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, overload

from opentelemetry import metrics, trace
from opentelemetry._logs import _internal as _logs_internal
from opentelemetry._logs import get_logger_provider, set_logger_provider
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    ExemplarFilter,
    Histogram,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics import MeterProvider as SDKMeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import DropAggregation, ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, sampling
from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.util.types import Attributes

from llmtel import semconv
from llmtel._internal import appmeters, env, sdkcompat
from llmtel._internal import errors as _errors
from llmtel._internal import exportguard as _exportguard
from llmtel._internal import spanmetrics as _spanmetrics
from llmtel._internal import state as _state
from llmtel._internal import values as _values
from llmtel._internal.capture import CaptureMode
from llmtel._internal.dimensions import Dimensions
from llmtel._internal.errors import ConfigurationError
from llmtel._internal.pricing import PriceTable
from llmtel.config.auto import bridge_arguments, start_endpoint
from llmtel.config.settings import ExportSettings, Settings, resolve
from llmtel.readers.prometheus import PrometheusBridgeReader
from llmtel.serving.endpoint import Endpoint, in_worker_process
from llmtel.serving.tracestore import TraceStore

logger = logging.getLogger("llmtel")

__all__ = ["Telemetry", "configure", "current", "force_flush", "get_meter", "shutdown"]

_BRIDGE_NAMES = ("llmtel_prometheus", "prometheus")
_SDK_DEFAULT_CARDINALITY = 2000
#: Instrument names in these namespaces must be registry names (``bucket_boundaries``, ``cardinality_limits``).
_REGISTRY_NAMESPACES = ("llmtel.", "gen_ai.")
_EXEMPLAR_FILTERS: dict[str, type[ExemplarFilter]] = {
    "trace_based": TraceBasedExemplarFilter,
    "always_on": AlwaysOnExemplarFilter,
    "always_off": AlwaysOffExemplarFilter,
}


@dataclass
class Telemetry:
    """The result of ``configure()``: what was built and where to look."""

    settings: Settings
    meter_provider: metrics.MeterProvider | None = None
    tracer_provider: trace.TracerProvider | None = None
    logger_provider: Any = None
    owns_logger_provider: bool = False
    owns_meter_provider: bool = False
    owns_tracer_provider: bool = False
    bridge: PrometheusBridgeReader | None = None
    endpoint: Endpoint | None = None
    trace_store: TraceStore | None = None
    span_metrics: _spanmetrics.GenAISpanMetrics | None = None
    readers: list[MetricReader] = field(default_factory=list)
    collectors: list[Any] = field(default_factory=list)
    from_auto_instrumentation: bool = False
    disabled: bool = False
    closed: bool = False

    @property
    def endpoint_url(self) -> str | None:
        """Base URL of the embedded endpoint (``http://127.0.0.1:9464``), or None while it does not serve."""
        return self.endpoint.url if self.endpoint and self.endpoint.serving else None

    @property
    def metrics_url(self) -> str | None:
        """The scrape URL, when the bridge is served."""
        return self.endpoint.metrics_url if self.endpoint and self.endpoint.serving and self.bridge else None


_lock = threading.RLock()
_active: Telemetry | None = None
# Providers llmtel built itself: never mistaken for "the app's" after a shutdown.
_owned_ids: set[int] = set()


def current() -> Telemetry | None:
    """The active configuration, or None before configure()/after shutdown()."""
    return _active


def get_meter(
    name: str | None = None,
    version: str | None = None,
    schema_url: str | None = None,
    attributes: Attributes = None,
) -> metrics.Meter:
    """A meter for the application's own instruments, on llmtel's providers (docs/custom-metrics.md).

    Instruments made on it follow llmtel's configuration: they record into the
    provider of the current ``configure()`` (the global one before it), keep
    working after ``shutdown()`` + ``configure()`` and in every ``llmtel_capture``
    test, and get ``bucket_boundaries`` / ``cardinality_limits`` by name like
    llmtel's own. ``name`` is the instrumentation scope (``otel_scope_name`` in
    Prometheus); None gives llmtel's own scope.
    """
    _state.current()  # installs the before-configure defaults, so the meter is bound at once
    if name is None:
        name, version, schema_url = _state.SCOPE, _state.VERSION, semconv.SCHEMA_URL
    return appmeters.meter(name, version, schema_url, attributes)


def _global_set(module: Any, attr: str) -> bool:
    once = getattr(module, attr, None)
    return bool(getattr(once, "_done", False))


def _sampler(name: str, arg: float | None) -> sampling.Sampler:
    known = sampling._KNOWN_SAMPLERS.get(name)
    if known is None:
        raise ConfigurationError(f"traces_sampler {name!r} is unknown; use one of {sorted(sampling._KNOWN_SAMPLERS)}")
    if isinstance(known, type):
        ratio_sampler: sampling.Sampler = known(1.0 if arg is None else arg)
        return ratio_sampler
    assert isinstance(known, sampling.Sampler)
    return known


def _entry_point(group: str, name: str) -> Any:
    for ep in entry_points(group=group):
        if ep.name == name:
            try:
                return ep.load()
            except ImportError as exc:  # an optional extra that is not installed
                raise ConfigurationError(f"exporter {name!r} cannot be loaded: {exc}") from exc
    available = sorted({ep.name for ep in entry_points(group=group)} | set(_BRIDGE_NAMES) | {"otlp", "none"})
    raise ConfigurationError(f"unknown exporter {name!r} in {group}; installed: {', '.join(available)}")


def _otlp_protocol(signal: str) -> str:
    # The OTLP exporters read their own OTEL_EXPORTER_OTLP_* variables (endpoint, headers...);
    # llmtel reads only the protocol, to pick which exporter to build.
    return env.text(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"


def _otlp_timeout_kwargs(signal: str, timeout: float) -> dict[str, Any]:
    # The exporter reads OTEL_EXPORTER_OTLP_*TIMEOUT itself; llmtel's default only fills the gap.
    if env.text(f"OTEL_EXPORTER_OTLP_{signal}_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        return {}
    return {"timeout": timeout}


@overload
def _guarded(exporter: MetricExporter) -> MetricExporter: ...
@overload
def _guarded(exporter: SpanExporter) -> SpanExporter: ...
def _guarded(exporter: MetricExporter | SpanExporter) -> MetricExporter | SpanExporter:
    """Count failed OTLP exports in llmtel.sdk.export.failures and log them once, not per attempt."""
    _exportguard.quiet_sdk_exporter_logs()
    if isinstance(exporter, MetricExporter):
        return _exportguard.CountingMetricExporter(exporter, "otlp")
    return _exportguard.CountingSpanExporter(exporter, "otlp")


def _otlp_metric_exporter(timeout: float) -> MetricExporter:
    protocol = _otlp_protocol("METRICS")
    kwargs = _otlp_timeout_kwargs("METRICS", timeout)
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter

        return _guarded(GrpcExporter(**kwargs))
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter

        return _guarded(HttpExporter(**kwargs))
    raise ConfigurationError(f"OTLP protocol {protocol!r} is not supported; use grpc or http/protobuf")


def _otlp_span_exporter(timeout: float) -> SpanExporter:
    protocol = _otlp_protocol("TRACES")
    kwargs = _otlp_timeout_kwargs("TRACES", timeout)
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return _guarded(GrpcExporter(**kwargs))
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        return _guarded(HttpExporter(**kwargs))
    raise ConfigurationError(f"OTLP protocol {protocol!r} is not supported; use grpc or http/protobuf")


def _periodic(exporter: MetricExporter, export: ExportSettings) -> PeriodicExportingMetricReader:
    return PeriodicExportingMetricReader(
        exporter,
        export_interval_millis=export.metric_interval_millis,
        export_timeout_millis=export.timeout * 1000,
    )


def _metric_readers(settings: Settings, timeout: float) -> tuple[list[MetricReader], PrometheusBridgeReader | None]:
    names: Sequence[str] = settings.export.metrics_exporters
    readers: list[MetricReader] = []
    bridge: PrometheusBridgeReader | None = None
    for name in dict.fromkeys(names):  # each name once, in order
        if name == "none":
            continue
        if name in _BRIDGE_NAMES:
            if bridge is None:
                bridge = PrometheusBridgeReader(**bridge_arguments(settings))
                readers.append(bridge)
            continue
        if name == "otlp":
            readers.append(_periodic(_otlp_metric_exporter(timeout), settings.export))
            continue
        plugin = _entry_point("opentelemetry_metrics_exporter", name)
        instance = plugin() if isinstance(plugin, type) else plugin
        if isinstance(instance, MetricReader):
            readers.append(instance)
        elif isinstance(instance, MetricExporter):
            readers.append(_periodic(instance, settings.export))
        else:
            raise ConfigurationError(f"exporter {name!r} gave {type(instance).__name__}, not a reader or exporter")
    return readers, bridge


def _span_processors(names: Sequence[str], timeout: float) -> list[SpanProcessor]:
    processors: list[SpanProcessor] = []
    for name in dict.fromkeys(names):
        if name == "none":
            continue
        if name == "otlp":
            exporter: SpanExporter = _otlp_span_exporter(timeout)
        else:
            plugin = _entry_point("opentelemetry_traces_exporter", name)
            exporter = plugin() if isinstance(plugin, type) else plugin
        if _values.redacting():
            exporter = _exportguard.RedactingSpanExporter(exporter)
        processors.append(BatchSpanProcessor(exporter, export_timeout_millis=timeout * 1000))
    return processors


#: The scope of opentelemetry-instrumentation-system-metrics, which reports ``process.*`` and
#: ``cpython.*`` under the same names as llmtel's process collector.
_SYSTEM_METRICS_SCOPE = "opentelemetry.instrumentation.system_metrics"


def _duplicate_process_metric_views(settings: Settings) -> list[View]:
    """Drop system_metrics' copies of the process metrics llmtel's own collector reports.

    Served side by side, two families of one name make Prometheus reject the whole scrape.
    llmtel's distro keeps system_metrics from loading at all; these views cover the case
    where another distro is in charge (the configurator never edits the environment).
    """
    if not settings.collectors.process:
        return []
    return [
        View(meter_name=_SYSTEM_METRICS_SCOPE, instrument_name=pattern, aggregation=DropAggregation())
        for pattern in ("process.*", "cpython.*")
    ]


def _redactor(value: bool | Callable[[str], str]) -> Callable[[str], str] | None:
    """The exception-text redactor ``redact_exception_messages`` names (None: off)."""
    if value is True:
        return _values.redact_secrets
    return value if callable(value) else None


def _is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name, or "" (every interface)


def _serve_traces(settings: Settings) -> bool:
    """``serve_traces``, with ``auto`` resolved: on for a loopback bind or with basic auth, off otherwise."""
    endpoint = settings.endpoint
    if endpoint.serve_traces is not None:
        return endpoint.serve_traces
    if _is_loopback(endpoint.host) or endpoint.basic_auth:
        return True
    logger.info(
        "llmtel: /traces is not served: the endpoint binds %s without basic auth "
        "(set serve_traces=True / LLMTEL_SERVE_TRACES=true to serve it anyway)",
        endpoint.host,
    )
    return False


def _views(settings: Settings, dimensions: Dimensions) -> list[View]:
    """One View per instrument that needs a bucket, cardinality or attribute-key override.

    Two views matching one instrument would export it twice, so each
    instrument's overrides are merged into a single View. Names outside the
    registry are the application's own instruments (any meter); a name in
    llmtel's namespaces that the registry lacks is a typo.
    """
    buckets = settings.metrics.bucket_boundaries
    limits = settings.metrics.cardinality_limits
    default_limit = settings.metrics.cardinality_limit
    known = {spec.name: spec for spec in semconv.INSTRUMENTS}
    for name in [*buckets, *limits]:
        if name not in known and name.startswith(_REGISTRY_NAMESPACES):
            raise ConfigurationError(f"{name!r} is not an llmtel instrument (see docs/metrics.md)")
    for name in buckets:  # the option's parser checked the boundaries themselves
        if name in known and known[name].kind is not semconv.Kind.HISTOGRAM:
            raise ConfigurationError(f"bucket_boundaries: {name!r} is not a histogram")
    views: list[View] = [*settings.metrics.views, *_duplicate_process_metric_views(settings)]
    if not sdkcompat.CARDINALITY_LIMITS:
        logger.info(  # docs/compatibility.md says so; not a warning in every auto-instrumented start
            "llmtel: opentelemetry-sdk %s has no cardinality limits (1.45+ does): cardinality_limit is not "
            "enforced, only metric_attributes' per-key limits are",
            sdkcompat.SDK_VERSION,
        )
    for spec in semconv.INSTRUMENTS:
        limit = limits.get(spec.name, default_limit)
        bounds: Sequence[float] | None = buckets.get(spec.name)
        narrowed = dimensions.narrowed.get(spec.name)
        if bounds is None and limit == _SDK_DEFAULT_CARDINALITY and narrowed is None:
            continue
        views.append(
            View(
                instrument_name=semconv.emitted_name(spec),
                meter_name=_state.SCOPE,
                aggregation=ExplicitBucketHistogramAggregation(list(bounds)) if bounds is not None else None,
                **sdkcompat.cardinality_limit(limit),
                # An instrument that takes only some opted-in keys drops the others here, once per series.
                attribute_keys=set(spec.attributes | narrowed) if narrowed is not None else None,
            )
        )
    for name in dict.fromkeys([*buckets, *limits]):
        if name in known:
            continue
        bounds = buckets.get(name)
        views.append(
            View(
                instrument_name=name,
                # Buckets only for a histogram of that name: a counter named alike stays a counter.
                instrument_type=Histogram if bounds is not None else None,
                aggregation=ExplicitBucketHistogramAggregation(list(bounds)) if bounds is not None else None,
                **sdkcompat.cardinality_limit(limits.get(name, default_limit)),
            )
        )
    return views


class _NotGiven:
    """``prometheus_port``'s default: None passed explicitly means "no endpoint", so "not given" needs its own."""

    def __repr__(self) -> str:
        return "<environment or 9464>"


_PORT_NOT_GIVEN: Any = _NotGiven()


def configure(
    *,
    service_name: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    metrics_exporter: Sequence[str] | str | None = None,
    traces_exporter: Sequence[str] | str | None = None,
    logs_exporter: Sequence[str] | str | None = None,
    metric_export_interval: float | None = None,
    prometheus_host: str | None = None,
    prometheus_port: int | None = _PORT_NOT_GIVEN,
    endpoint: str | None = None,
    exemplar_filter: str | None = None,
    traces_sampler: str | None = None,
    traces_sampler_arg: float | None = None,
    propagators: Sequence[str] | str | None = None,
    views: Sequence[View] | None = None,
    bucket_boundaries: Mapping[str, Sequence[float]] | None = None,
    cardinality_limit: int | None = None,
    cardinality_limits: Mapping[str, int] | None = None,
    metric_attributes: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    metric_attribute_limit: int | None = None,
    metric_attribute_limits: Mapping[str, int] | None = None,
    max_attribute_length: int | None = None,
    metric_readers: Sequence[MetricReader] | None = None,
    span_processors: Sequence[SpanProcessor] | None = None,
    genai_span_metrics: bool | None = None,
    trace_store_size: int | None = None,
    capture_content: bool | str | CaptureMode | None = None,
    serve_traces: bool | None = None,
    redact_exception_messages: bool | Callable[[str], str] | None = None,
    price_table: str | Mapping[str, Any] | PriceTable | None = None,
    default_prices: bool | None = None,
    export_timeout: float | None = None,
    shutdown_timeout: float | None = None,
    gpu_metrics: bool | None = None,
    process_metrics: bool | None = None,
    prometheus_path: str | None = None,
    prometheus_basic_auth: str | None = None,
    prometheus_tls_cert: str | None = None,
    prometheus_tls_key: str | None = None,
    prometheus_resource_labels: Sequence[str] | None = None,
    prometheus_serve_default_registry: bool | None = None,
    prometheus_workers: int | None = None,
    ui: bool | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    disabled: bool | None = None,
    _from_auto_instrumentation: bool = False,
) -> Telemetry:
    """Set up llmtel: every option in docs/configuration.md (argument > environment > default).

    With no exporter configured, serves ``/metrics``, ``/health``,
    ``/traces/<trace_id>`` and the live page at ``/`` on 127.0.0.1:9464. A second call while a
    configuration is active changes nothing and returns the active one (call
    :func:`shutdown` first to reconfigure). Raises :class:`ConfigurationError`
    for misuse: an unknown exporter, a bad option, a port in use.
    """
    global _active
    arguments = {key: value for key, value in locals().items() if key != "_from_auto_instrumentation"}
    if prometheus_port is _PORT_NOT_GIVEN:
        arguments["prometheus_port"] = None
    elif prometheus_port is None:  # the explicit off switch
        if endpoint is not None and str(endpoint).strip().lower() != "off":
            raise ConfigurationError(f"prometheus_port=None turns the endpoint off, but endpoint={endpoint!r}")
        arguments["endpoint"] = "off"
    with _lock:
        if _active is not None and not _active.closed:
            if _active.from_auto_instrumentation and not _from_auto_instrumentation:
                logger.info("llmtel: already configured by opentelemetry-instrument; using that configuration")
            else:
                logger.warning(
                    "llmtel.configure() called again: keeping the active configuration "
                    "(call llmtel.shutdown() first to configure anew)"
                )
            return _active
        settings = resolve(arguments)
        telemetry = _build(settings, from_auto=_from_auto_instrumentation)
        _active = telemetry
        _register_atexit()
        return telemetry


_atexit_registered = False


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        _atexit_registered = True
        atexit.register(shutdown)


def _build(settings: Settings, *, from_auto: bool) -> Telemetry:
    if settings.disabled:
        _state.install(
            _state.build(metrics.NoOpMeterProvider(), trace.NoOpTracerProvider(), prices=PriceTable(), enabled=False)
        )
        return Telemetry(settings=settings, disabled=True, from_auto_instrumentation=from_auto)

    filter_name = settings.metrics.exemplar_filter
    prices = PriceTable.load(settings.metrics.price_table, defaults=settings.metrics.default_prices)
    dimensions = Dimensions.from_options(
        settings.metrics.attributes, settings.metrics.attribute_limit, settings.metrics.attribute_limits
    )
    views = _views(settings, dimensions)
    sampler = _sampler(settings.traces.sampler, settings.traces.sampler_arg)
    _values.set_max_length(settings.metrics.max_attribute_length)
    _values.set_redactor(_redactor(settings.content.redact_exception_messages))
    resource_attrs: dict[str, Any] = dict(settings.resource.attributes)
    if settings.resource.service_name:
        resource_attrs["service.name"] = settings.resource.service_name
    resource = Resource.create(resource_attrs)
    timeout = settings.export.timeout

    telemetry = Telemetry(settings=settings, from_auto_instrumentation=from_auto)
    try:
        _build_metrics(telemetry, settings, resource, views, timeout, filter_name)
        _build_traces(telemetry, settings, resource, sampler, timeout, serve_traces=_serve_traces(settings))
        _build_logs(telemetry, settings, resource, timeout)
        telemetry.endpoint = _start_endpoint(telemetry, settings, from_auto=from_auto)
        if settings.traces.propagators:
            _set_propagators(settings.traces.propagators)
    except BaseException:
        _close(telemetry, settings.export.shutdown_timeout)
        _values.set_redactor(None)
        raise
    # Only a configuration that fully succeeded becomes the process-global one (set once per process).
    if telemetry.owns_logger_provider and not _global_set(_logs_internal, "_LOGGER_PROVIDER_SET_ONCE"):
        set_logger_provider(telemetry.logger_provider)
    assert telemetry.meter_provider is not None and telemetry.tracer_provider is not None
    if telemetry.owns_meter_provider and not _global_set(metrics._internal, "_METER_PROVIDER_SET_ONCE"):
        metrics.set_meter_provider(telemetry.meter_provider)
    if telemetry.owns_tracer_provider and not _global_set(trace, "_TRACER_PROVIDER_SET_ONCE"):
        trace.set_tracer_provider(telemetry.tracer_provider)

    handles = _state.build(
        telemetry.meter_provider,
        telemetry.tracer_provider,
        prices=prices,
        capture_content=settings.content.capture,
        dimensions=dimensions,
    )
    _state.install(handles)
    _errors.bind(handles.instruments.meter)
    telemetry.collectors = _start_collectors(handles.instruments.meter, settings)
    logger.info("llmtel configured%s", f": {telemetry.metrics_url}" if telemetry.metrics_url else "")
    return telemetry


def _start_endpoint(telemetry: Telemetry, settings: Settings, *, from_auto: bool) -> Endpoint | None:
    """The embedded endpoint, when wanted: ``on``, or ``auto`` with the Prometheus bridge (pull mode).

    A standalone process gets a ConfigurationError for a port it cannot bind. A
    worker (``prometheus_workers`` > 1, a forked or multiprocessing child, a
    gunicorn worker, auto-instrumentation) never stops over its endpoint: the
    failure is logged and counted, and a taken port is retried in the background
    (docs/multiprocess.md).
    """
    mode = settings.endpoint.mode
    if mode == "off" or (mode == "auto" and telemetry.bridge is None):
        return None
    # gunicorn's master exports SERVER_SOFTWARE to its workers; a worker that raised here would exit 3 and halt
    # the master ("Worker failed to boot"), e.g. on HUP, when new workers start while the old ones hold the port.
    under_gunicorn = (env.text("SERVER_SOFTWARE") or "").startswith("gunicorn/")
    worker = from_auto or settings.endpoint.workers > 1 or under_gunicorn or in_worker_process()
    try:
        return start_endpoint(
            settings.endpoint,
            registry=telemetry.bridge.registry if telemetry.bridge else None,
            trace_store=telemetry.trace_store,
            must_bind=not worker,
        )
    except ConfigurationError as exc:
        if not worker:
            raise
        _errors.report("endpoint not served", exc)
        return None


def _build_metrics(
    telemetry: Telemetry, settings: Settings, resource: Resource, views: list[View], timeout: float, filter_name: str
) -> None:
    given = settings.metrics.meter_provider
    global_provider = metrics.get_meter_provider()
    app_provider = given or (
        global_provider
        if isinstance(global_provider, SDKMeterProvider) and id(global_provider) not in _owned_ids
        else None
    )
    if app_provider is not None:
        # The SDK cannot add readers to a built MeterProvider: record into the app's pipeline.
        telemetry.meter_provider = app_provider
        app_readers = getattr(app_provider, "_metric_readers", ())
        telemetry.bridge = next((r for r in app_readers if isinstance(r, PrometheusBridgeReader)), None)
        explicit = settings.export.metrics_exporters != ("llmtel_prometheus",) or settings.metrics.readers or views
        if explicit:
            logger.warning(
                "llmtel: using the application's MeterProvider; llmtel's metric readers/views are not added to it "
                "(add llmtel.PrometheusBridgeReader() to your MeterProvider to serve /metrics)"
            )
        return
    readers, bridge = _metric_readers(settings, timeout)
    readers.extend(settings.metrics.readers)
    telemetry.readers, telemetry.bridge = readers, bridge
    if settings.traces.genai_span_metrics:
        views = [*views, *_spanmetrics.exclusive_views(views)]
    provider = SDKMeterProvider(
        metric_readers=readers,
        resource=resource,
        views=views,
        exemplar_filter=_EXEMPLAR_FILTERS[filter_name](),
        shutdown_on_exit=False,  # llmtel.shutdown() (registered atexit) bounds the time instead
    )
    _owned_ids.add(id(provider))
    telemetry.meter_provider, telemetry.owns_meter_provider = provider, True


def _build_traces(
    telemetry: Telemetry,
    settings: Settings,
    resource: Resource,
    sampler: sampling.Sampler,
    timeout: float,
    *,
    serve_traces: bool,
) -> None:
    processors = _span_processors(settings.export.traces_exporters, timeout)
    processors.extend(settings.traces.processors)
    if serve_traces:
        telemetry.trace_store = TraceStore(
            max_traces=settings.traces.store_size, serve_content=settings.content.capture.on_span
        )
        processors.insert(0, telemetry.trace_store)
    given = settings.traces.tracer_provider
    global_provider = trace.get_tracer_provider()
    provider = given or (
        global_provider
        if isinstance(global_provider, SDKTracerProvider) and id(global_provider) not in _owned_ids
        else None
    )
    if settings.traces.genai_span_metrics:
        # Views can drop other meters' same-named metrics only on a MeterProvider llmtel built.
        skip = frozenset() if telemetry.owns_meter_provider else _spanmetrics.SAME_METRIC_SCOPES
        telemetry.span_metrics = _spanmetrics.GenAISpanMetrics(skip_scopes=skip)
        processors.insert(1, telemetry.span_metrics)
        sampler = _spanmetrics.GenAISampler(sampler, telemetry.span_metrics)  # used when llmtel builds the provider
    if provider is None:
        provider = SDKTracerProvider(resource=resource, sampler=sampler, shutdown_on_exit=False)
        _owned_ids.add(id(provider))
        telemetry.owns_tracer_provider = True
    for processor in processors:
        provider.add_span_processor(processor)
    telemetry.tracer_provider = provider


def _otlp_log_exporter(timeout: float) -> Any:
    protocol = _otlp_protocol("LOGS")
    kwargs = _otlp_timeout_kwargs("LOGS", timeout)
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcExporter

        return GrpcExporter(**kwargs)
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpExporter

        return HttpExporter(**kwargs)
    raise ConfigurationError(f"OTLP protocol {protocol!r} is not supported; use grpc or http/protobuf")


def _build_logs(telemetry: Telemetry, settings: Settings, resource: Resource, timeout: float) -> None:
    """A LoggerProvider for GenAI content events: only when content capture is on and logs are exported."""
    names = [name for name in dict.fromkeys(settings.export.logs_exporters) if name != "none"]
    if not settings.content.capture.as_event or not names:
        return
    from opentelemetry.sdk._logs import LoggerProvider as SDKLoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, ConsoleLogRecordExporter

    existing = get_logger_provider()
    if isinstance(existing, SDKLoggerProvider) and id(existing) not in _owned_ids:
        telemetry.logger_provider = existing  # the app's pipeline decides where logs go
        return
    provider = SDKLoggerProvider(resource=resource, shutdown_on_exit=False)
    for name in names:
        if name == "otlp":
            exporter = _otlp_log_exporter(timeout)
        elif name == "console":
            exporter = ConsoleLogRecordExporter()
        else:
            exporter = _entry_point("opentelemetry_logs_exporter", name)()
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter, export_timeout_millis=timeout * 1000))
    _owned_ids.add(id(provider))
    telemetry.logger_provider, telemetry.owns_logger_provider = provider, True


def _set_propagators(names: Sequence[str]) -> None:
    from opentelemetry.propagate import set_global_textmap
    from opentelemetry.propagators.composite import CompositePropagator

    propagators = []
    for name in names:
        if name == "none":
            continue
        plugin = None
        for ep in entry_points(group="opentelemetry_propagator"):
            if ep.name == name:
                plugin = ep.load()
        if plugin is None:
            installed = sorted({ep.name for ep in entry_points(group="opentelemetry_propagator")})
            raise ConfigurationError(
                f"propagators (OTEL_PROPAGATORS): {name!r} is not installed; installed: {', '.join(installed)}"
            )
        propagators.append(plugin())
    set_global_textmap(CompositePropagator(propagators))


def _start_collectors(meter: metrics.Meter, settings: Settings) -> list[Any]:
    started: list[Any] = []
    plans: list[tuple[str, dict[str, Any]]] = []
    if settings.collectors.gpu is not False:
        plans.append(("llmtel.collectors.gpu", {"enabled": settings.collectors.gpu}))
    if settings.collectors.process:
        plans.append(("llmtel.collectors.process", {}))
    for module_name, kwargs in plans:
        with _errors.guarded(f"start {module_name}"):
            import importlib

            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            collector = module.install(meter, **kwargs)
            if collector is not None:
                started.append(collector)
    return started


#: Part of the shutdown bound kept for the steps after the wait (the thread hand-off, the log line, a busy
#: machine's scheduling delay): 5 % of it, at most 0.25 s.
_SHUTDOWN_MARGIN, _SHUTDOWN_MARGIN_MAX = 0.05, 0.25


def _close(telemetry: Telemetry, timeout: float) -> None:
    """Stop everything ``telemetry`` started; returns within ``timeout`` seconds, every step included.

    Exporters retry with backoff against a dead collector, and even closing the
    endpoint waits on its serving thread: every step runs in one worker thread
    and the caller waits for it until the deadline only (a promise to
    orchestrators with a grace period).
    """
    deadline = time.monotonic() + timeout
    if telemetry.span_metrics is not None:
        telemetry.span_metrics.shutdown()  # at once: a provider llmtel joined keeps calling it

    def remaining_millis() -> float:
        return max(0.0, deadline - time.monotonic()) * 1000

    def stop_all() -> None:
        for collector in telemetry.collectors:
            with _errors.guarded("stop collector"):
                collector.close()
        if telemetry.endpoint is not None:
            with _errors.guarded("stop endpoint"):
                telemetry.endpoint.close()
        if telemetry.trace_store is not None:
            telemetry.trace_store.shutdown()
        if telemetry.owns_meter_provider and telemetry.meter_provider is not None:
            with _errors.guarded("meter provider shutdown"):
                telemetry.meter_provider.shutdown(timeout_millis=remaining_millis())  # type: ignore[attr-defined]
        if telemetry.owns_tracer_provider and telemetry.tracer_provider is not None:
            with _errors.guarded("tracer provider shutdown"):
                telemetry.tracer_provider.shutdown()  # type: ignore[attr-defined]
        if telemetry.owns_logger_provider:
            with _errors.guarded("logger provider shutdown"):
                telemetry.logger_provider.shutdown()

    telemetry.closed = True
    worker = threading.Thread(target=stop_all, name="llmtel-shutdown", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic() - min(_SHUTDOWN_MARGIN_MAX, timeout * _SHUTDOWN_MARGIN)))
    if worker.is_alive():
        logger.warning("llmtel: shutdown did not finish within %.1f s; unsent telemetry is dropped", timeout)


def shutdown(timeout: float | None = None) -> None:
    """Flush and stop what configure() started; returns within ``shutdown_timeout`` seconds.

    Providers that belong to the application are left running. After this,
    recording calls are no-ops until configure() is called again.
    """
    global _active
    with _lock:
        telemetry = _active
        if telemetry is None or telemetry.closed:
            return
        # Recording stops first (it would land in providers that are shutting down), then the bounded close.
        _active = None
        _errors.bind(None)
        _values.set_redactor(None)
        _state.install(
            _state.build(metrics.NoOpMeterProvider(), trace.NoOpTracerProvider(), prices=PriceTable(), enabled=False)
        )
        _close(telemetry, float(timeout if timeout is not None else telemetry.settings.export.shutdown_timeout))


def force_flush(timeout: float = 10.0) -> bool:
    """Export what is buffered now (push exporters), within ``timeout`` seconds in all.

    True when everything went out: False when the flush timed out or any export
    failed meanwhile (a collector that is down or refuses the data). The SDK's
    own flush says only that it ran, so failures are read from llmtel's export
    failure count (every push exporter llmtel builds reports there).
    """
    telemetry = _active
    if telemetry is None or telemetry.disabled:
        return True
    deadline = time.monotonic() + timeout
    failures_before = _errors.export_failures()
    ok = True
    for provider in (telemetry.meter_provider, telemetry.tracer_provider, telemetry.logger_provider):
        flush = getattr(provider, "force_flush", None)
        if flush is None:
            continue
        flushed = False
        with _errors.guarded("force_flush"):
            flushed = bool(flush(timeout_millis=int(max(0.0, deadline - time.monotonic()) * 1000)))
        ok = ok and flushed
    return ok and _errors.export_failures() == failures_before
