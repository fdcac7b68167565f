"""The embedded endpoint over real HTTP: negotiation, gzip, path, auth, TLS, app metrics, taken port."""

from __future__ import annotations

import base64
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_helpers import (
    OPENMETRICS_ACCEPT,
    TTFC,
    configured,
    get,
    ids,
    make_certificate,
    om_families,
    streamed_call,
    text_families,
)
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import CounterMetricFamily
from realservers import free_port_range

import llmtel
from llmtel._internal import errors as _errors
from llmtel._internal.errors import ConfigurationError


def test_openmetrics_when_negotiated_text_otherwise_gzip_when_asked() -> None:
    with configured() as telemetry:
        call = streamed_call()
        url = telemetry.metrics_url
        assert url is not None and url.startswith("http://127.0.0.1:")
        status, headers, body = get(url, accept=OPENMETRICS_ACCEPT, headers={"Accept-Encoding": "gzip"})
        assert status == 200
        assert headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
        assert headers["content-encoding"] == "gzip"
        families = om_families(body.decode())
        assert [s.exemplar.labels["span_id"] for s in families[TTFC].samples if s.exemplar] == [ids(call)[1]]
        # The curl above did not eat the exemplar: Prometheus' next scrape still gets it.
        _, _, again = get(url, accept=OPENMETRICS_ACCEPT)
        assert [s.exemplar for s in om_families(again.decode())[TTFC].samples if s.exemplar]
        status, headers, body = get(url, accept="text/plain")
        assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "content-encoding" not in headers
        assert " # {" not in body.decode() and TTFC in text_families(body.decode())
        status, _, body = get(f"{telemetry.endpoint_url}/health")
        assert (status, body) == (200, b'{"status": "ok"}')
        status, _, _ = get(f"{telemetry.endpoint_url}/nope")
        assert status == 404
        # The exemplar's trace resolves at the endpoint's own trace store.
        status, _, body = get(f"{telemetry.endpoint_url}/traces/{ids(call)[0]}")
        assert status == 200 and ids(call)[1].encode() in body


def test_custom_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_PROMETHEUS_PATH", "/internal/prom")
    with configured() as telemetry:
        base = telemetry.endpoint_url
        assert telemetry.endpoint is not None
        assert telemetry.endpoint.metrics_url == f"{base}/internal/prom"
        assert get(f"{base}/internal/prom")[0] == 200
        assert get(f"{base}/metrics")[0] == 404


def test_bad_path_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_PROMETHEUS_PATH", "metrics")
    with pytest.raises(ConfigurationError, match="prometheus_path"):
        llmtel.configure(prometheus_port=0, gpu_metrics=False, process_metrics=False)


def test_basic_auth_protects_metrics_and_traces_not_health(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_PROMETHEUS_BASIC_AUTH", "prom:s3cret")
    with configured() as telemetry:
        base = telemetry.endpoint_url
        status, headers, _ = get(f"{base}/metrics")
        assert status == 401 and headers["www-authenticate"].startswith("Basic")
        wrong = base64.b64encode(b"prom:nope").decode()
        assert get(f"{base}/metrics", headers={"Authorization": f"Basic {wrong}"})[0] == 401
        good = base64.b64encode(b"prom:s3cret").decode()
        assert get(f"{base}/metrics", headers={"Authorization": f"Basic {good}"})[0] == 200
        assert get(f"{base}/traces")[0] == 401
        assert get(f"{base}/health")[0] == 200


def test_basic_auth_needs_user_and_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_PROMETHEUS_BASIC_AUTH", "justauser")
    with pytest.raises(ConfigurationError, match="user:password"):
        llmtel.configure(prometheus_port=0, gpu_metrics=False, process_metrics=False)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return make_certificate(tmp_path)


def test_tls(monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    monkeypatch.setenv("LLMTEL_PROMETHEUS_TLS_CERT", str(cert))
    monkeypatch.setenv("LLMTEL_PROMETHEUS_TLS_KEY", str(key))
    with configured() as telemetry:
        streamed_call()
        url = telemetry.metrics_url
        assert url is not None and url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(cert))
        status, _, body = get(url, accept=OPENMETRICS_ACCEPT, context=context)
        assert status == 200 and TTFC in om_families(body.decode())
        # A plain-HTTP client gets nothing, and the server keeps serving TLS clients afterwards.
        with socket.create_connection((telemetry.endpoint.host, telemetry.endpoint.port), timeout=5) as raw:
            raw.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                raw.recv(100)
            except OSError:
                pass
        assert get(url, context=context)[0] == 200


def test_tls_bad_files_are_a_configuration_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMTEL_PROMETHEUS_TLS_CERT", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match="TLS"):
        llmtel.configure(prometheus_port=0, gpu_metrics=False, process_metrics=False)


@pytest.fixture
def app_metrics() -> Iterator[Counter]:
    """The application's own prometheus_client metrics on the global REGISTRY, plus a clashing family."""

    class Clash:
        def collect(self) -> Iterator[CounterMetricFamily]:
            family = CounterMetricFamily("llmtel_cache_requests", "an app family with llmtel's name")
            family.add_metric([], 99)
            yield family

    counter = Counter("bridge_test_app_requests", "App requests", ["route"])
    clash = Clash()
    REGISTRY.register(clash)  # type: ignore[arg-type]
    try:
        yield counter
    finally:
        REGISTRY.unregister(counter)
        REGISTRY.unregister(clash)  # type: ignore[arg-type]


def test_serves_app_prometheus_client_metrics_once(monkeypatch: pytest.MonkeyPatch, app_metrics: Counter) -> None:
    monkeypatch.setenv("LLMTEL_PROMETHEUS_SERVE_DEFAULT_REGISTRY", "true")
    app_metrics.labels(route="/chat").inc(3)
    with configured() as telemetry:
        llmtel.cache_lookup("prompt", hit=True)
        url = telemetry.metrics_url
        assert url is not None
        for accept in (OPENMETRICS_ACCEPT, "text/plain"):
            body = get(url, accept=accept)[2].decode()
            assert body.count("# TYPE llmtel_cache_requests") == 1, accept
            assert body.count("# EOF") == (1 if accept == OPENMETRICS_ACCEPT else 0)
            parsed = om_families(body) if accept == OPENMETRICS_ACCEPT else text_families(body)
            app = [s for s in parsed["bridge_test_app_requests"].samples if s.name.endswith("_total")]
            assert [(s.labels, s.value) for s in app] == [({"route": "/chat"}, 3.0)]
            ours = parsed["llmtel_cache_requests"].samples
            assert [s.value for s in ours] == [1.0]  # llmtel's, not the clashing 99
            assert "python_info" in body  # prometheus_client's default collectors come along


def test_app_metrics_not_served_unless_asked(app_metrics: Counter) -> None:
    with configured() as telemetry:
        assert telemetry.metrics_url is not None
        assert b"bridge_test_app_requests" not in get(telemetry.metrics_url)[2]


def test_taken_port_is_a_clear_configuration_error() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(ConfigurationError, match=rf"127\.0\.0\.1:{port}.*OTEL_EXPORTER_PROMETHEUS_PORT"):
            llmtel.configure(prometheus_port=port, gpu_metrics=False, process_metrics=False)
    assert llmtel.current() is None


def test_a_worker_whose_ports_are_taken_keeps_running_and_gets_a_port_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker (prometheus_workers > 1) never stops over its endpoint: logged, counted, retried."""
    base = free_port_range(2)
    monkeypatch.setenv("LLMTEL_PROMETHEUS_WORKERS", "2")
    blockers = []
    try:
        for port in (base, base + 1):
            sock = socket.socket()
            sock.bind(("127.0.0.1", port))
            sock.listen()
            blockers.append(sock)
        busy = "endpoint port busy, retrying in the background"
        _errors.reset()  # the first occurrence of a kind is the one logged
        telemetry = llmtel.configure(prometheus_port=base, gpu_metrics=False, process_metrics=False)
        assert telemetry.endpoint is not None and not telemetry.endpoint.serving
        assert telemetry.metrics_url is None
        assert [r for r in caplog.records if f"{base}-{base + 1}" in r.getMessage() and "prometheus_workers" in
                r.getMessage()]  # fmt: skip
        assert _errors.problem_counts().get(busy) == 1
        blockers.pop().close()  # the predecessor on base+1 is gone
        deadline = time.monotonic() + 10
        while not telemetry.endpoint.serving and time.monotonic() < deadline:
            time.sleep(0.05)
        assert telemetry.endpoint.port == base + 1 and telemetry.endpoint.worker == 1
        assert get(f"http://127.0.0.1:{base + 1}/metrics")[0] == 200
    finally:
        for sock in blockers:
            sock.close()


def test_binds_loopback_by_default() -> None:
    with configured() as telemetry:
        assert telemetry.endpoint is not None and telemetry.endpoint.host == "127.0.0.1"


def test_endpoint_options_as_configure_keywords() -> None:
    with configured(
        prometheus_path="/prom",
        prometheus_basic_auth="u:p",
        prometheus_resource_labels=["service.name"],
        service_name="kw",
    ) as telemetry:
        llmtel.cache_lookup("prompt", hit=True)
        base = telemetry.endpoint_url
        assert get(f"{base}/prom")[0] == 401
        token = base64.b64encode(b"u:p").decode()
        status, _, body = get(f"{base}/prom", headers={"Authorization": f"Basic {token}"})
        assert status == 200
        [sample] = text_families(body.decode())["llmtel_cache_requests"].samples
        assert sample.labels["service_name"] == "kw"


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this kernel")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"::1 not usable here: {exc}")
    with configured(prometheus_host="::1") as telemetry:
        assert telemetry.endpoint_url is not None and telemetry.endpoint_url.startswith("http://[::1]:")
        assert get(f"{telemetry.endpoint_url}/health")[0] == 200
