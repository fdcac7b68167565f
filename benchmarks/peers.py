"""(5): what an OpenAI instrumentation adds to one fake chat call, per peer, each in its own venv.

    python benchmarks/peers.py --peer llmtel|openai-v2|openlit|traceloop|llmtel+openai-v2 [--rounds 21]

The openai client talks to an in-memory transport (no network, no server
thread): a canned chat completion, or an SSE stream of 8 content chunks plus
usage. Instrumentors that can be switched off (``uninstrument()``) are timed
interleaved with the bare client, round by round; the others (OpenLIT,
OpenLLMetry) are timed bare first, then initialised and timed again, which is
weaker (said in the output). Prints one JSON line per scenario.

``llmtel+openai-v2`` times bare, llmtel-openai and openai-v2 in one process,
interleaved, on the same providers: the strongest comparison (one venv with both).

Standalone on purpose: peers need their own venvs (conflicting OpenTelemetry
pins), where only this file and the peer are installed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import openai

MAJOR = int(openai.__version__.split(".")[0])
if MAJOR >= 3:  # openai 3 moved to the httpx2 fork
    import httpx2 as httpx  # type: ignore[import-not-found]
else:
    import httpx

MODEL = "gpt-4o-mini"
CHUNKS = 8
_BASE = {"id": "chatcmpl-bench", "created": 1, "model": f"{MODEL}-2024-07-18", "system_fingerprint": "fp"}
_USAGE = {"prompt_tokens": 11, "completion_tokens": CHUNKS, "total_tokens": 11 + CHUNKS}
_COMPLETION = json.dumps(
    {
        **_BASE,
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "word " * CHUNKS}, "finish_reason": "stop"}
        ],
        "usage": _USAGE,
    }
).encode()


def _sse() -> bytes:
    chunk = {**_BASE, "object": "chat.completion.chunk"}
    events = [{**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    events += [{**chunk, "choices": [{"index": 0, "delta": {"content": "word "}}]} for _ in range(CHUNKS)]
    events.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**chunk, "choices": [], "usage": _USAGE})
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


_STREAM = _sse()


def _handler(request: Any) -> Any:
    if json.loads(request.content).get("stream"):
        return httpx.Response(200, content=_STREAM, headers={"content-type": "text/event-stream"})
    return httpx.Response(200, content=_COMPLETION, headers={"content-type": "application/json"})


def _client() -> openai.OpenAI:
    http = httpx.Client(transport=httpx.MockTransport(_handler))
    return openai.OpenAI(api_key="sk-bench", base_url="https://api.openai.com/v1", http_client=http, max_retries=0)


#: The benchmark's request messages (one list, read by the client and the instrumentations).
_MESSAGES: Any = [{"role": "user", "content": "Say hello"}]


def _calls(client: openai.OpenAI) -> dict[str, Callable[[], None]]:
    def plain() -> None:
        client.chat.completions.create(model=MODEL, messages=_MESSAGES)

    def stream() -> None:
        for _ in client.chat.completions.create(
            model=MODEL, messages=_MESSAGES, stream=True, stream_options={"include_usage": True}
        ):
            pass

    return {"non-streaming": plain, f"stream {CHUNKS} chunks": stream}


@contextlib.contextmanager
def canned_create(client: openai.OpenAI) -> Iterator[None]:
    """Inside: ``Completions.create`` is a fake that returns the canned completion or a canned stream.

    The issue's harness: an instrumentor's wrapper timed around a create of under a microsecond,
    so the bare call no longer drowns what it adds. The completion and the chunks are parsed once
    by the real client; a stream hands out the same chunk objects each time. Instrument inside the
    block: an instrumentor wraps whatever ``create`` is there when it instruments.
    """
    from openai.resources.chat.completions import Completions

    completion = client.chat.completions.create(model=MODEL, messages=_MESSAGES)
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=_MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )

    class CannedStream(openai.Stream):  # type: ignore[type-arg]
        def __init__(self) -> None:  # the parsed chunks again, no HTTP response behind them
            self._iterator = iter(chunks)

        def close(self) -> None:
            pass

    def fake_create(self: Any, *args: Any, **kwargs: Any) -> Any:
        return CannedStream() if kwargs.get("stream") else completion

    real = Completions.__dict__["create"]
    Completions.create = fake_create  # type: ignore[method-assign]
    try:
        yield
    finally:
        Completions.create = real  # type: ignore[method-assign]


#: The clock: wall time by default; ``--clock thread`` counts this thread's CPU time only (the
#: transport is in-memory, so every step of a call runs on it), which a loaded machine disturbs less.
_CLOCK = time.perf_counter


def _time(op: Callable[[], object], inner: int, finish: Callable[[], None] | None = None) -> float:
    """Seconds per call of ``op``; ``finish`` (llmtel's fold of its buffered values) runs on the clock.

    It runs once before the clock starts too, so that no block pays for what an earlier one buffered.
    """
    if finish is not None:
        finish()
    gc.collect()
    gc.disable()
    try:
        start = _CLOCK()
        for _ in range(inner):
            op()
        if finish is not None:
            finish()
        return (_CLOCK() - start) / inner
    finally:
        gc.enable()


def _llmtel_fold() -> Callable[[], None] | None:
    """llmtel's fold of buffered values (folding is part of what it costs), if this llmtel buffers."""
    try:
        from llmtel._internal.fastpath import drain
    except ImportError:
        return None
    return drain


def _setup(peer: str) -> tuple[Callable[[], None] | None, Callable[[], None] | None, str]:
    """(instrument, uninstrument, versions) for ``peer``; uninstrument None when it cannot be undone."""
    from importlib.metadata import version

    if peer == "llmtel":
        from llmtel_openai import OpenAIInstrumentor

        import llmtel

        llmtel.configure(prometheus_port=0, gpu_metrics=False, process_metrics=False)
        inst = OpenAIInstrumentor()
        return (
            inst.instrument,
            inst.uninstrument,
            f"llmtel {version('llmtel')}, llmtel-openai {version('llmtel-openai')}",
        )
    if peer == "openai-v2":
        from opentelemetry import metrics, trace
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as V2
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider
        from prometheus_client import CollectorRegistry

        # The same pipeline llmtel gets: a Prometheus reader and a sampled span (no exporter).
        trace.set_tracer_provider(TracerProvider())
        metrics.set_meter_provider(MeterProvider([PrometheusMetricReader(registry=CollectorRegistry())]))
        v2 = V2()
        versions = f"opentelemetry-instrumentation-openai-v2 {version('opentelemetry-instrumentation-openai-v2')}"
        return v2.instrument, v2.uninstrument, versions
    if peer in ("openlit", "traceloop"):
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        # No collector: a pull-only metric reader (costs like a Prometheus one per record) and spans kept in
        # memory (like llmtel's trace store). These peers pick up SDK providers that already exist.
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(MeterProvider([InMemoryMetricReader()]))
    if peer == "openlit":
        import tempfile

        import openlit  # type: ignore[import-not-found]

        prices = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        # A local price table: by default OpenLIT fetches one from GitHub at init.
        json.dump({"chat": {MODEL: {"promptPrice": 0.00015, "completionPrice": 0.0006}}}, prices)
        prices.close()

        def init() -> None:
            # Events off: with no collector OpenLIT prints them to stdout (so its figure is a lower bound).
            openlit.init(disable_batch=True, collect_gpu_stats=False, disable_events=True, pricing_json=prices.name)

        return init, None, f"openlit {version('openlit')}"
    if peer == "traceloop":
        import os

        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from traceloop.sdk import Traceloop  # type: ignore[import-not-found]

        def init_tl() -> None:
            Traceloop.init(
                app_name="bench",
                api_endpoint="http://127.0.0.1:9",  # never contacted: exporters are given
                exporter=InMemorySpanExporter(),
                metrics_exporter=ConsoleMetricExporter(out=open(os.devnull, "w")),
                disable_batch=True,
                telemetry_enabled=False,
            )

        return init_tl, None, f"traceloop-sdk {version('traceloop-sdk')}"
    if peer == "bare":
        return None, None, ""
    raise SystemExit(f"unknown peer {peer!r}")


def _same_process() -> dict[str, tuple[Callable[[], None], Callable[[], None]]]:
    """llmtel-openai and openai-v2 in one process, on the providers llmtel.configure() builds.

    Both patch the same client methods, so only one is on at a time; openai-v2 records through the
    global providers, which are llmtel's (Prometheus bridge, trace-based exemplars, trace store).
    """
    from llmtel_openai import OpenAIInstrumentor
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as V2

    import llmtel

    llmtel.configure(prometheus_port=0, gpu_metrics=False, process_metrics=False)
    ours, contrib = OpenAIInstrumentor(), V2()
    return {"llmtel": (ours.instrument, ours.uninstrument), "openai-v2": (contrib.instrument, contrib.uninstrument)}


def _main_same_process(args: argparse.Namespace) -> int:
    from importlib.metadata import version

    switches = _same_process()
    calls = _calls(_client())
    for op in calls.values():
        for _ in range(20):
            op()
    modes = ["bare", *switches]
    samples = {name: {mode: [] for mode in modes} for name in calls}  # type: ignore[var-annotated]
    on: str | None = None
    for round_no in range(args.rounds + 1):
        for mode in modes if round_no % 2 == 0 else list(reversed(modes)):
            if on != mode:  # switched outside the timed blocks
                if on is not None and on != "bare":
                    switches[on][1]()
                if mode != "bare":
                    switches[mode][0]()
                on = mode
            for name, op in calls.items():
                # Every mode folds inside its own block: openai-v2's spans feed llmtel's span metrics.
                value = _time(op, args.inner, _llmtel_fold())
                if round_no:
                    samples[name][mode].append(value)
    versions = ", ".join(
        f"{d} {version(d)}" for d in ("llmtel", "llmtel-openai", "opentelemetry-instrumentation-openai-v2", "openai")
    )
    for name, by_mode in samples.items():
        bare = statistics.median(by_mode["bare"])
        row: dict[str, Any] = {"peer": "same process", "versions": versions, "scenario": name, "interleaved": True}
        for mode, values in by_mode.items():
            row[f"{mode}_us"] = statistics.median(values) * 1e6
            row[f"{mode}_min_max_us"] = [min(values) * 1e6, max(values) * 1e6]
            if mode != "bare":
                row[f"{mode}_added_us"] = (statistics.median(values) - bare) * 1e6
                # Paired: this round's time minus the same round's bare time, then the median; drifts that
                # move a whole round (CPU frequency, other load) cancel, which the difference of medians
                # of 1-3 ms calls cannot resolve at a 50 us scale.
                paired = [(v - b) * 1e6 for v, b in zip(values, by_mode["bare"], strict=True)]
                row[f"{mode}_added_paired_us"] = statistics.median(paired)
        if "llmtel_added_paired_us" in row and "openai-v2_added_paired_us" in row:
            row["llmtel_vs_openai-v2_paired"] = row["llmtel_added_paired_us"] / row["openai-v2_added_paired_us"]
        print(json.dumps(row), flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peer", required=True)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--inner", type=int, default=40)
    parser.add_argument("--clock", choices=("wall", "thread"), default="wall")
    args = parser.parse_args()
    if args.clock == "thread":
        global _CLOCK
        _CLOCK = time.thread_time
    if args.peer == "llmtel+openai-v2":
        return _main_same_process(args)
    instrument, uninstrument, versions = _setup(args.peer)
    calls = _calls(_client())
    for op in calls.values():  # warm up imports and caches, bare
        for _ in range(20):
            op()
    samples: dict[str, dict[str, list[float]]] = {name: {"bare": [], "instrumented": []} for name in calls}
    interleaved = uninstrument is not None
    if interleaved:
        assert instrument is not None
        on = False
        for round_no in range(args.rounds + 1):
            order = ("bare", "instrumented") if round_no % 2 == 0 else ("instrumented", "bare")
            for mode in order:
                if (mode == "instrumented") != on:  # switched outside the timed blocks
                    (instrument if not on else uninstrument)()
                    on = not on
                for name, op in calls.items():
                    fold = _llmtel_fold() if mode == "instrumented" and args.peer == "llmtel" else None
                    value = _time(op, args.inner, fold)
                    if round_no:  # round 0 warms the instrumented path
                        samples[name][mode].append(value)
    else:
        for _ in range(args.rounds):
            for name, op in calls.items():
                samples[name]["bare"].append(_time(op, args.inner))
        if instrument is not None:
            instrument()
            for op in calls.values():
                for _ in range(20):
                    op()
            for _ in range(args.rounds):
                for name, op in calls.items():
                    samples[name]["instrumented"].append(_time(op, args.inner))
    for name, modes in samples.items():
        bare = statistics.median(modes["bare"])
        row: dict[str, Any] = {
            "peer": args.peer,
            "versions": versions,
            "openai": openai.__version__,
            "python": sys.version.split()[0],
            "scenario": name,
            "interleaved": interleaved,
            "bare_us": bare * 1e6,
            "bare_min_max_us": [min(modes["bare"]) * 1e6, max(modes["bare"]) * 1e6],
        }
        if modes["instrumented"]:
            inst = statistics.median(modes["instrumented"])
            row["instrumented_us"] = inst * 1e6
            row["instrumented_min_max_us"] = [min(modes["instrumented"]) * 1e6, max(modes["instrumented"]) * 1e6]
            row["added_us"] = (inst - bare) * 1e6
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
