"""The deployment YAML under deploy/ parses and is internally consistent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="pyyaml is in the test extra")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def test_every_yaml_file_parses() -> None:
    files = sorted(DEPLOY.rglob("*.y*ml"))
    assert len(files) >= 5, files
    for path in files:
        assert _docs(path), path


def test_collector_pipeline_is_wired() -> None:
    [config] = _docs(DEPLOY / "otel-collector.yaml")
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"metrics", "traces"}
    for pipeline in pipelines.values():
        for section in ("receivers", "processors", "exporters"):
            for name in pipeline[section]:
                assert name in config[section], f"{section}.{name} used but not defined"
        assert pipeline["receivers"] == ["otlp"]
        # memory_limiter first and batch last, as the collector docs recommend.
        assert pipeline["processors"][0] == "memory_limiter" and pipeline["processors"][-1] == "batch"
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    assert "prometheusremotewrite" in pipelines["metrics"]["exporters"]
    assert any(e.startswith("otlp") for e in pipelines["traces"]["exporters"])
    for extension in config["service"]["extensions"]:
        assert extension in config["extensions"]


def _by_kind(path: Path) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in _docs(path)}


def test_app_deployment_is_scrapable_by_annotation_service_and_servicemonitor() -> None:
    app = _by_kind(DEPLOY / "k8s" / "app.yaml")
    deployment, service = app["Deployment"], app["Service"]
    template = deployment["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    [container] = template["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    port = int(env["OTEL_EXPORTER_PROMETHEUS_PORT"])
    assert int(annotations["prometheus.io/port"]) == port
    assert env["OTEL_EXPORTER_PROMETHEUS_HOST"] == "0.0.0.0"  # a pod scraped from outside
    assert env["OTEL_PYTHON_DISTRO"] == env["OTEL_PYTHON_CONFIGURATOR"] == "llmtel"
    assert container["command"][0] == "opentelemetry-instrument"
    [container_port] = container["ports"]
    assert container_port["containerPort"] == port
    labels = template["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    [service_port] = service["spec"]["ports"]
    assert service_port["targetPort"] == container_port["name"]

    [monitor] = _docs(DEPLOY / "k8s" / "servicemonitor.yaml")
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service_port["name"] and endpoint["path"] == "/metrics"


def test_collector_manifest_exposes_otlp_ports() -> None:
    objs = _by_kind(DEPLOY / "k8s" / "collector.yaml")
    ports = {p["port"] for p in objs["Service"]["spec"]["ports"]}
    assert ports == {4317, 4318}
    [config] = _docs(DEPLOY / "otel-collector.yaml")
    grpc_endpoint = config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert grpc_endpoint.endswith(":4317")


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_prometheus_config_with_promtool(tmp_path: Path) -> None:
    config = DEPLOY / "prometheus" / "prometheus.yml"
    result = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    out = result.stdout + result.stderr
    if result.returncode != 0 and "kubernetes_sd_configs not found" in out:
        # The file says so, for whoever tries it with Debian's promtool.
        header = config.read_text().split("global:")[0]
        assert "Prometheus 2.26 or later" in header and "Debian" in header and "Kubernetes" in header
        # Debian builds Prometheus without Kubernetes service discovery; check everything else by
        # swapping the discovery for a static target.
        doc = yaml.safe_load(config.read_text())
        for job in doc["scrape_configs"]:
            job.pop("kubernetes_sd_configs")
            job["static_configs"] = [{"targets": ["127.0.0.1:9464"]}]
        patched = tmp_path / "prometheus.yml"
        patched.write_text(yaml.safe_dump(doc))
        result = subprocess.run(
            ["promtool", "check", "config", str(patched)], capture_output=True, text=True, timeout=60
        )
        out = result.stdout + result.stderr
    assert result.returncode == 0, out
