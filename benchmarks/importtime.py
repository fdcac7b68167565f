"""What ``import llmtel`` costs an application, next to the libraries it sits beside.

Each import runs in a fresh interpreter with ``-X importtime``; the figure is the
cumulative time of the top-level module (what the application waits for),
median of several interpreters. Import time is a benchmark, never a timed test:
on a loaded machine it moves by tens of percent.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

from benchmarks.harness import Row

#: Modules compared: llmtel's public surface (lazy), what its first configure() loads, and what an
#: OpenTelemetry app imports anyway.
MODULES = ("llmtel", "llmtel.config.setup", "opentelemetry.sdk.metrics", "prometheus_client")


def _cumulative_seconds(module: str) -> float:
    """Seconds ``import module`` takes in a fresh interpreter (``-X importtime``'s cumulative figure)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in reversed(done.stderr.splitlines()):
        parts = [part.strip() for part in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1e6
    raise RuntimeError(f"-X importtime printed no line for {module}")


def run(quick: bool = False) -> list[Row]:
    """One row per module: median seconds over fresh interpreters, ratio to the OpenTelemetry SDK's metrics."""
    rounds = 3 if quick else 15
    samples: dict[str, list[float]] = {module: [] for module in MODULES}
    for _ in range(rounds):  # interleaved, so load drifts hit every module alike
        for module in MODULES:
            samples[module].append(_cumulative_seconds(module))
    base = statistics.median(samples["opentelemetry.sdk.metrics"])
    rows = []
    for module, values in samples.items():
        median = statistics.median(values)
        rows.append(
            Row(
                "import time (-X importtime, cumulative)",
                f"import {module}",
                median,
                min(values),
                max(values),
                "s",
                ratio=median / base,
                note="target: llmtel <= 0.1 s" if module == "llmtel" else "",
            )
        )
    return rows
