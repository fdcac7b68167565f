"""The dashboards and rules kept under docs/generated/ match what the commands print now.

Regenerate after a registry change with ``llmtel docs`` (it writes every generated docs file).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

import pytest

from llmtel.cli import dashboards, docgen, rules

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _render(module: ModuleType, argv: list[str], out: Path) -> str:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    assert module.run(parser.parse_args([*argv, "--no-semconv-latest", "-o", str(out)])) == 0
    return out.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(docgen.ARTIFACTS))
def test_generated_file_is_current(name: str) -> None:
    target = DOCS / name
    assert target.exists(), f"{target} missing; run `llmtel docs`"
    assert target.read_text(encoding="utf-8") == docgen.render_artifact(name), f"{target} is stale; run `llmtel docs`"


def test_stale_file_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison can fail: drop one instrument from the registry and the output changes."""
    from llmtel import semconv

    before = _render(dashboards, [], tmp_path / "a.json")
    monkeypatch.setattr(semconv, "INSTRUMENTS", tuple(s for s in semconv.INSTRUMENTS if s.group != "tool"))
    after = _render(dashboards, [], tmp_path / "b.json")
    assert before != after
    assert "llmtel_tool_duration" in before and "llmtel_tool_duration" not in after


#: The flags docs/dashboards.md names for the generated rule files.
SLO_FLAGS = "--slo-ttft-p95 0.32 --slo-duration-p99 10.24 --slo-tool-p95 5 --slo-retrieval-p95 1 --slo-error-rate 0.01 "
SLO_FLAGS += "--cost-budget-daily 100"


@pytest.mark.parametrize(
    ("name", "module", "argv"),
    [
        ("generated/grafana-dashboard.json", dashboards, []),
        ("generated/grafana-dashboard-otlp-collector.json", dashboards, ["--naming", "otlp-collector"]),
        ("generated/prometheus-rules.yaml", rules, SLO_FLAGS.split()),
        ("generated/prometheus-rules-operator.yaml", rules, [*SLO_FLAGS.split(), "--format", "prometheus-operator"]),
    ],
)
def test_the_command_line_prints_what_docgen_writes(
    name: str, module: ModuleType, argv: list[str], tmp_path: Path
) -> None:
    """docgen calls the rendering functions directly; the commands with the documented flags print the same."""
    assert SLO_FLAGS in " ".join((DOCS / "dashboards.md").read_text(encoding="utf-8").split())
    assert _render(module, argv, tmp_path / "out") == docgen.render_artifact(name)
