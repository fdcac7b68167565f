"""``llmtel rules`` output checked by Prometheus' own promtool.

``promtool check rules`` validates every rule; ``promtool test rules`` runs unit tests written
here from the generated rules: each alert fires on a synthetic bad series (with the exact labels
and annotations expected) and every alert stays silent on the matching good series.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmtel.cli import rules as rules_mod
from llmtel.cli.promql import HTTP_SERVER_DURATION, PromNames, instrument, label, le_matcher
from llmtel.semconv import ERROR_TYPE, EXPORTER_NAME, QUEUE_NAME, REASON, SELF_PROBLEM

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None and os.environ.get("CI") != "true", reason="promtool (Debian package prometheus) not installed"
)
JOB = "llmtel"
UP = f'up{{job="{JOB}", instance="app:9464"}}'


def _generate(tmp_path: Path, *argv: str) -> Path:
    parser = argparse.ArgumentParser()
    rules_mod.add_arguments(parser)
    out = tmp_path / "rules.yaml"
    assert rules_mod.run(parser.parse_args([*argv, "--no-semconv-latest", "-o", str(out)])) == 0
    return out


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None, "promtool missing (CI=true requires the prometheus package)"
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _alerts(rule_file: Path) -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(rule_file.read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


@dataclass
class Case:
    """Synthetic input series and the alerts they must raise (all others must stay silent)."""

    name: str
    series: dict[str, str]
    eval_time: str
    firing: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    with_up: bool = True


def _expected(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """Expected alert: its labels plus the rule's labels; annotations with {{ $labels.x }} filled in."""

    def fill(text: str) -> str:
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text)

    return {
        "exp_labels": {**labels, **rule.get("labels", {})},
        "exp_annotations": {k: fill(v) for k, v in rule.get("annotations", {}).items()},
    }


def _cases(names: PromNames) -> list[Case]:
    dur = instrument("gen_ai.client.operation.duration")
    ttfc = instrument("gen_ai.client.operation.time_to_first_chunk")
    fails = instrument("llmtel.sdk.export.failures")
    problems = instrument("llmtel.sdk.problems")
    assert dur and ttfc and fails and problems
    count, err = names.count(dur), label(ERROR_TYPE)
    ok_s = f'{count}{{job="{JOB}", gen_ai_request_model="m"}}'
    err_s = f'{count}{{job="{JOB}", gen_ai_request_model="m", {err}="timeout"}}'
    bucket = f'{names.bucket(ttfc)}{{job="{JOB}", le="0.32"}}'
    tcount = f'{names.count(ttfc)}{{job="{JOB}"}}'
    job = {"job": JOB}
    exp_label = label(EXPORTER_NAME)
    prob_label = label(SELF_PROBLEM)
    return [
        # Error-rate SLO 1%: 50% errors burns fast and slow; 4% only slow; 0.5% none.
        Case(
            "errors-fast",
            {ok_s: "0+30x90", err_s: "0+30x90"},
            "60m",
            {"LLMTelErrorRateBudgetBurnFast": [job], "LLMTelErrorRateBudgetBurnSlow": [job]},
        ),
        Case("errors-slow", {ok_s: "0+96x200", err_s: "0+4x200"}, "180m", {"LLMTelErrorRateBudgetBurnSlow": [job]}),
        Case("errors-good", {ok_s: "0+199x200", err_s: "0+1x200"}, "180m"),
        # TTFT p95 <= 0.32s (5% budget): 90% slow burns fast+slow; 20% slow only slow; 1% none.
        Case(
            "ttft-fast",
            {bucket: "0+10x90", tcount: "0+100x90"},
            "60m",
            {"LLMTelTTFTBudgetBurnFast": [job], "LLMTelTTFTBudgetBurnSlow": [job]},
        ),
        Case("ttft-slow", {bucket: "0+80x200", tcount: "0+100x200"}, "180m", {"LLMTelTTFTBudgetBurnSlow": [job]}),
        Case("ttft-good", {bucket: "0+99x200", tcount: "0+100x200"}, "180m"),
        # Scrapes failing / no target at all / healthy.
        Case(
            "target-down",
            {UP: "0x20"},
            "10m",
            {"LLMTelTargetDown": [{"job": JOB, "instance": "app:9464"}]},
            with_up=False,
        ),
        Case(
            "target-missing",
            {'up{job="other", instance="x:1"}': "1x20"},
            "15m",
            {"LLMTelTargetMissing": [{}]},
            with_up=False,
        ),
        Case("target-good", {}, "15m"),
        # Cardinality overflow series appear in two metrics of one job: two alerts.
        Case(
            "overflow",
            {
                f'{names.count(dur)}{{job="{JOB}", otel_metric_overflow="true"}}': "1x10",
                f'{names.total(fails)}{{job="{JOB}", otel_metric_overflow="true"}}': "0x10",
            },
            "5m",
            {
                "LLMTelCardinalityOverflow": [
                    {"job": JOB, "metric": names.count(dur)},
                    {"job": JOB, "metric": names.total(fails)},
                ]
            },
        ),
        Case("overflow-good", {f'{names.count(dur)}{{job="{JOB}", otel_metric_overflow=""}}': "1x10"}, "5m"),
        # Exporter failures: a counter that grows, and one that first appears at its first failure.
        Case(
            "export-failing",
            {f'{names.total(fails)}{{job="{JOB}", {exp_label}="otlp"}}': "0 0 1 2 3 4 5"},
            "6m",
            {"LLMTelExportFailures": [{**job, exp_label: "otlp"}]},
        ),
        Case(
            "export-first-failure",
            {f'{names.total(fails)}{{job="{JOB}", {exp_label}="otlp"}}': "_x5 1x5"},
            "7m",
            {"LLMTelExportFailures": [{**job, exp_label: "otlp"}]},
        ),
        Case("export-good", {f'{names.total(fails)}{{job="{JOB}", {exp_label}="otlp"}}': "3x30"}, "25m"),
        Case(
            "dropping",
            {f'{names.total(problems)}{{job="{JOB}", {prob_label}="clamped"}}': "0+1x20"},
            "10m",
            {"LLMTelDroppingValues": [{**job, prob_label: "clamped"}]},
        ),
        Case("dropping-good", {f'{names.total(problems)}{{job="{JOB}", {prob_label}="clamped"}}': "7x40"}, "30m"),
        *_latency_cases(names),
        *_cost_cases(names),
        *_saturation_cases(names),
        *_http_cases(names),
    ]


def _http_cases(names: PromNames) -> list[Case]:
    """contrib's HTTP server duration: 10% of requests answered 500 fires, 1% does not."""
    count = names.count(HTTP_SERVER_DURATION)
    ok = f'{count}{{job="{JOB}", instance="a:1", http_route="/chat", http_response_status_code="200"}}'
    bad = f'{count}{{job="{JOB}", instance="b:1", http_route="/chat", http_response_status_code="500"}}'
    return [
        Case("http-5xx", {ok: "0+90x30", bad: "0+10x30"}, "20m", {"LLMTelHTTPServerErrors": [{"job": JOB}]}),
        Case("http-5xx-good", {ok: "0+99x30", bad: "0+1x30"}, "20m"),
    ]


#: The SLO, budget and saturation flags the unit tests generate rules with.
RULE_ARGS = (
    "--slo-ttft-p95", "0.32", "--slo-error-rate", "0.01",
    "--slo-duration-p99", "5.12", "--slo-tool-p95", "5", "--slo-retrieval-p95", "1",
    "--cost-budget-hourly", "10", "--cost-budget-daily", "100", "--cost-by", "tenant",
    "--gpu-utilization-threshold", "0.9", "--gpu-memory-threshold", "0.9", "--queue-wait-p95", "5",
)  # fmt: skip


def _latency_cases(names: PromNames) -> list[Case]:
    """Each latency SLO: half the calls slow burns fast and slow; all fast stays silent."""
    job = {"job": JOB}
    out = []
    for key, title, name, le in (
        ("duration", "DurationP99", "gen_ai.client.operation.duration", "5.12"),
        ("tool", "ToolDurationP95", "llmtel.tool.duration", "5.0"),
        ("retrieval", "RetrievalDurationP95", "llmtel.retrieval.duration", "1.0"),
    ):
        spec = instrument(name)
        assert spec is not None
        fast = f'{names.bucket(spec)}{{job="{JOB}", le="{le}"}}'
        count = f'{names.count(spec)}{{job="{JOB}"}}'
        out.append(
            Case(
                f"{key}-fast",
                {fast: "0+50x90", count: "0+100x90"},
                "60m",
                {f"LLMTel{title}BudgetBurnFast": [job], f"LLMTel{title}BudgetBurnSlow": [job]},
            )
        )
        out.append(Case(f"{key}-good", {fast: "0+100x70", count: "0+100x70"}, "60m"))
    return out


def _cost_cases(names: PromNames) -> list[Case]:
    """1 USD/minute for tenant acme (60/h, 115 in 115m) breaks both budgets; 0.01/minute for tenant small none."""
    cost = instrument("llmtel.gen_ai.client.cost")
    assert cost is not None
    acme = f'{names.total(cost)}{{job="{JOB}", instance="a:1", tenant="acme"}}'
    acme2 = f'{names.total(cost)}{{job="{JOB}", instance="b:1", tenant="acme"}}'
    small = f'{names.total(cost)}{{job="{JOB}", instance="a:1", tenant="small"}}'
    who = {"job": JOB, "tenant": "acme"}
    return [
        # Two instances at 0.1 USD/min each: 12/h only over the hourly budget when summed across instances.
        Case(
            "cost-hourly",
            {acme: "0+0.1x90", acme2: "0+0.1x90", small: "0+0.01x90"},
            "70m",
            {"LLMTelCostBudgetHourly": [who]},
        ),
        Case(
            "cost-daily",
            {acme: "0+1x120", small: "0+0.01x120"},
            "115m",
            {"LLMTelCostBudgetHourly": [who], "LLMTelCostBudgetDaily": [who]},
        ),
        Case("cost-good", {acme: "0+0.08x80", small: "0+0.01x80"}, "70m"),
    ]


def _saturation_cases(names: PromNames) -> list[Case]:
    util = instrument("hw.gpu.utilization")
    used, limit = instrument("hw.gpu.memory.usage"), instrument("hw.gpu.memory.limit")
    wait, rejected = instrument("llmtel.queue.wait"), instrument("llmtel.admission.rejected")
    assert util and used and limit and wait and rejected
    gpu = f'job="{JOB}", instance="a:1", hw_id="gpu0"'
    where = {"job": JOB, "instance": "a:1", "hw_id": "gpu0"}
    queue = label(QUEUE_NAME)
    reason = label(REASON)
    w = names.bucket(wait)
    q = f'job="{JOB}", instance="a:1", {queue}="inference"'
    slow_wait = {
        f'{w}{{{q}, le="1.0"}}': "0+1x30",
        f'{w}{{{q}, le="10.0"}}': "0+10x30",
        f'{w}{{{q}, le="+Inf"}}': "0+10x30",
    }
    fast_wait = {
        f'{w}{{{q}, le="1.0"}}': "0+10x30",
        f'{w}{{{q}, le="10.0"}}': "0+10x30",
        f'{w}{{{q}, le="+Inf"}}': "0+10x30",
    }
    rej = f'{names.total(rejected)}{{{q}, {reason}="queue_full"}}'
    return [
        Case("gpu-busy", {f'{names.value(util)}{{{gpu}, hw_gpu_task="general"}}': "0.97x30"}, "20m",
             {"LLMTelGPUSaturated": [where]}),
        # Busy for less than 15 minutes: not yet.
        Case("gpu-busy-briefly", {f'{names.value(util)}{{{gpu}, hw_gpu_task="general"}}': "0.5x10 0.97x20"}, "20m"),
        Case("gpu-memory-full", {f"{names.value(used)}{{{gpu}}}": "95x30", f"{names.value(limit)}{{{gpu}}}": "100x30"},
             "20m", {"LLMTelGPUMemoryFull": [where]}),
        Case("gpu-good", {f'{names.value(util)}{{{gpu}, hw_gpu_task="general"}}': "0.6x30",
                          f"{names.value(used)}{{{gpu}}}": "50x30", f"{names.value(limit)}{{{gpu}}}": "100x30"}, "20m"),
        Case("queue-wait", slow_wait, "25m", {"LLMTelQueueWaitHigh": [{"job": JOB, queue: "inference"}]}),
        Case("queue-wait-good", fast_wait, "25m"),
        Case("admission", {rej: "0+5x30"}, "20m",
             {"LLMTelAdmissionRejecting": [{"job": JOB, queue: "inference", reason: "queue_full"}]}),
        Case("admission-good", {rej: "5x30"}, "20m"),
    ]  # fmt: skip


def _unit_tests(rule_file: Path, names: PromNames, only: str = "") -> list[str]:
    """promtool unit-test files for the cases whose name starts with ``only``; their file names.

    promtool evaluates every rule of a test's rule files at every step, so each case gets only the
    groups that can react to its series: the SLO groups whose expressions read one of the case's
    metrics, plus every other (cheap) group. An SLO group left out reads none of the case's series,
    so its alerts are silent by construction; every alert of the groups kept is checked. The
    recording group is left out entirely (check rules and the live test cover it).
    """
    doc = yaml.safe_load(rule_file.read_text())
    groups = [g for g in doc["groups"] if g["name"] != "llmtel-recording"]
    every_alert = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    files: dict[tuple[str, ...], dict[str, Any]] = {}
    for case in _cases(names):
        if not case.name.startswith(only):
            continue
        unknown = set(case.firing) - every_alert
        assert not unknown, f"{case.name}: no such alert {unknown}"
        series = dict(case.series)
        if case.with_up:
            series.setdefault(UP, "1x400")
        metrics = {s.split("{")[0] for s in series}
        kept = [
            g for g in groups
            if not g["name"].startswith("llmtel-slo-") or any(m in yaml.safe_dump(g) for m in metrics)
        ]  # fmt: skip
        key = tuple(g["name"] for g in kept)
        if key not in files:
            subset = rule_file.parent / f"rules-{len(files)}.yaml"
            subset.write_text(yaml.safe_dump({"groups": kept}, sort_keys=False))
            files[key] = {"rule_files": [subset.name], "evaluation_interval": "1m", "tests": []}
        alerts = {r["alert"]: r for g in kept for r in g["rules"] if "alert" in r}
        assert set(case.firing) <= set(alerts), case.name
        checks = []
        for name, rule in sorted(alerts.items()):
            expected = [_expected(rule, labels) for labels in case.firing.get(name, [])]
            checks.append({"eval_time": case.eval_time, "alertname": name, "exp_alerts": expected})
        test: dict[str, Any] = {
            "name": case.name,
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series.items()],
            "alert_rule_test": checks,
        }
        if case.name == "errors-fast":
            # Recording rules compute the ratios the burn-rate alerts compare.
            dur = instrument("gen_ai.client.operation.duration")
            assert dur is not None
            rec = f"job:{names.base(dur)}:slo_error_rate_bad_ratio_rate5m"
            test["promql_expr_test"] = [
                {"expr": rec, "eval_time": "60m", "exp_samples": [{"labels": f'{rec}{{job="{JOB}"}}', "value": 0.5}]}
            ]
        files[key]["tests"].append(test)
    out = []
    for i, content in enumerate(files.values()):
        path = rule_file.parent / f"rules_test-{i}.yaml"
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        out.append(path.name)
    return out


@needs_promtool
@pytest.mark.parametrize("naming", ["prometheus", "otlp-collector"])
def test_promtool_check_rules(tmp_path: Path, naming: str) -> None:
    rule_file = _generate(tmp_path, "--naming", naming, *RULE_ARGS)
    proc = _promtool("check", "rules", rule_file.name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@needs_promtool
def test_promtool_check_operator_resource(tmp_path: Path) -> None:
    out = _generate(tmp_path, "--format", "prometheus-operator", "--slo-error-rate", "0.01", "--label", "release=kps")
    doc = yaml.safe_load(out.read_text())
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"
    assert doc["metadata"] == {"name": "llmtel", "labels": {"release": "kps"}}
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(doc["spec"]))
    proc = _promtool("check", "rules", spec_file.name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_promtool
@pytest.mark.parametrize(("naming", "only"), [("prometheus", ""), ("otlp-collector", "gpu")])
def test_promtool_unit_tests_fire_on_bad_and_stay_silent_on_good(tmp_path: Path, naming: str, only: str) -> None:
    # Through a Collector only the GPU alert's unit-"1" gauge is named differently
    # (test_otlp_collector_rules_differ_only_in_unit_one_gauge_names), so only its cases run twice.
    rule_file = _generate(tmp_path, "--naming", naming, "--job", JOB, *RULE_ARGS)
    names = PromNames(naming, latest=False)
    proc = _promtool("test", "rules", *_unit_tests(rule_file, names, only), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@needs_promtool
def test_promtool_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """The unit tests can fail: with the fast-burn factor raised, the 'fires' case must fail."""
    rule_file = _generate(tmp_path, "--job", JOB, *RULE_ARGS)
    rule_file.write_text(
        rule_file.read_text().replace("(14.4 * 0.01)", "(99 * 0.01)").replace("(6 * 0.01)", "(99 * 0.01)")
    )
    names = PromNames("prometheus", latest=False)
    proc = _promtool("test", "rules", *_unit_tests(rule_file, names, "errors"), cwd=tmp_path)
    assert proc.returncode != 0
    assert "LLMTelErrorRateBudgetBurnFast" in proc.stdout + proc.stderr


def test_threshold_not_a_boundary_is_snapped_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _generate(tmp_path, "--slo-ttft-p95", "0.3", "--slo-ttft-source", "server")
    err = capsys.readouterr().err
    assert "0.3 is not a bucket boundary of gen_ai.server.time_to_first_token" in err
    assert "using 0.25" in err and "bucket_boundaries=" in err
    assert 'le="0.25"' in _exprs(out)
    # A boundary given through --slo-ttft-buckets (as configured in the app) is used as is, silently.
    out = _generate(tmp_path, "--slo-ttft-p95", "0.3", "--slo-ttft-buckets", "0.1,0.3,1")
    assert capsys.readouterr().err == ""
    assert 'le="0.3"' in _exprs(out)


def _exprs(rule_file: Path) -> str:
    return "\n".join(r["expr"] for g in yaml.safe_load(rule_file.read_text())["groups"] for r in g["rules"])


def test_snap_threshold() -> None:
    assert rules_mod.snap_threshold(0.35, [0.1, 0.35, 1.0]) == 0.35
    assert rules_mod.snap_threshold(0.4, [0.1, 0.35, 1.0]) == 0.35
    assert rules_mod.snap_threshold(0.05, [0.1, 0.35]) == 0.1
    assert le_matcher(1.0) == 'le=~"1[.]0|1"' and le_matcher(0.35) == 'le="0.35"'


def test_invalid_error_rate_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    rules_mod.add_arguments(parser)
    assert rules_mod.run(parser.parse_args(["--slo-error-rate", "5"])) == 2
    assert "between 0 and 1" in capsys.readouterr().err


def test_otlp_collector_rules_differ_only_in_unit_one_gauge_names(tmp_path: Path) -> None:
    a = _generate(tmp_path, *RULE_ARGS).read_text()
    b = _generate(tmp_path, "--naming", "otlp-collector", *RULE_ARGS).read_text()
    assert "hw_gpu_utilization_ratio" in b
    assert a == b.replace("hw_gpu_utilization_ratio", "hw_gpu_utilization")
