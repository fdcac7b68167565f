"""errors.guarded: a block whose failure is counted, never raised; shared blocks for record paths."""

from __future__ import annotations

import threading

import pytest

from llmtel._internal import errors as _errors


@pytest.fixture(autouse=True)
def _swallow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_RAISE_INTERNAL_ERRORS", "0")  # as in production: swallowed and counted
    _errors.reset()


def _fail() -> None:
    raise ValueError("boom")


def test_a_block_swallows_counts_and_keeps_its_failure() -> None:
    with _errors.guarded("test block") as block:
        _fail()
    assert block.failed and isinstance(block.error, ValueError)
    assert _errors.problem_counts()["test block"] == 1


def test_a_shared_block_counts_every_failure_of_every_thread_and_keeps_none() -> None:
    shared = _errors.guarded("test shared block", shared=True)
    start = threading.Barrier(8)

    def work(index: int) -> None:
        start.wait()
        for call in range(500):
            with shared:
                if (index + call) % 2:
                    _fail()

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _errors.problem_counts()["test shared block"] == 8 * 250
    assert not shared.failed and shared.error is None


def test_a_shared_block_lets_interrupts_through() -> None:
    shared = _errors.guarded("test shared block", shared=True)
    with pytest.raises(KeyboardInterrupt), shared:
        raise KeyboardInterrupt


def test_a_handler_asking_swallowed_follows_the_blocks_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    shared = _errors.guarded("test asked block", shared=True)
    try:
        _fail()
    except Exception as exc:
        assert shared.swallowed(exc)
    assert _errors.problem_counts()["test asked block"] == 1 and shared.error is None
    monkeypatch.setenv("LLMTEL_RAISE_INTERNAL_ERRORS", "1")  # an llmtel bug under tests: it must propagate
    with pytest.raises(ValueError):
        try:
            _fail()
        except Exception as exc:
            if not shared.swallowed(exc):
                raise
    assert _errors.problem_counts()["test asked block"] == 1
    expected = _errors.guarded("test expected block", expected=True)  # the environment's failure: always swallowed
    assert expected.swallowed(ValueError("vendor down")) and expected.failed
