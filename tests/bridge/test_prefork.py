"""Prefork servers: kill -9 of a scraped worker and HUP never cost the app or, for long, the endpoint.

Real gunicorn (docs/multiprocess.md's two configurations, verbatim) and ``uvicorn --workers 4``;
a scraper keeps a keep-alive connection to every worker port, as Prometheus does, so a killed
worker leaves its port in TIME-WAIT (issue 14, items 6-8). For each server:

1. every worker port serves, each with its own ``worker`` label;
2. ``kill -9`` of a scraped worker: the app answers every request meanwhile, and the replacement
   serves on the dead worker's port with the same ``worker`` label;
3. ``HUP``: every worker is replaced, the app answers every request meanwhile, every port serves
   again from a new process;
4. requests made afterwards are all visible in the scrapes.
"""

from __future__ import annotations

import http.client
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from bridge_helpers import text_families
from realservers import free_port, free_port_range

# gunicorn and uvicorn are in the test extra: without them the servers fail to start and the test fails.

HERE = Path(__file__).parent
DOC = HERE.parent.parent / "docs" / "multiprocess.md"
COUNTER = "llmtel_cache_requests"
WORKERS = 4


def doc_block(first_line: str) -> str:
    """The fenced code block of docs/multiprocess.md that starts with ``first_line``, verbatim."""
    for block in re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S):
        if block.startswith(first_line + "\n"):
            return str(block)
    raise AssertionError(f"docs/multiprocess.md has no block starting with {first_line!r}")


def _closed_by_server(connection: http.client.HTTPConnection) -> bool:
    """Whether the server closed this idle connection (readable with nothing to read)."""
    sock = connection.sock
    if sock is None:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    try:
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class Scraper:
    """Scrapes every worker port over keep-alive connections every 0.2 s, reconnecting on errors.

    Like Prometheus' (Go's) HTTP client it notices at once when a server closes an idle
    connection, and closes its side too: the server's side then sits in TIME-WAIT on the port.
    """

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.latest: dict[int, str] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        connections: dict[int, http.client.HTTPConnection] = {}
        while not self._stop.wait(0.2):
            for port in self.ports:
                connection = connections.pop(port, None)
                if connection is not None and _closed_by_server(connection):
                    connection.close()
                    connection = None
                connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                try:
                    connection.request("GET", "/metrics")
                    body = connection.getresponse().read().decode()
                    connections[port] = connection
                    with self._lock:
                        self.latest[port] = body
                except (OSError, http.client.HTTPException):
                    connection.close()
                    connections.pop(port, None)
                    with self._lock:
                        self.latest.pop(port, None)
        for connection in connections.values():
            connection.close()

    def body(self, port: int) -> str | None:
        with self._lock:
            return self.latest.get(port)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def _counts(body: str) -> dict[str, float]:
    """worker label -> the app's request count in one scrape."""
    family = text_families(body).get(COUNTER)
    rows = family.samples if family else []
    return {s.labels["worker"]: s.value for s in rows if s.labels.get("llmtel_cache_name") == "prefork"}


def _worker_label(body: str) -> str | None:
    match = re.search(r'^target_info\{[^}]*\bworker="(\d+)"', body, flags=re.M)
    if match:
        return match.group(1)
    match = re.search(r'\bworker="(\d+)"', body)
    return match.group(1) if match else None


def _listeners(master: psutil.Process) -> dict[int, int]:
    """Listening port -> pid, for the master and its workers (one pass over the processes)."""
    found: dict[int, int] = {}
    for process in [master, *master.children(recursive=True)]:
        try:
            for conn in process.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    found[conn.laddr.port] = int(process.pid)
        except psutil.Error:
            continue
    return found


class Server:
    def __init__(self, argv: list[str], env: dict[str, str], app_port: int, ports: list[int], log: Path) -> None:
        self.app_url = f"http://127.0.0.1:{app_port}/"
        self.ports, self.log = ports, log
        with log.open("wb") as out:
            self.process = subprocess.Popen(argv, cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.master = psutil.Process(self.process.pid)
        self.requests = self.failures = 0
        self.errors: list[str] = []

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def request(self) -> None:
        self.requests += 1
        try:
            with urllib.request.urlopen(self.app_url, timeout=5) as response:
                response.read()
        except OSError as exc:  # HTTPError included
            self.failures += 1
            self.errors.append(f"{time.strftime('%H:%M:%S')} {exc!r}")

    def wait(self, what: str, condition: Callable[[], Any], timeout: float = 30) -> Any:
        """Poll ``condition`` while sending app requests (a down app would fail them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited ({self.process.returncode}):\n{self.logs()}"
            self.request()
            value = condition()
            if value:
                return value
            time.sleep(0.15)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")

    def listeners(self) -> dict[int, int | None]:
        found = _listeners(self.master)
        return {port: found.get(port) for port in self.ports}

    def stop(self) -> None:
        children = self.master.children(recursive=True) if self.process.poll() is None else []
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        for child in children:  # by PID, should any outlive the master
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass


def _env(metrics_base: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTEL_"))}
    env.update(
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",  # the docs' setdefault("0.0.0.0") keeps it: loopback only
        OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_base),
        LLMTEL_GPU_METRICS="false",
        LLMTEL_PROCESS_METRICS="false",
        PYTHONPATH=os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p),
        **extra,
    )
    return env


def _gunicorn(tmp_path: Path, preload: bool) -> Server:
    title = "# gunicorn.conf.py (with preload_app)" if preload else "# gunicorn.conf.py (without preload_app)"
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(doc_block(title))
    slots = WORKERS + 1 if preload else WORKERS  # preload: the master is worker 0
    base, app_port = free_port_range(slots), free_port()
    argv = [sys.executable, "-m", "gunicorn", "-c", str(config), "--bind", f"127.0.0.1:{app_port}",
            "--no-control-socket", "--graceful-timeout", "5", "prefork_app:app"]  # fmt: skip
    worker_ports = list(range(base + 1, base + slots)) if preload else list(range(base, base + slots))
    return Server(argv, _env(base), app_port, worker_ports, tmp_path / "server.log")


def _uvicorn(tmp_path: Path) -> Server:
    base, app_port = free_port_range(WORKERS), free_port()
    argv = [sys.executable, "-m", "uvicorn", "prefork_app:asgi", "--workers", str(WORKERS),
            "--host", "127.0.0.1", "--port", str(app_port), "--no-access-log", "--timeout-graceful-shutdown", "5",
            "--timeout-worker-healthcheck", "60"]  # a loaded CI machine starts interpreters slowly  # fmt: skip
    env = _env(base, LLMTEL_PROMETHEUS_WORKERS=str(WORKERS))  # as docs/multiprocess.md says
    return Server(argv, env, app_port, list(range(base, base + WORKERS)), tmp_path / "server.log")


@pytest.fixture(params=["gunicorn-preload", "gunicorn", "uvicorn"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    if request.param == "uvicorn":
        started = _uvicorn(tmp_path)
    else:
        started = _gunicorn(tmp_path, preload=request.param == "gunicorn-preload")
    try:
        yield started
    finally:
        started.stop()


@pytest.mark.realserver
def test_kill_9_and_hup_under_a_keep_alive_scraper(server: Server) -> None:
    ports = server.ports
    scraper = Scraper(ports)
    try:
        # 1. Every worker port serves its own worker label.
        server.wait("every worker port to serve", lambda: all(scraper.body(p) for p in ports), timeout=60)
        server.requests = server.failures = 0  # from now on the app must answer every request
        server.errors.clear()
        phases = [("up", time.monotonic())]
        first = server.listeners()
        labels = {port: _worker_label(scraper.body(port) or "") for port in ports}
        assert len(set(labels.values())) == len(ports), labels

        # 2. kill -9 of a scraped worker: the replacement serves on the same port, same worker label.
        victim_port = ports[1]
        victim = first[victim_port]
        assert victim is not None, first
        os.kill(victim, signal.SIGKILL)
        server.wait("the killed worker to go", lambda: server.listeners()[victim_port] != victim)
        replacement = server.wait(
            "a replacement on the killed worker's port",
            lambda: (pid := server.listeners()[victim_port]) not in (None, victim) and pid,
        )
        body = server.wait("the replacement's scrape", lambda: scraper.body(victim_port) and _scrape(victim_port))
        assert _worker_label(body) == labels[victim_port]
        assert replacement != victim
        phases.append(("kill -9", time.monotonic()))

        # 3. HUP: every worker replaced; every port serves again from a new process.
        before = set(server.listeners().values())
        os.kill(server.process.pid, signal.SIGHUP)
        server.wait(
            "every worker port to serve from a new worker after HUP",
            lambda: (
                all(pid is not None and pid not in before for pid in server.listeners().values())
                and all(scraper.body(p) for p in ports)
            ),
            timeout=60,
        )
        assert server.failures == 0, f"{server.failures}/{server.requests} failed: {server.errors}\n{server.logs()}"
        phases.append(("HUP", time.monotonic()))
        print("\n" + ", ".join(f"{name} {t - phases[0][1]:.1f}s" for name, t in phases[1:]), end=" ")

        # 4. Requests made now are all visible, each counted by exactly one worker.
        baseline = sum(sum(_counts(_scrape(port)).values()) for port in ports)
        calls = 40
        for _ in range(calls):
            server.request()
        assert server.failures == 0, f"{server.errors}\n{server.logs()}"
        after = sum(sum(_counts(_scrape(port)).values()) for port in ports)
        assert after - baseline == calls, (baseline, after)
    finally:
        scraper.stop()
