"""``llmtel rules``: Prometheus recording and alerting rules generated from the registry.

* recording rules: p50/p95/p99 and request rates of every histogram, rates of every counter
  (the quantities the dashboard draws), per ``job`` and the instrument's identifying labels;
* SLO rules (when asked for): the bad-event ratio over the SRE workbook's windows and
  multi-window, multi-burn-rate alerts (1h/5m at 14.4x and 6h/30m at 6x page; 1d/2h at 3x
  and 3d/6h at 1x open a ticket), for the error rate and for latency percentiles (TTFT, call,
  tool and retrieval duration);
* cost budgets (when asked for): spend per hour and per day, per job and opted-in dimensions;
* symptom alerts: target not scraped, cardinality overflow series, failing exporters, GPU and
  queue saturation.

Every recording rule and alert aggregates ``by (job, ...)``: ``instance``, ``worker`` and ``pod``
are summed away, so a rule means the same for one process and for a fleet of them (GPU alerts
keep ``instance`` and the device id: a device belongs to one host).

Metric names come from :mod:`llmtel._internal.naming` through :class:`llmtel.cli.promql.PromNames`.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry.semconv._incubating.attributes import hw_attributes as _hw
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as _gm
from opentelemetry.semconv._incubating.metrics import hw_metrics as _hwm

from llmtel import semconv
from llmtel.cli import write_output
from llmtel.cli.promql import (
    HTTP_SERVER_DURATION,
    PromNames,
    Query,
    add_naming_arguments,
    dimension_keys,
    instrument,
    label,
    le_matcher,
    main_keys,
)
from llmtel.semconv import InstrumentSpec, Kind

__all__ = [
    "BURN_WINDOWS",
    "DEFAULT_JOB",
    "LATENCY_OBJECTIVES",
    "CostBudget",
    "Saturation",
    "Slo",
    "add_arguments",
    "build_rules",
    "render",
    "rules_yaml",
    "run",
    "snap_threshold",
]

#: (long window, short window, burn-rate factor, severity) from the Google SRE workbook,
#: "Alerting on SLOs", multiwindow multi-burn-rate alerts (for a 30-day SLO period).
BURN_WINDOWS: Final = (
    ("1h", "5m", 14.4, "page"),
    ("6h", "30m", 6.0, "page"),
    ("1d", "2h", 3.0, "ticket"),
    ("3d", "6h", 1.0, "ticket"),
)
_WINDOWS: Final = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
#: The attribute the SDK puts on the overflow series once a cardinality limit is hit
#: (OpenTelemetry metrics SDK spec, "Cardinality limits").
OVERFLOW_ATTRIBUTE: Final = "otel.metric.overflow"
ALERT_PREFIX: Final = "LLMTel"
#: The scrape job of the app in every shipped config (deploy/, docs): the Kubernetes app is
#: ``llm-app`` (OTEL_SERVICE_NAME, so also the job through a Collector), scraped as job ``llm-app``.
DEFAULT_JOB: Final = "llm-app"


def snap_threshold(threshold: float, boundaries: Sequence[float]) -> float:
    """The bucket boundary used for a latency threshold: itself, else the largest one below it.

    Taking the boundary below errs towards alerting (calls between it and the threshold
    count as slow); when the threshold is below every boundary, the smallest one is used.
    """
    bounds = sorted(boundaries)
    if not bounds:
        raise ValueError("the histogram has no explicit bucket boundaries")
    for b in bounds:
        if abs(b - threshold) <= 1e-12 * max(1.0, abs(threshold)):
            return b
    i = bisect.bisect_right(bounds, threshold)
    return bounds[i - 1] if i else bounds[0]


@dataclass(frozen=True)
class Slo:
    """One service-level objective on a registry histogram."""

    key: str  # short id: "ttft_p95", "error_rate"
    title: str  # for alert names: "TTFT", "ErrorRate"
    spec: InstrumentSpec
    budget: float  # allowed fraction of bad events
    threshold: float | None = None  # latency SLOs: the bucket boundary separating good from bad

    def record(self, names: PromNames, window: str) -> str:
        return f"job:{names.base(self.spec)}:slo_{self.key}_bad_ratio_rate{window}"

    def bad_ratio(self, names: PromNames, window: str) -> str:
        count = f"sum by (job) (rate({names.count(self.spec)}[{window}]))"
        if self.threshold is None:
            err = label(semconv.ERROR_TYPE)
            errors = f'sum by (job) (rate({names.count(self.spec)}{{{err}!=""}}[{window}]))'
            # "or ... * 0": a clean 0 rather than no series while nothing has failed yet.
            return f"({errors} or {count} * 0) / {count}"
        good = f"sum by (job) (rate({names.bucket(self.spec)}{{{le_matcher(self.threshold)}}}[{window}]))"
        return f"1 - ({good} / {count})"


_PLAIN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.:/-]*")
_YAML_WORDS: Final = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"})


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(text)


def _yaml(value: Any, indent: int = 0) -> list[str]:
    """A small deterministic YAML writer for the rule files' dicts, lists and strings.

    Written here rather than depending on PyYAML at runtime: output must be byte-stable for the
    generated files under docs/, and multi-line PromQL reads best as a literal block.
    """
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines.extend(_yaml(v, indent + 2))
            elif isinstance(v, str) and "\n" in v:
                lines.append(f"{pad}{k}: |-")
                lines.extend(f"{pad}  {line}" if line else "" for line in v.split("\n"))
            else:
                empty = "{}" if isinstance(v, dict) else "[]"
                lines.append(f"{pad}{k}: {empty if isinstance(v, (dict, list)) else _yaml_scalar(v)}")
    elif isinstance(value, list):
        for item in value:
            sub = _yaml(item, indent + 2)
            if isinstance(item, (dict, list)) and sub:
                lines.append(f"{pad}- {sub[0].lstrip()}")
                lines.extend(sub[1:])
            else:
                lines.append(f"{pad}- {_yaml_scalar(item)}")
    return lines


def recording_rules(names: PromNames, dims: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Quantiles and rates of every registry histogram and counter, per job and identifying labels.

    ``dims``: the app's opted-in metric attribute keys, kept as groupings where an instrument carries them.
    """
    q = Query(names, dashboard=False, dims=dimension_keys(dims))
    rules: list[dict[str, Any]] = []
    for spec in semconv.INSTRUMENTS:
        keys = ["job", *(label(k) for k in main_keys(spec)), *q.dims_of(spec)]
        level = "_".join(keys)
        base = names.base(spec)
        if spec.kind is Kind.HISTOGRAM:
            for p in (0.5, 0.95, 0.99):
                rules.append(
                    {
                        "record": f"{level}:{base}:p{round(p * 100)}_rate5m",
                        "expr": q.quantile(p, spec, keys, window="5m"),
                    }
                )
            rules.append(
                {
                    "record": f"{level}:{names.count(spec)}:rate5m",
                    "expr": f"sum by ({', '.join(keys)}) ({q.rate(names.count(spec), spec, window='5m')})",
                }
            )
            rules.append(
                {
                    "record": f"{level}:{names.sum(spec)}:rate5m",
                    "expr": f"sum by ({', '.join(keys)}) ({q.rate(names.sum(spec), spec, window='5m')})",
                }
            )
        elif spec.kind in (Kind.COUNTER, Kind.OBSERVABLE_COUNTER):
            total = names.total(spec)
            rules.append(
                {
                    "record": f"{level}:{total}:rate5m",
                    "expr": f"sum by ({', '.join(keys)}) ({q.rate(total, spec, window='5m')})",
                }
            )
    return rules


def slo_groups(slos: Sequence[Slo], names: PromNames) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for slo in slos:
        records = [{"record": slo.record(names, w), "expr": slo.bad_ratio(names, w)} for w in _WINDOWS]
        alerts = []
        for severity, speed in (("page", "Fast"), ("ticket", "Slow")):
            pairs = [
                f"(\n  {slo.record(names, long)} > ({factor:g} * {slo.budget:g})\n"
                f"  and\n  {slo.record(names, short)} > ({factor:g} * {slo.budget:g})\n)"
                for long, short, factor, sev in BURN_WINDOWS
                if sev == severity
            ]
            windows = ", ".join(f"{lw}/{sw} at {f:g}x" for lw, sw, f, sev in BURN_WINDOWS if sev == severity)
            what = (
                f"{slo.spec.name} slower than {slo.threshold:g}s"
                if slo.threshold is not None
                else f"{slo.spec.name} with error.type set"
            )
            alerts.append(
                {
                    "alert": f"{ALERT_PREFIX}{slo.title}BudgetBurn{speed}",
                    "expr": "\nor\n".join(pairs),
                    "labels": {"severity": severity, "slo": slo.key},
                    "annotations": {
                        "summary": f"{{{{ $labels.job }}}} is burning its {slo.key} error budget ({windows})",
                        "description": f"Share of bad events ({what}) is above {slo.budget:g} x the burn-rate factor "
                        "over both windows of a pair; see the slo_* recording rules for the ratios.",
                    },
                }
            )
        groups.append({"name": f"llmtel-slo-{slo.key}", "rules": records + alerts})
    return groups


def promql_string(text: str) -> str:
    """``text`` as a PromQL double-quoted string literal (Go escapes; JSON's are a subset of them)."""
    return json.dumps(text)


def symptom_rules(names: PromNames, job: str) -> list[dict[str, Any]]:
    failures = names.total(_require("llmtel.sdk.export.failures"))
    overflow = label(OVERFLOW_ATTRIBUTE)
    rules: list[dict[str, Any]] = [
        {
            "alert": f"{ALERT_PREFIX}TargetDown",
            "expr": f"up{{job=~{promql_string(job)}}} == 0",
            "for": "5m",
            "labels": {"severity": "page"},
            "annotations": {"summary": "Prometheus cannot scrape {{ $labels.instance }} (job {{ $labels.job }})."},
        },
        {
            "alert": f"{ALERT_PREFIX}TargetMissing",
            "expr": f"absent(up{{job=~{promql_string(job)}}})",
            "for": "10m",
            "labels": {"severity": "ticket"},
            "annotations": {"summary": f'No scrape target matches job=~"{job}": llmtel metrics are not collected.'},
        },
        {
            "alert": f"{ALERT_PREFIX}CardinalityOverflow",
            # Copy the name into a label: alert labels drop __name__, and two overflowing metrics of
            # one job must stay two alerts. ALERTS* are excluded: alerts on overflow series carry the label.
            "expr": f'count by (job, metric) (label_replace({{{overflow}="true", __name__!~"ALERTS.*"}}, '
            '"metric", "$1", "__name__", "(.+)")) > 0',
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "{{ $labels.metric }} on {{ $labels.job }} hit its cardinality limit; new attribute "
                f'sets are folded into the {overflow}="true" series.',
            },
        },
        {
            "alert": f"{ALERT_PREFIX}ExportFailures",
            # The second arm catches a series that first appears (first failure): increase() needs two samples.
            "expr": f"increase({failures}[10m]) > 0\nor\n({failures} > 0 unless {failures} offset 10m)",
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "llmtel exporter {{ $labels." + label(semconv.EXPORTER_NAME) + " }} on "
                "{{ $labels.job }} is failing to export."
            },
        },
    ]
    problems = instrument("llmtel.sdk.problems")
    if problems is not None:
        total = names.total(problems)
        rules.append(
            {
                "alert": f"{ALERT_PREFIX}DroppingValues",
                "expr": f"sum by (job, {label(semconv.SELF_PROBLEM)}) (increase({total}[15m])) > 0",
                "labels": {"severity": "info"},
                "annotations": {
                    "summary": "llmtel on {{ $labels.job }} dropped, clamped or sanitized values: "
                    "{{ $labels." + label(semconv.SELF_PROBLEM) + " }}."
                },
            }
        )
    return rules


def _require(name: str) -> InstrumentSpec:
    spec = instrument(name)
    if spec is None:
        raise LookupError(f"the registry has no {name}")
    return spec


@dataclass(frozen=True)
class LatencyObjective:
    """A latency SLO the CLI offers: ``--slo-<flag>-p95``/``-p99`` on one registry histogram."""

    flag: str  # "ttft", "duration", "tool", "retrieval"
    title: str  # alert-name stem
    instrument: str
    what: str  # for --help
    percentiles: tuple[int, ...] = (95, 99)


#: The latency SLOs ``llmtel rules`` offers (TTFT's instrument follows ``--slo-ttft-source``).
LATENCY_OBJECTIVES: Final = (
    LatencyObjective(
        "ttft", "TTFT", _gm.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK, "streaming calls get their first chunk", (95,)
    ),
    LatencyObjective("duration", "Duration", _gm.GEN_AI_CLIENT_OPERATION_DURATION, "GenAI calls complete"),
    LatencyObjective("tool", "ToolDuration", "llmtel.tool.duration", "tool executions complete"),
    LatencyObjective("retrieval", "RetrievalDuration", "llmtel.retrieval.duration", "retrieval queries complete"),
)


def _latency_slo(
    objective: LatencyObjective,
    percentile: int,
    threshold: float,
    spec: InstrumentSpec,
    buckets: Sequence[float] | None,
    warn: Callable[[str], object] | None,
) -> Slo:
    bounds = list(buckets) if buckets else list(spec.buckets or ())
    used = snap_threshold(threshold, bounds)
    flag = f"--slo-{objective.flag}-p{percentile}"
    if used != threshold and warn is not None:
        shown = ", ".join(f"{b:g}" for b in bounds)
        warn(
            f"llmtel rules: {flag} {threshold:g} is not a bucket boundary of {spec.name} ({shown}); "
            f"using {used:g}. Only a boundary separates fast from slow calls. To use {threshold:g}, add it "
            f"to the buckets in your app: llmtel.configure(bucket_boundaries={{{spec.name!r}: [..., {threshold:g}, "
            f"...]}}) and pass the same list here with --slo-{objective.flag}-buckets."
        )
    # The TTFT alerts keep their original names (LLMTelTTFTBudgetBurn*): dashboards and runbooks refer to them.
    title = objective.title if objective.flag == "ttft" else f"{objective.title}P{percentile}"
    return Slo(f"{objective.flag}_p{percentile}", title, spec, budget=round(1 - percentile / 100, 6), threshold=used)


def build_slos(
    *,
    ttft_p95: float | None = None,
    error_rate: float | None = None,
    ttft_source: str = "client",
    ttft_buckets: Sequence[float] | None = None,
    latency: dict[str, float] | None = None,
    buckets: dict[str, Sequence[float]] | None = None,
    warn: Callable[[str], object] | None = None,
) -> list[Slo]:
    """SLO objects for the CLI options; warns (via ``warn(str)``) when a threshold is snapped.

    ``latency`` maps ``"<flag>_p<percentile>"`` (``"duration_p99"``, ``"tool_p95"``; see
    :data:`LATENCY_OBJECTIVES`) to a threshold in seconds, ``buckets`` maps ``<flag>`` to the
    bucket boundaries the app configured for that histogram. ``ttft_p95``/``ttft_buckets`` are
    shorthands for ``latency["ttft_p95"]``/``buckets["ttft"]``.
    """
    wanted = dict(latency or {})
    if ttft_p95 is not None:
        wanted["ttft_p95"] = ttft_p95
    bucket_lists = dict(buckets or {})
    if ttft_buckets:
        bucket_lists["ttft"] = ttft_buckets
    slos: list[Slo] = []
    for objective in LATENCY_OBJECTIVES:
        name = objective.instrument
        if objective.flag == "ttft" and ttft_source != "client":
            name = _gm.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN
        for percentile in objective.percentiles:
            threshold = wanted.pop(f"{objective.flag}_p{percentile}", None)
            if threshold is None:
                continue
            if not (math.isfinite(threshold) and threshold > 0):
                raise ValueError(f"--slo-{objective.flag}-p{percentile} must be a positive number of seconds")
            spec = _require(name)
            slos.append(_latency_slo(objective, percentile, threshold, spec, bucket_lists.get(objective.flag), warn))
    if wanted:
        raise ValueError(f"no such latency SLO: {', '.join(sorted(wanted))}")
    if error_rate is not None:
        if not 0 < error_rate < 1:
            raise ValueError("--slo-error-rate must be between 0 and 1 (e.g. 0.01 for 99% success)")
        slos.append(Slo("error_rate", "ErrorRate", _require(_gm.GEN_AI_CLIENT_OPERATION_DURATION), error_rate))
    return slos


@dataclass(frozen=True)
class CostBudget:
    """Spend limits on ``llmtel.gen_ai.client.cost``, per job and the opted-in dimensions in ``by``."""

    hourly: float | None = None
    daily: float | None = None
    by: tuple[str, ...] = ()  # attribute keys, e.g. ("tenant",)


def cost_rules(budget: CostBudget, names: PromNames) -> list[dict[str, Any]]:
    """Alerts when the spend of the last hour / day exceeds the budget."""
    spec = instrument("llmtel.gen_ai.client.cost")
    if spec is None:
        return []
    total = names.total(spec)
    keys = ["job", *(label(k) for k in budget.by)]
    who = " ".join("{{ $labels." + k + " }}" for k in keys)
    rules: list[dict[str, Any]] = []
    for period, window, limit, severity in (
        ("Hourly", "1h", budget.hourly, "ticket"),
        ("Daily", "1d", budget.daily, "page"),
    ):
        if limit is None:
            continue
        rules.append(
            {
                "alert": f"{ALERT_PREFIX}CostBudget{period}",
                # increase() extrapolates to the window's edges: the estimate of the spend in the window.
                "expr": f"sum by ({', '.join(keys)}) (increase({total}[{window}])) > {limit:g}",
                "labels": {"severity": severity},
                "annotations": {
                    "summary": f"{who} spent more than the budget of {limit:g} USD in the last {window}.",
                    "description": "Estimated from llmtel's price table (or the provider-reported cost); "
                    "see the cost panels of the llmtel dashboard.",
                },
            }
        )
    return rules


@dataclass(frozen=True)
class Saturation:
    """Thresholds of the GPU and queue saturation symptom alerts."""

    gpu_utilization: float = 0.95
    gpu_memory: float = 0.95
    queue_wait_p95: float = 5.0


def saturation_rules(names: PromNames, limits: Saturation) -> list[dict[str, Any]]:
    """GPU busy or out of memory for a while, requests waiting long in a queue or being rejected."""
    hw_id = label(_hw.HW_ID)
    rules: list[dict[str, Any]] = []
    if (util := instrument(_hwm.HW_GPU_UTILIZATION)) is not None:
        rules.append(
            {
                "alert": f"{ALERT_PREFIX}GPUSaturated",
                # max over hw.gpu.task (general, encoder, decoder): the busiest engine of a device.
                "expr": f"max by (job, instance, {hw_id}) ({names.value(util)}) > {limits.gpu_utilization:g}",
                "for": "15m",
                "labels": {"severity": "ticket"},
                "annotations": {
                    "summary": "GPU {{ $labels." + hw_id + " }} on {{ $labels.instance }} ({{ $labels.job }}) "
                    f"has been more than {limits.gpu_utilization:.0%} busy for 15 minutes: requests queue up.",
                },
            }
        )
    if (used := instrument(_hwm.HW_GPU_MEMORY_USAGE)) is not None and (
        limit := instrument(_hwm.HW_GPU_MEMORY_LIMIT)
    ) is not None:
        on = f"job, instance, {hw_id}"
        rules.append(
            {
                "alert": f"{ALERT_PREFIX}GPUMemoryFull",
                "expr": f"max by ({on}) ({names.value(used)})\n  / on ({on})\n"
                f"max by ({on}) ({names.value(limit)}) > {limits.gpu_memory:g}",
                "for": "10m",
                "labels": {"severity": "ticket"},
                "annotations": {
                    "summary": "GPU {{ $labels." + hw_id + " }} on {{ $labels.instance }} ({{ $labels.job }}) "
                    f"has used more than {limits.gpu_memory:.0%} of its memory for 10 minutes: "
                    "out-of-memory errors and evictions ahead.",
                },
            }
        )
    queue = label(semconv.QUEUE_NAME)
    if (wait := instrument("llmtel.queue.wait")) is not None:
        q = Query(names, dashboard=False)
        rules.append(
            {
                "alert": f"{ALERT_PREFIX}QueueWaitHigh",
                "expr": f"{q.quantile(0.95, wait, ['job', queue], window='10m')} > {limits.queue_wait_p95:g}",
                "for": "10m",
                "labels": {"severity": "ticket"},
                "annotations": {
                    "summary": "Requests wait more than "
                    f"{limits.queue_wait_p95:g}s (p95) in queue {{{{ $labels.{queue} }}}} of {{{{ $labels.job }}}}.",
                },
            }
        )
    if (rejected := instrument("llmtel.admission.rejected")) is not None:
        reason = label(semconv.REASON)
        rules.append(
            {
                "alert": f"{ALERT_PREFIX}AdmissionRejecting",
                "expr": f"sum by (job, {queue}, {reason}) (rate({names.total(rejected)}[5m])) > 0",
                "for": "5m",
                "labels": {"severity": "ticket"},
                "annotations": {
                    "summary": "{{ $labels.job }} rejects requests at queue {{ $labels." + queue + " }} "
                    "({{ $labels." + reason + " }}): it is saturated.",
                },
            }
        )
    return rules


#: Default of ``--http-5xx-ratio``.
HTTP_5XX_RATIO: Final = 0.05


def http_rules(names: PromNames, max_5xx_ratio: float = HTTP_5XX_RATIO) -> list[dict[str, Any]]:
    """Rate and p95 per route, and a 5xx alert, on the contrib HTTP instrumentations' server duration.

    The series exist only when the app runs one with ``OTEL_SEMCONV_STABILITY_OPT_IN=http``
    (docs/middleware.md); otherwise these rules record nothing and the alert stays silent.
    """
    d = HTTP_SERVER_DURATION
    q = Query(names, dashboard=False)
    route = label("http.route")
    status = label("http.response.status_code")
    count = names.count(d)
    base = names.base(d)
    errors = f'sum by (job) (rate({count}{{{status}=~"5.."}}[5m]))'
    return [
        {"record": f"job_{route}:{base}:p95_rate5m", "expr": q.quantile(0.95, d, ["job", route], window="5m")},
        {
            "record": f"job_{route}_{status}:{count}:rate5m",
            "expr": f"sum by (job, {route}, {status}) (rate({count}[5m]))",
        },
        {
            "alert": f"{ALERT_PREFIX}HTTPServerErrors",
            "expr": f"{errors}\n  / sum by (job) (rate({count}[5m])) > {max_5xx_ratio:g}",
            "for": "10m",
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "More than "
                f"{max_5xx_ratio:.0%} of the HTTP requests of {{{{ $labels.job }}}} fail with a 5xx status.",
            },
        },
    ]


def build_rules(
    *,
    naming: str = "prometheus",
    latest: bool | None = None,
    job: str = DEFAULT_JOB,
    slos: Sequence[Slo] = (),
    cost: CostBudget | None = None,
    saturation: Saturation | None = None,
    http_5xx_ratio: float = HTTP_5XX_RATIO,
    metric_attributes: Sequence[str] = (),
) -> dict[str, Any]:
    """The rule file (``{"groups": [...]}``) as plain data."""
    names = PromNames(naming, latest)
    groups = [{"name": "llmtel-recording", "rules": recording_rules(names, metric_attributes)}]
    groups.extend(slo_groups(slos, names))
    if cost is not None and (budget := cost_rules(cost, names)):
        groups.append({"name": "llmtel-cost", "rules": budget})
    symptoms = symptom_rules(names, job) + saturation_rules(names, saturation or Saturation())
    groups.append({"name": "llmtel-symptoms", "rules": symptoms})
    groups.append({"name": "llmtel-http", "rules": http_rules(names, http_5xx_ratio)})
    return {"groups": groups}


def render(
    rules: dict[str, Any],
    *,
    fmt: str = "prometheus",
    name: str = "llmtel",
    namespace: str | None = None,
    labels: dict[str, str] | None = None,
    header: str = "",
) -> str:
    """Rule data as a Prometheus rule file, or wrapped as a prometheus-operator PrometheusRule."""
    if fmt == "prometheus-operator":
        metadata: dict[str, Any] = {"name": name}
        if namespace:
            metadata["namespace"] = namespace
        if labels:
            metadata["labels"] = dict(labels)
        doc: dict[str, Any] = {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": metadata,
            "spec": rules,
        }
    else:
        doc = rules
    head = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return head + "\n".join(_yaml(doc)) + "\n"


# Argument types: argparse turns their ArgumentTypeError into "argument --x: <message>" and exit 2.


def _seconds(text: str) -> float:
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _usd(text: str) -> float:
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive amount of US dollars, not {text!r}")
    return value


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1], e.g. 0.95, not {text!r}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _buckets(text: str) -> list[float]:
    """Bucket boundaries as configured in the app: comma-separated, finite, strictly increasing."""
    try:
        bounds = [float(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not bounds or not all(math.isfinite(b) for b in bounds):
        raise argparse.ArgumentTypeError(f"needs finite bucket boundaries, got {text!r}")
    if any(a >= b for a, b in itertools.pairwise(bounds)):
        raise argparse.ArgumentTypeError(
            f"bucket boundaries must be strictly increasing, as in the app's configuration: {text!r}"
        )
    return bounds


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. release=prometheus, not {text!r}")
    return key.strip(), value


def _label_key(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", text):
        raise argparse.ArgumentTypeError(f"expected an attribute key such as tenant or app.route, not {text!r}")
    return text


def re2_problem(pattern: str) -> str | None:
    """Why Prometheus (Go's RE2 syntax) would reject ``pattern``, or None.

    Python's parser finds syntax errors; what it accepts but RE2 does not is found in its parse
    tree: look-arounds, backreferences, conditionals, atomic groups, possessive quantifiers and
    repeat counts over 1000. ``\\Z`` (Python's end of text) is ``\\z`` in RE2.
    """
    try:
        from re import _parser as parser  # type: ignore[attr-defined]
    except ImportError:  # Python 3.10
        import sre_parse as parser
    try:
        tree = parser.parse(pattern)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    unsupported = {
        "ASSERT": "look-around assertions",
        "ASSERT_NOT": "look-around assertions",
        "GROUPREF": "backreferences",
        "GROUPREF_EXISTS": "conditional groups",
        "ATOMIC_GROUP": "atomic groups",
        "POSSESSIVE_REPEAT": "possessive quantifiers",
    }

    def walk(items: Any) -> str | None:
        for op, arg in items:
            name = str(op)
            if name in unsupported:
                return f"Prometheus regular expressions (RE2) have no {unsupported[name]}"
            if name in ("MAX_REPEAT", "MIN_REPEAT") and any(n != parser.MAXREPEAT and n > 1000 for n in arg[:2]):
                return "Prometheus regular expressions (RE2) allow repeat counts up to 1000"
            if name == "AT" and str(arg) == "AT_END_STRING":
                return "RE2 has no \\Z; use \\z or $"
            for sub in arg if isinstance(arg, (tuple, list)) else ():
                if isinstance(sub, parser.SubPattern):
                    found = walk(sub)
                elif isinstance(sub, (tuple, list)):
                    found = next((f for s in sub if isinstance(s, parser.SubPattern) and (f := walk(s))), None)
                else:
                    found = None
                if found:
                    return found
        return None

    return walk(tree)


def _job_regex(text: str) -> str:
    problem = re2_problem(text)
    if problem is None and "{{" in text:
        problem = "'{{' would start a template action in the alert annotations"
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``llmtel rules``."""
    add_naming_arguments(parser)
    parser.add_argument(
        "--format",
        choices=("prometheus", "prometheus-operator"),
        default="prometheus",
        help="a rule file (default) or a prometheus-operator PrometheusRule resource",
    )
    parser.add_argument(
        "--job",
        type=_job_regex,
        default=DEFAULT_JOB,
        help=f"regex (RE2) of the scrape job(s) the no-scrape alerts watch (default: {DEFAULT_JOB}, "
        "the job of the configs in deploy/)",
    )
    slo = parser.add_argument_group("latency SLOs (thresholds in seconds; each must be a bucket boundary)")
    for objective in LATENCY_OBJECTIVES:
        for percentile in objective.percentiles:
            slo.add_argument(
                f"--slo-{objective.flag}-p{percentile}",
                dest=f"slo_{objective.flag}_p{percentile}",
                type=_seconds,
                metavar="SECONDS",
                help=f"{percentile}%% of {objective.what} within SECONDS",
            )
        slo.add_argument(
            f"--slo-{objective.flag}-buckets",
            dest=f"slo_{objective.flag}_buckets",
            type=_buckets,
            metavar="B1,B2,...",
            help="bucket boundaries you configured for that histogram, if not the registry's",
        )
    slo.add_argument(
        "--slo-ttft-source",
        choices=("client", "server"),
        default="client",
        help="client: gen_ai.client.operation.time_to_first_chunk (default); server: gen_ai.server.time_to_first_token",
    )
    slo.add_argument(
        "--slo-error-rate", type=float, metavar="FRACTION", help="SLO: at most FRACTION of GenAI calls fail (e.g. 0.01)"
    )
    cost = parser.add_argument_group("cost budget (llmtel.gen_ai.client.cost)")
    cost.add_argument("--cost-budget-hourly", type=_usd, metavar="USD", help="alert when a job spends more per hour")
    cost.add_argument("--cost-budget-daily", type=_usd, metavar="USD", help="alert when a job spends more per day")
    cost.add_argument(
        "--cost-by",
        action="append",
        default=[],
        type=_label_key,
        metavar="ATTRIBUTE",
        help="split the budget by this opted-in metric attribute (repeatable), e.g. tenant "
        "(default: the --metric-attributes keys)",
    )
    sat = parser.add_argument_group("saturation symptom alerts")
    sat.add_argument(
        "--gpu-utilization-threshold",
        type=_fraction,
        default=Saturation.gpu_utilization,
        metavar="FRACTION",
        help=f"GPU busier than this for 15 minutes (default {Saturation.gpu_utilization:g})",
    )
    sat.add_argument(
        "--gpu-memory-threshold",
        type=_fraction,
        default=Saturation.gpu_memory,
        metavar="FRACTION",
        help=f"GPU memory fuller than this for 10 minutes (default {Saturation.gpu_memory:g})",
    )
    sat.add_argument(
        "--queue-wait-p95",
        type=_seconds,
        default=Saturation.queue_wait_p95,
        metavar="SECONDS",
        help=f"p95 queue wait (llmtel.queue.wait) above this for 10 minutes (default {Saturation.queue_wait_p95:g})",
    )
    parser.add_argument(
        "--http-5xx-ratio",
        type=_fraction,
        default=HTTP_5XX_RATIO,
        metavar="FRACTION",
        help=f"alert when more than this share of a job's HTTP requests fail with 5xx for 10 minutes "
        f"(contrib HTTP instrumentations; default {HTTP_5XX_RATIO:g})",
    )
    parser.add_argument("--name", default="llmtel", help="PrometheusRule metadata.name (default: llmtel)")
    parser.add_argument("--namespace", help="PrometheusRule metadata.namespace")
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="PrometheusRule metadata label (repeatable), e.g. release=prometheus",
    )
    parser.add_argument("-o", "--output", help="write to this file instead of stdout")


HEADER: Final = "Generated by `llmtel rules` from llmtel's instrument registry; regenerate, do not edit."


def rules_yaml(
    *,
    naming: str = "prometheus",
    latest: bool | None = None,
    fmt: str = "prometheus",
    job: str = DEFAULT_JOB,
    latency: Mapping[str, float] | None = None,
    buckets: Mapping[str, Sequence[float]] | None = None,
    error_rate: float | None = None,
    ttft_source: str = "client",
    cost_budget_hourly: float | None = None,
    cost_budget_daily: float | None = None,
    cost_by: Sequence[str] = (),
    saturation: Saturation | None = None,
    http_5xx_ratio: float = HTTP_5XX_RATIO,
    metric_attributes: Sequence[str] = (),
    name: str = "llmtel",
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
    warn: Callable[[str], object] | None = None,
) -> str:
    """The text ``llmtel rules`` prints for these options (one keyword per command-line option).

    ``latency``/``buckets`` as in :func:`build_slos`; ``cost_by`` defaults to the
    ``metric_attributes`` keys. ValueError or LookupError for an invalid combination.
    """
    slos = build_slos(
        error_rate=error_rate,
        ttft_source=ttft_source,
        latency=dict(latency or {}),
        buckets=dict(buckets or {}),
        warn=warn,
    )
    cost = None
    if cost_budget_hourly is not None or cost_budget_daily is not None:
        # The app's opted-in dimensions (tenant...) unless cost_by narrows them.
        by = list(cost_by) or list(metric_attributes)
        cost = CostBudget(cost_budget_hourly, cost_budget_daily, tuple(dict.fromkeys(by)))
    elif cost_by:
        raise ValueError("--cost-by needs --cost-budget-hourly or --cost-budget-daily")
    rules = build_rules(
        naming=naming,
        latest=latest,
        job=job,
        slos=slos,
        cost=cost,
        saturation=saturation,
        http_5xx_ratio=http_5xx_ratio,
        metric_attributes=metric_attributes,
    )
    return render(rules, fmt=fmt, name=name, namespace=namespace, labels=dict(labels or {}), header=HEADER)


def run(args: argparse.Namespace) -> int:
    """Print (or write) the rules; 2 on invalid options."""
    try:
        text = rules_yaml(
            naming=args.naming,
            latest=args.semconv_latest,
            fmt=args.format,
            job=args.job,
            latency={
                f"{o.flag}_p{p}": value
                for o in LATENCY_OBJECTIVES
                for p in o.percentiles
                if (value := getattr(args, f"slo_{o.flag}_p{p}", None)) is not None
            },
            buckets={
                o.flag: value for o in LATENCY_OBJECTIVES if (value := getattr(args, f"slo_{o.flag}_buckets", None))
            },
            error_rate=args.slo_error_rate,
            ttft_source=args.slo_ttft_source,
            cost_budget_hourly=args.cost_budget_hourly,
            cost_budget_daily=args.cost_budget_daily,
            cost_by=args.cost_by,
            saturation=Saturation(args.gpu_utilization_threshold, args.gpu_memory_threshold, args.queue_wait_p95),
            http_5xx_ratio=args.http_5xx_ratio,
            metric_attributes=args.metric_attributes,
            name=args.name,
            namespace=args.namespace,
            labels=dict(args.label),
            warn=lambda msg: print(msg, file=sys.stderr),
        )
    except (ValueError, LookupError) as exc:
        print(f"llmtel rules: {exc}", file=sys.stderr)
        return 2
    return write_output(text, getattr(args, "output", None), "rules")
