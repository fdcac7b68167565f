"""Both collectors through ``llmtel.configure()``: options, env vars, shutdown."""

from __future__ import annotations

import logging
import os
import sys

import pytest
from fake_nvml import FakeGpu, FakeNvml
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import llmtel
from llmtel.testing import Capture

GPU_UUID = "GPU-abcdef01-0000-0000-0000-000000000000"


def names(reader: InMemoryMetricReader) -> set[str]:
    data = reader.get_metrics_data()
    if data is None:
        return set()
    return {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.data.data_points}


def test_defaults_process_on_gpu_auto_from_fake_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = FakeNvml([FakeGpu(GPU_UUID, processes=[(os.getpid(), 4096)])])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)  # what `import pynvml` finds
    capture = Capture(process_metrics=None, gpu_metrics=None)  # None: the defaults
    seen = names(capture.reader)
    assert {"process.memory.usage", "process.cpu.time", "cpython.gc.collections", "llmtel.build.info"} <= seen
    assert {"hw.gpu.memory.usage", "hw.energy", "hw.power", "llmtel.process.gpu.memory.usage"} <= seen
    assert capture.point("hw.energy", {"hw.id": GPU_UUID}).value == 98_765.432
    assert nvml.initialized == 1
    llmtel.shutdown()
    assert nvml.initialized == 0  # shutdown closed the GPU collector


def test_gpu_auto_without_nvml_is_one_info_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([], init_error=9))  # NVML_ERROR_DRIVER_NOT_LOADED
    caplog.set_level(logging.INFO, logger="llmtel")
    capture = Capture(process_metrics=True, gpu_metrics=None)
    seen = names(capture.reader)
    assert not {n for n in seen if n.startswith("hw.")}
    assert "process.memory.usage" in seen
    gpu_lines = [r for r in caplog.records if "GPU" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in gpu_lines] == [
        (logging.INFO, "llmtel: GPU metrics off: NVML did not start: Driver Not Loaded")
    ]


def test_env_vars_switch_collectors_off(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = FakeNvml([FakeGpu(GPU_UUID)])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setenv("LLMTEL_PROCESS_METRICS", "false")
    monkeypatch.setenv("LLMTEL_GPU_METRICS", "false")
    reader = InMemoryMetricReader()
    llmtel.configure(metrics_exporter="none", traces_exporter="none", prometheus_port=0, metric_readers=[reader])
    seen = names(reader)
    assert not {n for n in seen if n.startswith(("hw.", "process.", "cpython."))}
    assert nvml.calls == {}
