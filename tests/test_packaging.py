"""Packaging and install docs: metadata setuptools accepts, install commands that work, quickstart snippets
that run as written (issue 14, item 16)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).parent.parent
PROJECTS = [ROOT, *sorted(p.parent for p in (ROOT / "instrumentations").glob("*/pyproject.toml"))]


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_license_is_an_spdx_expression_with_its_file(project: Path) -> None:
    """PEP 639: a table in ``project.license`` is deprecated (setuptools warns on every build)."""
    config = tomllib.loads((project / "pyproject.toml").read_text())
    meta = config["project"]
    assert meta["license"] == "Apache-2.0"
    for name in meta["license-files"]:
        text = (project / name).read_text()
        assert "Apache License" in text and "Version 2.0, January 2004" in text
    [setuptools] = [r for r in config["build-system"]["requires"] if r.startswith("setuptools")]
    minimum = re.fullmatch(r"setuptools>=(\d+).*", setuptools)
    assert minimum and int(minimum.group(1)) >= 77, "license expressions need setuptools 77"


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("instrumentations/*/README.md"))]
# "pip install llmtel", "pip install 'llmtel[aws]'"... but not "llmtel @ git+<url>" (a direct reference).
PYPI_INSTALL = re.compile(r"""pip install\s+['"]?(llmtel(?:-openai|-grpc)?)(?:\[[^\]]*\])?['"]?(?=\s|$|`)(?!\s*@)""")


def test_docs_never_install_llmtel_from_pypi() -> None:
    """llmtel is not published: every install command uses a clone or a git URL."""
    offending = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in DOCS
        for match in PYPI_INSTALL.finditer(path.read_text())
    ]
    assert not offending, offending
    assert "## Install" in (ROOT / "README.md").read_text()


def _python_block_after(doc: str, heading: str) -> str:
    section = doc.split(heading, 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_quickstart_in_tests_snippet_runs_as_written(tmp_path: Path) -> None:
    snippet = _python_block_after((ROOT / "docs" / "quickstart.md").read_text(), "## In tests")
    (tmp_path / "test_snippet.py").write_text(snippet)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_snippet.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]


def test_quickstart_configure_prices_the_call_it_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quickstart lists the cost metric: its configure() must produce one without the prices extra."""
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    import llmtel

    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "0")
    monkeypatch.setenv("LLMTEL_DEFAULT_PRICES", "false")  # a user without the prices extra
    code = _python_block_after((ROOT / "docs" / "quickstart.md").read_text(), "# Quickstart")
    call = re.search(r"^llmtel\.configure\(.*?^\)\n", code, flags=re.S | re.M)
    assert call, code
    memory = InMemoryMetricReader()
    configure = llmtel.configure

    def with_reader(**kwargs: object) -> object:
        return configure(**kwargs, metric_readers=[memory], gpu_metrics=False, process_metrics=False)

    exec(call.group(0), {"llmtel": type("L", (), {"configure": staticmethod(with_reader)})})
    with llmtel.llm_call(provider="openai", model="gpt-4o-mini") as llm:
        llm.set_usage(input_tokens=812, output_tokens=96)
    data = memory.get_metrics_data()
    costs = [
        point.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "llmtel.gen_ai.client.cost"
        for point in metric.data.data_points
    ]
    assert sum(costs) > 0
