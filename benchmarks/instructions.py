"""Instructions per span under callgrind: what ``GenAISpanMetrics`` adds, whatever the machine's load.

Wall and CPU times on a shared 2-core VM drift by 2x within minutes (docs/performance.md);
instruction counts do not. Each case runs in a child process under ``valgrind --tool=callgrind``
twice, with ``SPANS`` and ``3 * SPANS`` spans after the same warm-up, and the difference of the two
totals over ``2 * SPANS`` is the instructions one span costs (start-up and warm-up cancel out).
``PYTHONHASHSEED`` is fixed so that dictionary layouts, and with them the counts, repeat.

Cases (the spans of benchmarks/spans.py): a span on a provider with an empty ``SpanProcessor``,
with ``GenAISpanMetrics`` (its buffered values dropped unfolded: the call path), and with its values
folded (``fastpath.drain()`` every 500 spans). Instructions are not time: cache misses and branch
mispredictions are not in them, so read them as a ratio to the span's own count.

Run: ``python -m benchmarks.instructions`` (needs ``valgrind``; about 6 minutes).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SPANS = 500
CASES = ("empty", "call path", "folded")
KINDS = ("non-GenAI span", "GenAI chat span")
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")
ROOT = Path(__file__).resolve().parents[1]


def collected(stderr: str) -> int:
    """The instruction total callgrind reports at exit (``==pid== Collected : N``)."""
    match = _COLLECTED.search(stderr)
    if match is None:
        raise ValueError("no 'Collected' line in callgrind's output")
    return int(match.group(1))


def child(kind: str, case: str, spans: int) -> None:
    """Warm up, then run ``spans`` spans of ``kind`` in ``case`` (the process valgrind measures)."""
    import gc

    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from benchmarks import record
    from benchmarks.spans import _span_case
    from llmtel._internal import fastpath
    from llmtel._internal.spanmetrics import GenAISpanMetrics

    record.configure()
    provider = TracerProvider()
    provider.add_span_processor(SpanProcessor() if case == "empty" else GenAISpanMetrics())
    op = _span_case(provider, kind == KINDS[1])

    def settle() -> None:
        if case == "folded":
            fastpath.drain()
        else:  # the call path alone: buffered values are dropped unfolded
            getattr(fastpath._local, "entries", []).clear()

    for _ in range(300):
        op()
    fastpath.drain()
    gc.disable()
    for index in range(spans):
        op()
        if index % 500 == 499:
            settle()
    settle()


def measure(kind: str, case: str, spans: int = SPANS) -> float:
    """Instructions per span of ``kind`` in ``case``."""
    totals = []
    for count in (spans, 3 * spans):
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m",
                   "benchmarks.instructions", "--child", kind, case, str(count)]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        totals.append(collected(proc.stderr))
    return (totals[1] - totals[0]) / (2 * spans)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "CASE", "SPANS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, case, spans = args.child
        child(kind, case, int(spans))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    print("| span | case | instructions per span | added to the span | ratio to the span |")
    print("|---|---|---:|---:|---:|")
    for kind in KINDS:
        base = measure(kind, "empty")
        print(f"| {kind} | span + an empty SpanProcessor | {base:,.0f} | | 1.00x |", flush=True)
        for case in CASES[1:]:
            total = measure(kind, case)
            print(f"| {kind} | span + GenAISpanMetrics, {case} | {total:,.0f} | {total - base:,.0f} | "
                  f"{total / base:.2f}x |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
