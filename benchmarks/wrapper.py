"""The wrapper harness: what llmtel-openai (and openai-v2, when installed) adds to one fake OpenAI call.

Two shapes of the call, each in its own group, in this process, on llmtel's providers:

* **the OpenAI client on an in-memory transport** (``benchmarks/peers.py``'s canned
  completion and 8-chunk stream, parsed by the client each call): the whole client,
  so the added time is a tenth of a 1-3 ms call and its noise;
* **a fake create** (``peers.canned_create``: ``Completions.create`` returns the
  parsed completion or chunks): issue 19's own harness, the instrumentor's wrapper
  around a create of under a microsecond, so the bare call no longer drowns it.

Per round, each mode (bare client, llmtel-openai, openai-v2) is timed once, in every
order in turn, switched on and off outside the timed blocks (``harness.switched_rounds``);
buffered values (llmtel's, and those llmtel's GenAI span metrics derive from openai-v2's
spans) are folded inside the timed block of the mode that recorded them, every 40 calls.
The added time is the **paired per-round difference** (instrumented - bare of the same
round), whose median resolves tens of µs where a difference of medians of 1-3 ms calls cannot.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable
from typing import Any

from benchmarks.harness import Row, Switch, switched_rounds
from llmtel._internal import fastpath

#: Calls per timed block: a block folds what its calls buffered once, as a scrape every 40 calls would.
BLOCK = 40


def run(*, quick: bool) -> list[Row]:
    """Rows of added µs per call (median of paired differences); ratio llmtel-openai / openai-v2."""
    try:
        from llmtel_openai import OpenAIInstrumentor

        from benchmarks import peers
    except ImportError as exc:  # openai or llmtel-openai not installed: no rows
        print(f"wrapper harness skipped: {exc}")
        return []
    switches: dict[str, Switch] = {}
    ours = OpenAIInstrumentor()
    switches["llmtel-openai"] = (ours.instrument, ours.uninstrument)
    try:
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as V2

        contrib = V2()
        switches["openai-v2"] = (contrib.instrument, contrib.uninstrument)
    except ImportError:
        pass
    client = peers._client()
    shapes: list[tuple[str, contextlib.AbstractContextManager[Any], int]] = [
        ("OpenAI client, in-memory transport", contextlib.nullcontext(), 6 if quick else 24),
        ("fake create", peers.canned_create(client), 6 if quick else 48),  # cheap rounds: twice as many
    ]

    def time_block(op: Callable[[], object]) -> float:
        # Every mode folds what it buffered inside its own block: with llmtel's providers, openai-v2's
        # spans feed llmtel's GenAI span metrics, which buffer values too.
        return peers._time(op, BLOCK, fastpath.drain)

    rows = []
    for shape, patched, rounds in shapes:
        with patched:  # no mode is on when it starts and ends: every instrumentor wraps the create inside
            calls = peers._calls(client)
            for op in calls.values():
                for _ in range(10):
                    op()
            samples = switched_rounds(switches, calls, rounds=rounds, time_block=time_block)
        rows += _rows(f"wrapper: {shape}", samples, list(switches))
    return rows


def _rows(title: str, samples: dict[str, dict[str, list[float]]], modes: list[str]) -> list[Row]:
    """Per call: each mode's added time (paired per round) and the bare call."""
    rows = []
    for name, by_mode in samples.items():
        group = f"{title}, {name}"
        added = {mode: [m - b for m, b in zip(by_mode[mode], by_mode["bare"], strict=True)] for mode in modes}
        for mode, diffs in added.items():
            ratio = None
            note = "instrumented - bare, paired per round"
            if mode == "llmtel-openai" and "openai-v2" in added:
                ratio = statistics.median(o / v for o, v in zip(diffs, added["openai-v2"], strict=True) if v > 0)
                note += "; ratio: llmtel-openai / openai-v2 added time, paired per round"
            rows.append(
                Row(group, f"{mode} added", statistics.median(diffs), min(diffs), max(diffs), "µs", ratio, note)
            )
        bare = by_mode["bare"]
        rows.append(Row(group, "bare client", statistics.median(bare), min(bare), max(bare), "µs", None, title))
    return rows
