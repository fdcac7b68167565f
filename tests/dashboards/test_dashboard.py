"""``llmtel dashboard``: valid Grafana JSON whose queries use only names llmtel._internal.naming produces."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.semconv._incubating.metrics import hw_metrics
from promql_scan import metric_names

from llmtel import semconv
from llmtel._internal import naming
from llmtel.cli import dashboards, promql
from llmtel.semconv import InstrumentSpec, Kind


def allowed_names(latest: bool = False) -> set[str]:
    """Every sample name llmtel._internal.naming gives the registry and the companion instruments
    (contrib's HTTP server duration), plus the exporter's target_info."""
    out = {"target_info"}
    for spec in (*semconv.INSTRUMENTS, *promql.COMPANIONS):
        out.update(naming.prometheus_series(spec, latest=latest))
    return out


def _dashboard(*argv: str) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    dashboards.add_arguments(parser)
    args = parser.parse_args([*argv, "--no-semconv-latest"])
    text = dashboards.dashboard_json(
        naming=args.naming, latest=args.semconv_latest, trace_datasource_type=args.trace_datasource_type
    )
    return dict(json.loads(text))


def _panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dash["panels"] if p["type"] != "row"]


def _exprs(dash: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in _panels(dash) for t in p["targets"]]


def test_scanner_finds_names() -> None:
    expr = 'sum by (le) (rate(a_b_bucket{x="y{z}"}[5m]) and on (job) target_info) / scalar(c:d) > bool 1'
    assert metric_names(expr) == {"a_b_bucket", "target_info", "c:d"}


def test_dashboard_is_valid_grafana_json(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    dashboards.add_arguments(parser)
    assert dashboards.run(parser.parse_args(["--no-semconv-latest"])) == 0
    dash = json.loads(capsys.readouterr().out)
    assert dash["uid"] == "llmtel-overview" and dash["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["trace_datasource"]["query"] == "tempo"
    for name in ("job", "service", "model"):
        assert variables[name]["type"] == "query" and variables[name]["datasource"]["uid"] == "${datasource}"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in _panels(dash):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"
            assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
        gp = panel["gridPos"]
        assert gp["x"] + gp["w"] <= 24


@pytest.mark.parametrize("flavor", ["prometheus", "otlp-collector"])
def test_every_expr_uses_only_names_from_llmtel_naming(flavor: str) -> None:
    dash = _dashboard("--naming", flavor)
    allowed = allowed_names()
    if flavor == "otlp-collector":
        # The Collector's translator adds _ratio to unit-"1" gauges (PromNames does, from the naming module's name).
        allowed = {n for n in allowed if n != "target_info"}
        allowed |= {
            naming.prometheus_name(s, latest=False) + "_ratio"
            for s in semconv.INSTRUMENTS
            if s.kind in (Kind.GAUGE, Kind.OBSERVABLE_GAUGE) and s.unit == "1"
        }
    used: set[str] = set()
    for expr in _exprs(dash):
        names = metric_names(expr)
        assert names, expr
        assert names <= allowed, f"unknown names {names - allowed} in {expr}"
        used |= names
    # Every registry instrument is on the dashboard.
    for spec in semconv.INSTRUMENTS:
        assert any(promql.PromNames(flavor, False).base(spec) in n for n in used), spec.name


def test_ttfc_and_ttft_panels_have_exemplars_linked_to_the_trace_datasource() -> None:
    dash = _dashboard("--trace-datasource-type", "jaeger")
    assert {v["name"]: v for v in dash["templating"]["list"]}["trace_datasource"]["query"] == "jaeger"
    by_title = {p["title"]: p for p in _panels(dash)}
    for title in ("Time to first chunk (TTFC)", "Time to first token (TTFT)"):
        panel = by_title[title]
        assert all(t["exemplar"] for t in panel["targets"])
        assert [t["legendFormat"] for t in panel["targets"]] == ["p50", "p95", "p99"]
        (override,) = panel["fieldConfig"]["overrides"]
        assert override["matcher"] == {"id": "byName", "options": "trace_id"}
        link = override["properties"][0]["value"][0]
        assert link["internal"]["datasourceUid"] == "${trace_datasource}"
    assert not any(t["exemplar"] for t in by_title["Tokens per second (input/output)"]["targets"])


def test_issue_panels_are_present_for_the_current_registry() -> None:
    titles = {p["title"] for p in _panels(_dashboard())}
    expected = {
        "Request rate",
        "Error rate by error.type",
        "Time to first chunk (TTFC)",
        "Time per output chunk",
        "Operation duration",
        "Tokens per second (input/output)",
        "Cost per 1k tokens",
        "Tool latency p95",
        "Retrieval latency p95",
        "Retrieval hit@k",
        "Retrieval MRR",
        "Queue depth",
        "Active requests",
        "Circuit breakers (0 closed, 1 half-open, 2 open)",
        "GPU utilization",
        "GPU memory",
        "GPU power",
        "GPU energy per output token",
        "Process CPU utilization",
        "Process memory (RSS)",
        "HTTP requests by route and status",
        "HTTP latency p95 by route",
        "HTTP 5xx share",
    }
    assert expected <= titles, expected - titles


def test_panels_follow_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU instruments: no GPU panels. A new instrument: a panel appears without code changes."""
    no_gpu = tuple(s for s in semconv.INSTRUMENTS if s.group != "gpu")
    monkeypatch.setattr(semconv, "INSTRUMENTS", no_gpu)
    dash = _dashboard()
    assert not any(p["title"] == "GPU" for p in dash["panels"])
    assert not any("hw_" in e for e in _exprs(dash))
    new = InstrumentSpec(
        "hw.gpu.example_clock", Kind.OBSERVABLE_GAUGE, "Hz", "A new GPU gauge.", frozenset({"hw.id"}), None, "gpu"
    )
    monkeypatch.setattr(semconv, "INSTRUMENTS", (*no_gpu, new))
    dash = _dashboard()
    assert any(p["title"] == "GPU" and p["type"] == "row" for p in dash["panels"])
    assert any("hw_gpu_example_clock_hertz" in e for e in _exprs(dash))
    # And a curated panel vanishes when one of its instruments is gone.
    monkeypatch.setattr(semconv, "INSTRUMENTS", tuple(s for s in no_gpu if s.name != "llmtel.gen_ai.client.cost"))
    titles = {p["title"] for p in _panels(_dashboard())}
    assert "Cost per 1k tokens" not in titles and "Tokens per second (input/output)" in titles


def test_every_curated_panel_spec_is_drawn_with_the_current_registry() -> None:
    """A mistyped instrument name in a spec would hide its panel without a word: with the full registry
    (and the companions) every spec of the table is drawn."""
    q = promql.Query(promql.PromNames("prometheus", False), dims=("tenant",))
    hidden = [s.title for s in dashboards.PANELS if dashboards.render_panel(q, s) is None]
    hidden += [s.title for s in dashboards.DIMENSION_PANELS if dashboards.render_panel(q, s, "tenant") is None]
    assert hidden == []


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{0:median}", ValueError),
        ("{0:rate counts}", KeyError),
        ("{0:gauge nothing}", KeyError),
        ("{nolabel}", KeyError),
    ],
)
def test_a_template_the_renderer_does_not_know_fails_loudly(template: str, error: type[Exception]) -> None:
    q = promql.Query(promql.PromNames("prometheus", False))
    spec = dashboards.PanelSpec("x", "llm", ("llmtel.gen_ai.requests.active",), (dashboards.Line(template),))
    with pytest.raises(error):
        dashboards.render_panel(q, spec)


def test_otlp_collector_variant_filters_service_through_job() -> None:
    exprs = _exprs(_dashboard("--naming", "otlp-collector"))
    assert not any("target_info" in e for e in exprs)
    assert all('job=~"(.+/)?(${service})"' in e for e in exprs)
    util = semconv.spec(hw_metrics.HW_GPU_UTILIZATION)
    assert promql.PromNames("otlp-collector", False).value(util) == "hw_gpu_utilization_ratio"
    assert any("hw_gpu_utilization_ratio" in e for e in exprs)


def _substitute(expr: str) -> str:
    """Grafana variables as the 'All' option and a concrete rate interval."""
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("${service}", ".*")
        .replace("$service", ".*")
        .replace("$job", ".*")
        .replace("$model", ".*")
    )


@pytest.mark.skipif(shutil.which("promtool") is None and os.environ.get("CI") != "true", reason="promtool missing")
@pytest.mark.parametrize("flavor", ["prometheus", "otlp-collector"])
def test_every_panel_query_parses_with_promtool(tmp_path: Path, flavor: str) -> None:
    exprs = [_substitute(e) for e in _exprs(_dashboard("--naming", flavor))]
    rules = [{"record": f"llmtel_dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    proc = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_prom_names_match_llmtel_naming_for_the_bridge() -> None:
    names = promql.PromNames("prometheus", latest=False)
    for spec in semconv.INSTRUMENTS:
        assert names.series(spec) == naming.prometheus_series(spec, latest=False)
    with pytest.raises(ValueError, match="unknown naming"):
        promql.PromNames("graphite")


def test_docs_list_every_name_that_differs_through_a_collector() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "dashboards.md").read_text(encoding="utf-8")
    bridge, collector = promql.PromNames("prometheus", False), promql.PromNames("otlp-collector", False)
    differing = [
        (bridge.base(s), collector.base(s)) for s in semconv.INSTRUMENTS if bridge.base(s) != collector.base(s)
    ]
    assert differing
    for ours, theirs in differing:
        assert f"| `{ours}` | `{theirs}` |" in doc, (ours, theirs)
