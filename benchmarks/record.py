"""(1)+(2): one LLM call recorded by llmtel vs the same by hand on the raw SDK / prometheus_client.

Every case shares one process and, for the OTel cases, the same providers:
llmtel.configure()'s own MeterProvider (Prometheus bridge reader, trace-based
exemplars) and TracerProvider (parent-based always-on sampler, llmtel's trace
store). The raw-SDK cases use a separate meter on that provider with the same
instrument names and bucket advice, so only the recording code differs.
"""

from __future__ import annotations

import statistics
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter
from typing import Any

from opentelemetry.sdk.metrics.view import View
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client import Histogram as PromHistogram

import llmtel
from benchmarks.harness import Result, Row, interleaved
from llmtel import semconv
from llmtel._internal import fastpath as _fastpath
from llmtel._internal import state as _state
from llmtel._internal.dimensions import Dimensions
from llmtel._internal.naming import prometheus_name

PROVIDER, MODEL, RESPONSE_MODEL = "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"
ADDRESS, PORT = "api.openai.com", 443
INPUT_TOKENS, OUTPUT_TOKENS = 120, 48
PRICES = {"gpt-4o-mini": {"input": 0.15, "output": 0.60}}

DURATION = semconv.spec("gen_ai.client.operation.duration")
TOKENS = semconv.spec("gen_ai.client.token.usage")
TTFC = semconv.spec("gen_ai.client.operation.time_to_first_chunk")
TPOC = semconv.spec("gen_ai.client.operation.time_per_output_chunk")
COST = semconv.spec("llmtel.gen_ai.client.cost")
ACTIVE = semconv.spec("llmtel.gen_ai.requests.active")


#: The hand-written raw-SDK cases' meter and tracer name.
RAW_SCOPE = "bench.raw"


def configure() -> llmtel.Telemetry:
    """llmtel as an application would start it, minus collectors, on a free port.

    llmtel drops other meters' GenAI client histograms (its span metrics derive them from those
    meters' spans instead: ``spanmetrics.exclusive_views``); a view of their own keeps the raw-SDK
    cases' histograms recorded, so the baseline aggregates what llmtel aggregates.
    """
    return llmtel.configure(
        service_name="llmtel-bench",
        prometheus_port=0,
        gpu_metrics=False,
        process_metrics=False,
        price_table=PRICES,
        views=[View(meter_name=RAW_SCOPE, instrument_name=spec.name) for spec in (DURATION, TOKENS, TTFC, TPOC)],
    )


def llmtel_case(chunks: list[object] | None, models: list[str] | None = None, **attributes: str) -> Callable[[], None]:
    """One ``llm_call``; with ``models``, each call uses the next model of the list (distinct series)."""
    stream = chunks is not None
    cycle = models or [MODEL]
    position = [0]

    def op() -> None:
        model = cycle[position[0] % len(cycle)]
        position[0] += 1
        with llmtel.llm_call(
            provider=PROVIDER, model=model, stream=stream, server_address=ADDRESS, server_port=PORT, **attributes
        ) as call:
            if chunks is not None:
                for _ in call.wrap_stream(chunks):
                    pass
            call.set_response_model(RESPONSE_MODEL if models is None else model)
            call.set_usage(input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS)
            call.set_finish_reasons(["stop"])

    return op


#: llmtel's cases fold their buffered values inside the timed block: the deferred work is on the clock.
FOLD = _fastpath.drain


def without_fastpath(op: Callable[[], None]) -> Callable[[], None]:
    """``op`` with llmtel's fast record path switched off: every value through the public SDK API."""

    def plain() -> None:
        _fastpath.available = False
        try:
            op()
        finally:
            _fastpath.available = True

    return plain


def in_threads(op: Callable[[], None], pool: ThreadPoolExecutor, threads: int, calls: int) -> Callable[[], None]:
    """``calls`` runs of ``op`` split over ``threads`` threads of ``pool`` (started already), all at once."""

    def work() -> None:
        for _ in range(calls // threads):
            op()

    def run() -> None:
        for future in [pool.submit(work) for _ in range(threads)]:
            future.result()

    return run


def _hist(meter: Any, spec: semconv.InstrumentSpec) -> Any:
    return meter.create_histogram(
        spec.name, spec.unit, spec.description, explicit_bucket_boundaries_advisory=list(spec.buckets or ())
    )


def raw_sdk_case(telemetry: llmtel.Telemetry, chunks: list[object] | None, *, span: bool) -> Callable[[], None]:
    """The same span and recordings, written by hand against the OTel API/SDK."""
    assert telemetry.meter_provider is not None and telemetry.tracer_provider is not None
    meter = telemetry.meter_provider.get_meter(RAW_SCOPE)
    tracer = telemetry.tracer_provider.get_tracer(RAW_SCOPE)
    duration_h, tokens_h, ttfc_h, tpoc_h = (_hist(meter, s) for s in (DURATION, TOKENS, TTFC, TPOC))
    cost_c = meter.create_counter(COST.name, COST.unit, COST.description)
    active_c = meter.create_up_down_counter(ACTIVE.name, ACTIVE.unit, ACTIVE.description)
    price_in, price_out = PRICES[MODEL]["input"], PRICES[MODEL]["output"]
    stream = chunks is not None

    def record(start: float) -> None:
        first = last = None
        if chunks is not None:
            attrs = {
                semconv.OPERATION_NAME: "chat", semconv.PROVIDER_NAME: PROVIDER, semconv.REQUEST_MODEL: MODEL,
                semconv.SERVER_ADDRESS: ADDRESS, semconv.SERVER_PORT: PORT,
            }  # fmt: skip
            for _ in chunks:
                now = perf_counter()
                if first is None:
                    first = now
                    ttfc_h.record(now - start, attrs)  # response model unknown until the end
                else:
                    tpoc_h.record(now - last, attrs)
                last = now
        duration = perf_counter() - start
        attrs = {
            semconv.OPERATION_NAME: "chat", semconv.PROVIDER_NAME: PROVIDER, semconv.REQUEST_MODEL: MODEL,
            semconv.SERVER_ADDRESS: ADDRESS, semconv.SERVER_PORT: PORT, semconv.RESPONSE_MODEL: RESPONSE_MODEL,
        }  # fmt: skip
        duration_h.record(duration, attrs)
        tokens_h.record(INPUT_TOKENS, {**attrs, semconv.TOKEN_TYPE: "input"})
        tokens_h.record(OUTPUT_TOKENS, {**attrs, semconv.TOKEN_TYPE: "output"})
        cost_c.add((INPUT_TOKENS * price_in + OUTPUT_TOKENS * price_out) / 1e6, attrs)

    active_attrs = {semconv.OPERATION_NAME: "chat", semconv.PROVIDER_NAME: PROVIDER, semconv.REQUEST_MODEL: MODEL}

    def op() -> None:
        start = perf_counter()
        active_c.add(1, active_attrs)
        record(start)
        active_c.add(-1, active_attrs)

    def op_span() -> None:
        span_attrs = {
            semconv.OPERATION_NAME: "chat", semconv.PROVIDER_NAME: PROVIDER, semconv.REQUEST_MODEL: MODEL,
            semconv.SERVER_ADDRESS: ADDRESS, semconv.SERVER_PORT: PORT, "gen_ai.request.stream": stream,
        }  # fmt: skip
        with tracer.start_as_current_span(f"chat {MODEL}", kind=SpanKind.CLIENT, attributes=span_attrs) as sp:
            op()
            sp.set_attributes(
                {
                    semconv.RESPONSE_MODEL: RESPONSE_MODEL,
                    "gen_ai.response.finish_reasons": ["stop"],
                    "gen_ai.usage.input_tokens": INPUT_TOKENS,
                    "gen_ai.usage.output_tokens": OUTPUT_TOKENS,
                }
            )

    return op_span if span else op


_LABELS = ("operation", "provider", "request_model", "server_address", "server_port")


def prometheus_client_case(chunks: list[object] | None, *, bound: bool) -> Callable[[], None]:
    """The same metrics with prometheus_client (no spans, no exemplars), labels per call or pre-bound."""
    reg = CollectorRegistry(auto_describe=False)
    name = prometheus_name
    full = (*_LABELS, "response_model")
    duration_h = PromHistogram(name(DURATION), DURATION.description, full, buckets=DURATION.buckets, registry=reg)
    tokens_h = PromHistogram(name(TOKENS), TOKENS.description, (*full, "type"), buckets=TOKENS.buckets, registry=reg)
    ttfc_h = PromHistogram(name(TTFC), TTFC.description, _LABELS, buckets=TTFC.buckets, registry=reg)
    tpoc_h = PromHistogram(name(TPOC), TPOC.description, _LABELS, buckets=TPOC.buckets, registry=reg)
    cost_c = Counter(name(COST).removesuffix("_total"), COST.description, full, registry=reg)
    active_g = Gauge(name(ACTIVE), ACTIVE.description, ("operation", "provider", "request_model"), registry=reg)
    price_in, price_out = PRICES[MODEL]["input"], PRICES[MODEL]["output"]
    base = ("chat", PROVIDER, MODEL, ADDRESS, str(PORT))
    if bound:
        b_dur, b_in, b_out = duration_h.labels(*base, RESPONSE_MODEL), None, None
        b_in = tokens_h.labels(*base, RESPONSE_MODEL, "input")
        b_out = tokens_h.labels(*base, RESPONSE_MODEL, "output")
        b_ttfc, b_tpoc = ttfc_h.labels(*base), tpoc_h.labels(*base)
        b_cost, b_active = cost_c.labels(*base, RESPONSE_MODEL), active_g.labels(*base[:3])

        def op_bound() -> None:
            start = perf_counter()
            b_active.inc()
            first = last = None
            if chunks is not None:
                for _ in chunks:
                    now = perf_counter()
                    if first is None:
                        first = now
                        b_ttfc.observe(now - start)
                    else:
                        b_tpoc.observe(now - last)
                    last = now
            b_dur.observe(perf_counter() - start)
            b_in.observe(INPUT_TOKENS)
            b_out.observe(OUTPUT_TOKENS)
            b_cost.inc((INPUT_TOKENS * price_in + OUTPUT_TOKENS * price_out) / 1e6)
            b_active.dec()

        return op_bound

    def op() -> None:
        start = perf_counter()
        active_g.labels("chat", PROVIDER, MODEL).inc()
        first = last = None
        if chunks is not None:
            for _ in chunks:
                now = perf_counter()
                if first is None:
                    first = now
                    ttfc_h.labels(*base).observe(now - start)
                else:
                    tpoc_h.labels(*base).observe(now - last)
                last = now
        duration_h.labels(*base, RESPONSE_MODEL).observe(perf_counter() - start)
        tokens_h.labels(*base, RESPONSE_MODEL, "input").observe(INPUT_TOKENS)
        tokens_h.labels(*base, RESPONSE_MODEL, "output").observe(OUTPUT_TOKENS)
        cost_c.labels(*base, RESPONSE_MODEL).inc((INPUT_TOKENS * price_in + OUTPUT_TOKENS * price_out) / 1e6)
        active_g.labels("chat", PROVIDER, MODEL).dec()

    return op


SCENARIOS: dict[str, int | None] = {"non-streaming": None, "stream 8 chunks": 8, "stream 128 chunks": 128}
SERIES = (1, 300, 2000)
SERIES_GROUP = "record: series scaling"
THREADS = 8
THREAD_GROUP = "record: threads, one series"
PAIRED_CHUNKS = 128
CHUNK_GROUP = "record: per chunk, paired"
CHUNK_ROWS = "chunk cost, paired per round"


class LivePage:
    """A browser tab on the endpoint's live page: GETs ``/api/overview`` every ``interval`` s while open.

    ``interval`` None means the tab is closed. The page's numbers are computed in the endpoint
    thread when asked; this measures whether that shows up in ``llm_call``'s cost per call.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.interval: float | None = None
        self.requests = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-live-page", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            interval = self.interval
            if interval is None:
                self._stop.wait(0.005)
                continue
            with urllib.request.urlopen(self.url, timeout=10) as response:
                response.read()
            self.requests += 1
            self._stop.wait(interval)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def with_page(op: Callable[[], None], page: LivePage, interval: float | None) -> Callable[[], None]:
    """``op`` while the page is open with that refresh ``interval`` (None: closed)."""

    def run() -> None:
        page.interval = interval
        op()

    return run


def live_page(telemetry: llmtel.Telemetry, *, quick: bool) -> list[Result]:
    """llm_call with the live page closed, open at its real 2 s refresh, and polled 20x faster (stress)."""
    page = LivePage(f"{telemetry.endpoint_url}/api/overview")
    op = llmtel_case([object() for _ in range(8)])
    try:
        cases = [
            ("llmtel.llm_call, page closed", with_page(op, page, None), FOLD),
            ("llmtel.llm_call, page open (refresh every 2 s)", with_page(op, page, 2.0), FOLD),
            ("llmtel.llm_call, page open (refresh every 0.1 s)", with_page(op, page, 0.1), FOLD),
        ]
        results = [
            *interleaved(
                "record: stream 8 chunks, live page",
                cases,
                rounds=5 if quick else 61,
                inner=60 if quick else 500,
                baseline="llmtel.llm_call, page closed",
            ),
            # The recording thread's own CPU time: what the record path costs, without the machine's noise.
            *interleaved(
                "record: stream 8 chunks, live page (CPU time)",
                cases,
                rounds=5 if quick else 61,
                inner=60 if quick else 500,
                baseline="llmtel.llm_call, page closed",
                clock=time.thread_time,
            ),
        ]
    finally:
        page.close()
    request = Result("live page", "GET /api/overview (HTTP, computed on request)", unit="ms")
    url = f"{telemetry.endpoint_url}/api/overview"
    for _ in range(5 if quick else 31):
        start = perf_counter()
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
        request.samples.append(perf_counter() - start)
    return [*results, request]


def with_dimensions(op: Callable[[], None], *, block: bool) -> Callable[[], None]:
    """``op`` with two opted-in metric attributes (tenant, route) resolved on every call.

    ``block``: the values come from an ``llmtel.attributes()`` block entered per call (what
    middleware does once per request); otherwise ``op`` passes them as keywords. The keys are
    switched on in the current handles only for the duration of ``op``, so the other cases of
    the same interleaved rounds run on the very same providers without them.
    """
    dims = Dimensions({"*": ["tenant", "route"]})

    def run() -> None:
        handles = _state.current()
        saved, handles.dimensions = handles.dimensions, dims
        try:
            if block:
                with llmtel.attributes(tenant="acme", route="/v1/chat"):
                    op()
            else:
                op()
        finally:
            handles.dimensions = saved

    return run


def dimensions(*, quick: bool) -> list[Result]:
    """llm_call without opted-in keys vs with two (issue 16: within 10 %)."""
    results: list[Result] = []
    for scenario, n in (("non-streaming", None), ("stream 8 chunks", 8)):
        chunks = None if n is None else [object() for _ in range(n)]
        cases = [
            ("llmtel.llm_call", llmtel_case(chunks), FOLD),
            ("llmtel.llm_call, 2 opted-in keys as keywords",
             with_dimensions(llmtel_case(chunks, tenant="acme", route="/v1/chat"), block=False), FOLD),
            ("llmtel.llm_call, 2 opted-in keys from llmtel.attributes()",
             with_dimensions(llmtel_case(chunks), block=True), FOLD),
        ]  # fmt: skip
        results += interleaved(
            f"record: {scenario}, metric_attributes",
            cases,
            rounds=5 if quick else 21,
            inner=60 if quick else 400,
            baseline="llmtel.llm_call",
        )
    return results


def run(telemetry: llmtel.Telemetry, *, quick: bool) -> list[Result]:
    """Time every case of every scenario; ratios are against the raw SDK with a span."""
    results: list[Result] = []
    rounds = 5 if quick else 21
    for scenario, n in SCENARIOS.items():
        chunks = None if n is None else [object() for _ in range(n)]
        cases = [
            ("llmtel.llm_call", llmtel_case(chunks), FOLD),
            ("llmtel.llm_call, fast path off", without_fastpath(llmtel_case(chunks))),
            ("raw SDK, span + metrics", raw_sdk_case(telemetry, chunks, span=True)),
            ("raw SDK, metrics only", raw_sdk_case(telemetry, chunks, span=False)),
            ("prometheus_client, labels()", prometheus_client_case(chunks, bound=False)),
            ("prometheus_client, pre-bound", prometheus_client_case(chunks, bound=True)),
        ]
        per_call = 1 if n is None else max(1, n // 8)
        inner = max(5, (60 if quick else 400) // per_call)
        results += interleaved(
            f"record: {scenario}",
            cases,  # type: ignore[arg-type]
            rounds=rounds,
            inner=inner,
            baseline="raw SDK, span + metrics",
        )
    results += live_page(telemetry, quick=quick)
    results += dimensions(quick=quick)
    results += chunk_pairs(quick=quick)
    results += series_scaling(quick=quick)
    results += thread_scaling(telemetry, quick=quick)
    return results


def chunk_pairs(*, quick: bool) -> list[Result]:
    """``llm_call`` non-streaming and with 128 chunks in the same rounds, for the cost per chunk per round.

    The scenario groups above time each call shape in its own rounds, so their per-chunk figure is a
    difference of two medians taken minutes apart; here each round's pair shares the machine's load.
    Timed twice: wall time and the recording thread's CPU time.
    """
    chunks = [object() for _ in range(PAIRED_CHUNKS)]
    cases = [
        ("llmtel.llm_call, non-streaming", llmtel_case(None), FOLD),
        (f"llmtel.llm_call, stream {PAIRED_CHUNKS} chunks", llmtel_case(chunks), FOLD),
    ]
    return _wall_and_cpu(
        CHUNK_GROUP,
        cases,
        rounds=5 if quick else 31,
        inner=10 if quick else 100,
        baseline="llmtel.llm_call, non-streaming",
    )


def chunk_rows(results: list[Result]) -> list[Row]:
    """Per round, (stream 128 chunks - non-streaming) / 128 (:func:`chunk_pairs`); quartiles in the note."""
    rows = []
    for group, clock in ((CHUNK_GROUP, "wall time"), (f"{CHUNK_GROUP}, CPU time", "thread CPU time")):
        by_name = {r.name: r for r in results if r.group == group}
        plain = by_name.get("llmtel.llm_call, non-streaming")
        streamed = by_name.get(f"llmtel.llm_call, stream {PAIRED_CHUNKS} chunks")
        if plain is None or streamed is None:
            continue
        per_chunk = [(s - p) / PAIRED_CHUNKS for s, p in zip(streamed.samples, plain.samples, strict=True)]
        q1, median, q3 = _quartiles(per_chunk)
        rows.append(
            Row(
                CHUNK_ROWS,
                f"llmtel.llm_call ({clock})",
                median,
                min(per_chunk),
                max(per_chunk),
                "µs",
                note=f"per round ({PAIRED_CHUNKS} chunks - non-streaming) / {PAIRED_CHUNKS}, folds on the clock; "
                f"quartiles {q1 * 1e6:.2f}-{q3 * 1e6:.2f} µs",
            )
        )
    return rows


def series_scaling(*, quick: bool) -> list[Result]:
    """Per-call cost of a non-streaming ``llm_call`` cycling through N distinct models (7 series each).

    The cases share model names (model-00000, ...), so all of them together stay at N models: at 2000,
    the duration series fill the SDK's default cardinality limit exactly; the token and cost series
    (two per model) overflow past 1000 models, as they would in an application.

    Timed twice: wall time, and the recording thread's CPU time (what other jobs on the machine take
    from this one does not count; the cache misses of the many models' objects do).
    """
    cases = []
    for n in SERIES[:2] if quick else SERIES:
        op = llmtel_case(None, [f"model-{i:05d}" for i in range(n)])
        for _ in range(n):  # every series exists before timing
            op()
        FOLD()
        cases.append((f"llmtel.llm_call, {n} model{'s' if n > 1 else ''}", op, FOLD))
    return _wall_and_cpu(
        SERIES_GROUP,
        cases,
        rounds=5 if quick else 15,
        inner=200 if quick else 2000,
        baseline="llmtel.llm_call, 1 model",
    )


def _wall_and_cpu(group: str, cases: list[Any], *, rounds: int, inner: int, baseline: str) -> list[Result]:
    """``cases`` timed in wall time as ``group``, then in the calling thread's CPU time as ``group, CPU time``."""
    results: list[Result] = []
    for name, clock in ((group, time.perf_counter), (f"{group}, CPU time", time.thread_time)):
        results += interleaved(name, cases, rounds=rounds, inner=inner, baseline=baseline, clock=clock)
    return results


def thread_scaling(telemetry: llmtel.Telemetry, *, quick: bool) -> list[Result]:
    """Per-call time, one series, with 1 and with 8 threads calling at once (the GIL shares one core).

    Timed twice, interleaved each time: wall time, and the process's CPU time (every thread's,
    ``time.process_time``: what contention costs in work, less exposed to the machine's other jobs).
    """
    calls = 80 if quick else 800
    pool = ThreadPoolExecutor(THREADS)
    results: list[Result] = []
    try:
        ours, raw = llmtel_case(None), raw_sdk_case(telemetry, None, span=True)
        cases = [
            ("llmtel.llm_call, 1 thread", in_threads(ours, pool, 1, calls), FOLD),
            (f"llmtel.llm_call, {THREADS} threads", in_threads(ours, pool, THREADS, calls), FOLD),
            ("raw SDK, span + metrics, 1 thread", in_threads(raw, pool, 1, calls)),
            (f"raw SDK, span + metrics, {THREADS} threads", in_threads(raw, pool, THREADS, calls)),
        ]
        for group, clock in ((THREAD_GROUP, time.perf_counter), (f"{THREAD_GROUP}, process CPU", time.process_time)):
            results += interleaved(
                group,
                cases,  # type: ignore[arg-type]
                rounds=5 if quick else 31,
                inner=1,
                baseline="raw SDK, span + metrics, 1 thread",
                clock=clock,
            )
    finally:
        pool.shutdown()
    for result in results:
        result.samples = [sample / calls for sample in result.samples]
    return results


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def thread_rows(results: list[Result]) -> list[Row]:
    """Contention: per round, the 8-thread over the 1-thread per-call time, per implementation and clock.

    Then llmtel's ratio over the SDK's, per round (both measured in the same round): below 1, llmtel
    loses less to contention than the SDK. The notes give the quartiles over rounds.
    """
    rows = []
    for group, clock in ((THREAD_GROUP, "wall time"), (f"{THREAD_GROUP}, process CPU", "process CPU time")):
        by_name = {r.name: r for r in results if r.group == group}
        title = f"thread scaling ({THREADS} threads / 1){'' if group == THREAD_GROUP else ', process CPU'}"
        per_round: dict[str, list[float]] = {}
        for implementation in ("llmtel.llm_call", "raw SDK, span + metrics"):
            one, many = by_name.get(f"{implementation}, 1 thread"), by_name.get(f"{implementation}, {THREADS} threads")
            if one is None or many is None:
                continue
            ratios = per_round[implementation] = [m / o for m, o in zip(many.samples, one.samples, strict=True)]
            q1, median, q3 = _quartiles(ratios)
            rows.append(
                Row(
                    title,
                    f"{implementation}, {THREADS} / 1 threads",
                    median,
                    min(ratios),
                    max(ratios),
                    "x",
                    note=f"{clock} per call, {THREADS} threads on one series over 1 thread, paired per round; "
                    f"quartiles {q1:.2f}-{q3:.2f}",
                )
            )
        if len(per_round) == 2:
            ours, sdk = per_round["llmtel.llm_call"], per_round["raw SDK, span + metrics"]
            relative = [o / s for o, s in zip(ours, sdk, strict=True)]
            q1, median, q3 = _quartiles(relative)
            below = sum(value < 1 for value in relative)
            rows.append(
                Row(
                    title,
                    "llmtel's ratio / raw SDK's ratio",
                    median,
                    min(relative),
                    max(relative),
                    "x",
                    note=f"per round; quartiles {q1:.2f}-{q3:.2f}; below 1 in {below} of {len(relative)} rounds",
                )
            )
    return rows
