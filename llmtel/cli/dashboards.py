"""``llmtel dashboard``: a Grafana dashboard generated from the instrument registry.

Every metric name in every query comes from :mod:`llmtel._internal.naming` applied to a
registry entry (:data:`llmtel.semconv.INSTRUMENTS`); a panel whose instruments
the registry lacks is not drawn, and every registry instrument that no curated
panel covers still gets a generic panel in its group's row, so instruments
added later (GPU, process, ...) show up without touching this file.

The PromQL building blocks here (:class:`PromNames`, :class:`Query`) are shared
with :mod:`llmtel.cli.rules`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from opentelemetry.exporter.prometheus import _TARGET_INFO_NAME
from opentelemetry.semconv._incubating.attributes import cpu_attributes as _cpu
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _ga
from opentelemetry.semconv._incubating.attributes import hw_attributes as _hw
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as _gm
from opentelemetry.semconv._incubating.metrics import hw_metrics as _hwm
from opentelemetry.semconv._incubating.metrics import process_metrics as _pm
from opentelemetry.semconv.attributes import http_attributes as _http
from opentelemetry.semconv.attributes import service_attributes as _svc
from opentelemetry.semconv.metrics import http_metrics as _httpm

from llmtel import semconv
from llmtel._internal.dimensions import CALL_INSTRUMENTS, RESERVED_KEYS
from llmtel._internal.naming import prometheus_label, prometheus_name, prometheus_series
from llmtel.cli import write_output
from llmtel.semconv import InstrumentSpec, Kind

__all__ = [
    "FLAVORS",
    "GROUPS",
    "Panel",
    "PromNames",
    "Query",
    "add_arguments",
    "build_dashboard",
    "build_panels",
    "dashboard_json",
    "dimension_keys",
    "run",
]

#: Where the metrics reach Prometheus from: scraped straight off llmtel's bridge
#: ("prometheus"), or pushed through an OpenTelemetry Collector ("otlp-collector").
FLAVORS: Final = ("prometheus", "otlp-collector")
#: Dashboard rows, in order (the registry's ``group`` values).
GROUPS: Final = ("llm", "server", "http", "tool", "agent", "retrieval", "runtime", "gpu", "process", "self")
_GROUP_TITLES: Final = {
    "llm": "LLM calls (client)",
    "server": "Model server",
    "http": "HTTP server",
    "tool": "Tools",
    "agent": "Agents",
    "retrieval": "Retrieval (RAG)",
    "runtime": "Serving runtime",
    "gpu": "GPU",
    "process": "Process",
    "self": "llmtel self-telemetry",
}
#: The OTel Prometheus exporter's resource info metric (InfoMetricFamily adds ``_info``).
TARGET_INFO: Final = f"{_TARGET_INFO_NAME}_info"
SERVICE_LABEL: Final = prometheus_label(_svc.SERVICE_NAME)
QUANTILES: Final = (0.5, 0.95, 0.99)
_GAUGES: Final = (Kind.GAUGE, Kind.OBSERVABLE_GAUGE)
_COUNTERS: Final = (Kind.COUNTER, Kind.OBSERVABLE_COUNTER)


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


def instrument(name: str) -> InstrumentSpec | None:
    """The registry entry named ``name``, or None (read at call time, so a changed registry is seen)."""
    for spec in semconv.INSTRUMENTS:
        if spec.name == name:
            return spec
    return None


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

    def all_names(self, specs: Iterable[InstrumentSpec] | None = None) -> set[str]:
        out: set[str] = set()
        for spec in semconv.INSTRUMENTS if specs is None else specs:
            out.update(self.series(spec))
        return out


def label(key: str) -> str:
    """Prometheus label of an attribute key (``llmtel._internal.naming``)."""
    return prometheus_label(key)


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


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""
    exemplar: bool = False


@dataclass(frozen=True)
class Panel:
    """One dashboard panel and the registry instruments its queries read."""

    title: str
    group: str
    targets: tuple[Target, ...]
    instruments: tuple[InstrumentSpec, ...]
    unit: str = "short"
    description: str = ""

    @property
    def exemplars(self) -> bool:
        return any(t.exemplar for t in self.targets)


def _unit(spec: InstrumentSpec) -> str:
    """Grafana unit id for an instrument's unit."""
    return {"s": "s", "By": "bytes", "W": "watt", "J": "joule", "Cel": "celsius", "USD": "currencyUSD"}.get(
        spec.unit, "short"
    )


def _legend(keys: Iterable[str]) -> str:
    return " ".join("{{" + label(k) + "}}" for k in keys)


def _main_keys(spec: InstrumentSpec) -> list[str]:
    """Attributes a generic panel splits series by: the low-cardinality, identifying ones."""
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


def _percentiles(q: Query, spec: InstrumentSpec, *, exemplar: bool, by: Sequence[str] = ()) -> tuple[Target, ...]:
    labels = [label(k) for k in by]
    suffix = (" " + _legend(by)) if by else ""
    return tuple(
        Target(q.quantile(p, spec, labels), f"p{round(p * 100)}{suffix}", exemplar=exemplar) for p in QUANTILES
    )


def generic_panel(q: Query, spec: InstrumentSpec) -> Panel:
    """A panel for any instrument, from its kind alone."""
    keys = _main_keys(spec)
    by = ", ".join(label(k) for k in keys)
    grp = f" by ({by})" if keys else ""
    n = q.names
    if spec.kind is Kind.HISTOGRAM:
        expr = q.quantile(0.95, spec, [label(k) for k in keys])
        return Panel(
            f"{spec.name} p95",
            spec.group,
            (Target(expr, "p95 " + _legend(keys)),),
            (spec,),
            _unit(spec),
            spec.description,
        )
    if spec.kind in _COUNTERS:
        expr = f"sum{grp} ({q.rate(n.total(spec), spec)})"
        return Panel(
            f"{spec.name} (per second)", spec.group, (Target(expr, _legend(keys)),), (spec,), "short", spec.description
        )
    expr = f"sum{grp} ({q.gauge(n.value(spec), spec)})"
    unit = "percentunit" if spec.unit == "1" and "utilization" in spec.name else _unit(spec)
    return Panel(spec.name, spec.group, (Target(expr, _legend(keys)),), (spec,), unit, spec.description)


PanelBuilder = Callable[[Query], "Panel | None"]


def _need(*names: str) -> tuple[InstrumentSpec, ...] | None:
    found = tuple(instrument(n) for n in names)
    return None if any(s is None for s in found) else found  # type: ignore[return-value]


def _curated(q: Query) -> list[Panel]:
    """Hand-designed panels; each is drawn only when the registry has every instrument it reads."""
    n = q.names
    m = label(semconv.REQUEST_MODEL)
    err = label(semconv.ERROR_TYPE)
    tok = label(semconv.TOKEN_TYPE)
    out: list[Panel] = []

    if specs := _need(_gm.GEN_AI_CLIENT_OPERATION_DURATION):
        (d,) = specs
        op = label(semconv.OPERATION_NAME)
        out.append(
            Panel(
                "Request rate",
                "llm",
                (Target(f"sum by ({m}, {op}) ({q.rate(n.count(d), d)})", "{{" + m + "}} {{" + op + "}}"),),
                specs,
                "reqps",
                "GenAI calls per second, by requested model and operation.",
            )
        )
        failed = err + '!=""'
        errs = f"sum by ({err}) ({q.rate(n.count(d), d, failed)})"
        total = f"scalar(sum ({q.rate(n.count(d), d)}))"
        out.append(
            Panel(
                "Error rate by error.type",
                "llm",
                (Target(f"{errs} / {total}", "{{" + err + "}}"),),
                specs,
                "percentunit",
                "Share of GenAI calls that failed, by error.type.",
            )
        )
        out.append(
            Panel(
                "Operation duration",
                "llm",
                _percentiles(q, d, exemplar=True),
                specs,
                "s",
                d.description,
            )
        )
    if specs := _need(_gm.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK):
        (d,) = specs
        out.append(
            Panel(
                "Time to first chunk (TTFC)",
                "llm",
                _percentiles(q, d, exemplar=True),
                specs,
                "s",
                d.description + " Exemplars link to the trace of a sampled call.",
            )
        )
    if specs := _need(_gm.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK):
        (d,) = specs
        out.append(Panel("Time per output chunk", "llm", _percentiles(q, d, exemplar=False), specs, "s", d.description))
    if specs := _need(_gm.GEN_AI_CLIENT_TOKEN_USAGE):
        (t,) = specs
        out.append(
            Panel(
                "Tokens per second (input/output)",
                "llm",
                (Target(f"sum by ({tok}) ({q.rate(n.sum(t), t)})", "{{" + tok + "}}"),),
                specs,
                "short",
                "Tokens per second, by gen_ai.token.type.",
            )
        )
    if specs := _need("llmtel.gen_ai.client.cost", _gm.GEN_AI_CLIENT_TOKEN_USAGE):
        c, t = specs
        cost = f"sum by ({m}) ({q.rate(n.total(c), c)})"
        tokens = f"sum by ({m}) ({q.rate(n.sum(t), t)})"
        out.append(
            Panel(
                "Cost per 1k tokens",
                "llm",
                (Target(f"1000 * {cost} / {tokens}", "{{" + m + "}}"),),
                specs,
                "currencyUSD",
                "Estimated USD per 1000 tokens (input + output), by model.",
            )
        )
        out.append(
            Panel(
                "Cost per hour",
                "llm",
                (Target(f"3600 * {cost}", "{{" + m + "}}"),),
                (c,),
                "currencyUSD",
                c.description,
            )
        )
    if specs := _need("llmtel.gen_ai.requests.active"):
        (a,) = specs
        out.append(
            Panel(
                "Active requests",
                "llm",
                (Target(f"sum by ({m}) ({q.gauge(n.value(a), a)})", "{{" + m + "}}"),),
                specs,
                "short",
                a.description,
            )
        )
    if specs := _need(_gm.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN):
        (d,) = specs
        out.append(
            Panel(
                "Time to first token (TTFT)",
                "server",
                _percentiles(q, d, exemplar=True),
                specs,
                "s",
                d.description + " Exemplars link to the trace of a sampled request.",
            )
        )
    if specs := _need(_gm.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN):
        (d,) = specs
        out.append(
            Panel(
                "Time per output token (TPOT)", "server", _percentiles(q, d, exemplar=False), specs, "s", d.description
            )
        )
    if specs := _need(_gm.GEN_AI_SERVER_REQUEST_DURATION):
        (d,) = specs
        out.append(
            Panel("Server request duration", "server", _percentiles(q, d, exemplar=True), specs, "s", d.description)
        )
    if specs := _need("llmtel.tool.duration"):
        (d,) = specs
        out.append(
            Panel(
                "Tool latency p95",
                "tool",
                _percentiles(q, d, exemplar=False, by=[semconv.TOOL_NAME])[1:2],
                specs,
                "s",
                d.description,
            )
        )
        out.append(
            Panel(
                "Tool calls per second",
                "tool",
                (
                    Target(
                        f"sum by ({label(semconv.TOOL_NAME)}, {err}) ({q.rate(n.count(d), d)})",
                        _legend([semconv.TOOL_NAME, semconv.ERROR_TYPE]),
                    ),
                ),
                specs,
                "reqps",
                "Tool executions per second, by tool and error.type.",
            )
        )
    if specs := _need("llmtel.retrieval.duration"):
        (d,) = specs
        out.append(
            Panel(
                "Retrieval latency p95",
                "retrieval",
                _percentiles(q, d, exemplar=False, by=[semconv.DATA_SOURCE_ID])[1:2],
                specs,
                "s",
                d.description,
            )
        )
    if specs := _need("llmtel.retrieval.judged"):
        (j,) = specs
        ds = label(semconv.DATA_SOURCE_ID)
        was_hit = label(semconv.RETRIEVAL_HIT) + '="true"'  # bool attributes render as JSON: true/false
        hits = f"sum by ({ds}) ({q.rate(n.total(j), j, was_hit)})"
        judged = f"sum by ({ds}) ({q.rate(n.total(j), j)})"
        out.append(
            Panel(
                "Retrieval hit@k",
                "retrieval",
                (Target(f"{hits} / {judged}", "{{" + ds + "}}"),),
                specs,
                "percentunit",
                j.description,
            )
        )
    if specs := _need("llmtel.retrieval.reciprocal_rank"):
        (r,) = specs
        out.append(
            Panel(
                "Retrieval MRR",
                "retrieval",
                (Target(q.mean(r, [label(semconv.DATA_SOURCE_ID)]), "{{" + label(semconv.DATA_SOURCE_ID) + "}}"),),
                specs,
                "short",
                r.description,
            )
        )
    if specs := _need("llmtel.queue.depth"):
        (d,) = specs
        qn = label(semconv.QUEUE_NAME)
        out.append(
            Panel(
                "Queue depth",
                "runtime",
                (Target(f"sum by ({qn}) ({q.gauge(n.value(d), d)})", "{{" + qn + "}}"),),
                specs,
                "short",
                d.description,
            )
        )
    if specs := _need("llmtel.circuit_breaker.state"):
        (c,) = specs
        cb = label(semconv.CIRCUIT_BREAKER_NAME)
        out.append(
            Panel(
                "Circuit breakers (0 closed, 1 half-open, 2 open)",
                "runtime",
                (Target(f"max by ({cb}) ({q.gauge(n.value(c), c)})", "{{" + cb + "}}"),),
                specs,
                "short",
                c.description,
            )
        )
    if specs := _need("llmtel.cache.requests"):
        (c,) = specs
        cn, cr = label(semconv.CACHE_NAME), label(semconv.CACHE_RESULT)
        is_hit = cr + '="hit"'  # llmtel._internal.runtime.cache_lookup's value
        hit = f"sum by ({cn}) ({q.rate(n.total(c), c, is_hit)})"
        out.append(
            Panel(
                "Cache hit ratio",
                "runtime",
                (Target(f"{hit} / sum by ({cn}) ({q.rate(n.total(c), c)})", "{{" + cn + "}}"),),
                specs,
                "percentunit",
                c.description,
            )
        )
    gpu = f'{label(_hw.HW_TYPE)}="{_hw.HwTypeValues.GPU.value}"'
    hw_id = label(_hw.HW_ID)
    if specs := _need(_hwm.HW_GPU_UTILIZATION):
        (u,) = specs
        out.append(
            Panel(
                "GPU utilization",
                "gpu",
                (Target(f"max by ({hw_id}) ({q.gauge(n.value(u), u)})", "{{" + hw_id + "}}"),),
                specs,
                "percentunit",
                u.description,
            )
        )
    if specs := _need(_hwm.HW_GPU_MEMORY_USAGE, _hwm.HW_GPU_MEMORY_LIMIT):
        used, limit = specs
        out.append(
            Panel(
                "GPU memory",
                "gpu",
                (
                    Target(f"sum by ({hw_id}) ({q.gauge(n.value(used), used)})", "used {{" + hw_id + "}}"),
                    Target(f"sum by ({hw_id}) ({q.gauge(n.value(limit), limit)})", "limit {{" + hw_id + "}}"),
                ),
                specs,
                "bytes",
                used.description,
            )
        )
    if specs := _need(_hwm.HW_POWER):
        (p,) = specs
        out.append(
            Panel(
                "GPU power",
                "gpu",
                (Target(f"sum by ({hw_id}) ({q.gauge(n.value(p), p, gpu)})", "{{" + hw_id + "}}"),),
                specs,
                "watt",
                p.description,
            )
        )
    if specs := _need(_hwm.HW_ENERGY, _gm.GEN_AI_CLIENT_TOKEN_USAGE):
        e, t = specs
        out_tok = f'{tok}="{_ga.GenAiTokenTypeValues.OUTPUT.value}"'
        # hw.energy is device-wide: every process on a GPU reports the same counter, so take one
        # series per device (max by hw_id) before summing, or shared GPUs are counted twice.
        joules = f"sum by (job) (max by (job, {hw_id}) ({q.rate(n.total(e), e, gpu)}))"
        tokens = f"(sum by (job) ({q.rate(n.sum(t), t, out_tok)}) > 0)"
        out.append(
            Panel(
                "GPU energy per output token",
                "gpu",
                (Target(f"{joules} / {tokens}", "{{job}}"),),
                specs,
                "joule",
                "GPU joules per generated (output) token, per job.",
            )
        )
    if specs := _need(_pm.PROCESS_CPU_UTILIZATION):
        (u,) = specs
        mode = label(_cpu.CPU_MODE)
        out.append(
            Panel(
                "Process CPU utilization",
                "process",
                (
                    Target(
                        f"sum by (job, instance, {mode}) ({q.gauge(n.value(u), u)})", "{{instance}} {{" + mode + "}}"
                    ),
                ),
                specs,
                "percentunit",
                u.description,
            )
        )
    if specs := _need(_pm.PROCESS_MEMORY_USAGE):
        (r,) = specs
        out.append(
            Panel(
                "Process memory (RSS)",
                "process",
                (Target(f"sum by (job, instance) ({q.gauge(n.value(r), r)})", "{{instance}}"),),
                specs,
                "bytes",
                r.description,
            )
        )
    return out


def _http_panels(q: Query) -> list[Panel]:
    """The HTTP server row: rate, latency and 5xx share of the contrib HTTP instrumentations' requests."""
    d, n = HTTP_SERVER_DURATION, q.names
    route, status = label(_http.HTTP_ROUTE), label(_http.HTTP_RESPONSE_STATUS_CODE)
    failed = f'{status}=~"5.."'
    return [
        Panel(
            "HTTP requests by route and status",
            "http",
            (Target(f"sum by ({route}, {status}) ({q.rate(n.count(d), d)})", "{{" + route + "}} {{" + status + "}}"),),
            (d,),
            "reqps",
            "HTTP server requests per second (contrib instrumentations, OTEL_SEMCONV_STABILITY_OPT_IN=http).",
        ),
        Panel(
            "HTTP latency p95 by route",
            "http",
            (Target(q.quantile(0.95, d, [route]), "p95 {{" + route + "}}", exemplar=True),),
            (d,),
            "s",
            d.description,
        ),
        Panel(
            "HTTP 5xx share",
            "http",
            (Target(f"sum ({q.rate(n.count(d), d, failed)}) / sum ({q.rate(n.count(d), d)})", "5xx"),),
            (d,),
            "percentunit",
            "Share of HTTP server requests answered with a 5xx status.",
        ),
    ]


def _dimension_panels(q: Query) -> list[Panel]:
    """A row per opted-in key: cost, request rate, latency and tokens split by it."""
    n = q.names
    tok = label(semconv.TOKEN_TYPE)
    out: list[Panel] = []
    for key in q.dims:
        dim, group = label(key), f"By {key}"
        legend = "{{" + dim + "}}"
        if specs := _need("llmtel.gen_ai.client.cost"):
            (c,) = specs
            expr = f"3600 * sum by ({dim}) ({q.rate(n.total(c), c)})"
            out.append(Panel(f"Cost per hour by {key}", group, (Target(expr, legend),), specs, "currencyUSD",
                             f"USD per hour by {key} (reported or priced)."))  # fmt: skip
        if specs := _need(_gm.GEN_AI_CLIENT_OPERATION_DURATION):
            (d,) = specs
            expr = f"sum by ({dim}) ({q.rate(n.count(d), d)})"
            out.append(Panel(f"Request rate by {key}", group, (Target(expr, legend),), specs, "reqps",
                             f"GenAI calls per second by {key}."))  # fmt: skip
            out.append(Panel(f"Operation duration p95 by {key}", group,
                             (Target(q.quantile(0.95, d, [dim]), legend, exemplar=True),), specs, "s",
                             f"95th percentile of the call duration by {key}."))  # fmt: skip
        if specs := _need(_gm.GEN_AI_CLIENT_TOKEN_USAGE):
            (t,) = specs
            expr = f"sum by ({dim}, {tok}) ({q.rate(n.sum(t), t)})"
            out.append(Panel(f"Tokens per second by {key}", group,
                             (Target(expr, legend + " {{" + tok + "}}"),), specs, "short",
                             f"Tokens per second by {key} and gen_ai.token.type."))  # fmt: skip
    return out


def build_panels(q: Query) -> list[Panel]:
    """Curated panels plus a generic panel for every registry instrument no curated panel reads."""
    panels = _curated(q) + _http_panels(q) + _dimension_panels(q)
    covered = {s.name for p in panels for s in p.instruments}
    for spec in semconv.INSTRUMENTS:
        if spec.name not in covered:
            panels.append(generic_panel(q, spec))
            covered.add(spec.name)
    order = {g: i for i, g in enumerate(GROUPS)}
    return sorted(panels, key=lambda p: order.get(p.group, len(order)))  # stable: keeps curated first


def _datasource() -> dict[str, str]:
    return {"type": "prometheus", "uid": "${datasource}"}


def _query_var(name: str, label_text: str, query: str, regex: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "label": label_text,
        "type": "query",
        "datasource": _datasource(),
        "definition": query,
        "query": {"query": query, "refId": f"var-{name}"},
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "refresh": 2,
        "sort": 1,
        "regex": regex,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
        "options": [],
    }


def _variables(q: Query, trace_datasource_type: str) -> list[dict[str, Any]]:
    n = q.names
    ref = instrument(_gm.GEN_AI_CLIENT_OPERATION_DURATION) or next(
        (s for s in semconv.INSTRUMENTS if semconv.REQUEST_MODEL in s.attributes), semconv.INSTRUMENTS[0]
    )
    ref_series = n.count(ref) if ref.kind is Kind.HISTOGRAM else n.series(ref)[0]
    model_key = label(semconv.REQUEST_MODEL)
    if n.flavor == "otlp-collector":
        jobs = _query_var("job", "Job", f"label_values({ref_series}, job)")
        services = _query_var(
            "service", "Service", f'label_values({ref_series}{{job=~"$job"}}, job)', regex="/^(?:.+\\/)?(.+)$/"
        )
    else:
        jobs = _query_var("job", "Job", f"label_values({TARGET_INFO}, job)")
        services = _query_var("service", "Service", f'label_values({TARGET_INFO}{{job=~"$job"}}, {SERVICE_LABEL})')
    models = _query_var("model", "Model", f'label_values({ref_series}{{job=~"$job"}}, {model_key})')
    dims = [_query_var(dim, dim, f'label_values({ref_series}{{job=~"$job"}}, {dim})') for dim in q.dims_of(ref)]
    return [
        {
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "options": [],
        },
        {
            "name": "trace_datasource",
            "label": "Traces",
            "type": "datasource",
            "query": trace_datasource_type,
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "options": [],
            "description": "Trace data source (Tempo or Jaeger) that exemplar trace_id links open.",
        },
        jobs,
        services,
        models,
        *dims,
    ]


def _trace_link_override(trace_datasource_type: str) -> dict[str, Any]:
    """Link the ``trace_id`` exemplar label to the trace data source chosen in ``$trace_datasource``."""
    return {
        "matcher": {"id": "byName", "options": "trace_id"},
        "properties": [
            {
                "id": "links",
                "value": [
                    {
                        "title": "Open trace ${__value.raw}",
                        "url": "",
                        "internal": {
                            "datasourceUid": "${trace_datasource}",
                            "datasourceName": "${trace_datasource}",
                            # Tempo looks a trace id up as a TraceQL query; Jaeger takes the bare id.
                            "query": {"query": "${__value.raw}", "queryType": "traceql"}
                            if trace_datasource_type == "tempo"
                            else {"query": "${__value.raw}"},
                        },
                    }
                ],
            }
        ],
    }


def _panel_json(panel: Panel, pid: int, x: int, y: int, trace_datasource_type: str) -> dict[str, Any]:
    targets = []
    for i, t in enumerate(panel.targets):
        target: dict[str, Any] = {
            "refId": chr(ord("A") + i),
            "datasource": _datasource(),
            "expr": t.expr,
            "legendFormat": t.legend or "__auto",
            "range": True,
            "instant": False,
            "exemplar": t.exemplar,
        }
        targets.append(target)
    return {
        "id": pid,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": _datasource(),
        "gridPos": {"h": 8, "w": 8, "x": x, "y": y},
        "fieldConfig": {
            "defaults": {"unit": panel.unit, "custom": {"drawStyle": "line", "fillOpacity": 10, "showPoints": "never"}},
            "overrides": [_trace_link_override(trace_datasource_type)] if panel.exemplars else [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": targets,
    }


def build_dashboard(
    *,
    naming: str = "prometheus",
    latest: bool | None = None,
    trace_datasource_type: str = "tempo",
    metric_attributes: Sequence[str] = (),
) -> dict[str, Any]:
    """The Grafana dashboard JSON model for the current registry.

    ``metric_attributes``: the keys the app opted in (``metric_attributes`` option): a variable
    and a row of panels split by each.
    """
    q = Query(PromNames(naming, latest), dashboard=True, dims=dimension_keys(metric_attributes))
    panels = build_panels(q)
    out: list[dict[str, Any]] = []
    pid, y = 1, 0
    for group in [*GROUPS, *sorted({p.group for p in panels} - set(GROUPS))]:
        members = [p for p in panels if p.group == group]
        if not members:
            continue
        out.append(
            {
                "id": pid,
                "type": "row",
                "title": _GROUP_TITLES.get(group, group),
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        pid, y = pid + 1, y + 1
        for i, p in enumerate(members):
            out.append(_panel_json(p, pid, (i % 3) * 8, y + (i // 3) * 8, trace_datasource_type))
            pid += 1
        y += ((len(members) + 2) // 3) * 8
    suffix = "" if naming == "prometheus" else f" ({naming})"
    return {
        "title": f"llmtel: LLM application{suffix}",
        "uid": "llmtel-overview" if naming == "prometheus" else f"llmtel-overview-{naming}",
        "description": "Generated by `llmtel dashboard` from llmtel's instrument registry; regenerate, do not edit.",
        "tags": ["llmtel", "opentelemetry", "gen-ai"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "timezone": "",
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": _variables(q, trace_datasource_type)},
        "panels": out,
    }


def dashboard_json(**kwargs: Any) -> str:
    """:func:`build_dashboard` rendered as stable, indented JSON (with a trailing newline)."""
    return json.dumps(build_dashboard(**kwargs), indent=2, sort_keys=False) + "\n"


_RESERVED_VARIABLES = frozenset({"datasource", "trace_datasource", "job", "service", "model"})


def dimension_keys(keys: Sequence[str]) -> tuple[str, ...]:
    """The opted-in keys, each once; ValueError for one whose label would clash with the dashboard's own."""
    found = tuple(dict.fromkeys(k.strip() for k in keys if k.strip()))
    for key in found:
        if label(key) in _RESERVED_VARIABLES or key in RESERVED_KEYS:
            raise ValueError(f"metric attribute {key!r} clashes with llmtel's own labels or dashboard variables")
    return found


def _metric_attributes(text: str) -> list[str]:
    # The LLMTEL_METRIC_ATTRIBUTES syntax: "tenant,route,instrument:key"; every key named, once.
    return [item.rpartition(":")[2].strip() for item in text.split(",") if item.strip()]


def add_naming_arguments(parser: argparse.ArgumentParser) -> None:
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``llmtel dashboard``."""
    add_naming_arguments(parser)
    parser.add_argument(
        "--trace-datasource-type",
        choices=("tempo", "jaeger"),
        default="tempo",
        help="plugin type offered by the $trace_datasource variable that exemplar links open (default: tempo)",
    )
    parser.add_argument("-o", "--output", help="write to this file instead of stdout")


def run(args: argparse.Namespace) -> int:
    """Print (or write) the dashboard JSON."""
    try:
        text = dashboard_json(
            naming=args.naming,
            latest=args.semconv_latest,
            trace_datasource_type=args.trace_datasource_type,
            metric_attributes=args.metric_attributes,
        )
    except ValueError as exc:
        print(f"llmtel dashboard: {exc}", file=sys.stderr)
        return 2
    return write_output(text, getattr(args, "output", None), "dashboard")
