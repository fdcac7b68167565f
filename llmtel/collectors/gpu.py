"""NVIDIA GPU metrics from NVML, on the OpenTelemetry hardware (``hw.*``) conventions.

One NVML sweep per collection feeds every GPU instrument (see
:class:`llmtel.collectors.SweepCache`). A value NVML cannot give is omitted,
never reported as 0; a reading the device does not support is not asked for
again. MIG instances are components of their own (``hw.id`` = MIG UUID,
``hw.parent`` = the GPU) with ``llmtel.gpu.mig.instance``.

``pynvml`` (package ``nvidia-ml-py``) is imported lazily and can be injected
(``install(meter, nvml=fake)``) so tests run without a GPU.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Final

from opentelemetry import metrics
from opentelemetry.metrics import Observation
from opentelemetry.semconv._incubating.attributes import hw_attributes as hw
from opentelemetry.semconv._incubating.attributes.network_attributes import NETWORK_IO_DIRECTION
from opentelemetry.semconv._incubating.metrics import hw_metrics as hwm

from llmtel._internal import errors as _errors
from llmtel.collectors import Points, SweepCache, bind, unbind

__all__ = ["MIG_INSTANCE", "PROCESS_GPU_MEMORY_USAGE", "GpuCollector", "install"]

logger = logging.getLogger("llmtel.collectors.gpu")

#: Attribute naming the MIG instance of a point: ``gi<GPU instance>/ci<compute instance>``.
MIG_INSTANCE: Final = "llmtel.gpu.mig.instance"
#: GPU memory used by this process (no upstream convention has it).
PROCESS_GPU_MEMORY_USAGE: Final = "llmtel.process.gpu.memory.usage"
#: Every instrument this collector feeds, all declared in the registry.
INSTRUMENTS: Final = (
    hwm.HW_GPU_UTILIZATION,
    hwm.HW_GPU_MEMORY_USAGE,
    hwm.HW_GPU_MEMORY_LIMIT,
    hwm.HW_GPU_MEMORY_UTILIZATION,
    hwm.HW_GPU_IO,
    hwm.HW_POWER,
    hwm.HW_ENERGY,
    hwm.HW_TEMPERATURE,
    PROCESS_GPU_MEMORY_USAGE,
)
VENDOR: Final = "NVIDIA"
_READ_FAILED: Final = "GPU metric read failed (NVML)"
# NVML return codes that mean "this device or driver cannot tell": stop asking, omit quietly.
_PERMANENT_CODES: Final = ("NVML_ERROR_NOT_SUPPORTED", "NVML_ERROR_FUNCTION_NOT_FOUND", "NVML_ERROR_NO_PERMISSION")
# c_nvmlValue_t member to read for each NVML_VALUE_TYPE_* (double, uint, ulong, ulonglong, slonglong, sint, ushort).
_VALUE_MEMBER: Final = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}


@dataclass(eq=False)
class _Target:
    """A GPU or a MIG instance, with its attributes computed once."""

    handle: Any
    gpu_attrs: dict[str, Any]  # hw.gpu.* points
    short_attrs: dict[str, Any]  # llmtel.process.gpu.memory.usage points
    hw_attrs: dict[str, Any] = field(default_factory=dict)  # hw.power / hw.energy (whole GPU only)
    temperature_attrs: dict[str, Any] = field(default_factory=dict)
    migs: list[_Target] = field(default_factory=list)
    unsupported: set[str] = field(default_factory=set)


def _text(value: Any) -> str:
    # Older nvidia-ml-py versions return bytes for strings.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _off(enabled: bool | None, reason: str) -> None:
    """The one log line saying why the collector is off."""
    level = logging.WARNING if enabled else logging.INFO
    logger.log(level, "llmtel: GPU metrics off: %s", reason)


def install(meter: metrics.Meter, *, enabled: bool | None = None, nvml: Any = None) -> GpuCollector | None:
    """Start GPU metrics on ``meter``; ``None`` (after one log line) when NVML or a GPU is missing.

    ``enabled``: ``None`` = auto (on when NVML works), ``True`` = wanted (a missing GPU is
    logged as a warning instead of info), ``False`` = off. ``nvml`` replaces the ``pynvml``
    module (tests). Never raises for a missing library, driver or device.
    """
    if enabled is False:
        logger.debug("llmtel: GPU metrics disabled")
        return None
    if nvml is None:
        try:
            nvml = importlib.import_module("pynvml")
        except ImportError as exc:
            _off(enabled, f"pynvml (package nvidia-ml-py) cannot be imported: {exc}")
            return None
    # No driver, no library, no GPU: the environment has no usable NVML (not a problem, one log line).
    unusable = (nvml.NVMLError, OSError)
    try:
        nvml.nvmlInit()
    except unusable as exc:
        _off(enabled, f"NVML did not start: {exc}")
        return None
    try:
        gpus = _discover(nvml)
    except unusable as exc:
        _shutdown(nvml)
        _off(enabled, f"listing GPUs failed: {exc}")
        return None
    if not gpus:
        _shutdown(nvml)
        _off(enabled, "NVML found no GPU")
        return None
    collector = GpuCollector(meter, nvml, gpus)
    logger.info("llmtel: GPU metrics on: %d GPU(s), %d MIG instance(s)", len(gpus), sum(len(g.migs) for g in gpus))
    return collector


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except (nvml.NVMLError, OSError) as exc:  # shutting down must not raise into the app
        logger.debug("nvmlShutdown failed: %s", exc)


def _discover(nvml: Any) -> list[_Target]:
    """List GPUs and their MIG instances, with static attributes (read once)."""
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
    except (nvml.NVMLError, OSError, AttributeError):  # optional attribute
        driver = None
    gpus = []
    for index in range(nvml.nvmlDeviceGetCount()):
        try:
            gpus.append(_discover_gpu(nvml, index, driver))
        except nvml.NVMLError as exc:  # e.g. a lost GPU: skip it, keep the others
            _errors.report(_READ_FAILED, exc)
    return gpus


def _discover_gpu(nvml: Any, index: int, driver: str | None) -> _Target:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    hw_id = _text(nvml.nvmlDeviceGetUUID(handle))
    name = f"gpu{index}"
    gpu_attrs: dict[str, Any] = {
        hw.HW_ID: hw_id,
        hw.HW_NAME: name,
        hw.HW_TYPE: hw.HwTypeValues.GPU.value,
        hw.HW_VENDOR: VENDOR,
        hw.HW_MODEL: _text(nvml.nvmlDeviceGetName(handle)),
    }
    if driver:
        gpu_attrs[hw.HW_DRIVER_VERSION] = driver
    gpu = _Target(
        handle,
        gpu_attrs,
        {hw.HW_ID: hw_id, hw.HW_NAME: name},
        hw_attrs={hw.HW_ID: hw_id, hw.HW_NAME: name, hw.HW_TYPE: hw.HwTypeValues.GPU.value},
        temperature_attrs={
            hw.HW_ID: f"{hw_id}/temperature",
            hw.HW_NAME: f"{name} temperature",
            hw.HW_PARENT: hw_id,
            hw.HW_TYPE: hw.HwTypeValues.TEMPERATURE.value,
            hw.HW_SENSOR_LOCATION: "gpu",
        },
    )
    gpu.migs = _discover_migs(nvml, gpu)
    return gpu


def _discover_migs(nvml: Any, gpu: _Target) -> list[_Target]:
    try:
        current_mode, _pending = nvml.nvmlDeviceGetMigMode(gpu.handle)
    except nvml.NVMLError as exc:
        if exc.value != nvml.NVML_ERROR_NOT_SUPPORTED:  # NOT_SUPPORTED: a GPU without MIG
            _errors.report(_READ_FAILED, exc)
        return []
    if current_mode != nvml.NVML_DEVICE_MIG_ENABLE:
        return []
    gpu_id = gpu.gpu_attrs[hw.HW_ID]
    try:
        slots = nvml.nvmlDeviceGetMaxMigDeviceCount(gpu.handle)
    except nvml.NVMLError as exc:  # report the GPU without its instances
        _errors.report(_READ_FAILED, exc)
        return []
    migs = []
    for slot in range(slots):
        try:
            handle = nvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu.handle, slot)
        except nvml.NVMLError:  # NOT_FOUND: an empty slot
            continue
        try:
            instance = f"gi{nvml.nvmlDeviceGetGpuInstanceId(handle)}/ci{nvml.nvmlDeviceGetComputeInstanceId(handle)}"
            hw_id = _text(nvml.nvmlDeviceGetUUID(handle))
            model = _text(nvml.nvmlDeviceGetName(handle))
        except nvml.NVMLError as exc:  # skip this instance, keep the others
            _errors.report(_READ_FAILED, exc)
            continue
        name = f"{gpu.gpu_attrs[hw.HW_NAME]} MIG {instance}"
        common = {hw.HW_ID: hw_id, hw.HW_NAME: name, hw.HW_PARENT: gpu_id, MIG_INSTANCE: instance}
        attrs = {**gpu.gpu_attrs, **common, hw.HW_MODEL: model}
        migs.append(_Target(handle, attrs, common))
    return migs


class GpuCollector:
    """Observable GPU instruments fed by one NVML sweep per collection."""

    def __init__(self, meter: metrics.Meter, nvml: Any, gpus: list[_Target]) -> None:
        self._nvml = nvml
        self._gpus = gpus
        self._closed = False
        self._permanent = {getattr(nvml, code) for code in _PERMANENT_CODES if hasattr(nvml, code)}
        self.cache = SweepCache(self._sweep)
        self._meter = meter
        bind(meter, "gpu", INSTRUMENTS, self, self.cache.points)

    @property
    def gpus(self) -> int:
        """Number of GPUs found."""
        return len(self._gpus)

    def close(self) -> None:
        """Stop reporting (callbacks return nothing) and shut NVML down once."""
        if not self._closed:
            self._closed = True
            unbind(self._meter, "gpu", self)
            _shutdown(self._nvml)

    # --- the sweep -------------------------------------------------------------------------

    def _sweep(self) -> Points:
        out: defaultdict[str, list[Observation]] = defaultdict(list)
        with _errors.guarded("GPU collector sweep failed"):
            for gpu in self._gpus:
                self._sweep_gpu(gpu, out)
        return out

    def _read(self, target: _Target, key: str, function: str, *args: Any) -> Any:
        """One NVML call; ``None`` when the value cannot be read (never raises)."""
        if key in target.unsupported:
            return None
        try:
            return getattr(self._nvml, function)(target.handle, *args)
        except self._nvml.NVMLError as exc:
            if exc.value in self._permanent:
                target.unsupported.add(key)
                logger.debug("NVML cannot give %s for %s: %s", key, target.gpu_attrs[hw.HW_ID], exc)
            else:  # GPU lost, timeout, unknown...: counted, tried again next collection
                _errors.report(_READ_FAILED, exc)
            return None
        except (OSError, ValueError, TypeError, AttributeError) as exc:  # ctypes/OS failures inside pynvml
            _errors.report(_READ_FAILED, exc)
            return None

    def _sweep_gpu(self, gpu: _Target, out: defaultdict[str, list[Observation]]) -> None:
        self._sweep_memory_and_utilization(gpu, out)
        for key, function in (
            ("encoder", "nvmlDeviceGetEncoderUtilization"),
            ("decoder", "nvmlDeviceGetDecoderUtilization"),
        ):
            reading = self._read(gpu, key, function)
            if reading is not None:  # [utilization %, sampling period µs]
                out[hwm.HW_GPU_UTILIZATION].append(
                    Observation(reading[0] / 100, {**gpu.gpu_attrs, hw.HW_GPU_TASK: key})
                )
        self._sweep_pcie(gpu, out)
        milliwatts = self._read(gpu, "power", "nvmlDeviceGetPowerUsage")
        if milliwatts is not None:
            out[hwm.HW_POWER].append(Observation(milliwatts / 1000, gpu.hw_attrs))
        millijoules = self._read(gpu, "energy", "nvmlDeviceGetTotalEnergyConsumption")
        if millijoules is not None:  # since the driver was last loaded
            out[hwm.HW_ENERGY].append(Observation(millijoules / 1000, gpu.hw_attrs))
        celsius = self._read(gpu, "temperature", "nvmlDeviceGetTemperature", self._nvml.NVML_TEMPERATURE_GPU)
        if celsius is not None:
            out[hwm.HW_TEMPERATURE].append(Observation(celsius, gpu.temperature_attrs))
        # In MIG mode per-process memory is only visible through each instance's handle.
        for target in gpu.migs or [gpu]:
            self._sweep_own_memory(target, out)
        for mig in gpu.migs:
            self._sweep_memory_and_utilization(mig, out)

    def _sweep_memory_and_utilization(self, target: _Target, out: defaultdict[str, list[Observation]]) -> None:
        memory = self._read(target, "memory", "nvmlDeviceGetMemoryInfo")
        if memory is not None:
            out[hwm.HW_GPU_MEMORY_USAGE].append(Observation(memory.used, target.gpu_attrs))
            out[hwm.HW_GPU_MEMORY_LIMIT].append(Observation(memory.total, target.gpu_attrs))
            if memory.total > 0:
                out[hwm.HW_GPU_MEMORY_UTILIZATION].append(Observation(memory.used / memory.total, target.gpu_attrs))
        # NOT_SUPPORTED on MIG instances and on a MIG-enabled GPU: omitted, not asked again.
        rates = self._read(target, "utilization", "nvmlDeviceGetUtilizationRates")
        if rates is not None:
            attrs = {**target.gpu_attrs, hw.HW_GPU_TASK: hw.HwGpuTaskValues.GENERAL.value}
            out[hwm.HW_GPU_UTILIZATION].append(Observation(rates.gpu / 100, attrs))

    def _sweep_pcie(self, gpu: _Target, out: defaultdict[str, list[Observation]]) -> None:
        # Cumulative PCIe byte counters (field values; recent drivers). NVML's other PCIe
        # reading, nvmlDeviceGetPcieThroughput, is a 20 ms rate and cannot feed a counter.
        nvml = self._nvml
        wanted = [
            (field_id, direction)
            for field_id, direction in (
                (getattr(nvml, "NVML_FI_DEV_PCIE_COUNT_TX_BYTES", None), "transmit"),
                (getattr(nvml, "NVML_FI_DEV_PCIE_COUNT_RX_BYTES", None), "receive"),
            )
            if field_id is not None and f"pcie.{direction}" not in gpu.unsupported
        ]
        if not wanted:
            return
        values = self._read(gpu, "pcie", "nvmlDeviceGetFieldValues", [field_id for field_id, _ in wanted])
        if values is None:
            return
        for value, (_, direction) in zip(values, wanted, strict=True):
            if value.nvmlReturn != nvml.NVML_SUCCESS:
                if value.nvmlReturn in self._permanent or value.nvmlReturn == nvml.NVML_ERROR_INVALID_ARGUMENT:
                    gpu.unsupported.add(f"pcie.{direction}")
                continue
            member = _VALUE_MEMBER.get(value.valueType)
            if member is None:
                continue
            attrs = {**gpu.gpu_attrs, NETWORK_IO_DIRECTION: direction}
            out[hwm.HW_GPU_IO].append(Observation(getattr(value.value, member), attrs))

    def _sweep_own_memory(self, target: _Target, out: defaultdict[str, list[Observation]]) -> None:
        used = None
        for key, function in (
            ("compute processes", "nvmlDeviceGetComputeRunningProcesses"),
            ("graphics processes", "nvmlDeviceGetGraphicsRunningProcesses"),
        ):
            for process in self._read(target, key, function) or ():
                # pynvml gives None when the driver cannot tell (e.g. WDDM); a process can be
                # listed as compute and graphics with the same memory, hence max().
                memory = getattr(process, "usedGpuMemory", None)
                if process.pid == os.getpid() and memory is not None:  # read now: fork-safe
                    used = memory if used is None else max(used, memory)
        # Absent from the list (or listed under another PID namespace, as in containers):
        # omitted rather than reported as 0.
        if used is not None:
            out[PROCESS_GPU_MEMORY_USAGE].append(Observation(used, target.short_attrs))
