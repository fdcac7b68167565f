"""Shared helpers for tests that start real servers on loopback (Prometheus, demo apps, fakes).

``tests/`` is on ``sys.path`` (the root conftest lives there), so any test module can
``from realservers import free_port, prometheus_server``.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_ports() -> range:
    """The ports the kernel hands out to outgoing connections (and to ``bind(0)``)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):  # not Linux: the IANA dynamic range
        low, high = 49152, 65535
    return range(low, high + 1)


def free_port_range(count: int) -> int:
    """A base port whose next ``count`` ports are all free now, all outside the ephemeral range.

    Servers bind these later (worker processes starting, or restarting after kill -9 or HUP). An
    ephemeral port could meanwhile become an outgoing connection's local port (the test's own
    scraper or requests), and the worker would wait for it until that connection closed.
    """
    ephemeral = _ephemeral_ports()
    choose = random.Random()
    for _ in range(200):
        base = choose.randrange(10_000, 65_536 - count)
        if base + count > ephemeral.start and base < ephemeral.stop:
            continue
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free port range")


def self_signed_cert() -> tuple[bytes, bytes]:
    """``(key_pem, cert_pem)`` of a throwaway CA-capable certificate valid for 127.0.0.1 (one day)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def require_binary(name: str) -> str:
    """Path of an installed program; skip without it, but fail under CI=true (CI installs it)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not installed (Debian package prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}, and CI=true requires it")
        pytest.skip(message)
    return path


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Terminate by PID, then kill if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


@contextmanager
def prometheus_server(
    config: Path, workdir: Path, *, extra_args: Sequence[str] = (), agent: bool = False
) -> Iterator[str]:
    """Debian's Prometheus on 127.0.0.1 with exemplar storage and its own TSDB; yields its base URL.

    ``agent=True``: agent mode (Prometheus 2.x ``--enable-feature=agent``) with its own WAL
    directory. Stopped by PID when the block ends, even when the test fails; its log is in the
    error when it does not come up.
    """
    binary = require_binary("prometheus")
    port = free_port()
    log = workdir / "prometheus.log"
    if agent:
        storage = [f"--storage.agent.path={workdir / 'wal'}", "--enable-feature=agent"]
    else:
        storage = [f"--storage.tsdb.path={workdir / 'tsdb'}", "--storage.tsdb.retention.time=1h",
                   "--enable-feature=exemplar-storage"]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", *storage,
             "--log.level=warn", *extra_args],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus not ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        stop_process(process)
