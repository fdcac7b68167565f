"""The wrapper harness: what llmtel-openai (and openai-v2, when installed) adds to one fake OpenAI call.

The openai client talks to an in-memory transport (``benchmarks/peers.py``'s canned
completion and 8-chunk stream), in this process, on llmtel's providers. Per round,
each mode (bare client, llmtel-openai, openai-v2) is timed once, in every order in
turn, switched on and off outside the timed blocks (``harness.switched_rounds``);
buffered values (llmtel's, and those llmtel's GenAI span metrics derive from
openai-v2's spans) are folded inside the timed block of the mode that recorded them.
The added time is the **paired per-round difference** (instrumented - bare of the
same round), whose median resolves tens of µs where a difference of medians of
1-3 ms calls cannot.
"""

from __future__ import annotations

import statistics

from benchmarks.harness import Row, Switch, switched_rounds
from llmtel._internal import fastpath


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
    calls = peers._calls(peers._client())
    for op in calls.values():
        for _ in range(10):
            op()
    rounds, inner = (6, 10) if quick else (24, 40)
    # Every mode folds what it buffered inside its own block: with llmtel's providers, openai-v2's
    # spans feed llmtel's GenAI span metrics, which buffer values too.
    samples = switched_rounds(
        switches, calls, rounds=rounds, time_block=lambda op: peers._time(op, inner, fastpath.drain)
    )
    rows = []
    for name, by_mode in samples.items():
        group = f"wrapper: fake OpenAI call, {name}"
        added = {mode: [m - b for m, b in zip(by_mode[mode], by_mode["bare"], strict=True)] for mode in switches}
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
        note = "the call itself, in-memory transport"
        rows.append(Row(group, "bare client", statistics.median(bare), min(bare), max(bare), "µs", None, note))
    return rows
