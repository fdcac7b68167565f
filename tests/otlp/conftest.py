"""Fixtures for the OTLP tests: a fresh test receiver per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# tests/ has no __init__.py; make the shared receiver module importable however pytest is started.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from otlp_receiver import OtlpReceiver


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    rx = OtlpReceiver().start()
    try:
        yield rx
    finally:
        rx.stop()
