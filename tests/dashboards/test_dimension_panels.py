"""Dashboards and rules for an app's opted-in metric attributes (``--metric-attributes``)."""

from __future__ import annotations

import argparse
import re

import pytest

from llmtel.cli import dashboards, rules
from llmtel.cli.dashboards import build_dashboard

CALL_SERIES = re.compile(r"(gen_ai_client_\w+|llmtel_gen_ai_client_cost\w*)\{([^}]*)\}")


def test_a_variable_and_a_row_per_key_and_every_call_query_filtered_by_it() -> None:
    board = build_dashboard(metric_attributes=["tenant", "route"])
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["tenant"]["query"]["query"].endswith(", tenant)")
    assert variables["route"]["allValue"] == ".*"
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert {"By tenant", "By route"} <= set(rows)
    filtered = 0
    for panel in board["panels"]:
        for target in panel.get("targets", ()):
            for _name, matchers in CALL_SERIES.findall(target["expr"]):
                assert 'tenant=~"$tenant"' in matchers and 'route=~"$route"' in matchers, target["expr"]
                filtered += 1
    assert filtered > 10
    plain = build_dashboard()
    assert "$tenant" not in str(plain) and len(plain["templating"]["list"]) == len(variables) - 2


def test_recording_rules_keep_the_keys_on_call_instruments_only() -> None:
    data = rules.build_rules(metric_attributes=["tenant"])
    recording = {r["record"]: r["expr"] for r in data["groups"][0]["rules"]}
    cost = [name for name in recording if "llmtel_gen_ai_client_cost" in name]
    assert cost and all("_tenant:" in name and "tenant)" in recording[name] for name in cost)
    queue = [name for name in recording if "llmtel_queue" in name]
    assert queue and not any("tenant" in name or "tenant" in recording[name] for name in queue)


def test_the_cli_takes_the_variables_syntax(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    dashboards.add_arguments(parser)
    args = parser.parse_args(["--metric-attributes", "tenant, llmtel.gen_ai.client.cost:route"])
    assert args.metric_attributes == ["tenant", "route"]
    assert dashboards.run(args) == 0
    assert '"name": "route"' in capsys.readouterr().out


@pytest.mark.parametrize("module", [dashboards, rules])
def test_keys_that_clash_are_refused_by_the_cli(module: object, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)  # type: ignore[attr-defined]
    assert module.run(parser.parse_args(["--metric-attributes", "model"])) == 2  # type: ignore[attr-defined]
    assert "clashes" in capsys.readouterr().err
