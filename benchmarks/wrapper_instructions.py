"""Instructions per instrumented OpenAI call, counted by valgrind: a figure the machine's load cannot move.

    python -m benchmarks.wrapper_instructions [--calls 400] [--modes bare,llmtel-openai,openai-v2]

On a shared machine wall and CPU clocks move by 2x from minute to minute; an
instruction count does not (runs of the same code agree within 1 %). It is a
proxy for time, not time: cache misses and branch mispredictions are not in it.

Each mode runs in its own process under ``valgrind --tool=callgrind``, counting
only inside ``sys.call_tracing`` (``--toggle-collect``), which wraps the measured
loop and nothing else: imports, ``configure()`` and warm-up are not counted. The
wrapped ``Completions.create`` is a fake that returns the canned completion or
the canned stream's chunks (``benchmarks/peers.py``'s, parsed once by the real
client), so the count is the instrumentation's alone, with its folds: every
mode folds llmtel's buffers every 40 calls inside the loop (with llmtel's
providers, openai-v2's spans feed llmtel's GenAI span metrics too).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from benchmarks.instructions import collected

MODES = ("bare", "llmtel-openai", "openai-v2")
FOLD_EVERY = 40


def _inner(mode: str, call: str, calls: int) -> None:
    """The measured process: set up, warm up, then the counted loop inside ``sys.call_tracing``."""
    from benchmarks import peers, record
    from llmtel._internal import fastpath

    record.configure()
    client = peers._client()
    with peers.canned_create(client):
        if mode == "llmtel-openai":
            from llmtel_openai import OpenAIInstrumentor

            OpenAIInstrumentor().instrument()
        elif mode == "openai-v2":
            from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as V2

            V2().instrument()
        op = peers._calls(client)["non-streaming" if call == "plain" else f"stream {peers.CHUNKS} chunks"]
        for _ in range(50):
            op()
        fastpath.drain()

        def loop(n: int) -> None:
            for i in range(n):
                op()
                if i % FOLD_EVERY == FOLD_EVERY - 1:
                    fastpath.drain()
            fastpath.drain()

        sys.call_tracing(loop, (calls,))  # the only frame valgrind counts in


def count(mode: str, call: str, calls: int) -> float:
    """Instructions per call of ``mode`` (``plain`` or ``stream``), from one valgrind run."""
    return counted_per_call("benchmarks.wrapper_instructions", ["--inner", mode, call, str(calls)], calls)


def counted_per_call(module: str, arguments: list[str], calls: int) -> float:
    """Instructions per call of ``python -m module *arguments``, counted inside its ``sys.call_tracing`` only."""
    command = [
        "valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=sys_call_tracing",
        "--callgrind-out-file=/dev/null", sys.executable, "-m", module, *arguments,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    try:
        total = collected(done.stderr)
    except ValueError:
        total = 0
    if done.returncode != 0 or total == 0:
        raise SystemExit(f"valgrind run of {module} {' '.join(arguments)} failed:\n{done.stderr[-2000:]}")
    return total / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--inner", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        mode, call, calls = args.inner
        _inner(mode, call, int(calls))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)")
        return 1
    modes = args.modes.split(",")
    for call in ("plain", "stream"):
        counts = {mode: count(mode, call, args.calls) for mode in modes}
        bare = counts.get("bare", 0.0)
        line = f"{call:6s} " + " | ".join(f"{m} {c / 1000:.1f}k" for m, c in counts.items())
        if "llmtel-openai" in counts and "openai-v2" in counts:
            ratio = (counts["llmtel-openai"] - bare) / (counts["openai-v2"] - bare)
            line += f" | added instructions llmtel-openai / openai-v2 = {ratio:.3f}"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
