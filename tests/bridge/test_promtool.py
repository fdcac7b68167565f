"""``promtool check metrics`` (Debian's prometheus package) passes on the bridge's classic text."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from bridge_helpers import configured, every_instrument_workload, text_families
from sdk_features import needs_gauge_last_value

from llmtel import semconv
from llmtel._internal.naming import prometheus_series

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")

# Upstream semconv names the OTel translation turns into "*_count" non-histograms, which promtool's
# linter dislikes (process.thread.count, process.unix.file_descriptor.count). Names are upstream's; kept.
KNOWN_LINT = {
    'process_thread_count non-histogram and non-summary metrics should not have "_count" suffix',
    'process_unix_file_descriptor_count non-histogram and non-summary metrics should not have "_count" suffix',
}


def _promtool(text: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)


@needs_gauge_last_value
def test_every_instrument_passes_promtool() -> None:
    with configured() as telemetry:
        every_instrument_workload()
        text = telemetry.bridge.render(openmetrics=False)
    result = _promtool(text)
    assert result.returncode == 0, result.stdout + result.stderr
    # The workload really touched every non-GPU, non-process instrument of the registry.
    served = {sample.name for family in text_families(text).values() for sample in family.samples}
    for spec in semconv.INSTRUMENTS:
        if spec.group in ("gpu", "process"):
            continue
        missing = set(prometheus_series(spec)) - served
        assert not missing, f"{spec.name}: {missing}"


def test_process_metrics_only_known_upstream_lint() -> None:
    with configured(process_metrics=True) as telemetry:
        every_instrument_workload()
        text = telemetry.bridge.render(openmetrics=False)
    result = _promtool(text)
    problems = {line.strip() for line in result.stdout.splitlines() if line.strip()}
    assert problems <= KNOWN_LINT, problems
    assert "process_cpu_time_seconds_total" in text
