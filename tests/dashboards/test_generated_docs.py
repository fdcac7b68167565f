"""The dashboards and rules kept under docs/generated/ match what the commands print now.

Regenerate after a registry change with::

    LLMTEL_REGENERATE=1 .venv/bin/python -m pytest tests/dashboards/test_generated_docs.py

(or run the ``llmtel dashboard`` / ``llmtel rules`` command lines listed in OUTPUTS with ``-o FILE``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from types import ModuleType

import pytest

from llmtel import dashboards, rules

DOCS = Path(__file__).resolve().parents[2] / "docs" / "generated"
SLO_ARGS = ["--slo-ttft-p95", "0.35", "--slo-error-rate", "0.01"]
#: file -> (module, command-line arguments); --no-semconv-latest pins the default GenAI names.
#: (No otlp-collector rules file: today's rules read no unit-"1" gauge, so it would equal the default one.)
OUTPUTS: dict[str, tuple[ModuleType, list[str]]] = {
    "grafana-dashboard.json": (dashboards, []),
    "grafana-dashboard-otlp-collector.json": (dashboards, ["--naming", "otlp-collector"]),
    "prometheus-rules.yaml": (rules, SLO_ARGS),
    "prometheus-rules-operator.yaml": (rules, [*SLO_ARGS, "--format", "prometheus-operator"]),
}


def _render(module: ModuleType, argv: list[str], out: Path) -> str:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    assert module.run(parser.parse_args([*argv, "--no-semconv-latest", "-o", str(out)])) == 0
    return out.read_text(encoding="utf-8")


@pytest.mark.parametrize("filename", sorted(OUTPUTS))
def test_generated_file_is_current(filename: str, tmp_path: Path) -> None:
    module, argv = OUTPUTS[filename]
    fresh = _render(module, argv, tmp_path / filename)
    target = DOCS / filename
    if os.environ.get("LLMTEL_REGENERATE") == "1":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(fresh, encoding="utf-8")
    assert target.exists(), f"{target} missing; regenerate (see this module's docstring)"
    assert target.read_text(encoding="utf-8") == fresh, f"{target} is stale; regenerate (see this module's docstring)"


def test_stale_file_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison can fail: drop one instrument from the registry and the output changes."""
    from llmtel import semconv

    before = _render(dashboards, [], tmp_path / "a.json")
    monkeypatch.setattr(semconv, "INSTRUMENTS", tuple(s for s in semconv.INSTRUMENTS if s.group != "tool"))
    after = _render(dashboards, [], tmp_path / "b.json")
    assert before != after
    assert "llmtel_tool_duration" in before and "llmtel_tool_duration" not in after
