"""Every dashboard query and recording rule, run by a real Prometheus scraping ``llmtel demo``.

Starts ``python -m llmtel demo`` and Debian's ``prometheus`` on 127.0.0.1 (temp storage, 1 s
scrape and rule evaluation, exemplar storage on, the generated rules loaded), then checks:

* every panel query whose metrics the demo emits returns a non-empty, non-NaN result, with the
  Grafana variables set to the demo's job and service (so the target_info join is exercised);
* the variable queries list the demo's job, service and models;
* every recording rule whose inputs exist yields series, and no rule fails to evaluate;
* the TTFC panel's metric has exemplars carrying a ``trace_id``.

GPU panels are skipped on machines without a GPU (their metrics are absent), as are the
few panels for instruments the demo does not record; a minimum set must have been checked.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from promql_scan import metric_names
from realservers import free_port, prometheus_server, require_binary, stop_process

from llmtel.cli import dashboards, rules
from llmtel.cli.demo import TENANTS

pytestmark = pytest.mark.realserver

JOB = "llmtel"
SERVICE = "llmtel-demo"
#: Panels the demo's workload must light up (a vacuous pass is a failure).
MUST_CHECK = {
    "Request rate",
    "Error rate by error.type",
    "Operation duration",
    "Time to first chunk (TTFC)",
    "Time per output chunk",
    "Tokens per second (input/output)",
    "Cost per 1k tokens",
    "Active requests",
    "Tool latency p95",
    "Retrieval latency p95",
    "Retrieval hit@k",
    "Retrieval MRR",
    "Queue depth",
    "Circuit breakers (0 closed, 1 half-open, 2 open)",
    "Cache hit ratio",
    "Cost per hour by tenant",
    "Request rate by tenant",
    "Operation duration p95 by tenant",
    "Process CPU utilization",
    "Process memory (RSS)",
}


def _get(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


class Prom:
    def __init__(self, base: str) -> None:
        self.base = base

    def api(self, path: str, **params: str) -> Any:
        body = _get(f"{self.base}/api/v1/{path}?{urllib.parse.urlencode(params)}")
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        return list(data["result"])


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    require_binary("prometheus")
    tmp = tmp_path_factory.mktemp("live-prom")
    demo_port = free_port()
    rule_file = tmp / "rules.yaml"
    parser = argparse.ArgumentParser()
    rules.add_arguments(parser)
    args = ["--job", JOB, "--slo-ttft-p95", "0.35", "--slo-error-rate", "0.01", "--metric-attributes", "tenant"]
    args += ["-o", str(rule_file)]
    assert rules.run(parser.parse_args(args)) == 0
    (tmp / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}\n"
        f"rule_files: [{rule_file}]\n"
        f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['127.0.0.1:{demo_port}']\n"
    )
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmtel",
            "demo",
            "--duration",
            "90",
            "--port",
            str(demo_port),
            "--quiet",
            "--speed",
            "4",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with prometheus_server(tmp / "prometheus.yml", tmp) as base:
            p = Prom(base)
            _wait(lambda: p.query(f'up{{job="{JOB}"}} == 1'), 30, "demo scraped")
            time.sleep(8)  # enough 1 s scrapes for rates and for the rules to be evaluated a few times
            yield p
    finally:
        stop_process(demo)


def _substitute(expr: str) -> str:
    """Grafana's variables as a user looking at the demo would set them."""
    return (
        expr.replace("$__rate_interval", "20s")
        .replace("${service}", SERVICE)
        .replace("$service", SERVICE)
        .replace("$job", JOB)
        .replace("$model", ".*")
        .replace("$tenant", ".*")
    )


def _finite(result: list[dict[str, Any]]) -> bool:
    return any(not math.isnan(float(s["value"][1])) for s in result)


def test_every_panel_query_returns_data(prom: Prom) -> None:
    present = set(prom.api("label/__name__/values"))
    dash = dashboards.build_dashboard(latest=False, metric_attributes=["tenant"])
    checked, skipped, empty = set(), {}, []
    for panel in (p for p in dash["panels"] if p["type"] != "row"):
        for target in panel["targets"]:
            missing = metric_names(target["expr"]) - present
            if missing:
                skipped[panel["title"]] = sorted(missing)
                continue
            if not _finite(prom.query(_substitute(target["expr"]))):
                empty.append((panel["title"], target["expr"]))
            checked.add(panel["title"])
    print(f"checked {len(checked)} panels; skipped (metrics not emitted): {skipped}")
    assert not empty, f"queries with no data although their metrics exist: {empty}"
    assert MUST_CHECK <= checked, f"not checked: {MUST_CHECK - checked}; skipped: {skipped}"
    # Only instruments the demo does not record may be skipped (GPU ones where there is no GPU).
    for title, missing in skipped.items():
        assert all(not re.match(r"(gen_ai_client|target_info)", m) for m in missing), (title, missing)


def test_variable_queries_list_the_demo(prom: Prom) -> None:
    dash = dashboards.build_dashboard(latest=False, metric_attributes=["tenant"])
    variables = {v["name"]: v["definition"] for v in dash["templating"]["list"] if v["type"] == "query"}
    values = {}
    for name, definition in variables.items():
        m = re.fullmatch(r"label_values\((.+), (\w+)\)", definition)
        assert m, definition
        values[name] = prom.api(f"label/{m.group(2)}/values", **{"match[]": _substitute(m.group(1))})
    assert values["job"] == [JOB]
    assert values["service"] == [SERVICE]
    assert len(values["model"]) >= 1
    assert set(values["tenant"]) == set(TENANTS)  # the demo's tenant dimension


def test_recording_rules_evaluate_and_yield_series(prom: Prom) -> None:
    present = set(prom.api("label/__name__/values"))
    groups = prom.api("rules")["groups"]
    records = [r for g in groups for r in g["rules"] if r["type"] == "recording"]
    alerts = [r for g in groups for r in g["rules"] if r["type"] == "alerting"]
    assert records and alerts
    assert all(r["health"] == "ok" for r in records + alerts), [
        (r["name"], r.get("lastError")) for r in records + alerts if r["health"] != "ok"
    ]
    produced, missing_input = 0, []
    for r in records:
        inputs = metric_names(r["query"])
        if not inputs <= present:
            missing_input.append(r["name"])
            continue
        assert prom.query(r["name"]), f"recording rule {r['name']} yields nothing; expr {r['query']}"
        produced += 1
    print(f"recording rules with data: {produced} of {len(records)}; inputs not emitted: {len(missing_input)}")
    assert produced >= 40, (produced, missing_input)
    # The SLO ratios exist for the demo's job.
    for r in records:
        if ":slo_" in r["name"]:
            (sample,) = prom.query(f'{r["name"]}{{job="{JOB}"}}')
            assert 0.0 <= float(sample["value"][1]) <= 1.0, (r["name"], sample)


def test_ttfc_exemplars_carry_trace_ids(prom: Prom) -> None:
    dash = dashboards.build_dashboard(latest=False, metric_attributes=["tenant"])
    (panel,) = [p for p in dash["panels"] if p["title"] == "Time to first chunk (TTFC)"]
    (bucket,) = {n for n in metric_names(panel["targets"][0]["expr"]) if n.endswith("_bucket")}
    now = time.time()
    data = prom.api("query_exemplars", query=bucket, start=str(now - 120), end=str(now))
    exemplars = [e for series in data for e in series["exemplars"]]
    assert exemplars, f"no exemplars stored for {bucket}"
    assert all(re.fullmatch(r"[0-9a-f]{32}", e["labels"]["trace_id"]) for e in exemplars)
