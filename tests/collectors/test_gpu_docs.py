"""docs/gpu.md stays in step with the registry and the Prometheus naming."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GenAiTokenTypeValues

from llmtel import semconv
from llmtel.naming import prometheus_label, prometheus_series

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


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_documented_promql_parses(tmp_path: Path) -> None:
    blocks = re.findall(r"```promql\n(.*?)```", DOC, flags=re.S)
    assert len(blocks) == 2
    rules = {
        "groups": [
            {
                "name": "doc",
                "rules": [{"record": f"doc:expr{i}", "expr": " ".join(b.split())} for i, b in enumerate(blocks)],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
