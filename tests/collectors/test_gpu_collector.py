"""The NVML collector against a fake ``pynvml``: exact values, units, attributes, errors."""

from __future__ import annotations

import inspect
import logging
import os
import sys
import time
from collections import Counter

import pynvml
import pytest
from collectors_helpers import by, collect, points, provider
from fake_nvml import FakeGpu, FakeMig, FakeNvml
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Gauge, InMemoryMetricReader, Sum

from llmtel import semconv
from llmtel._internal import errors as _errors
from llmtel.collectors import gpu as gpu_collector
from llmtel.collectors.gpu import MIG_INSTANCE, PROCESS_GPU_MEMORY_USAGE

PID = os.getpid()
UUID0 = "GPU-11111111-2222-3333-4444-555555555555"
UUID1 = "GPU-66666666-7777-8888-9999-000000000000"
GPU_METRICS = [s.name for s in semconv.INSTRUMENTS if s.group == "gpu"]


@pytest.fixture(autouse=True)
def _clean_problems() -> None:
    _errors.reset()


def install(nvml: FakeNvml, **kwargs: object) -> tuple[gpu_collector.GpuCollector | None, InMemoryMetricReader]:
    mp, reader = provider()
    return gpu_collector.install(mp.get_meter("test"), nvml=nvml, **kwargs), reader  # type: ignore[arg-type]


def gpu0(**kwargs: object) -> FakeGpu:
    return FakeGpu(UUID0, processes=[(PID, 536_870_912), (PID + 1, 7)], **kwargs)  # type: ignore[arg-type]


def test_registry_declares_every_gpu_instrument_as_observable() -> None:
    assert sorted(GPU_METRICS) == sorted(gpu_collector.INSTRUMENTS)
    for name in gpu_collector.INSTRUMENTS:
        assert semconv.spec(name).kind.observable
    assert MIG_INSTANCE in semconv.spec("hw.gpu.memory.usage").attributes
    assert {semconv.spec(n).unit for n in ("hw.gpu.memory.usage", "hw.gpu.memory.limit", "hw.gpu.io")} == {"By"}
    assert (semconv.spec("hw.power").unit, semconv.spec("hw.energy").unit) == ("W", "J")
    assert semconv.spec("hw.temperature").unit == "Cel"


def test_fake_only_mimics_functions_that_exist_in_real_pynvml() -> None:
    fake_functions = [n for n, _ in inspect.getmembers(FakeNvml, inspect.isfunction) if n.startswith("nvml")]
    assert len(fake_functions) > 15
    for name in fake_functions:
        assert callable(getattr(pynvml, name)), name


def test_values_units_and_attributes_of_one_gpu() -> None:
    nvml = FakeNvml([gpu0()])
    collector, reader = install(nvml)
    assert collector is not None and collector.gpus == 1
    metrics = collect(reader)
    assert sorted(metrics) == sorted(GPU_METRICS)

    gpu_attrs = {
        "hw.id": UUID0,
        "hw.name": "gpu0",
        "hw.type": "gpu",
        "hw.vendor": "NVIDIA",
        "hw.model": "NVIDIA H100 80GB HBM3",
        "hw.driver_version": "550.54.15",
    }
    usage = metrics["hw.gpu.memory.usage"]
    assert usage.unit == "By"
    assert isinstance(usage.data, Sum) and not usage.data.is_monotonic
    assert points(usage) == [(gpu_attrs, 1_048_576_000)]
    assert points(metrics["hw.gpu.memory.limit"]) == [(gpu_attrs, 85_520_809_984)]
    ((_, fraction),) = points(metrics["hw.gpu.memory.utilization"])
    assert fraction == pytest.approx(1_048_576_000 / 85_520_809_984)
    assert isinstance(metrics["hw.gpu.memory.utilization"].data, Gauge)

    utilization = metrics["hw.gpu.utilization"]
    assert utilization.unit == "1" and isinstance(utilization.data, Gauge)
    assert points(utilization) == [
        ({**gpu_attrs, "hw.gpu.task": "encoder"}, 0.05),
        ({**gpu_attrs, "hw.gpu.task": "general"}, 0.37),
    ]  # decoder: NOT_SUPPORTED on this fake GPU, so absent (not 0)

    io = metrics["hw.gpu.io"]
    assert io.unit == "By" and isinstance(io.data, Sum) and io.data.is_monotonic
    assert points(io) == [
        ({**gpu_attrs, "network.io.direction": "receive"}, 5_000_000_000),
        ({**gpu_attrs, "network.io.direction": "transmit"}, 4_000_000_000),
    ]

    hw_attrs = {"hw.id": UUID0, "hw.name": "gpu0", "hw.type": "gpu"}
    assert metrics["hw.power"].unit == "W"
    assert points(metrics["hw.power"]) == [(hw_attrs, 123.456)]
    energy = metrics["hw.energy"]
    assert energy.unit == "J" and isinstance(energy.data, Sum) and energy.data.is_monotonic
    assert points(energy) == [(hw_attrs, 98_765.432)]  # mJ -> J

    assert metrics["hw.temperature"].unit == "Cel"
    assert points(metrics["hw.temperature"]) == [
        (
            {
                "hw.id": f"{UUID0}/temperature",
                "hw.name": "gpu0 temperature",
                "hw.parent": UUID0,
                "hw.type": "temperature",
                "hw.sensor_location": "gpu",
            },
            41,
        )
    ]
    own = metrics[PROCESS_GPU_MEMORY_USAGE]
    assert own.unit == "By"
    assert points(own) == [({"hw.id": UUID0, "hw.name": "gpu0"}, 536_870_912)]  # not the other PID's 7

    for name, metric in metrics.items():  # every attribute is one the registry allows
        for attrs, _ in points(metric):
            assert set(attrs) <= semconv.spec(name).attributes, name


def test_one_nvml_sweep_per_collection_shared_by_all_instruments() -> None:
    nvml = FakeNvml([gpu0(), FakeGpu(UUID1, utilization=90)])
    collector, reader = install(nvml)
    assert collector is not None
    assert nvml.sweep_calls() == {}  # install only discovers
    collect(reader)
    one_sweep = {
        "nvmlDeviceGetMemoryInfo": 2,
        "nvmlDeviceGetUtilizationRates": 2,
        "nvmlDeviceGetEncoderUtilization": 2,
        "nvmlDeviceGetDecoderUtilization": 2,
        "nvmlDeviceGetFieldValues": 2,
        "nvmlDeviceGetPowerUsage": 2,
        "nvmlDeviceGetTotalEnergyConsumption": 2,
        "nvmlDeviceGetTemperature": 2,
        "nvmlDeviceGetComputeRunningProcesses": 2,
        "nvmlDeviceGetGraphicsRunningProcesses": 2,
    }
    assert nvml.sweep_calls() == one_sweep
    assert collector.cache.sweeps == 1
    collect(reader)
    # The decoder said NOT_SUPPORTED on both GPUs: it is not asked again.
    assert nvml.sweep_calls() == {k: v * 2 if "Decoder" not in k else v for k, v in one_sweep.items()}
    assert collector.cache.sweeps == 2


def test_two_readers_each_get_one_fresh_sweep() -> None:
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[first, second])
    nvml = FakeNvml([gpu0()])
    collector = gpu_collector.install(mp.get_meter("test"), nvml=nvml)  # type: ignore[arg-type]
    assert collector is not None
    collect(first)
    nvml.gpus[0].energy_mj = 100_000_000
    metrics = collect(second)
    assert collector.cache.sweeps == 2
    assert points(metrics["hw.energy"])[0][1] == 100_000.0
    assert nvml.calls["nvmlDeviceGetTotalEnergyConsumption"] == 2


def test_unreadable_values_are_omitted_not_zero_and_not_asked_again() -> None:
    nvml = FakeNvml(
        [gpu0(power_mw=None, energy_mj=None, temperature=None, pcie_tx=None, pcie_rx=None, utilization=None)]
    )
    collector, reader = install(nvml)
    assert collector is not None
    metrics = collect(reader)
    for absent in ("hw.power", "hw.energy", "hw.temperature", "hw.gpu.io"):
        assert absent not in metrics or points(metrics[absent]) == [], absent
    assert [a["hw.gpu.task"] for a, _ in points(metrics["hw.gpu.utilization"])] == ["encoder"]
    assert points(metrics["hw.gpu.memory.usage"])[0][1] == 1_048_576_000
    before = nvml.sweep_calls()
    collect(reader)
    after = nvml.sweep_calls()
    for function in ("nvmlDeviceGetPowerUsage", "nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetTemperature",
                     "nvmlDeviceGetFieldValues", "nvmlDeviceGetUtilizationRates"):  # fmt: skip
        assert after[function] == before[function] == 1, function
    assert after["nvmlDeviceGetMemoryInfo"] == 2
    assert _errors.problem_counts() == {}  # "not supported" is not a problem


def test_nvml_errors_mid_run_drop_values_count_once_and_recover(caplog: pytest.LogCaptureFixture) -> None:
    nvml = FakeNvml([gpu0(), FakeGpu(UUID1)])
    collector, reader = install(nvml)
    assert collector is not None
    assert len(points(collect(reader)["hw.power"])) == 2

    nvml.gpus[0].fail.update(
        {
            "nvmlDeviceGetPowerUsage": pynvml.NVML_ERROR_GPU_IS_LOST,
            "nvmlDeviceGetMemoryInfo": pynvml.NVML_ERROR_UNKNOWN,
            "nvmlDeviceGetFieldValues": pynvml.NVML_ERROR_TIMEOUT,
        }
    )
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        metrics = collect(reader)  # never raises
        assert [a["hw.id"] for a, _ in points(metrics["hw.power"])] == [UUID1]
        assert [a["hw.id"] for a, _ in points(metrics["hw.gpu.memory.usage"])] == [UUID1]
        assert {a["hw.id"] for a, _ in points(metrics["hw.gpu.io"])} == {UUID1}
        assert [a["hw.id"] for a, _ in points(metrics["hw.energy"])] == [UUID0, UUID1]
    assert _errors.problem_counts() == {gpu_collector._READ_FAILED: 9}
    assert len([r for r in caplog.records if gpu_collector._READ_FAILED in r.getMessage()]) == 1

    nvml.gpus[0].fail.clear()  # transient errors are retried: values come back
    metrics = collect(reader)
    assert len(points(metrics["hw.power"])) == 2
    assert len(points(metrics["hw.gpu.io"])) == 4


def test_mig_instances_are_components_of_their_gpu() -> None:
    migs = [
        FakeMig("MIG-aaaa", "NVIDIA H100 80GB HBM3 MIG 3g.40gb", 1, 0, 42_000_000_000, 2_000_000_000,
                processes=[(PID, 1_500_000_000)]),
        FakeMig("MIG-bbbb", "NVIDIA H100 80GB HBM3 MIG 1g.10gb", 5, 0, 10_000_000_000, 0),
    ]  # fmt: skip
    nvml = FakeNvml([FakeGpu(UUID0, migs=migs, memory_used=2_500_000_000)])
    collector, reader = install(nvml)
    assert collector is not None
    metrics = collect(reader)
    usage = metrics["hw.gpu.memory.usage"]
    gpu_point = by(usage, {"hw.id": UUID0})
    assert gpu_point == [(gpu_point[0][0], 2_500_000_000)] and "hw.parent" not in gpu_point[0][0]
    mig_a = by(usage, {"hw.id": "MIG-aaaa"})
    assert mig_a == [
        (
            {
                "hw.id": "MIG-aaaa",
                "hw.name": "gpu0 MIG gi1/ci0",
                "hw.parent": UUID0,
                "hw.type": "gpu",
                "hw.vendor": "NVIDIA",
                "hw.model": "NVIDIA H100 80GB HBM3 MIG 3g.40gb",
                "hw.driver_version": "550.54.15",
                MIG_INSTANCE: "gi1/ci0",
            },
            2_000_000_000,
        )
    ]
    assert by(usage, {MIG_INSTANCE: "gi5/ci0"})[0][1] == 0  # a real 0 read from NVML is reported
    assert by(metrics["hw.gpu.memory.limit"], {"hw.id": "MIG-bbbb"})[0][1] == 10_000_000_000
    assert by(metrics["hw.gpu.memory.utilization"], {"hw.id": "MIG-aaaa"})[0][1] == pytest.approx(2 / 42)
    # Utilization: NOT_SUPPORTED on MIG (instances and parent); only the codec engines remain.
    assert {(a["hw.id"], a["hw.gpu.task"]) for a, _ in points(metrics["hw.gpu.utilization"])} == {(UUID0, "encoder")}
    # Power, energy, temperature exist for the whole GPU only.
    assert [a["hw.id"] for a, _ in points(metrics["hw.energy"])] == [UUID0]
    assert points(metrics[PROCESS_GPU_MEMORY_USAGE]) == [
        ({"hw.id": "MIG-aaaa", "hw.name": "gpu0 MIG gi1/ci0", "hw.parent": UUID0, MIG_INSTANCE: "gi1/ci0"},
         1_500_000_000)
    ]  # fmt: skip
    # The parent's aggregate process list (root-only in MIG mode) is never asked for.
    assert nvml.calls["nvmlDeviceGetComputeRunningProcesses"] == 2


def test_a_gpu_that_fails_at_discovery_is_skipped() -> None:
    lost = FakeGpu(UUID1, fail={"nvmlDeviceGetUUID": pynvml.NVML_ERROR_GPU_IS_LOST})
    nvml = FakeNvml([gpu0(), lost])
    collector, reader = install(nvml)
    assert collector is not None and collector.gpus == 1
    assert [a["hw.id"] for a, _ in points(collect(reader)["hw.power"])] == [UUID0]
    assert _errors.problem_counts() == {gpu_collector._READ_FAILED: 1}


def test_bytes_strings_from_older_pynvml_are_decoded() -> None:
    gpu = gpu0()
    gpu.uuid = UUID0.encode()  # type: ignore[assignment]
    gpu.name = b"Tesla T4"  # type: ignore[assignment]
    collector, reader = install(FakeNvml([gpu], driver=b"535.1"))
    assert collector is not None
    attrs, _ = points(collect(reader)["hw.gpu.memory.limit"])[0]
    assert (attrs["hw.id"], attrs["hw.model"], attrs["hw.driver_version"]) == (UUID0, "Tesla T4", "535.1")


def test_geforce_without_mig_support() -> None:
    collector, reader = install(FakeNvml([FakeGpu(UUID0, name="NVIDIA GeForce RTX 4090")]))
    assert collector is not None
    assert points(collect(reader)["hw.gpu.memory.usage"])[0][0]["hw.model"] == "NVIDIA GeForce RTX 4090"
    assert _errors.problem_counts() == {}


@pytest.mark.parametrize(
    ("nvml_kwargs", "reason"),
    [
        ({"init_error": pynvml.NVML_ERROR_LIBRARY_NOT_FOUND}, "NVML did not start: NVML Shared Library Not Found"),
        ({"init_error": pynvml.NVML_ERROR_DRIVER_NOT_LOADED}, "NVML did not start: Driver Not Loaded"),
        ({"count_error": pynvml.NVML_ERROR_UNKNOWN}, "listing GPUs failed: Unknown Error"),
        ({}, "NVML found no GPU"),
    ],
)
@pytest.mark.parametrize("enabled", [None, True])
def test_off_with_exactly_one_log_line(
    caplog: pytest.LogCaptureFixture, nvml_kwargs: dict[str, int], reason: str, enabled: bool | None
) -> None:
    caplog.set_level(logging.DEBUG, logger="llmtel")
    nvml = FakeNvml([], **nvml_kwargs)
    collector, reader = install(nvml, enabled=enabled)
    assert collector is None
    records = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [r.getMessage() for r in records] == [f"llmtel: GPU metrics off: {reason}"]
    assert records[0].levelno == (logging.WARNING if enabled else logging.INFO)
    assert nvml.initialized == 0  # NVML shut down again when it had started
    assert collect(reader) == {}


def test_off_without_pynvml(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    caplog.set_level(logging.INFO, logger="llmtel")
    mp, reader = provider()
    assert gpu_collector.install(mp.get_meter("test")) is None
    (record,) = caplog.records
    assert record.getMessage().startswith("llmtel: GPU metrics off: pynvml (package nvidia-ml-py) cannot be imported")
    assert collect(reader) == {}


def test_disabled_makes_no_nvml_call(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="llmtel")
    nvml = FakeNvml([gpu0()])
    collector, _ = install(nvml, enabled=False)
    assert collector is None and nvml.calls == {} and caplog.records == []


def test_close_stops_reporting_and_shuts_nvml_down_once() -> None:
    nvml = FakeNvml([gpu0()])
    collector, reader = install(nvml)
    assert collector is not None and nvml.initialized == 1
    collector.close()
    collector.close()
    assert nvml.initialized == 0 and nvml.calls["nvmlShutdown"] == 1
    assert all(points(m) == [] for m in collect(reader).values())
    assert nvml.sweep_calls() == {}


class CountingNvml:
    """The real pynvml, with every nvml* call counted (to check one sweep on real hardware)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> object:
        value = getattr(pynvml, name)
        if not (name.startswith("nvml") and callable(value)):
            return value

        def counted(*args: object) -> object:
            self.calls[name] += 1
            return value(*args)

        return counted


def test_real_pynvml_on_this_machine_is_off_or_on_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    """With the real nvidia-ml-py: off with one line where there is no driver (CI), on a GPU machine
    real values in range and one sweep per collection. Run it there with ``-s`` to see the timings."""
    caplog.set_level(logging.INFO, logger="llmtel")
    mp, reader = provider()
    nvml = CountingNvml()
    collector = gpu_collector.install(mp.get_meter("test"), nvml=nvml)
    try:
        metrics = collect(reader)
        if collector is None:
            assert len(caplog.records) == 1 and "GPU metrics off" in caplog.records[0].getMessage()
            assert metrics == {}
            return
        assert collector.cache.sweeps == 1
        for attrs, limit in points(metrics["hw.gpu.memory.limit"]):
            assert str(attrs["hw.id"]).startswith(("GPU-", "MIG-")) and limit > 2**30
        if "hw.temperature" in metrics:
            assert all(5 < v < 120 for _, v in points(metrics["hw.temperature"]))
        if "hw.power" in metrics:
            assert all(1 < v < 2000 for _, v in points(metrics["hw.power"]))
        per_sweep = sum(nvml.calls[k] for k in nvml.calls if k.startswith("nvmlDeviceGet"))
        started = time.perf_counter()
        collect(reader)
        elapsed = time.perf_counter() - started
        assert collector.cache.sweeps == 2
        print(
            f"\nGPUs: {collector.gpus}; one collection: {elapsed * 1000:.2f} ms; NVML calls so far: {dict(nvml.calls)}"
        )
        print(f"points: { {name: points(m) for name, m in metrics.items()} }")
        assert per_sweep > 0
    finally:
        if collector is not None:
            collector.close()


def test_installed_again_on_the_same_meter_takes_over_the_instruments() -> None:
    """configure() called again with the app's provider: the SDK caches the meter and drops the
    callbacks of a re-registered instrument, so the new collector must feed the old instruments."""
    mp, reader = provider()
    meter = mp.get_meter("llmtel")
    first = gpu_collector.install(meter, nvml=FakeNvml([gpu0()]))
    assert first is not None
    first.close()
    assert all(points(m) == [] for m in collect(reader).values())
    second = gpu_collector.install(mp.get_meter("llmtel"), nvml=FakeNvml([FakeGpu(UUID1)]))
    assert second is not None
    assert [a["hw.id"] for a, _ in points(collect(reader)["hw.power"])] == [UUID1]
    first.close()  # a late close of the old collector does not unhook the new one
    assert [a["hw.id"] for a, _ in points(collect(reader)["hw.power"])] == [UUID1]
    second.close()


def test_own_gpu_memory_follows_the_current_pid_after_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    collector, reader = install(FakeNvml([gpu0()]))
    assert collector is not None
    monkeypatch.setattr(gpu_collector.os, "getpid", lambda: PID + 1)  # as in a child forked after install
    assert points(collect(reader)[PROCESS_GPU_MEMORY_USAGE]) == [({"hw.id": UUID0, "hw.name": "gpu0"}, 7)]
