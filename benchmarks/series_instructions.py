"""Instructions per ``llm_call`` at 1, 300 and 2 000 distinct models, counted by valgrind.

    python -m benchmarks.series_instructions [--calls 2000]

The per-call cost at many models against one model (issue 19's series-scaling target) in a figure
the machine's load cannot move (see ``benchmarks/wrapper_instructions.py`` for the method). Each
case is ``benchmarks.record``'s series-scaling call: a non-streaming ``llm_call`` cycling through N
models, every series created and warmed up first, then ``--calls`` calls counted with their folds
(by the buffer every 1 024 entries, and once at the end). Instructions leave out what the many
models cost in cache misses; the clock figures are in docs/performance.md, section 1b.
"""

from __future__ import annotations

import argparse
import shutil
import sys

from benchmarks.wrapper_instructions import counted_per_call

MODELS = (1, 300, 2000)


def _inner(models: int, calls: int) -> None:
    from benchmarks import record
    from llmtel._internal import fastpath

    record.configure()
    op = record.llmtel_case(None, [f"model-{i:05d}" for i in range(models)])
    for _ in range(3 * models + 50):  # every series exists, every plan is cached
        op()
    fastpath.drain()

    def loop(n: int) -> None:
        for _ in range(n):
            op()
        fastpath.drain()

    sys.call_tracing(loop, (calls,))  # the only frame valgrind counts in


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--inner", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        _inner(*args.inner)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)")
        return 1
    module = "benchmarks.series_instructions"
    counts = {n: counted_per_call(module, ["--inner", str(n), str(args.calls)], args.calls) for n in MODELS}
    base = counts[MODELS[0]]
    print(" | ".join(f"{n} model{'s' if n > 1 else ''} {c / 1000:.1f}k ({c / base:.3f}x)" for n, c in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
