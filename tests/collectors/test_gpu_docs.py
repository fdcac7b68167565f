"""docs/gpu.md stays in step with the registry and the Prometheus naming."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GenAiTokenTypeValues

from llmtel import semconv
from llmtel._internal.naming import prometheus_label, prometheus_series

DOC = (Path(__file__).parents[2] / "docs" / "gpu.md").read_text()


def test_every_collector_instrument_is_documented_with_its_prometheus_name() -> None:
    for spec in semconv.INSTRUMENTS:
        if spec.group in ("gpu", "process"):
            row = f"| `{spec.name}` |"
            assert row in DOC, spec.name
            line = next(line for line in DOC.splitlines() if line.startswith(row))
            assert f"`{spec.unit}`" in line and f"`{prometheus_series(spec)[0]}`" in line, spec.name


def test_energy_per_token_promql_uses_the_names_the_bridge_serves() -> None:
    energy = prometheus_series(semconv.spec("hw.energy"))[0]
    tokens = next(s for s in prometheus_series(semconv.spec("gen_ai.client.token.usage")) if s.endswith("_sum"))
    label = f'{prometheus_label(semconv.TOKEN_TYPE)}="{GenAiTokenTypeValues.OUTPUT.value}"'
    assert f"sum by (job) (max by (job, hw_id) (rate({energy}[5m])))" in DOC
    assert f"(sum by (job) (rate({tokens}{{{label}}}[5m])) > 0)" in DOC
    assert prometheus_label("hw.id") == "hw_id"


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(
    PROMTOOL is None and os.environ.get("CI") != "true", reason="promtool (Debian package prometheus) not installed"
)
def test_documented_energy_per_token_promql_with_promtool(tmp_path: Path) -> None:
    """Two processes of one job share a GPU using 5 W and emit 1 output token/s in all: 5 J/token."""
    assert PROMTOOL is not None, "promtool missing (CI=true requires the prometheus package)"
    per_job, fleet = (" ".join(b.split()) for b in re.findall(r"```promql\n(.*?)```", DOC, flags=re.S))
    rules = {"groups": [{"name": "doc", "rules": [
        {"record": "job:gpu_energy_per_output_token:joules", "expr": per_job},
        {"record": "fleet:gpu_energy_per_output_token:joules", "expr": fleet},
    ]}]}  # fmt: skip
    gpu = 'hw_id="GPU-1",hw_name="gpu0",hw_type="gpu"'
    energy, tokens = "hw_energy_joules_total", "gen_ai_client_token_usage_sum"
    series = [
        # Both processes see the same device counter (since driver load): +300 J per minute = 5 W.
        {"series": f'{energy}{{job="llm",instance="a",{gpu}}}', "values": "90000+300x20"},
        {"series": f'{energy}{{job="llm",instance="b",{gpu}}}', "values": "90000+300x20"},
        {"series": f'{tokens}{{job="llm",instance="a",gen_ai_token_type="output"}}', "values": "0+20x20"},
        {"series": f'{tokens}{{job="llm",instance="b",gen_ai_token_type="output"}}', "values": "0+40x20"},
        {"series": f'{tokens}{{job="llm",instance="a",gen_ai_token_type="input"}}', "values": "0+5000x20"},
        # An idle job: energy but no tokens gives no result, not +Inf.
        {"series": f'{energy}{{job="idle",instance="c",hw_id="GPU-2",hw_name="gpu0",hw_type="gpu"}}',
         "values": "0+60x20"},
        {"series": f'{tokens}{{job="idle",instance="c",gen_ai_token_type="output"}}', "values": "7x20"},
    ]  # fmt: skip
    tests = {
        "rule_files": ["rules.json"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {"expr": "job:gpu_energy_per_output_token:joules", "eval_time": "10m",
                 "exp_samples": [{"labels": 'job:gpu_energy_per_output_token:joules{job="llm"}', "value": 5}]},
                # Fleet: (5 W + 1 W) / 1 token/s.
                {"expr": "fleet:gpu_energy_per_output_token:joules", "eval_time": "10m",
                 "exp_samples": [{"labels": "fleet:gpu_energy_per_output_token:joules", "value": 6}]},
            ],
        }],
    }  # fmt: skip
    (tmp_path / "rules.json").write_text(json.dumps(rules))  # JSON is YAML
    (tmp_path / "tests.json").write_text(json.dumps(tests))
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "tests.json"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
