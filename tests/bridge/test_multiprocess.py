"""Forked worker processes (gunicorn/uvicorn style): each worker's counts are served exactly once.

Two real ways workers come to be:
* each worker calls configure() itself (gunicorn without --preload, uvicorn --workers):
  all ask for the same port; with prometheus_workers=N each takes the first free one of
  port..port+N-1 and labels its series worker="<offset>";
* configure() ran in the master and the workers are forked from it (gunicorn --preload):
  the endpoint moves each child to its own port and the child starts its series from zero,
  so the master's counts are not repeated once per worker.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from typing import Any

import pytest
from bridge_helpers import get, text_families
from realservers import free_port_range

import llmtel

fork = multiprocessing.get_context("fork")
COUNTER = "llmtel_cache_requests"


def _own_worker(base: int, calls: int, out: Any, stop: Any) -> None:
    try:
        llmtel.shutdown()
        telemetry = llmtel.configure(prometheus_port=base, gpu_metrics=False, process_metrics=False)
        for _ in range(calls):
            llmtel.cache_lookup("worker", hit=True)
        assert telemetry.endpoint is not None
        out.put((os.getpid(), telemetry.endpoint.port, telemetry.endpoint.worker, calls))
        stop.wait(30)
        llmtel.shutdown()
    except BaseException as exc:  # report to the parent instead of dying silently
        out.put(("error", repr(exc)))


def _forked_worker(calls: int, out: Any, stop: Any) -> None:
    try:
        for _ in range(calls):
            llmtel.cache_lookup("worker", hit=True)
        telemetry = llmtel.current()
        assert telemetry is not None and telemetry.endpoint is not None
        out.put((os.getpid(), telemetry.endpoint.port, telemetry.endpoint.worker, calls))
        stop.wait(30)
        llmtel.shutdown()
    except BaseException as exc:
        out.put(("error", repr(exc)))


@pytest.fixture
def workers() -> Iterator[list[Any]]:
    processes: list[Any] = []
    yield processes
    for process in processes:  # stopped by PID even when the test failed
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)


def _counts_by_port(ports: list[int]) -> dict[int, list[tuple[dict[str, str], float]]]:
    seen: dict[int, list[tuple[dict[str, str], float]]] = {}
    for port in ports:
        status, _, body = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        family = text_families(body.decode()).get(COUNTER)
        seen[port] = [(s.labels, s.value) for s in family.samples] if family else []
    return seen


def _collect(out: Any, count: int) -> list[tuple[int, int, int, int]]:
    reports = [out.get(timeout=30) for _ in range(count)]
    errors = [r for r in reports if r[0] == "error"]
    assert not errors, errors
    return reports


def test_workers_that_configure_themselves(monkeypatch: pytest.MonkeyPatch, workers: list[Any]) -> None:
    monkeypatch.setenv("LLMTEL_PROMETHEUS_WORKERS", "3")
    base = free_port_range(3)
    out, stop = fork.Queue(), fork.Event()
    for calls in (1, 2, 3):
        process = fork.Process(target=_own_worker, args=(base, calls, out, stop))
        process.start()
        workers.append(process)
    try:
        reports = _collect(out, 3)
        ports = sorted(port for _, port, _, _ in reports)
        assert ports == [base, base + 1, base + 2]
        seen = _counts_by_port(ports)
        expected = {str(port - base): calls for _, port, _, calls in reports}
        served: dict[str, list[float]] = {}
        for port, rows in seen.items():
            for labels, value in rows:
                assert labels["worker"] == str(port - base)  # a worker serves only its own series
                served.setdefault(labels["worker"], []).append(value)
        assert served == {worker: [float(calls)] for worker, calls in expected.items()}  # each exactly once
    finally:
        stop.set()


def test_workers_forked_after_configure(monkeypatch: pytest.MonkeyPatch, workers: list[Any]) -> None:
    monkeypatch.setenv("LLMTEL_PROMETHEUS_WORKERS", "3")
    base = free_port_range(3)
    telemetry = llmtel.configure(prometheus_port=base, gpu_metrics=False, process_metrics=False)
    try:
        assert telemetry.endpoint is not None and telemetry.endpoint.worker == 0
        for _ in range(5):
            llmtel.cache_lookup("master", hit=True)  # recorded before the fork
        out, stop = fork.Queue(), fork.Event()
        for calls in (2, 4):
            process = fork.Process(target=_forked_worker, args=(calls, out, stop))
            process.start()
            workers.append(process)
        try:
            reports = _collect(out, 2)
            assert sorted(port for _, port, _, _ in reports) == [base + 1, base + 2]
            assert {worker for _, _, worker, _ in reports} == {1, 2}
            seen = _counts_by_port([base, base + 1, base + 2])
            master = [(labels["worker"], value) for rows in seen.values() for labels, value in rows
                      if labels["llmtel_cache_name"] == "master"]  # fmt: skip
            assert master == [("0", 5.0)]  # the master's counts once, not once per worker
            children = sorted(
                (labels["worker"], value)
                for rows in seen.values()
                for labels, value in rows
                if labels["llmtel_cache_name"] == "worker"
            )
            by_worker = {str(worker): float(calls) for _, _, worker, calls in reports}
            assert children == sorted(by_worker.items())
        finally:
            stop.set()
        # The master still serves after its children come and go.
        assert get(f"http://127.0.0.1:{base}/metrics")[0] == 200
    finally:
        llmtel.shutdown()


def test_forked_child_without_worker_ports_releases_the_listener(workers: list[Any]) -> None:
    """Default (one worker): a forked child serves nothing and does not keep the port open."""
    telemetry = llmtel.configure(prometheus_port=0, gpu_metrics=False, process_metrics=False)
    assert telemetry.endpoint is not None
    port = telemetry.endpoint.port
    out, stop = fork.Queue(), fork.Event()

    def child() -> None:
        current = llmtel.current()
        out.put(current.endpoint._server is None if current and current.endpoint else "no endpoint")
        llmtel.shutdown()  # must not hang on the thread that only exists in the parent

    process = fork.Process(target=child)
    process.start()
    workers.append(process)
    assert out.get(timeout=20) is True
    process.join(timeout=20)
    assert process.exitcode == 0
    stop.set()
    llmtel.shutdown()
    # Port released by the parent and not held by a (dead) child.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
