"""``llmtel rules``: Prometheus recording and alerting rules generated from the registry.

* recording rules: p50/p95/p99 and request rates of every histogram, rates of every counter
  (the quantities the dashboard draws), per ``job`` and the instrument's identifying labels;
* SLO rules (when asked for): the bad-event ratio over the SRE workbook's windows and
  multi-window, multi-burn-rate alerts (1h/5m at 14.4x and 6h/30m at 6x page; 1d/2h at 3x
  and 3d/6h at 1x open a ticket);
* symptom alerts: target not scraped, cardinality overflow series, failing exporters.

Metric names come from :mod:`llmtel._internal.naming` through :class:`llmtel.cli.dashboards.PromNames`.
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as _gm

from llmtel import semconv
from llmtel.cli import write_output
from llmtel.cli.dashboards import (
    PromNames,
    Query,
    _main_keys,
    add_naming_arguments,
    instrument,
    label,
    le_matcher,
)
from llmtel.semconv import InstrumentSpec, Kind

__all__ = ["BURN_WINDOWS", "Slo", "add_arguments", "build_rules", "render", "run", "snap_threshold"]

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


def recording_rules(names: PromNames) -> list[dict[str, Any]]:
    """Quantiles and rates of every registry histogram and counter, per job and identifying labels."""
    q = Query(names, dashboard=False)
    rules: list[dict[str, Any]] = []
    for spec in semconv.INSTRUMENTS:
        keys = ["job", *(label(k) for k in _main_keys(spec))]
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


def symptom_rules(names: PromNames, job: str) -> list[dict[str, Any]]:
    failures = names.total(_require("llmtel.sdk.export.failures"))
    overflow = label(OVERFLOW_ATTRIBUTE)
    rules: list[dict[str, Any]] = [
        {
            "alert": f"{ALERT_PREFIX}TargetDown",
            "expr": f'up{{job=~"{job}"}} == 0',
            "for": "5m",
            "labels": {"severity": "page"},
            "annotations": {"summary": "Prometheus cannot scrape {{ $labels.instance }} (job {{ $labels.job }})."},
        },
        {
            "alert": f"{ALERT_PREFIX}TargetMissing",
            "expr": f'absent(up{{job=~"{job}"}})',
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


def build_slos(
    *,
    ttft_p95: float | None = None,
    error_rate: float | None = None,
    ttft_source: str = "client",
    ttft_buckets: Sequence[float] | None = None,
    warn: Any = None,
) -> list[Slo]:
    """SLO objects for the CLI options; warns (via ``warn(str)``) when a threshold is snapped."""
    slos: list[Slo] = []
    if ttft_p95 is not None:
        name = (
            _gm.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK
            if ttft_source == "client"
            else _gm.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN
        )
        spec = _require(name)
        bounds = list(ttft_buckets) if ttft_buckets else list(spec.buckets or ())
        used = snap_threshold(ttft_p95, bounds)
        if used != ttft_p95 and warn is not None:
            shown = ", ".join(f"{b:g}" for b in bounds)
            warn(
                f"llmtel rules: --slo-ttft-p95 {ttft_p95:g} is not a bucket boundary of {name} ({shown}); "
                f"using {used:g}. Only a boundary separates fast from slow calls. To use {ttft_p95:g}, add it "
                f"to the buckets in your app: llmtel.configure(bucket_boundaries={{{name!r}: [..., {ttft_p95:g}, "
                f"...]}}) and pass the same list here with --slo-ttft-buckets."
            )
        slos.append(Slo("ttft_p95", "TTFT", spec, budget=0.05, threshold=used))
    if error_rate is not None:
        if not 0 < error_rate < 1:
            raise ValueError("--slo-error-rate must be between 0 and 1 (e.g. 0.01 for 99% success)")
        slos.append(Slo("error_rate", "ErrorRate", _require(_gm.GEN_AI_CLIENT_OPERATION_DURATION), error_rate))
    return slos


def build_rules(
    *,
    naming: str = "prometheus",
    latest: bool | None = None,
    job: str = "llmtel",
    slos: Sequence[Slo] = (),
) -> dict[str, Any]:
    """The rule file (``{"groups": [...]}``) as plain data."""
    names = PromNames(naming, latest)
    groups = [{"name": "llmtel-recording", "rules": recording_rules(names)}]
    groups.extend(slo_groups(slos, names))
    groups.append({"name": "llmtel-symptoms", "rules": symptom_rules(names, job)})
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


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.replace(" ", "").split(",") if x]


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
        "--job", default="llmtel", help="regex of the scrape job(s) the no-scrape alerts watch (default: llmtel)"
    )
    parser.add_argument(
        "--slo-ttft-p95",
        type=float,
        metavar="SECONDS",
        help="SLO: 95%% of streaming calls get their first chunk within SECONDS (a bucket boundary)",
    )
    parser.add_argument(
        "--slo-ttft-source",
        choices=("client", "server"),
        default="client",
        help="client: gen_ai.client.operation.time_to_first_chunk (default); server: gen_ai.server.time_to_first_token",
    )
    parser.add_argument(
        "--slo-ttft-buckets",
        type=_floats,
        metavar="B1,B2,...",
        help="bucket boundaries you configured for that histogram, if not the registry's",
    )
    parser.add_argument(
        "--slo-error-rate", type=float, metavar="FRACTION", help="SLO: at most FRACTION of GenAI calls fail (e.g. 0.01)"
    )
    parser.add_argument("--name", default="llmtel", help="PrometheusRule metadata.name (default: llmtel)")
    parser.add_argument("--namespace", help="PrometheusRule metadata.namespace")
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="PrometheusRule metadata label (repeatable), e.g. release=prometheus",
    )
    parser.add_argument("-o", "--output", help="write to this file instead of stdout")


def run(args: argparse.Namespace) -> int:
    """Print (or write) the rules; 2 on invalid options."""
    try:
        slos = build_slos(
            ttft_p95=args.slo_ttft_p95,
            error_rate=args.slo_error_rate,
            ttft_source=args.slo_ttft_source,
            ttft_buckets=args.slo_ttft_buckets,
            warn=lambda msg: print(msg, file=sys.stderr),
        )
        labels = dict(item.split("=", 1) for item in args.label)
    except (ValueError, LookupError) as exc:
        print(f"llmtel rules: {exc}", file=sys.stderr)
        return 2
    rules = build_rules(naming=args.naming, latest=args.semconv_latest, job=args.job, slos=slos)
    text = render(
        rules,
        fmt=args.format,
        name=args.name,
        namespace=args.namespace,
        labels=labels,
        header="Generated by `llmtel rules` from llmtel's instrument registry; regenerate, do not edit.",
    )
    return write_output(text, getattr(args, "output", None), "rules")
