"""`llmtel_prometheus` works under the SDK's own configurator too (e.g. opentelemetry-distro's)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap


def test_sdk_configurator_serves_the_bridge_from_the_entry_point() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = textwrap.dedent(
        f"""
        import urllib.request
        from opentelemetry import metrics
        from opentelemetry.sdk._configuration import _OTelSDKConfigurator
        _OTelSDKConfigurator().configure()
        histogram = metrics.get_meter("app").create_histogram("app.latency", unit="s")
        histogram.record(0.5)
        body = urllib.request.urlopen("http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "app_latency_seconds_bucket" in body, body
        print("OK")
        """
    )
    env = {
        **os.environ,
        "OTEL_METRICS_EXPORTER": "llmtel_prometheus",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(port),
    }
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
