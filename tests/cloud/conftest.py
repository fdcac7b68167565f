"""Fixtures for the cloud exporter tests: local vendor endpoints, clean vendor environments, registry instruments."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloud_fakes import HOST, MotoServer

from llmtel._internal import errors as _errors

_VENDOR_ENV_PREFIXES = ("AWS_", "LLMTEL_CLOUDWATCH_", "APPLICATIONINSIGHTS_", "GOOGLE_", "GCLOUD_", "CLOUDSDK_")


@pytest.fixture(autouse=True)
def _clean_vendor_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real credentials, profiles or metadata services: every vendor setting comes from the test."""
    import os

    for key in list(os.environ):
        if key.startswith(_VENDOR_ENV_PREFIXES) or key.startswith("OTEL_EXPORTER_OTLP"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("GCE_METADATA_HOST", f"{HOST}:9")  # google-auth must never probe a metadata server
    monkeypatch.setenv("GCE_METADATA_IP", f"{HOST}:9")
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    _errors.reset()


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(autouse=True)
def _no_hidden_escape(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Exporters swallow errors, so the suite's loopback guard could be hidden: record attempts, fail after.

    Name lookups count too: a library that tries ``oauth2.googleapis.com`` fails at DNS here, before
    any connect, and would otherwise go unnoticed.
    """
    attempts: list[Any] = []
    inner_connect = socket.socket.connect
    inner_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address and address[0] not in _LOOPBACK:
            attempts.append(address)
        return inner_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in _LOOPBACK:
            attempts.append(("getaddrinfo", name))
        return inner_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    assert not attempts, f"connections outside loopback were attempted: {attempts}"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """AWS's standard variables pointing at moto, with throwaway credentials and a reset moto."""
    moto_server.reset()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    return moto_server
