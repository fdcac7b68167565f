"""llmtel.config.distro in-process: defaults only fill gaps; the configurator never raises into the app."""

from __future__ import annotations

import logging
import os
from importlib.metadata import entry_points

import pytest

import llmtel
from llmtel.config import distro


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("OTEL_", "LLMTEL_")):
            monkeypatch.delenv(key)


def test_entry_points_are_registered_under_the_llmtel_name() -> None:
    distros = {ep.name: ep.value for ep in entry_points(group="opentelemetry_distro")}
    configurators = {ep.name: ep.value for ep in entry_points(group="opentelemetry_configurator")}
    if "llmtel" not in distros:
        pytest.skip("llmtel is not installed (pip install -e .): entry points are not registered")
    assert distros["llmtel"] == "llmtel.config.distro:LlmtelDistro"
    assert configurators["llmtel"] == "llmtel.config.distro:LlmtelConfigurator"


def test_distro_fills_defaults() -> None:
    distro.LlmtelDistro().configure()
    for key, value in distro.DEFAULTS.items():
        assert os.environ[key] == value
    assert os.environ["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] == "system_metrics"


def test_distro_never_overrides_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_PYTHON_CONFIGURATOR", "configurator")
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")  # "disable nothing" is a choice too
    distro.LlmtelDistro().configure()
    assert os.environ["OTEL_METRICS_EXPORTER"] == "otlp"
    assert os.environ["OTEL_TRACES_EXPORTER"] == "otlp"
    assert os.environ["OTEL_PYTHON_CONFIGURATOR"] == "configurator"
    assert os.environ["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] == ""


def test_system_metrics_stays_when_llmtel_process_metrics_are_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_PROCESS_METRICS", "false")
    distro.LlmtelDistro().configure()
    assert "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS" not in os.environ


def test_configurator_calls_configure_marked_as_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(llmtel, "configure", lambda **kw: calls.append(kw))
    distro.LlmtelConfigurator().configure(auto_instrumentation_version="0.66b2")
    assert calls == [{"_from_auto_instrumentation": True}]


def test_configurator_logs_one_clear_error_and_does_not_raise(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**_: object) -> None:
        raise llmtel.ConfigurationError("llmtel cannot serve its endpoint on 127.0.0.1:9464: Address already in use")

    monkeypatch.setattr(llmtel, "configure", broken)
    caplog.set_level(logging.DEBUG, logger="llmtel")
    distro.LlmtelConfigurator().configure()  # must not raise
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "application continues" in message and "127.0.0.1:9464" in message
    assert errors[0].exc_info is None  # the traceback is only at DEBUG level
