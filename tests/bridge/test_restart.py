"""Restarting on a port that was just scraped, and bind errors that name the real cause (issue 14, item 6).

A scraper (Prometheus keeps connections alive) leaves the endpoint's port in TIME-WAIT after the
server side closes; without SO_REUSEADDR a new listener cannot bind it for about a minute.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import time

import pytest
from realservers import free_port

import llmtel
from llmtel import ConfigurationError

QUIET = {"gpu_metrics": False, "process_metrics": False}


def _scrape(connection: http.client.HTTPConnection) -> int:
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    response.read()
    return response.status


def test_configure_again_on_a_just_scraped_port() -> None:
    port = free_port()
    llmtel.configure(prometheus_port=port, **QUIET)
    scraper = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        assert _scrape(scraper) == 200  # the scraper keeps its connection
        llmtel.shutdown()
        telemetry = llmtel.configure(prometheus_port=port, **QUIET)  # raised "Address already in use" before
        assert telemetry.endpoint is not None and telemetry.endpoint.port == port
        fresh = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        assert _scrape(fresh) == 200
        fresh.close()
    finally:
        scraper.close()


def test_a_port_in_use_still_fails_loudly() -> None:
    """SO_REUSEADDR never lets two listeners share a port (that would be SO_REUSEPORT)."""
    telemetry = llmtel.configure(prometheus_port=0, **QUIET)
    assert telemetry.endpoint is not None
    from llmtel.serving.endpoint import Endpoint

    with pytest.raises(ConfigurationError, match="Another process"):
        Endpoint("127.0.0.1", telemetry.endpoint.port, registry=None, trace_store=None)


@pytest.mark.parametrize("host", ["256.1.1.1", "192.0.2.1"], ids=["not-an-address", "not-this-machine"])
def test_a_bad_host_is_not_blamed_on_another_process(host: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        llmtel.configure(prometheus_host=host, prometheus_port=0, **QUIET)
    message = str(caught.value)
    assert "prometheus_host" in message and host in message
    assert "another process" not in message.lower()


def _scraped_then_idle(port: int, deadline: float) -> http.client.HTTPConnection:
    """A keep-alive connection that scraped once and now sits idle, as Prometheus' between scrapes."""
    while True:
        scraper = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            assert _scrape(scraper) == 200
            return scraper
        except OSError:
            scraper.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_demo_restarts_on_the_port_it_just_served() -> None:
    """The server side closes the idle connection when the demo exits: its port sits in TIME-WAIT."""
    port = free_port()
    command = [sys.executable, "-m", "llmtel", "demo", "--port", str(port), "--speed", "20", "--quiet"]
    first = subprocess.Popen([*command, "--duration", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        scraper = _scraped_then_idle(port, time.monotonic() + 20)
        _, err = first.communicate(timeout=30)
        assert first.returncode == 0, err
        scraper.close()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    second = subprocess.run([*command, "--duration", "0.5"], capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr  # "Address already in use" before SO_REUSEADDR


def test_shutdown_closes_keep_alive_connections_too() -> None:
    """A scraper's kept-alive connection must not go on reading a stopped configuration's numbers."""
    port = free_port()
    llmtel.configure(prometheus_port=port, **QUIET)
    scraper = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        assert _scrape(scraper) == 200
        llmtel.shutdown()
        llmtel.configure(prometheus_port=port, **QUIET)
        llmtel.cache_lookup("after-restart", hit=True)
        try:
            scraper.request("GET", "/metrics")
            body = scraper.getresponse().read().decode()
        except (OSError, http.client.HTTPException):
            body = None  # closed: the scraper reconnects, to the new server
        if body is not None:  # http.client reconnects by itself only when it saw the close before sending
            assert "after-restart" in body, "the old server answered on the kept-alive connection"
    finally:
        scraper.close()
