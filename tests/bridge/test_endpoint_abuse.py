"""The endpoint under slow, idle and odd clients: bounded threads, deadlines, no echo, RFC auth schemes."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time

import pytest
from bridge_helpers import configured, get, text_families

from llmtel._internal import errors as _errors
from llmtel.serving.endpoint import _Server


def _connect(url: str) -> socket.socket:
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except TimeoutError:
        return False
    except OSError:
        return True


def test_a_trickling_client_is_cut_off_at_the_head_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Server, "head_timeout", 0.5)
    with configured() as telemetry:
        sock = _connect(telemetry.endpoint_url)
        with sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")
            for _ in range(3):  # one header line every 0.3 s: each within the socket timeout, never done
                time.sleep(0.3)
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    break
            assert _closed_by_server(sock, within=3.0)


def test_an_idle_keep_alive_connection_is_closed_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A browser tab or a scraper between scrapes is not a slow client: closed, not counted or logged."""
    monkeypatch.setattr(_Server, "head_timeout", 0.5)
    _errors.reset()
    with configured() as telemetry:
        sock = _connect(telemetry.endpoint_url)
        with sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"200" in sock.recv(4096).split(b"\r\n", 1)[0]
            assert _closed_by_server(sock, within=3.0)  # idle past the deadline: closed
        slow = _connect(telemetry.endpoint_url)
        with slow:
            slow.sendall(b"GET /health HTTP/1.1\r\n")  # never finishes its head
            assert _closed_by_server(slow, within=3.0)
    assert _errors.problem_counts().get("endpoint slow connection closed") == 1


def test_metrics_answers_behind_a_thousand_idle_connections() -> None:
    with configured() as telemetry:
        threads_before = threading.active_count()
        idle = [_connect(telemetry.endpoint_url) for _ in range(1000)]
        try:
            time.sleep(0.5)  # let the server accept them all
            # One thread per served connection, at most max_connections of them.
            assert threading.active_count() - threads_before <= _Server.max_connections + 2
            started = time.monotonic()
            status, _, body = get(telemetry.metrics_url)
            assert status == 200 and "target_info" in text_families(body.decode())
            assert time.monotonic() - started < 5
        finally:
            for sock in idle:
                sock.close()


@pytest.mark.parametrize("scheme", ["basic", "BASIC", "Basic", "bAsIc"])
def test_basic_auth_scheme_is_case_insensitive(monkeypatch: pytest.MonkeyPatch, scheme: str) -> None:
    monkeypatch.setenv("LLMTEL_PROMETHEUS_BASIC_AUTH", "prom:s3cret")
    with configured() as telemetry:
        good = base64.b64encode(b"prom:s3cret").decode()
        assert get(telemetry.metrics_url, headers={"Authorization": f"{scheme} {good}"})[0] == 200
        assert get(telemetry.metrics_url, headers={"Authorization": f"Bearer {good}"})[0] == 401


@pytest.mark.parametrize("path", ["/traces/" + "a" * 60_000, "/" + "b" * 60_000])
def test_404_does_not_echo_a_long_path(path: str) -> None:
    with configured() as telemetry:
        status, _, body = get(f"{telemetry.endpoint_url}{path}")
        assert status == 404
        assert len(body) < 300, body[:300]
        json.loads(body)


def test_a_request_past_its_deadline_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Server, "request_timeout", 0.5)
    with configured() as telemetry:
        bridge = telemetry.bridge
        assert bridge is not None
        render = bridge.render

        def slow_render(**kwargs: object) -> str:
            time.sleep(2)  # stands for a response the client reads at a trickle
            return render(**kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(bridge, "render", slow_render)
        sock = _connect(telemetry.endpoint_url)
        with sock:
            started = time.monotonic()
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _closed_by_server(sock, within=1.5)
            assert time.monotonic() - started < 1.5
