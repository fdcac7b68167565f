"""A fake ``pynvml`` module: GPUs, MIG instances and failures, without a driver.

It reuses the real ``pynvml``'s constants, error classes and ctypes structures
(they need no driver), so the collector sees the same objects as on a GPU
machine; only the functions that would call ``libnvidia-ml`` are replaced.
Every call is counted in ``calls`` (function name -> count).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pynvml

NVMLError = pynvml.NVMLError


@dataclass
class FakeMig:
    uuid: str
    name: str
    gpu_instance: int
    compute_instance: int
    memory_total: int
    memory_used: int
    processes: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, used bytes)
    #: function name -> NVML error code raised when it is called with this handle
    fail: dict[str, int] = field(default_factory=dict)


@dataclass
class FakeGpu:
    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    memory_total: int = 85_520_809_984
    memory_used: int = 1_048_576_000
    utilization: int | None = 37  # percent; None: NOT_SUPPORTED
    memory_busy: int = 12  # percent of time memory was read/written (not memory used!)
    encoder: int | None = 5
    decoder: int | None = None
    power_mw: int | None = 123_456
    energy_mj: int | None = 98_765_432
    temperature: int | None = 41
    pcie_tx: int | None = 4_000_000_000
    pcie_rx: int | None = 5_000_000_000
    processes: list[tuple[int, int | None]] = field(default_factory=list)
    graphics_processes: list[tuple[int, int | None]] = field(default_factory=list)
    migs: list[FakeMig] = field(default_factory=list)
    max_mig_devices: int = 7
    fail: dict[str, int] = field(default_factory=dict)


def _raise(code: int) -> None:
    raise pynvml.NVMLError(code)


class FakeNvml:
    """Stands in for the ``pynvml`` module (pass it as ``install(meter, nvml=FakeNvml(...))``)."""

    def __init__(
        self,
        gpus: list[FakeGpu],
        *,
        init_error: int | None = None,
        count_error: int | None = None,
        driver: str | bytes = "550.54.15",
    ) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.count_error = count_error
        self.driver = driver
        self.calls: Counter[str] = Counter()
        self.initialized = 0

    def __getattr__(self, name: str) -> Any:
        # Constants, NVMLError and its subclasses, ctypes structures: the real module's.
        if name.startswith(("NVML_", "NVMLError", "c_nvml", "nvmlFriendlyObject")):
            return getattr(pynvml, name)
        raise AttributeError(name)

    def _call(self, function: str, handle: Any = None) -> None:
        self.calls[function] += 1
        if handle is not None and function in handle.fail:
            _raise(handle.fail[function])

    def sweep_calls(self) -> Counter[str]:
        """Calls made by sweeps so far (discovery and init calls left out)."""
        skip = {
            "nvmlInit", "nvmlShutdown", "nvmlDeviceGetCount", "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetUUID",
            "nvmlDeviceGetName", "nvmlSystemGetDriverVersion", "nvmlDeviceGetMigMode",
            "nvmlDeviceGetMaxMigDeviceCount", "nvmlDeviceGetMigDeviceHandleByIndex", "nvmlDeviceGetGpuInstanceId",
            "nvmlDeviceGetComputeInstanceId",
        }  # fmt: skip
        return Counter({k: v for k, v in self.calls.items() if k not in skip})

    # --- library -------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        if self.init_error is not None:
            _raise(self.init_error)
        self.initialized += 1

    def nvmlShutdown(self) -> None:
        self.calls["nvmlShutdown"] += 1
        self.initialized -= 1

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        self._call("nvmlSystemGetDriverVersion")
        return self.driver

    def nvmlDeviceGetCount(self) -> int:
        self._call("nvmlDeviceGetCount")
        if self.count_error is not None:
            _raise(self.count_error)
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        self._call("nvmlDeviceGetHandleByIndex", self.gpus[index])
        return self.gpus[index]

    # --- identity ------------------------------------------------------------------------
    def nvmlDeviceGetUUID(self, handle: Any) -> str:
        self._call("nvmlDeviceGetUUID", handle)
        return handle.uuid

    def nvmlDeviceGetName(self, handle: Any) -> str:
        self._call("nvmlDeviceGetName", handle)
        return handle.name

    # --- MIG -----------------------------------------------------------------------------
    def nvmlDeviceGetMigMode(self, handle: Any) -> list[int]:
        self._call("nvmlDeviceGetMigMode", handle)
        if isinstance(handle, FakeGpu) and handle.migs:
            return [pynvml.NVML_DEVICE_MIG_ENABLE, pynvml.NVML_DEVICE_MIG_ENABLE]
        if isinstance(handle, FakeGpu) and str(handle.name).startswith("NVIDIA GeForce"):
            _raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return [pynvml.NVML_DEVICE_MIG_DISABLE, pynvml.NVML_DEVICE_MIG_DISABLE]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: FakeGpu) -> int:
        self._call("nvmlDeviceGetMaxMigDeviceCount", handle)
        return handle.max_mig_devices

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: FakeGpu, index: int) -> FakeMig:
        self._call("nvmlDeviceGetMigDeviceHandleByIndex", handle)
        if index >= len(handle.migs):
            _raise(pynvml.NVML_ERROR_NOT_FOUND)
        return handle.migs[index]

    def nvmlDeviceGetGpuInstanceId(self, handle: FakeMig) -> int:
        self._call("nvmlDeviceGetGpuInstanceId", handle)
        return handle.gpu_instance

    def nvmlDeviceGetComputeInstanceId(self, handle: FakeMig) -> int:
        self._call("nvmlDeviceGetComputeInstanceId", handle)
        return handle.compute_instance

    # --- readings ------------------------------------------------------------------------
    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> Any:
        self._call("nvmlDeviceGetMemoryInfo", handle)
        memory = pynvml.c_nvmlMemory_t()
        memory.total = handle.memory_total
        memory.used = handle.memory_used
        memory.free = handle.memory_total - handle.memory_used
        return memory

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any:
        self._call("nvmlDeviceGetUtilizationRates", handle)
        # Real NVML: NOT_SUPPORTED on MIG instances and on a GPU in MIG mode.
        if isinstance(handle, FakeMig) or handle.migs or handle.utilization is None:
            _raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        rates = pynvml.c_nvmlUtilization_t()
        rates.gpu = handle.utilization
        rates.memory = handle.memory_busy
        return rates

    def _codec(self, function: str, handle: FakeGpu, value: int | None) -> list[int]:
        self._call(function, handle)
        if value is None:
            _raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return [value, 167_000]  # [percent, sampling period in µs]

    def nvmlDeviceGetEncoderUtilization(self, handle: FakeGpu) -> list[int]:
        return self._codec("nvmlDeviceGetEncoderUtilization", handle, handle.encoder)

    def nvmlDeviceGetDecoderUtilization(self, handle: FakeGpu) -> list[int]:
        return self._codec("nvmlDeviceGetDecoderUtilization", handle, handle.decoder)

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> int:
        self._call("nvmlDeviceGetPowerUsage", handle)
        if handle.power_mw is None:
            _raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return handle.power_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeGpu) -> int:
        self._call("nvmlDeviceGetTotalEnergyConsumption", handle)
        if handle.energy_mj is None:
            _raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return handle.energy_mj

    def nvmlDeviceGetTemperature(self, handle: FakeGpu, sensor: int) -> int:
        self._call("nvmlDeviceGetTemperature", handle)
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        if handle.temperature is None:
            _raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return handle.temperature

    def nvmlDeviceGetFieldValues(self, handle: FakeGpu, field_ids: list[int]) -> Any:
        self._call("nvmlDeviceGetFieldValues", handle)
        values = (pynvml.c_nvmlFieldValue_t * len(field_ids))()
        for slot, field_id in zip(values, field_ids, strict=True):
            slot.fieldId = field_id
            reading = {
                pynvml.NVML_FI_DEV_PCIE_COUNT_TX_BYTES: handle.pcie_tx,
                pynvml.NVML_FI_DEV_PCIE_COUNT_RX_BYTES: handle.pcie_rx,
            }.get(field_id)
            if reading is None:
                slot.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
            else:
                slot.nvmlReturn = pynvml.NVML_SUCCESS
                slot.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
                slot.value.ullVal = reading
        return values

    def _processes(self, function: str, handle: Any, processes: list[tuple[int, int | None]]) -> list[Any]:
        self._call(function, handle)
        if isinstance(handle, FakeGpu) and handle.migs:
            _raise(pynvml.NVML_ERROR_NO_PERMISSION)  # real NVML: aggregate view needs root in MIG mode
        return [
            pynvml.nvmlFriendlyObject(
                {"pid": pid, "usedGpuMemory": used, "gpuInstanceId": 0xFFFFFFFF, "computeInstanceId": 0xFFFFFFFF}
            )
            for pid, used in processes
        ]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[Any]:
        return self._processes("nvmlDeviceGetComputeRunningProcesses", handle, handle.processes)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: Any) -> list[Any]:
        return self._processes(
            "nvmlDeviceGetGraphicsRunningProcesses", handle, getattr(handle, "graphics_processes", [])
        )
