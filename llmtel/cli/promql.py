"""PromQL building blocks shared by ``llmtel dashboard`` and ``llmtel rules``.

Every metric name comes from :mod:`llmtel._internal.naming` applied to a registry entry
(:data:`llmtel.semconv.INSTRUMENTS`) or to one of the :data:`COMPANIONS`; every label from
an attribute key. :class:`PromNames` turns an instrument into its sample names for one way
of getting metrics into Prometheus, :class:`Query` turns them into selectors, rates and
quantiles for a dashboard (Grafana variables) or for recording rules (unfiltered).
:func:`add_naming_arguments` adds the command-line options both commands take to choose them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from opentelemetry.exporter.prometheus import _TARGET_INFO_NAME
from opentelemetry.semconv._incubating.attributes import cpu_attributes as _cpu
from opentelemetry.semconv._incubating.attributes import hw_attributes as _hw
from opentelemetry.semconv.attributes import http_attributes as _http
from opentelemetry.semconv.attributes import service_attributes as _svc
from opentelemetry.semconv.metrics import http_metrics as _httpm

from llmtel import semconv
from llmtel._internal.dimensions import CALL_INSTRUMENTS, RESERVED_KEYS
from llmtel._internal.naming import prometheus_label, prometheus_name, prometheus_series
from llmtel.semconv import InstrumentSpec, Kind

__all__ = [
    "COMPANIONS",
    "FLAVORS",
    "HTTP_SERVER_DURATION",
    "SERVICE_LABEL",
    "TARGET_INFO",
    "PromNames",
    "Query",
    "add_naming_arguments",
    "dimension_keys",
    "instrument",
    "label",
    "le_matcher",
    "main_keys",
]

#: Where the metrics reach Prometheus from: scraped straight off llmtel's bridge
#: ("prometheus"), or pushed through an OpenTelemetry Collector ("otlp-collector").
FLAVORS: Final = ("prometheus", "otlp-collector")
#: The OTel Prometheus exporter's resource info metric (InfoMetricFamily adds ``_info``).
TARGET_INFO: Final = f"{_TARGET_INFO_NAME}_info"
SERVICE_LABEL: Final = prometheus_label(_svc.SERVICE_NAME)
_GAUGES: Final = (Kind.GAUGE, Kind.OBSERVABLE_GAUGE)

#: An instrument llmtel never creates but draws (and alerts on) when the app runs it: the HTTP server
#: duration of the contrib HTTP instrumentations under the stable conventions
#: (OTEL_SEMCONV_STABILITY_OPT_IN=http; docs/middleware.md). Kept out of the registry for that reason.
HTTP_SERVER_DURATION: Final = InstrumentSpec(
    _httpm.HTTP_SERVER_REQUEST_DURATION, Kind.HISTOGRAM, "s",
    "Duration of HTTP server requests, recorded by the contrib HTTP instrumentations (FastAPI, Flask, ...).",
    frozenset({_http.HTTP_REQUEST_METHOD, _http.HTTP_ROUTE, _http.HTTP_RESPONSE_STATUS_CODE, semconv.ERROR_TYPE}),
    (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0), "http", upstream=True,
)  # fmt: skip
#: Instruments of other instrumentations the dashboard and rules read (see HTTP_SERVER_DURATION).
COMPANIONS: Final = (HTTP_SERVER_DURATION,)

#: Grafana variables of the dashboard; an opted-in attribute key must not take one of their names.
_DASHBOARD_VARIABLES: Final = frozenset({"datasource", "trace_datasource", "job", "service", "model"})


def instrument(name: str) -> InstrumentSpec | None:
    """The registry entry named ``name``, or None (read at call time, so a changed registry is seen)."""
    for spec in semconv.INSTRUMENTS:
        if spec.name == name:
            return spec
    return None


def label(key: str) -> str:
    """Prometheus label of an attribute key (``llmtel._internal.naming``)."""
    return prometheus_label(key)


@dataclass(frozen=True)
class PromNames:
    """Prometheus sample names of registry instruments, for one way of getting them into Prometheus.

    ``prometheus``: what llmtel's bridge serves (``llmtel._internal.naming``, i.e. the OTel Python
    exporter's translation). ``otlp-collector``: the Collector's translator
    (``prometheus``/``prometheusremotewrite`` exporters, Prometheus' OTLP receiver) adds the
    same unit and ``_total`` suffixes, and also ``_ratio`` to gauges whose unit is ``1``.
    """

    flavor: str = "prometheus"
    latest: bool | None = None

    def __post_init__(self) -> None:
        if self.flavor not in FLAVORS:
            raise ValueError(f"unknown naming {self.flavor!r}; expected one of {', '.join(FLAVORS)}")

    def base(self, spec: InstrumentSpec) -> str:
        name = prometheus_name(spec, latest=self.latest)
        if self.flavor == "otlp-collector" and spec.kind in _GAUGES and spec.unit == "1":
            # The Collector's normalizer appends "ratio" to unit-"1" gauges; the Python exporter does not.
            name = name if name.endswith("_ratio") else f"{name}_ratio"
        return name

    def series(self, spec: InstrumentSpec) -> list[str]:
        """Every sample name one instrument produces (``_bucket``/``_count``/``_sum``, ``_total`` or bare)."""
        plain = prometheus_name(spec, latest=self.latest)
        return [self.base(spec) + s[len(plain) :] for s in prometheus_series(spec, latest=self.latest)]

    def _suffixed(self, spec: InstrumentSpec, suffix: str) -> str:
        for name in self.series(spec):
            if name.endswith(suffix):
                return name
        raise ValueError(f"{spec.name} ({spec.kind.value}) has no {suffix} series")

    def bucket(self, spec: InstrumentSpec) -> str:
        return self._suffixed(spec, "_bucket")

    def count(self, spec: InstrumentSpec) -> str:
        return self._suffixed(spec, "_count")

    def sum(self, spec: InstrumentSpec) -> str:
        return self._suffixed(spec, "_sum")

    def total(self, spec: InstrumentSpec) -> str:
        return self._suffixed(spec, "_total")

    def value(self, spec: InstrumentSpec) -> str:
        """The single series of a gauge or up-down counter."""
        (name,) = self.series(spec)
        return name


def le_matcher(bound: float) -> str:
    """A matcher for the ``le`` label of one bucket boundary, in both float renderings.

    Python's prometheus_client writes 1.0 as ``"1.0"``, Go clients (the Collector) as ``"1"``;
    Prometheus 2.x stores the label verbatim, so match both.
    """
    from prometheus_client.utils import floatToGoString  # the formatting the bridge uses

    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    forms = [text]
    if text.endswith(".0"):
        forms.append(text[:-2])
    if len(forms) == 1:
        return f'le="{text}"'
    # "[.]" rather than "\\.": a backslash would need escaping again inside the PromQL string.
    return 'le=~"' + "|".join(f.replace(".", "[.]") for f in forms) + '"'


@dataclass(frozen=True)
class Query:
    """PromQL builder.

    With ``dashboard=True`` selectors carry the Grafana variables (``$job``, ``$service``,
    ``$model``) and rates use ``$__rate_interval``; otherwise (recording rules) they are
    unfiltered and the window is explicit.
    """

    names: PromNames = field(default_factory=PromNames)
    dashboard: bool = True
    #: The app's opted-in metric attribute keys (``metric_attributes``): a variable each on the
    #: dashboard, a grouping each in the recording rules, on the instruments that carry them.
    dims: tuple[str, ...] = ()

    def dims_of(self, spec: InstrumentSpec) -> list[str]:
        """Prometheus labels of the opted-in keys ``spec`` carries."""
        return [label(k) for k in self.dims] if spec.name in CALL_INSTRUMENTS else []

    def sel(self, spec: InstrumentSpec, *extra: str) -> str:
        """Label matchers (with braces) for one instrument's series."""
        matchers: list[str] = []
        if self.dashboard:
            matchers.append('job=~"$job"')
            if self.names.flavor == "otlp-collector":
                # job is "<service.namespace>/<service.name>" (or "<service.name>") there.
                matchers.append('job=~"(.+/)?(${service})"')
            if semconv.REQUEST_MODEL in spec.attributes:
                matchers.append(f'{label(semconv.REQUEST_MODEL)}=~"$model"')
            # "All" is ".*", which also matches series without the label (calls outside any tenant).
            matchers.extend(f'{dim}=~"${dim}"' for dim in self.dims_of(spec))
        matchers.extend(extra)
        return "{" + ", ".join(matchers) + "}" if matchers else ""

    def filt(self, vector: str) -> str:
        """Restrict an instant vector to the chosen services.

        Direct scrape: ``service.name`` is only on ``target_info`` (one per target), so join
        on the target's ``job``/``instance``. Through a Collector the service already is the job.
        """
        if not self.dashboard or self.names.flavor == "otlp-collector":
            return vector
        return f'({vector} and on (job, instance) {TARGET_INFO}{{{SERVICE_LABEL}=~"$service"}})'

    def window(self, window: str | None) -> str:
        return window or ("$__rate_interval" if self.dashboard else "5m")

    def rate(self, series: str, spec: InstrumentSpec, *extra: str, window: str | None = None) -> str:
        return self.filt(f"rate({series}{self.sel(spec, *extra)}[{self.window(window)}])")

    def gauge(self, series: str, spec: InstrumentSpec, *extra: str) -> str:
        return self.filt(f"{series}{self.sel(spec, *extra)}")

    def quantile(
        self, q: float, spec: InstrumentSpec, by: Sequence[str] = (), *extra: str, window: str | None = None
    ) -> str:
        groups = ", ".join(["le", *by])
        inner = self.rate(self.names.bucket(spec), spec, *extra, window=window)
        return f"histogram_quantile({q}, sum by ({groups}) ({inner}))"

    def mean(self, spec: InstrumentSpec, by: Sequence[str] = (), window: str | None = None) -> str:
        grp = f" by ({', '.join(by)})" if by else ""
        s = self.rate(self.names.sum(spec), spec, window=window)
        c = self.rate(self.names.count(spec), spec, window=window)
        return f"sum{grp} ({s}) / sum{grp} ({c})"


def main_keys(spec: InstrumentSpec) -> list[str]:
    """The attributes (at most two) a generic panel and a recording rule split an instrument by.

    The low-cardinality, identifying ones: model, tool, agent, data source, queue, ...
    """
    preferred = (
        semconv.REQUEST_MODEL,
        semconv.TOOL_NAME,
        semconv.AGENT_NAME,
        semconv.DATA_SOURCE_ID,
        semconv.QUEUE_NAME,
        semconv.CIRCUIT_BREAKER_NAME,
        semconv.CACHE_NAME,
        semconv.CACHE_RESULT,
        semconv.REASON,
        semconv.SESSION_KIND,
        semconv.SELF_PROBLEM,
        semconv.EXPORTER_NAME,
        semconv.TOKEN_TYPE,
        _hw.HW_ID,
        _cpu.CPU_MODE,
    )
    keys = [k for k in preferred if k in spec.attributes]
    if not keys:
        keys = sorted(k for k in spec.attributes if not k.startswith(("server.", "gen_ai.response")))[:2]
    return keys[:2]


def dimension_keys(keys: Sequence[str]) -> tuple[str, ...]:
    """The opted-in keys, each once; ValueError for one whose label would clash with the dashboard's own."""
    found = tuple(dict.fromkeys(k.strip() for k in keys if k.strip()))
    for key in found:
        if label(key) in _DASHBOARD_VARIABLES or key in RESERVED_KEYS:
            raise ValueError(f"metric attribute {key!r} clashes with llmtel's own labels or dashboard variables")
    return found


def _metric_attributes(text: str) -> list[str]:
    # The LLMTEL_METRIC_ATTRIBUTES syntax: "tenant,route,instrument:key"; every key named, once.
    return [item.rpartition(":")[2].strip() for item in text.split(",") if item.strip()]


def add_naming_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``llmtel dashboard`` and ``llmtel rules`` share: the :class:`PromNames` flavor, the opted-in keys."""
    parser.add_argument(
        "--naming",
        choices=FLAVORS,
        default="prometheus",
        help="metric names as llmtel's Prometheus bridge serves them (default), or as they arrive "
        "through an OpenTelemetry Collector (prometheus/prometheusremotewrite exporter, Prometheus OTLP receiver)",
    )
    parser.add_argument(
        "--semconv-latest",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="use the names emitted under OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental "
        "(default: follow that environment variable)",
    )
    parser.add_argument(
        "--metric-attributes",
        type=_metric_attributes,
        default=[],
        metavar="KEYS",
        help="the keys your app opted in with metric_attributes / LLMTEL_METRIC_ATTRIBUTES (same syntax, "
        "e.g. tenant,route): a variable and a row of panels per key, recording rules grouped by them",
    )
