"""Process and CPython runtime metrics (psutil + ``gc``) on the ``process.*`` / ``cpython.gc.*`` conventions.

Why not ``opentelemetry-instrumentation-system-metrics`` (checked at 0.66b2): it is
a process-wide ``BaseInstrumentor`` singleton that builds its own meter (schema
1.11.0) instead of using llmtel's; it labels ``process.cpu.time`` and
``process.context_switches`` with ``type`` instead of ``cpu.mode`` /
``process.context_switch.type``; it still emits the deprecated
``process.runtime.*`` and ``process.open_file_descriptor.count`` names and a
legacy ``generation`` label next to ``cpython.gc.generation``; it leaves the
units off the count metrics; and it has neither ``process.uptime`` nor GC pause
time. Configuring it to fix all that takes as much code as these ~150 lines,
which read psutil once per collection (``Process.oneshot``) on the conventions
as released.
"""

from __future__ import annotations

import gc
import logging
import os
import platform
import sys
import time
from collections import defaultdict
from importlib import metadata
from typing import Any, Final

import psutil
from opentelemetry import metrics
from opentelemetry.metrics import Observation
from opentelemetry.semconv._incubating.attributes.cpu_attributes import CPU_MODE
from opentelemetry.semconv._incubating.attributes.cpython_attributes import CPYTHON_GC_GENERATION
from opentelemetry.semconv._incubating.attributes.process_attributes import (
    PROCESS_CONTEXT_SWITCH_TYPE,
    PROCESS_RUNTIME_NAME,
    PROCESS_RUNTIME_VERSION,
)
from opentelemetry.semconv._incubating.metrics import cpython_metrics as cm
from opentelemetry.semconv._incubating.metrics import process_metrics as pm

from llmtel._internal import errors as _errors
from llmtel.collectors import Points, SweepCache, bind, unbind

__all__ = ["BUILD_INFO", "GC_PAUSE_TIME", "ProcessCollector", "install"]

logger = logging.getLogger("llmtel.collectors.process")

GC_PAUSE_TIME: Final = "llmtel.cpython.gc.pause_time"
BUILD_INFO: Final = "llmtel.build.info"
LLMTEL_VERSION: Final = "llmtel.version"
OTEL_SDK_VERSION: Final = "llmtel.otel_sdk.version"
INSTRUMENTS: Final = (
    pm.PROCESS_CPU_TIME,
    pm.PROCESS_CPU_UTILIZATION,
    pm.PROCESS_MEMORY_USAGE,
    pm.PROCESS_MEMORY_VIRTUAL,
    pm.PROCESS_THREAD_COUNT,
    pm.PROCESS_UNIX_FILE_DESCRIPTOR_COUNT,
    pm.PROCESS_CONTEXT_SWITCHES,
    pm.PROCESS_UPTIME,
    cm.CPYTHON_GC_COLLECTIONS,
    cm.CPYTHON_GC_COLLECTED_OBJECTS,
    cm.CPYTHON_GC_UNCOLLECTABLE_OBJECTS,
    GC_PAUSE_TIME,
    BUILD_INFO,
)
_READ_FAILED: Final = "process metric read failed (psutil)"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def install(meter: metrics.Meter) -> ProcessCollector | None:
    """Start process metrics on ``meter``; ``None`` (after one log line) when psutil cannot read this process."""
    try:
        process = psutil.Process()
        process.cpu_times()
    except (psutil.Error, OSError) as exc:  # a sandbox that hides /proc
        logger.info("llmtel: process metrics off: psutil cannot read this process: %s", exc)
        return None
    return ProcessCollector(meter, process)


class ProcessCollector:
    """Observable process/runtime instruments fed by one psutil read per collection."""

    def __init__(self, meter: metrics.Meter, process: Any) -> None:
        self._process = process
        self._closed = False
        self._cpython = sys.implementation.name == "cpython" and hasattr(gc, "get_stats")
        # GC pause time: gc.callbacks brackets every collection ("start"/"stop"). No lock: the
        # callback may run inside any allocation, including one made while a lock is held
        # (a deadlock); the interpreter runs one collection at a time and a list slot update
        # is atomic under the GIL.
        self._gc_started: float | None = None
        self._gc_pause = [0.0] * (len(gc.get_stats()) if self._cpython else 0)
        if self._cpython:
            gc.callbacks.append(self._on_gc)
        self._last_cpu: tuple[float, float, float] | None = self._cpu_sample()
        self._cpus = self._available_cpus()
        self._build_attrs = {
            LLMTEL_VERSION: _version("llmtel"),
            OTEL_SDK_VERSION: _version("opentelemetry-sdk"),
            PROCESS_RUNTIME_NAME: sys.implementation.name,
            PROCESS_RUNTIME_VERSION: platform.python_version(),
        }
        self.cache = SweepCache(self._sweep)
        self._meter = meter
        bind(meter, "process", INSTRUMENTS, self, self.cache.points)

    def close(self) -> None:
        """Stop reporting and unhook the GC callback (idempotent)."""
        if self._closed:
            return
        self._closed = True
        unbind(self._meter, "process", self)
        if self._cpython:
            try:
                gc.callbacks.remove(self._on_gc)
            except ValueError:
                pass

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # Runs inside every collection: keep it tiny, never raise.
        now = time.perf_counter()
        if phase == "start":
            self._gc_started = now
        elif phase == "stop" and self._gc_started is not None:
            generation = info.get("generation", 0)
            if 0 <= generation < len(self._gc_pause):
                self._gc_pause[generation] += now - self._gc_started
            self._gc_started = None

    def _available_cpus(self) -> int:
        try:
            return len(self._process.cpu_affinity()) or 1
        except (AttributeError, NotImplementedError, psutil.Error, OSError):  # no cpu_affinity() on macOS
            return os.cpu_count() or 1

    def _cpu_sample(self) -> tuple[float, float, float] | None:
        try:
            times = self._process.cpu_times()
        except (psutil.Error, OSError) as exc:  # process gone, access denied
            _errors.report(_READ_FAILED, exc)
            return None
        return time.monotonic(), times.user, times.system

    def _read(self, what: str, read: Any) -> Any:
        """One psutil read; ``None`` when it cannot be read (never raises)."""
        try:
            return read()
        except (NotImplementedError, AttributeError):  # not on this platform: quietly absent
            return None
        except (psutil.Error, OSError) as exc:
            _errors.report(_READ_FAILED, exc)
            logger.debug("cannot read %s: %s", what, exc)
            return None

    def _sweep(self) -> Points:
        out: defaultdict[str, list[Observation]] = defaultdict(list)
        with _errors.guarded("process collector sweep failed"):
            self._sweep_process(out)
            self._sweep_gc(out)
            out[BUILD_INFO].append(Observation(1, self._build_attrs))
        return out

    def _sweep_process(self, out: defaultdict[str, list[Observation]]) -> None:
        if self._process.pid != os.getpid():  # forked after configure() (e.g. gunicorn --preload)
            import psutil

            self._process = psutil.Process()
            self._last_cpu = None
        process = self._process
        with process.oneshot():  # one /proc read for everything below
            sample = self._cpu_sample()
            if sample is not None:
                _, user, system = sample
                out[pm.PROCESS_CPU_TIME] += [
                    Observation(user, {CPU_MODE: "user"}),
                    Observation(system, {CPU_MODE: "system"}),
                ]
                previous, self._last_cpu = self._last_cpu, sample
                if previous is not None and sample[0] > previous[0]:
                    capacity = (sample[0] - previous[0]) * self._cpus
                    out[pm.PROCESS_CPU_UTILIZATION] += [
                        Observation((user - previous[1]) / capacity, {CPU_MODE: "user"}),
                        Observation((system - previous[2]) / capacity, {CPU_MODE: "system"}),
                    ]
            memory = self._read("memory", process.memory_info)
            if memory is not None:
                out[pm.PROCESS_MEMORY_USAGE].append(Observation(memory.rss))
                out[pm.PROCESS_MEMORY_VIRTUAL].append(Observation(memory.vms))
            threads = self._read("threads", process.num_threads)
            if threads is not None:
                out[pm.PROCESS_THREAD_COUNT].append(Observation(threads))
            fds = self._read("file descriptors", process.num_fds)  # POSIX only
            if fds is not None:
                out[pm.PROCESS_UNIX_FILE_DESCRIPTOR_COUNT].append(Observation(fds))
            switches = self._read("context switches", process.num_ctx_switches)
            if switches is not None:
                out[pm.PROCESS_CONTEXT_SWITCHES] += [
                    Observation(switches.voluntary, {PROCESS_CONTEXT_SWITCH_TYPE: "voluntary"}),
                    Observation(switches.involuntary, {PROCESS_CONTEXT_SWITCH_TYPE: "involuntary"}),
                ]
            created = self._read("create time", process.create_time)
            if created is not None:
                out[pm.PROCESS_UPTIME].append(Observation(max(0.0, time.time() - created)))

    def _sweep_gc(self, out: defaultdict[str, list[Observation]]) -> None:
        if not self._cpython:
            return
        for generation, stats in enumerate(gc.get_stats()):
            attrs = {CPYTHON_GC_GENERATION: generation}
            out[cm.CPYTHON_GC_COLLECTIONS].append(Observation(stats["collections"], attrs))
            out[cm.CPYTHON_GC_COLLECTED_OBJECTS].append(Observation(stats["collected"], attrs))
            out[cm.CPYTHON_GC_UNCOLLECTABLE_OBJECTS].append(Observation(stats["uncollectable"], attrs))
        for generation, seconds in enumerate(list(self._gc_pause)):
            out[GC_PAUSE_TIME].append(Observation(seconds, {CPYTHON_GC_GENERATION: generation}))
