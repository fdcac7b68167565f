"""A small interleaved timing harness.

Why not pytest-benchmark: it times one benchmark after another, so on a noisy
shared 2-core machine a slow minute lands on one case and the ratios drift.
Here every case of a group runs once per round, in alternating order
(A B C, C B A, ...), so noise is spread evenly and ratios hold.
"""

from __future__ import annotations

import gc
import itertools
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class Result:
    """Per-operation seconds of one case, one sample per round."""

    group: str
    name: str
    samples: list[float] = field(default_factory=list)
    unit: str = "µs"
    baseline: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)


Case = (
    tuple[str, Callable[[], object]]
    | tuple[str, Callable[[], object], Callable[[], object] | None]
    | tuple[str, Callable[[], object], Callable[[], object] | None, Callable[[], object]]
)


def interleaved(
    group: str,
    cases: Sequence[Case],
    *,
    rounds: int,
    inner: int,
    baseline: str | None = None,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> list[Result]:
    """Time each ``(name, op[, finish])`` ``inner`` times per round, ``rounds`` rounds, interleaved.

    Samples are seconds per call of ``op``. ``finish``, when given, runs once per
    timed block, inside it, after the ``inner`` calls (llmtel's cases fold their
    buffered values there, so the deferred aggregation work is on the clock); a
    fourth element runs after the block, off the clock (to time the call path
    alone and fold its values before the next case). GC
    is disabled inside a timed block (as ``timeit`` does) and run between blocks,
    so one case's garbage is not collected on another case's clock. ``clock=time.thread_time``
    measures the calling thread's CPU time instead of wall time (steadier on a
    loaded machine; blind to waiting, e.g. for the GIL).
    """
    results = {case[0]: Result(group, case[0], baseline=baseline) for case in cases}
    order = list(cases)
    for round_no in range(warmup + rounds):
        for case in order if round_no % 2 == 0 else reversed(order):
            name, op = case[0], case[1]
            finish = case[2] if len(case) > 2 else None  # type: ignore[misc]
            after = case[3] if len(case) > 3 else None  # type: ignore[misc]
            gc.collect()
            gc.disable()
            try:
                start = clock()
                for _ in range(inner):
                    op()
                if finish is not None:
                    finish()
                elapsed = clock() - start
            finally:
                gc.enable()
            if after is not None:
                after()  # off the clock
            if round_no >= warmup:
                results[name].samples.append(elapsed / inner)
    return list(results.values())


#: Switches a mode on and off: ``(instrument, uninstrument)``.
Switch = tuple[Callable[[], object], Callable[[], object]]


def switched_rounds(
    switches: dict[str, Switch],
    calls: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    time_block: Callable[[Callable[[], object]], float],
) -> dict[str, dict[str, list[float]]]:
    """``samples[call][mode]``: one ``time_block(call)`` per round for ``"bare"`` and each switched mode.

    For instrumentations that patch one client (a process can only run one mode at a time).
    Modes are switched outside the timed blocks. Round ``r`` runs the modes in the ``r``-th of
    their orders, every permutation in turn, so that over ``rounds`` (a multiple of their count:
    6 for three modes) each mode is timed equally often in each position and right after each
    other mode; after a switch each call runs once untimed, so that no mode is timed on the first
    call after patching (cold caches). An extra round 0 warms every mode and is not kept.
    """
    modes = ["bare", *switches]
    orders = list(itertools.permutations(modes))
    samples: dict[str, dict[str, list[float]]] = {name: {mode: [] for mode in modes} for name in calls}
    on = "bare"
    try:
        for round_no in range(rounds + 1):
            for mode in orders[round_no % len(orders)]:
                if on != mode:
                    if on != "bare":
                        switches[on][1]()
                    if mode != "bare":
                        switches[mode][0]()
                    on = mode
                    for op in calls.values():
                        op()
                for name, op in calls.items():
                    value = time_block(op)
                    if round_no:
                        samples[name][mode].append(value)
    finally:
        if on != "bare":
            switches[on][1]()
    return samples


def fmt_value(seconds: float, unit: str) -> str:
    if unit == "µs":
        return f"{seconds * 1e6:,.2f}"
    if unit == "ms":
        return f"{seconds * 1e3:,.1f}"
    if unit == "s":
        return f"{seconds:,.3f}"
    return f"{seconds:,.2f}"  # sizes: already in their unit (MB, kB)


@dataclass
class Row:
    """One printed table row (timings or a derived/plain figure)."""

    group: str
    name: str
    median: float
    low: float
    high: float
    unit: str
    ratio: float | None = None
    note: str = ""


def paired_ratio(case: Result, base: Result) -> float:
    """Median over rounds of ``case / base`` within the same round (interleaved: the pair shares the load)."""
    return statistics.median(c / b for c, b in zip(case.samples, base.samples, strict=True))


def rows_from(results: Sequence[Result]) -> list[Row]:
    """Rows with the paired ratio to each result's baseline."""
    by_key = {(r.group, r.name): r for r in results}
    rows = []
    for r in results:
        ratio = None
        base = by_key.get((r.group, r.baseline)) if r.baseline is not None else None
        if base is not None:
            ratio = paired_ratio(r, base)
        rows.append(Row(r.group, r.name, r.median, r.low, r.high, r.unit, ratio))
    return rows


def render(rows: Sequence[Row]) -> str:
    """A Markdown table: group, case, median, min-max, unit, ratio."""
    lines = [
        "| group | case | median | min-max | unit | ratio | note |",
        "|---|---|---:|---:|---|---:|---|",
    ]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
        span = f"{fmt_value(row.low, row.unit)}-{fmt_value(row.high, row.unit)}"
        median = fmt_value(row.median, row.unit)
        lines.append(f"| {row.group} | {row.name} | {median} | {span} | {row.unit} | {ratio} | {row.note} |")
    return "\n".join(lines)
