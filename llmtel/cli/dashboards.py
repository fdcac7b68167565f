"""``llmtel dashboard``: a Grafana dashboard generated from the instrument registry.

The curated content is data: :data:`PANELS` is a table of panel specs (title, row, the
instruments the panel reads, PromQL and legend templates, unit, description) and
:data:`DIMENSION_PANELS` the panels repeated in a row per opted-in attribute key. A spec is
drawn only when the registry has every instrument it reads; every registry instrument that
no curated panel reads still gets a generic panel in its group's row, so instruments added
later (GPU, process, ...) show up without touching this file.

Every metric name in every query comes from :mod:`llmtel.cli.promql` (i.e.
:mod:`llmtel._internal.naming` applied to a registry entry).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry.semconv._incubating.attributes import cpu_attributes as _cpu
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _ga
from opentelemetry.semconv._incubating.attributes import hw_attributes as _hw
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as _gm
from opentelemetry.semconv._incubating.metrics import hw_metrics as _hwm
from opentelemetry.semconv._incubating.metrics import process_metrics as _pm
from opentelemetry.semconv.attributes import http_attributes as _http

from llmtel import semconv
from llmtel.cli import write_output
from llmtel.cli.promql import (
    COMPANIONS,
    HTTP_SERVER_DURATION,
    SERVICE_LABEL,
    TARGET_INFO,
    PromNames,
    Query,
    add_naming_arguments,
    dimension_keys,
    instrument,
    label,
    main_keys,
)
from llmtel.semconv import InstrumentSpec, Kind

__all__ = [
    "DIMENSION_PANELS",
    "GROUPS",
    "PANELS",
    "Line",
    "Panel",
    "PanelSpec",
    "add_arguments",
    "build_dashboard",
    "build_panels",
    "dashboard_json",
    "render_panel",
    "run",
]

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
QUANTILES: Final = (0.5, 0.95, 0.99)
_COUNTERS: Final = (Kind.COUNTER, Kind.OBSERVABLE_COUNTER)


# --- The curated panels, as data -------------------------------------------------------------
#
# A template is a str.format string. In a query template:
#   {model}, {err}, ...   the Prometheus label of the attribute key of that name in LABELS
#                         ({dim}: the opted-in key of a DIMENSION_PANELS row);
#   {0:OP ARGS}           a PromQL fragment of the panel's first instrument ({1:...} the second):
#       rate SERIES [MATCHER...]   rate of its count/sum/total/bucket series (MATCHERS narrow it)
#       gauge [MATCHER...]         its value (a gauge or up-down counter)
#       quantile Q [LABEL...]      histogram_quantile(Q) by the LABELS named
#       mean [LABEL...]            sum / count by the LABELS named
#   Every fragment carries the dashboard's variables ($job, $service, $model, opted-in keys).
# In a legend template {model} is the label's value ({{gen_ai_request_model}} in Grafana).
# In a title or description {0.description} is the first instrument's description and {key}
# a DIMENSION_PANELS row's attribute key.

#: The label names templates use, by their template name.
LABELS: Final = {
    "model": label(semconv.REQUEST_MODEL),
    "op": label(semconv.OPERATION_NAME),
    "err": label(semconv.ERROR_TYPE),
    "tok": label(semconv.TOKEN_TYPE),
    "tool": label(semconv.TOOL_NAME),
    "ds": label(semconv.DATA_SOURCE_ID),
    "queue": label(semconv.QUEUE_NAME),
    "breaker": label(semconv.CIRCUIT_BREAKER_NAME),
    "cache": label(semconv.CACHE_NAME),
    "hw_id": label(_hw.HW_ID),
    "cpu_mode": label(_cpu.CPU_MODE),
    "route": label(_http.HTTP_ROUTE),
    "status": label(_http.HTTP_RESPONSE_STATUS_CODE),
    "job": "job",  # target labels, set by Prometheus
    "instance": "instance",
}
#: Extra label matchers a ``rate``/``gauge`` fragment may name.
MATCHERS: Final = {
    "failed": f'{LABELS["err"]}!=""',
    "server_error": f'{LABELS["status"]}=~"5.."',
    # Bool attributes render as JSON: true/false.
    "retrieval_hit": f'{label(semconv.RETRIEVAL_HIT)}="true"',
    "cache_hit": f'{label(semconv.CACHE_RESULT)}="hit"',  # llmtel._internal.runtime.cache_lookup's value
    "gpu": f'{label(_hw.HW_TYPE)}="{_hw.HwTypeValues.GPU.value}"',
    "output_tokens": f'{LABELS["tok"]}="{_ga.GenAiTokenTypeValues.OUTPUT.value}"',
}


@dataclass(frozen=True)
class Line:
    """One query of a panel: a PromQL template and its legend template."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class PanelSpec:
    """A curated panel: drawn when the registry has every instrument in ``reads``."""

    title: str
    group: str
    reads: tuple[str, ...]
    lines: tuple[Line, ...]
    unit: str = "short"
    description: str = "{0.description}"
    #: Whether the queries ask for exemplars (each links to the trace of a sampled measurement).
    exemplars: bool = False


#: p50, p95 and p99 of the panel's first instrument.
PERCENTILES: Final = tuple(Line(f"{{0:quantile {p}}}", f"p{round(p * 100)}") for p in QUANTILES)

_DURATION = _gm.GEN_AI_CLIENT_OPERATION_DURATION
_TOKENS = _gm.GEN_AI_CLIENT_TOKEN_USAGE
_COST = "llmtel.gen_ai.client.cost"
P, L = PanelSpec, Line

#: The hand-designed panels, in dashboard order within each row.
PANELS: Final[tuple[PanelSpec, ...]] = (
    # --- LLM calls (client) ---
    P("Request rate", "llm", (_DURATION,), (L("sum by ({model}, {op}) ({0:rate count})", "{model} {op}"),),
      "reqps", "GenAI calls per second, by requested model and operation."),
    P("Error rate by error.type", "llm", (_DURATION,),
      (L("sum by ({err}) ({0:rate count failed}) / scalar(sum ({0:rate count}))", "{err}"),),
      "percentunit", "Share of GenAI calls that failed, by error.type."),
    P("Operation duration", "llm", (_DURATION,), PERCENTILES, "s", exemplars=True),
    P("Time to first chunk (TTFC)", "llm", (_gm.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,), PERCENTILES, "s",
      "{0.description} Exemplars link to the trace of a sampled call.", exemplars=True),
    P("Time per output chunk", "llm", (_gm.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK,), PERCENTILES, "s"),
    P("Tokens per second (input/output)", "llm", (_TOKENS,), (L("sum by ({tok}) ({0:rate sum})", "{tok}"),),
      "short", "Tokens per second, by gen_ai.token.type."),
    P("Cost per 1k tokens", "llm", (_COST, _TOKENS),
      (L("1000 * sum by ({model}) ({0:rate total}) / sum by ({model}) ({1:rate sum})", "{model}"),),
      "currencyUSD", "Estimated USD per 1000 tokens (input + output), by model."),
    P("Cost per hour", "llm", (_COST,), (L("3600 * sum by ({model}) ({0:rate total})", "{model}"),), "currencyUSD"),
    P("Active requests", "llm", ("llmtel.gen_ai.requests.active",),
      (L("sum by ({model}) ({0:gauge})", "{model}"),)),
    # --- Model server ---
    P("Time to first token (TTFT)", "server", (_gm.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN,), PERCENTILES, "s",
      "{0.description} Exemplars link to the trace of a sampled request.", exemplars=True),
    P("Time per output token (TPOT)", "server", (_gm.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN,), PERCENTILES, "s"),
    P("Server request duration", "server", (_gm.GEN_AI_SERVER_REQUEST_DURATION,), PERCENTILES, "s",
      exemplars=True),
    # --- HTTP server (contrib instrumentations, OTEL_SEMCONV_STABILITY_OPT_IN=http) ---
    P("HTTP requests by route and status", "http", (HTTP_SERVER_DURATION.name,),
      (L("sum by ({route}, {status}) ({0:rate count})", "{route} {status}"),), "reqps",
      "HTTP server requests per second (contrib instrumentations, OTEL_SEMCONV_STABILITY_OPT_IN=http)."),
    P("HTTP latency p95 by route", "http", (HTTP_SERVER_DURATION.name,),
      (L("{0:quantile 0.95 route}", "p95 {route}"),), "s", exemplars=True),
    P("HTTP 5xx share", "http", (HTTP_SERVER_DURATION.name,),
      (L("sum ({0:rate count server_error}) / sum ({0:rate count})", "5xx"),),
      "percentunit", "Share of HTTP server requests answered with a 5xx status."),
    # --- Tools ---
    P("Tool latency p95", "tool", ("llmtel.tool.duration",), (L("{0:quantile 0.95 tool}", "p95 {tool}"),), "s"),
    P("Tool calls per second", "tool", ("llmtel.tool.duration",),
      (L("sum by ({tool}, {err}) ({0:rate count})", "{tool} {err}"),),
      "reqps", "Tool executions per second, by tool and error.type."),
    # --- Retrieval ---
    P("Retrieval latency p95", "retrieval", ("llmtel.retrieval.duration",),
      (L("{0:quantile 0.95 ds}", "p95 {ds}"),), "s"),
    P("Retrieval hit@k", "retrieval", ("llmtel.retrieval.judged",),
      (L("sum by ({ds}) ({0:rate total retrieval_hit}) / sum by ({ds}) ({0:rate total})", "{ds}"),),
      "percentunit"),
    P("Retrieval MRR", "retrieval", ("llmtel.retrieval.reciprocal_rank",), (L("{0:mean ds}", "{ds}"),)),
    # --- Serving runtime ---
    P("Queue depth", "runtime", ("llmtel.queue.depth",), (L("sum by ({queue}) ({0:gauge})", "{queue}"),)),
    P("Circuit breakers (0 closed, 1 half-open, 2 open)", "runtime", ("llmtel.circuit_breaker.state",),
      (L("max by ({breaker}) ({0:gauge})", "{breaker}"),)),
    P("Cache hit ratio", "runtime", ("llmtel.cache.requests",),
      (L("sum by ({cache}) ({0:rate total cache_hit}) / sum by ({cache}) ({0:rate total})", "{cache}"),),
      "percentunit"),
    # --- GPU ---
    P("GPU utilization", "gpu", (_hwm.HW_GPU_UTILIZATION,), (L("max by ({hw_id}) ({0:gauge})", "{hw_id}"),),
      "percentunit"),
    P("GPU memory", "gpu", (_hwm.HW_GPU_MEMORY_USAGE, _hwm.HW_GPU_MEMORY_LIMIT),
      (L("sum by ({hw_id}) ({0:gauge})", "used {hw_id}"), L("sum by ({hw_id}) ({1:gauge})", "limit {hw_id}")),
      "bytes"),
    P("GPU power", "gpu", (_hwm.HW_POWER,), (L("sum by ({hw_id}) ({0:gauge gpu})", "{hw_id}"),), "watt"),
    # hw.energy is device-wide: every process on a GPU reports the same counter, so take one
    # series per device (max by hw_id) before summing, or shared GPUs are counted twice.
    P("GPU energy per output token", "gpu", (_hwm.HW_ENERGY, _TOKENS),
      (L("sum by (job) (max by (job, {hw_id}) ({0:rate total gpu})) / "
         "(sum by (job) ({1:rate sum output_tokens}) > 0)", "{job}"),),
      "joule", "GPU joules per generated (output) token, per job."),
    # --- Process ---
    P("Process CPU utilization", "process", (_pm.PROCESS_CPU_UTILIZATION,),
      (L("sum by (job, instance, {cpu_mode}) ({0:gauge})", "{instance} {cpu_mode}"),), "percentunit"),
    P("Process memory (RSS)", "process", (_pm.PROCESS_MEMORY_USAGE,),
      (L("sum by (job, instance) ({0:gauge})", "{instance}"),), "bytes"),
)  # fmt: skip

#: Panels repeated in a row ``By <key>`` for each opted-in attribute key ({dim} its label).
DIMENSION_PANELS: Final[tuple[PanelSpec, ...]] = (
    P("Cost per hour by {key}", "By {key}", (_COST,), (L("3600 * sum by ({dim}) ({0:rate total})", "{dim}"),),
      "currencyUSD", "USD per hour by {key} (reported or priced)."),
    P("Request rate by {key}", "By {key}", (_DURATION,), (L("sum by ({dim}) ({0:rate count})", "{dim}"),),
      "reqps", "GenAI calls per second by {key}."),
    P("Operation duration p95 by {key}", "By {key}", (_DURATION,), (L("{0:quantile 0.95 dim}", "{dim}"),), "s",
      "95th percentile of the call duration by {key}.", exemplars=True),
    P("Tokens per second by {key}", "By {key}", (_TOKENS,), (L("sum by ({dim}, {tok}) ({0:rate sum})", "{dim} {tok}"),),
      "short", "Tokens per second by {key} and gen_ai.token.type."),
)  # fmt: skip
del P, L


# --- Rendering ---------------------------------------------------------------------------------


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


class _Read:
    """An instrument a template reads: ``format(read, "rate count failed")`` is a PromQL fragment."""

    def __init__(self, q: Query, spec: InstrumentSpec, labels: dict[str, str]) -> None:
        self._q, self.spec, self._labels = q, spec, labels

    @property
    def description(self) -> str:
        return self.spec.description

    def __format__(self, fragment: str) -> str:
        q, spec, names = self._q, self.spec, self._q.names
        op, *args = fragment.split()
        if op == "rate":
            series = {"count": names.count, "sum": names.sum, "total": names.total, "bucket": names.bucket}
            return q.rate(series[args[0]](spec), spec, *(MATCHERS[m] for m in args[1:]))
        if op == "gauge":
            return q.gauge(names.value(spec), spec, *(MATCHERS[m] for m in args))
        if op == "quantile":
            return q.quantile(float(args[0]), spec, [self._labels[k] for k in args[1:]])
        if op == "mean":
            return q.mean(spec, [self._labels[k] for k in args])
        raise ValueError(f"unknown template fragment {fragment!r}")


def _resolve(name: str) -> InstrumentSpec | None:
    return instrument(name) or next((c for c in COMPANIONS if c.name == name), None)


def render_panel(q: Query, panel: PanelSpec, key: str = "") -> Panel | None:
    """``panel`` with its templates filled in, or None when the registry lacks an instrument it reads.

    ``key``: the opted-in attribute key of a :data:`DIMENSION_PANELS` row.
    """
    specs = [_resolve(name) for name in panel.reads]
    found = [s for s in specs if s is not None]
    if len(found) < len(specs):
        return None
    labels = {**LABELS, "dim": label(key)} if key else dict(LABELS)
    reads = [_Read(q, spec, labels) for spec in found]
    legends = {name: "{{" + value + "}}" for name, value in labels.items()}
    targets = tuple(
        Target(line.expr.format(*reads, **labels), line.legend.format(**legends), exemplar=panel.exemplars)
        for line in panel.lines
    )
    return Panel(
        panel.title.format(key=key),
        panel.group.format(key=key),
        targets,
        tuple(found),
        panel.unit,
        panel.description.format(*reads, key=key),
    )


def _unit(spec: InstrumentSpec) -> str:
    """Grafana unit id for an instrument's unit."""
    return {"s": "s", "By": "bytes", "W": "watt", "J": "joule", "Cel": "celsius", "USD": "currencyUSD"}.get(
        spec.unit, "short"
    )


def _legend(keys: Iterable[str]) -> str:
    return " ".join("{{" + label(k) + "}}" for k in keys)


def generic_panel(q: Query, spec: InstrumentSpec) -> Panel:
    """A panel for any instrument, from its kind alone."""
    keys = main_keys(spec)
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


def build_panels(q: Query) -> list[Panel]:
    """Curated panels plus a generic panel for every registry instrument no curated panel reads."""
    rendered = [render_panel(q, spec) for spec in PANELS]
    rendered += [render_panel(q, spec, key) for key in q.dims for spec in DIMENSION_PANELS]
    panels = [p for p in rendered if p is not None]
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


def dashboard_json(
    *,
    naming: str = "prometheus",
    latest: bool | None = None,
    trace_datasource_type: str = "tempo",
    metric_attributes: Sequence[str] = (),
) -> str:
    """The text ``llmtel dashboard`` prints: :func:`build_dashboard` as stable, indented JSON (and a newline)."""
    dashboard = build_dashboard(
        naming=naming, latest=latest, trace_datasource_type=trace_datasource_type, metric_attributes=metric_attributes
    )
    return json.dumps(dashboard, indent=2, sort_keys=False) + "\n"


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
