"""The three cloud exporters by name, as users pick them: entry points, no-argument construction, configure().

The entry points are read from pyproject.toml and exposed through a throwaway ``*.dist-info`` on
``sys.path`` (the same discovery ``importlib.metadata`` does for an installed llmtel), so the test
does not depend on how the working tree happens to be installed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cloud_fakes import AzureTrackServer, OtlpGrpcReceiver, service_account_info
from opentelemetry.sdk.metrics.export import MetricExporter
from realservers import self_signed_cert

import llmtel
from llmtel import semconv
from llmtel._internal.naming import prometheus_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

pytestmark = pytest.mark.realserver

GROUP = "opentelemetry_metrics_exporter"
AZURE_INSTALLED = importlib.util.find_spec("azure") is not None and (
    importlib.util.find_spec("azure.monitor.opentelemetry.exporter") is not None
)
# The azure extra needs opentelemetry-sdk 1.43+: where it is not installed, its exporter is not built.
NAMES = ("llmtel_cloudwatch", "llmtel_gcp", *(("llmtel_azure",) if AZURE_INSTALLED else ()))
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
TOKENS = semconv.spec("gen_ai.client.token.usage")


def _declared() -> dict[str, str]:
    return dict(tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"][GROUP])


@pytest.fixture
def entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    declared = _declared()
    dist = tmp_path / "site" / "llmtel_cloud_entry_points-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: llmtel-cloud-entry-points\nVersion: 0.0\n")
    lines = [f"[{GROUP}]", *(f"{name} = {target}" for name, target in declared.items())]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return declared


@pytest.fixture
def vendor_env(aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """All three vendors configured through their standard variables, each pointing at a local endpoint."""
    key, cert = self_signed_cert()
    (tmp_path / "ca.pem").write_bytes(cert)
    info, _ = service_account_info("http://127.0.0.1:9/token", "cfg-project", universe="llmtel.test")
    (tmp_path / "adc.json").write_text(json.dumps(info))
    with OtlpGrpcReceiver(tls=(key, cert)) as rx, AzureTrackServer() as track:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "adc.json"))
        monkeypatch.setenv("LLMTEL_GCP_ENDPOINT", rx.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", str(tmp_path / "ca.pem"))
        monkeypatch.setenv(
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            f"InstrumentationKey={'0' * 8}-0000-4000-8000-{'0' * 12};IngestionEndpoint={track.url}/",
        )
        for switch in ("STATSBEAT_DISABLED_ALL", "SDKSTATS_DISABLED", "CONTROLPLANE_DISABLED"):
            monkeypatch.setenv(f"APPLICATIONINSIGHTS_{switch}", "true")
        monkeypatch.setenv("LLMTEL_AZURE_DISABLE_OFFLINE_STORAGE", "true")
        monkeypatch.setenv("LLMTEL_CLOUDWATCH_LOG_STREAM", "cfg")
        yield {"gcp": rx, "azure": track}


def test_entry_points_are_declared_and_build_with_no_arguments(
    entry_points: dict[str, str], vendor_env: dict[str, Any]
) -> None:
    from importlib.metadata import entry_points as installed

    assert set(NAMES) <= set(entry_points)
    found = {ep.name: ep for ep in installed(group=GROUP) if ep.name in NAMES}
    assert set(found) == set(NAMES)
    for name in NAMES:
        cls = found[name].load()
        assert isinstance(cls, type) and issubclass(cls, MetricExporter), name
        instance = cls()  # what configure() and the OTel SDK do: no arguments, environment only
        instance.shutdown()


def _tokens_in_scrape(url: str) -> float:
    scrape = urllib.request.urlopen(url, timeout=5).read().decode()
    family = prometheus_name(TOKENS)
    return sum(float(line.rsplit(" ", 1)[1]) for line in scrape.splitlines() if line.startswith(f"{family}_sum{{"))


@pytest.mark.parametrize("name", NAMES)
def test_configure_by_name_beside_the_bridge(
    name: str, entry_points: dict[str, str], vendor_env: dict[str, Any]
) -> None:
    telemetry = llmtel.configure(
        service_name="cfg-test",
        metrics_exporter=f"llmtel_prometheus,{name}",
        prometheus_port=0,
        process_metrics=False,
        gpu_metrics=False,
    )
    with llmtel.llm_call(provider="openai", model="gpt-4o") as call:
        call.set_usage(input_tokens=3, output_tokens=5)
    assert llmtel.force_flush()
    assert telemetry.metrics_url is not None
    assert _tokens_in_scrape(telemetry.metrics_url) == 8
    llmtel.shutdown()

    if name == "llmtel_cloudwatch":
        logs = boto3.client("logs", region_name="eu-west-1")
        events = logs.get_log_events(logGroupName="/llmtel/metrics", logStreamName="cfg", startFromHead=True)
        records = [json.loads(e["message"]) for e in events["events"]]
        usage = [r for r in records if TOKENS.name in r]
        assert sorted(r[semconv.TOKEN_TYPE] for r in usage) == ["input", "output"]
        assert sum(r[TOKENS.name]["Sum"] for r in usage) == 8
        assert all(r["service.name"] == "cfg-test" for r in usage)
    elif name == "llmtel_gcp":
        rx: OtlpGrpcReceiver = vendor_env["gcp"]
        points = rx.points(TOKENS.name)
        assert points and points[0][0]["gcp.project_id"] == "cfg-project"
        assert sum(p.sum for _, _, p in points[-2:]) == 8  # the last export holds both token types
        assert rx.requests[0][0]["authorization"].startswith("Bearer ")
    else:
        track: AzureTrackServer = vendor_env["azure"]
        sent = track.metrics(TOKENS.name)
        assert sorted((m["properties"][semconv.TOKEN_TYPE], m["value"]) for m in sent) == [("input", 3), ("output", 5)]
