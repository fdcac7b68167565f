"""benchmarks/instructions.py: the callgrind parse and the measured child process (valgrind itself is not run here)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# By path: on the test path "benchmarks" is this test directory, not the repository's benchmarks package.
_spec = importlib.util.spec_from_file_location("bench_instructions", ROOT / "benchmarks" / "instructions.py")
assert _spec is not None and _spec.loader is not None
instructions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(instructions)


def test_the_instruction_total_is_read_from_callgrinds_exit_line() -> None:
    stderr = "==123== Events    : Ir\n==123== Collected : 1234567\n==123==\n==123== I   refs:      1,234,567\n"
    assert instructions.collected(stderr) == 1234567
    with pytest.raises(ValueError, match="Collected"):
        instructions.collected("valgrind: command not found")


@pytest.mark.parametrize("case", instructions.CASES)
def test_the_child_runs_each_case_as_valgrind_would_run_it(case: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LLMTEL_RAISE_INTERNAL_ERRORS": "0"}
    command = [sys.executable, "-m", "benchmarks.instructions", "--child", instructions.KINDS[1], case, "20"]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("models", [1, 300])
def test_the_series_child_runs_as_valgrind_would_run_it(models: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LLMTEL_RAISE_INTERNAL_ERRORS": "0"}
    command = [sys.executable, "-m", "benchmarks.series_instructions", "--inner", str(models), "20"]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
