"""Fixtures for the OTLP tests: a fresh test receiver per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from otlp_receiver import OtlpReceiver


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    rx = OtlpReceiver().start()
    try:
        yield rx
    finally:
        rx.stop()
