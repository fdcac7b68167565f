"""Tenants, reported cost and the app's own instruments through the real scrape and a real Prometheus.

The scrape tests render what Prometheus would fetch (classic text and OpenMetrics, parsed by
prometheus_client's strict parsers). The Prometheus test starts Debian's ``prometheus`` (1 s scrape
and rule evaluation, with the rules ``llmtel rules --metric-attributes tenant`` generates), records
calls for two tenants at a 3:1 cost ratio, and asks it
``sum by (tenant) (rate(llmtel_gen_ai_client_cost_USD_total[5m]))``, the tenant-grouped recording
rule and the dashboard's "by tenant" panels (about 10 s).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bridge_helpers import OPENMETRICS_ACCEPT, configured, get, om_families, text_families
from realservers import prometheus_server

import llmtel
from llmtel._internal import appmeters
from llmtel.cli import dashboards, rules

COST = "llmtel_gen_ai_client_cost_USD"
DURATION = "gen_ai_client_operation_duration_seconds"
PRICES = {"m": {"input": 1.0, "output": 2.0}}

# The worked example of docs/custom-metrics.md ("After"), made before any configure() of this module.
MESSAGES: Any = None
LOOP_LAG: Any = None


@pytest.fixture(autouse=True, scope="module")
def _app_instruments() -> Iterator[None]:
    global MESSAGES, LOOP_LAG
    meter = llmtel.get_meter("p2p-node")
    MESSAGES = meter.create_counter("p2p.messages", "{message}", "Messages exchanged.")
    LOOP_LAG = meter.create_histogram("app.event_loop.lag", "s", "Event-loop lag.")
    yield
    appmeters._meters.pop(("p2p-node", None, None))  # other modules' scrapes must not see them


def _call(tenant: str, *, reported: float | None = None) -> None:
    with llmtel.attributes(tenant=tenant, route="/chat"):
        with llmtel.llm_call(provider="openai", model="m") as call:
            call.set_usage(input_tokens=1_000_000, output_tokens=1_000_000)
            if reported is not None:
                call.set_cost(reported)
            LOOP_LAG.record(0.004)  # inside the call's span: an exemplar


def _samples(families: dict[str, Any], name: str) -> list[Any]:
    return [s for s in families[name].samples if s.name.endswith("_total")]


@pytest.mark.parametrize("openmetrics", [False, True])
def test_tenants_cost_sources_and_app_instruments_in_the_scrape(openmetrics: bool) -> None:
    with configured(price_table=PRICES, metric_attributes=["tenant"]):
        pass  # a first configuration: the app instruments must follow into the next one
    with configured(
        price_table=PRICES, metric_attributes=["tenant"], bucket_boundaries={"app.event_loop.lag": [0.001, 0.01]}
    ) as telemetry:
        _call("acme")
        _call("globex", reported=0.25)
        MESSAGES.add(3, {"direction": "out"})
        status, _, body = get(telemetry.metrics_url, accept=OPENMETRICS_ACCEPT if openmetrics else "text/plain")
    assert status == 200
    text = body.decode()
    families = om_families(text) if openmetrics else text_families(text)
    cost = {
        (s.labels["tenant"], s.labels.get("gen_ai_token_type"), s.labels["llmtel_cost_source"]): s.value
        for s in _samples(families, COST)
    }
    assert cost == {("acme", "input", "price_table"): 1.0, ("acme", "output", "price_table"): 2.0,
                    ("globex", None, "reported"): 0.25}  # fmt: skip
    durations = {s.labels["tenant"] for s in families[DURATION].samples}
    assert durations == {"acme", "globex"}
    assert all("route" not in s.labels for s in families[DURATION].samples)  # not opted in
    (messages,) = _samples(families, "p2p_messages")
    assert messages.value == 3 and messages.labels["direction"] == "out"
    assert messages.labels["otel_scope_name"] == "p2p-node"
    buckets = {s.labels["le"]: s.value for s in families["app_event_loop_lag_seconds"].samples if "le" in s.labels}
    assert buckets == {"0.001": 0, "0.01": 2, "+Inf": 2}
    if openmetrics:
        linked = [s for s in families["app_event_loop_lag_seconds"].samples if s.exemplar is not None]
        assert linked and "trace_id" in linked[0].exemplar.labels


def _query(base: str, promql: str) -> list[Any]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        payload = json.load(response)
    assert payload["status"] == "success", payload
    return list(payload["data"]["result"])


def _tenant_panels() -> list[tuple[str, str]]:
    """The dashboard's "by tenant" queries with the variables set as Grafana would (all tenants)."""
    board = dashboards.build_dashboard(metric_attributes=["tenant"])
    panels = [p for p in board["panels"] if p.get("title", "").endswith("by tenant")]
    assert len(panels) == 4
    values = {"$__rate_interval": "1m", "$job": "llmtel", "$service": ".*", "$model": ".*", "$tenant": ".*"}
    queries = []
    for panel in panels:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in values.items():
                expr = expr.replace(variable, value)
            queries.append((panel["title"], expr))
    return queries


@pytest.mark.realserver
def test_prometheus_splits_cost_by_tenant(tmp_path: Path) -> None:
    with configured(price_table=PRICES, metric_attributes=["tenant"]) as telemetry:
        target = urllib.parse.urlsplit(telemetry.metrics_url).netloc
        generated = rules.build_rules(metric_attributes=["tenant"])
        (tmp_path / "rules.yml").write_text(rules.render(generated))
        cost_rule = next(
            r["record"] for g in generated["groups"] for r in g.get("rules", ())
            if r.get("record", "").endswith(f":{COST}_total:rate5m")
        )  # fmt: skip
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files: ['{tmp_path / 'rules.yml'}']\n"
            f"scrape_configs:\n  - job_name: llmtel\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        stop = threading.Event()
        rounds = [0]

        def workload() -> None:  # per round: acme 3 calls, globex 1 (a 3:1 cost split)
            while not stop.is_set():
                for tenant in ("acme", "acme", "acme", "globex"):
                    with llmtel.llm_call(provider="openai", model="m", tenant=tenant) as call:
                        call.set_usage(input_tokens=1000, output_tokens=1000)
                rounds[0] += 1
                time.sleep(0.02)

        with prometheus_server(config, tmp_path) as base:
            worker = threading.Thread(target=workload, daemon=True)
            worker.start()
            try:
                promql = f"sum by (tenant) (rate({COST}_total[5m]))"
                deadline = time.monotonic() + 40
                while True:
                    result = _query(base, promql)
                    rates = {r["metric"].get("tenant"): float(r["value"][1]) for r in result}
                    recorded = {r["metric"].get("tenant") for r in _query(base, cost_rule)}
                    done = len(rates) == 2 and all(v > 0 for v in rates.values()) and len(recorded) == 2
                    if done or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                assert recorded == {"acme", "globex"}, cost_rule  # the recording rule keeps the tenant
                for title, expr in _tenant_panels():
                    shown = {r["metric"].get("tenant") for r in _query(base, expr)}
                    assert shown == {"acme", "globex"}, (title, expr)
            finally:
                stop.set()
                worker.join(timeout=5)
            assert set(rates) == {"acme", "globex"}, result
            assert rates["acme"] / rates["globex"] == pytest.approx(3.0, rel=0.1)
            # Once the workload stopped and a scrape followed, the stored totals are exact.
            per_call = 1000 * 1.0 / 1e6 + 1000 * 2.0 / 1e6
            want = {"acme": 3 * rounds[0] * per_call, "globex": rounds[0] * per_call}
            deadline = time.monotonic() + 10
            while True:
                totals = {
                    r["metric"]["tenant"]: float(r["value"][1]) for r in _query(base, f"sum by (tenant) ({COST}_total)")
                }
                if totals == pytest.approx(want, rel=1e-9) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert totals == pytest.approx(want, rel=1e-9)
