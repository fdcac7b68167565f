"""``llmtel demo``: a simulated LLM workload emitting real telemetry to the embedded endpoint.

Several workers run agent turns: a cache look-up, a queue wait, a retrieval
with relevance judgements, a tool call and a streamed chat completion with
realistic time to first token and inter-chunk gaps, plus occasional rate
limits, timeouts and circuit-breaker trips. When the Anthropic SDK is installed,
some turns also classify the request with it, over an in-memory transport: the
SDK's own spans become llmtel metrics (docs/genai-spans.md). Nothing leaves the
machine.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import llmtel

MODELS = {
    # model: (provider, median TTFT s, median gap per chunk s)
    "gpt-4o-mini": ("openai", 0.25, 0.012),
    "claude-3-5-haiku": ("anthropic", 0.35, 0.015),
    "llama-3.1-8b": ("vllm", 0.08, 0.008),
}
PRICES = {
    "gpt-4o-mini": {"input": 0.15, "output": 0.60, "cache_read": 0.075},
    "claude-3-5-haiku": {"input": 0.80, "output": 4.00, "cache_read": 0.08},
    "claude-haiku-4-5": {"input": 1.00, "output": 5.00, "cache_read": 0.10, "cache_creation": 1.25},
}
#: The demo's customers (a platform's tenants), by share of the traffic: the ``tenant`` dimension.
TENANTS = ("acme", "globex", "initech", "umbrella")
TENANT_WEIGHTS = (5, 3, 1, 1)
#: The model the Anthropic SDK step asks (its spans, not llm_call, give its metrics).
SDK_MODEL = "claude-haiku-4-5"


class RateLimitError(Exception):
    """Simulated HTTP 429 from a provider."""


class ProviderTimeout(Exception):
    """Simulated request timeout."""


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = self.errors = self.tokens = 0
        self.last_trace_id = ""


def _stream(ttft: float, gap: float, chunks: int, speed: float) -> Iterator[str]:
    time.sleep(ttft / speed)
    for i in range(chunks):
        if i:
            time.sleep(random.lognormvariate(0, 0.3) * gap / speed)
        yield f"token{i} "


def anthropic_client(speed: float) -> Any:
    """The real Anthropic SDK over an in-memory transport (canned answers), or None when not installed."""
    try:
        import anthropic
        import httpx2
    except ImportError:
        return None
    rng = random.Random(7)

    def answer(request: Any) -> Any:
        body = json.loads(request.content)
        time.sleep(rng.lognormvariate(0, 0.3) * 0.3 / speed)
        if rng.random() < 0.03:
            error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            return httpx2.Response(529, json=error)
        message = {
            "id": f"msg_{rng.randrange(1 << 32):08x}",
            "type": "message",
            "role": "assistant",
            "model": f"{body['model']}-20251001",
            "content": [{"type": "text", "text": "refund"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": rng.randint(50, 400), "output_tokens": rng.randint(1, 8)},
        }
        return httpx2.Response(200, json=message)

    client = httpx2.Client(transport=httpx2.MockTransport(answer))
    return anthropic.Anthropic(api_key="demo", http_client=client, max_retries=0)


def _classify(client: Any) -> None:
    """One Anthropic SDK call: no llmtel code around it, its own span is what llmtel reads."""
    import anthropic

    try:
        client.messages.create(
            model=SDK_MODEL, max_tokens=8, messages=[{"role": "user", "content": "Classify: where is my order?"}]
        )
    except anthropic.APIStatusError:  # the simulated 529s: the SDK's span records error.type
        pass


def _turn(rng: random.Random, stats: Stats, speed: float, sdk: Any = None) -> None:
    # What a platform's middleware does once per request: every metric of the turn gets the tenant.
    (tenant,) = rng.choices(TENANTS, weights=TENANT_WEIGHTS)
    with llmtel.attributes(tenant=tenant):
        _tenant_turn(rng, stats, speed, sdk)


def _tenant_turn(rng: random.Random, stats: Stats, speed: float, sdk: Any) -> None:
    model = rng.choice(list(MODELS))
    provider, ttft_median, gap = MODELS[model]
    with llmtel.agent("support-agent"):
        llmtel.cache_lookup("prompt-cache", hit=rng.random() < 0.3)
        with llmtel.queued("inference") as ticket:
            time.sleep(rng.uniform(0, 0.02) / speed)
            if rng.random() < 0.01:
                llmtel.admission_rejected("inference", "full")
                ticket.abandon()
                return
        with llmtel.retrieval(data_source="product-docs", top_k=5) as found:
            time.sleep(rng.uniform(0.005, 0.04) / speed)
            found.set_documents(5)
            found.record_relevance(rng.choice([[1], [2, 4], [], [3], [1, 2]]))
        with llmtel.tool("lookup_order"):
            time.sleep(rng.uniform(0.002, 0.03) / speed)
        if sdk is not None and rng.random() < 0.3:
            _classify(sdk)
        try:
            with llmtel.llm_call(provider=provider, model=model, stream=True) as call:
                roll = rng.random()
                if roll < 0.04:
                    time.sleep(0.05 / speed)
                    raise RateLimitError("429 Too Many Requests")
                if roll < 0.06:
                    time.sleep(0.3 / speed)
                    raise ProviderTimeout("read timeout")
                chunks = rng.randint(8, 40)
                ttft = rng.lognormvariate(0, 0.4) * ttft_median
                for _ in call.wrap_stream(_stream(ttft, gap, chunks, speed)):
                    pass
                input_tokens = rng.randint(200, 2000)
                call.set_usage(
                    input_tokens=input_tokens,
                    output_tokens=chunks,
                    cache_read_input_tokens=rng.choice([0, 0, input_tokens // 2]),
                )
                call.set_response_model(model)
                call.set_finish_reasons(["stop"])
            with stats.lock:
                stats.calls += 1
                stats.tokens += input_tokens + chunks
                stats.last_trace_id = format(call.span.get_span_context().trace_id, "032x")
        except (RateLimitError, ProviderTimeout):
            llmtel.rate_limit_wait(rng.uniform(0.1, 1.0), provider=provider, model=model)
            with stats.lock:
                stats.calls += 1
                stats.errors += 1


def _worker(seed: int, stop: threading.Event, stats: Stats, speed: float) -> None:
    rng = random.Random(seed)
    sdk = anthropic_client(speed)
    with llmtel.session("chat"):
        while not stop.is_set():
            _turn(rng, stats, speed, sdk)


def _breaker(stop: threading.Event) -> None:
    states = ["closed"] * 8 + ["open", "half_open"]
    i = 0
    while not stop.wait(1.0):
        llmtel.set_circuit_breaker_state("anthropic", states[i % len(states)])
        i += 1


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {raw!r}") from None
    if not 0 < value < float("inf"):  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {raw!r}")
    return value


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {raw!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535 (0: any free port), got {port}")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=_positive_float, default=None, help="seconds to run (default: until Ctrl-C)")
    parser.add_argument("--port", type=_port, default=None, help="port of the bridge endpoint (default 9464)")
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--workers", type=_positive_int, default=4, help="concurrent simulated users (default 4)")
    parser.add_argument("--speed", type=_positive_float, default=1.0, help="divide every simulated latency by this")
    parser.add_argument("--quiet", action="store_true", help="no live progress line")


#: Without a terminal (a log file, CI) the progress goes out as whole lines this often instead.
_LOG_PROGRESS_EVERY = 10.0


def run(args: argparse.Namespace) -> int:
    # The demo exists to show the endpoint: serve it even if LLMTEL_ENDPOINT=off is set.
    options: dict[str, Any] = {
        "service_name": "llmtel-demo",
        "price_table": PRICES,
        "metric_attributes": ["tenant"],
        "endpoint": "on",
    }
    if args.port is not None:
        options["prometheus_port"] = args.port
    if args.host is not None:
        options["prometheus_host"] = args.host
    try:
        telemetry = llmtel.configure(**options)
    except llmtel.ConfigurationError as exc:
        print(f"llmtel demo: {exc}", file=sys.stderr)
        return 2
    base = telemetry.endpoint_url
    print(f"llmtel demo: simulated LLM workload ({args.workers} workers)", flush=True)
    if telemetry.endpoint is not None and telemetry.settings.endpoint.ui:
        print(f"  page:     {base}/  (live overview; click a time-to-first-chunk dot for its trace)", flush=True)
    print(
        f"  metrics:  {telemetry.metrics_url}  (OpenMetrics with exemplars: "
        f"curl -H 'Accept: application/openmetrics-text' {telemetry.metrics_url})",
        flush=True,
    )
    print(f"  health:   {base}/health", flush=True)
    print(f"  traces:   {base}/traces  and  {base}/traces/<trace_id>", flush=True)
    print(
        "  tenants:  every metric has a tenant label; Grafana: llmtel dashboard --metric-attributes tenant", flush=True
    )
    if anthropic_client(args.speed) is not None:
        print(f"  also:     the Anthropic SDK's own spans ({SDK_MODEL}, fake transport) → llmtel metrics", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stats = Stats()
    threads = [
        threading.Thread(target=_worker, args=(n, stop, stats, args.speed), daemon=True) for n in range(args.workers)
    ]
    threads.append(threading.Thread(target=_breaker, args=(stop,), daemon=True))
    for thread in threads:
        thread.start()
    started = time.monotonic()
    # "\r" redraws one line on a terminal; in a log it would glue every update into one line.
    live = not args.quiet and sys.stdout.isatty()
    logged = 0.0
    try:
        while not stop.wait(min(1.0, args.duration or 1.0)):
            elapsed = time.monotonic() - started
            if live or (not args.quiet and elapsed - logged >= _LOG_PROGRESS_EVERY):
                logged = elapsed
                with stats.lock:
                    line = (
                        f"  {elapsed:6.0f}s  calls {stats.calls}  errors {stats.errors}  tokens {stats.tokens}"
                        f"  last trace {base}/traces/{stats.last_trace_id}"
                    )
                print(f"\r{line}" if live else line, end="" if live else "\n", flush=True)
            if args.duration is not None and elapsed >= args.duration:
                break
    except KeyboardInterrupt:
        pass
    stop.set()
    for thread in threads:
        thread.join(timeout=5)
    if live:
        print()
    print(f"llmtel demo: {stats.calls} calls, {stats.errors} errors; shutting down", flush=True)
    llmtel.shutdown()
    return 0
