"""The registry matches the upstream semantic-conventions package, and the docs match the registry."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from prometheus_client import CollectorRegistry, generate_latest

from llmtel import semconv
from llmtel._internal.instruments import Instruments
from llmtel._internal.naming import prometheus_series
from llmtel.cli import docgen

ROOT = Path(__file__).resolve().parents[1]


class _RecordingMeter:
    """Captures what an upstream create_* factory asks the meter for."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def create_histogram(self, name: str, unit: str = "", description: str = "", **kw: Any) -> None:
        self.calls.append({"name": name, "unit": unit, "description": description, "kind": "histogram"})


def _upstream_gen_ai() -> dict[str, dict[str, Any]]:
    found = {}
    for name, factory in inspect.getmembers(gen_ai_metrics, inspect.isfunction):
        if name.startswith("create_"):
            meter = _RecordingMeter()
            factory(meter)
            (call,) = meter.calls
            found[call["name"]] = call
    return found


def test_every_upstream_gen_ai_metric_is_in_the_registry_unchanged() -> None:
    upstream = _upstream_gen_ai()
    ours = {spec.name: spec for spec in semconv.INSTRUMENTS if spec.upstream and spec.name.startswith("gen_ai.")}
    assert set(upstream) == set(ours), "registry and opentelemetry-semantic-conventions disagree on gen_ai metrics"
    for name, call in upstream.items():
        spec = ours[name]
        assert spec.unit == call["unit"], name
        assert spec.kind.value == call["kind"], name
        assert spec.description.rstrip(".") == call["description"].rstrip("."), name


def test_llmtel_additions_live_under_the_llmtel_namespace() -> None:
    for spec in semconv.INSTRUMENTS:
        if not spec.upstream:
            assert spec.name.startswith(("llmtel.", "hw.", "process.", "cpython.")), spec.name
        assert spec.description and spec.unit, spec.name
        if spec.kind is semconv.Kind.HISTOGRAM:
            assert spec.buckets and list(spec.buckets) == sorted(spec.buckets), spec.name
    names = [spec.name for spec in semconv.INSTRUMENTS]
    assert len(names) == len(set(names))


def test_gen_ai_keys_are_upstream_or_read_from_other_sources() -> None:
    """llmtel writes no ``gen_ai.*`` key of its own; its non-upstream ones are other sources' keys it reads."""
    upstream = {
        value
        for module in (gen_ai_attributes, gen_ai_metrics)
        for value in vars(module).values()
        if isinstance(value, str) and value.startswith("gen_ai.")
    }
    foreign = ("OPENLLMETRY_", "ANTHROPIC_")
    for name, value in vars(semconv).items():
        if name.isupper() and isinstance(value, str) and value.startswith("gen_ai."):
            assert value in upstream or name.startswith(foreign), f"semconv.{name} = {value!r} squats on gen_ai"


def _gen_ai_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string constant starting with ``gen_ai.``, docstrings and comments aside."""
    tree = ast.parse(source)
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith("gen_ai.")
        and id(node) not in docstrings
    ]


def test_the_runtime_takes_gen_ai_names_from_the_registry() -> None:
    """A ``gen_ai.*`` name retyped in runtime code drifts from upstream: it must come from llmtel.semconv.

    Runtime code is llmtel/ but the registry itself and the CLI's generators; the bare namespace
    prefix ``gen_ai.`` is no name.
    """
    sample = '"""gen_ai.a in a docstring"""\nx = {"gen_ai.b": 1, "llmtel.gen_ai.c": 2}\ny = f"gen_ai.{x}"\n'
    assert _gen_ai_literals(sample) == [(2, "gen_ai.b"), (3, "gen_ai.")]  # the scan itself can find them
    package = ROOT / "llmtel"
    runtime = [
        path
        for path in sorted(package.rglob("*.py"))
        if path != package / "semconv.py" and path.relative_to(package).parts[0] != "cli"
    ]
    found = [
        f"{path.relative_to(ROOT)}:{line} {text!r}"
        for path in runtime
        for line, text in _gen_ai_literals(path.read_text())
        if text != "gen_ai."
    ]
    assert any(path.parent.name == "_internal" for path in runtime)
    assert not found, "use (or add) the llmtel.semconv constant instead of:\n" + "\n".join(found)


def test_client_measurements_never_use_server_names() -> None:
    for spec in semconv.INSTRUMENTS:
        if spec.group != "server":
            assert not spec.name.startswith("gen_ai.server."), spec.name


def test_prometheus_names_are_what_the_exporter_serves() -> None:
    """llmtel._internal.naming must agree with opentelemetry-exporter-prometheus (fails loudly if upstream changes)."""
    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    instruments = Instruments(provider.get_meter("t"))
    for spec in semconv.INSTRUMENTS:
        if spec.kind.observable:
            continue
        instrument = instruments.get(spec.name)
        if spec.kind is semconv.Kind.HISTOGRAM:
            instrument.record(1.0)
        elif spec.kind is semconv.Kind.GAUGE:
            instrument.set(1.0)
        else:
            instrument.add(1)
    text = generate_latest(registry).decode()
    served = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    for spec in semconv.INSTRUMENTS:
        if not spec.kind.observable:
            for series in prometheus_series(spec, latest=False):
                assert series in served, f"{spec.name}: {series} not in scrape"
    assert "gen_ai_client_token_usage_bucket" in served  # {token} annotation gives no suffix
    assert "llmtel_gen_ai_client_cost_USD_total" in served
    provider.shutdown()


def test_instrument_handles_are_typed_by_registry_kind() -> None:
    instruments = Instruments(MeterProvider().get_meter("t"))
    accessors = {
        semconv.Kind.HISTOGRAM: (instruments.histogram, metrics.Histogram),
        semconv.Kind.COUNTER: (instruments.adder, metrics.Counter),
        semconv.Kind.UP_DOWN_COUNTER: (instruments.adder, metrics.UpDownCounter),
        semconv.Kind.GAUGE: (instruments.gauge, metrics._Gauge),
    }
    for spec in semconv.INSTRUMENTS:
        if spec.kind.observable:
            continue
        accessor, api_class = accessors[spec.kind]
        assert isinstance(accessor(spec.name), api_class), spec.name
        for other, _ in accessors.values():
            if other != accessor:
                with pytest.raises(KeyError):
                    other(spec.name)
    assert isinstance(instruments.client_duration, metrics.Histogram)
    assert isinstance(instruments.active, metrics.UpDownCounter)


def test_latest_experimental_names(monkeypatch: pytest.MonkeyPatch) -> None:
    tool = semconv.spec("llmtel.tool.duration")
    assert semconv.emitted_name(tool, latest=False) == "llmtel.tool.duration"
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http, gen_ai_latest_experimental")
    assert semconv.emitted_name(tool) == "gen_ai.execute_tool.duration"
    assert semconv.emitted_name(semconv.spec("gen_ai.client.operation.duration")) == "gen_ai.client.operation.duration"


@pytest.mark.parametrize("page", sorted(docgen.PAGES))
def test_generated_docs_are_current(page: str) -> None:
    committed = (ROOT / "docs" / page).read_text(encoding="utf-8")
    assert committed == docgen.PAGES[page](), f"docs/{page} is stale: run `llmtel docs`"


def test_cli_lists_its_commands() -> None:
    result = subprocess.run([sys.executable, "-m", "llmtel", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("demo", "docs"):
        assert command in result.stdout
