"""(6): what deriving GenAI metrics from spans adds to a span (``GenAISpanMetrics``).

Two TracerProviders in one process, one bare and one with llmtel's span-metrics
processor (recording into llmtel's configured instruments, fast path on), time
the same span start + end, interleaved: a plain non-GenAI span (an HTTP server
span) and a chat span as the Anthropic SDK's own tracing writes it (19
attributes, usage, time to first chunk). The processor's ``on_end`` is also
timed alone on an ended span, which is the figure the targets speak of
(non-GenAI ≤ 1 µs, GenAI ≤ 15 µs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind

import llmtel
from benchmarks.harness import Result, interleaved
from llmtel._internal.fastpath import drain
from llmtel._internal.spanmetrics import GenAISpanMetrics

HTTP_ATTRIBUTES: dict[str, Any] = {
    "http.request.method": "POST",
    "http.route": "/v1/chat",
    "url.scheme": "https",
    "server.address": "api.example.com",
    "server.port": 443,
    "http.response.status_code": 200,
}
CHAT_START: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.request.max_tokens": 1024,
    "gen_ai.request.stream": True,
    "server.address": "api.anthropic.com",
    "server.port": 443,
    "http.request.method": "POST",
    "http.route": "/v1/messages",
}
CHAT_END: dict[str, Any] = {
    "gen_ai.response.id": "msg_01",
    "gen_ai.response.model": "claude-sonnet-4-5-20250929",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 200,
    "gen_ai.response.time_to_first_chunk": 0.42,
    "anthropic.message.stop_reason": "end_turn",
    "http.response.status_code": 200,
    "url.path": "/v1/messages",
    "url.scheme": "https",
}


def _span_case(provider: TracerProvider, genai: bool) -> Callable[[], None]:
    tracer = provider.get_tracer("com.anthropic.sdk.python")
    if genai:

        def op() -> None:
            span = tracer.start_span("anthropic.messages.create", kind=SpanKind.CLIENT, attributes=CHAT_START)
            span.set_attributes(CHAT_END)
            span.end()

        return op

    def op_http() -> None:
        span = tracer.start_span("POST /v1/chat", kind=SpanKind.SERVER, attributes=HTTP_ATTRIBUTES)
        span.set_attribute("http.response.status_code", 200)
        span.end()

    return op_http


def _llm_call() -> None:
    """The same call recorded by llmtel's own API instead (its span and metrics), for scale."""
    with llmtel.llm_call(
        provider="anthropic", model="claude-sonnet-4-5", server_address="api.anthropic.com", server_port=443
    ) as call:
        call.mark_first_token()
        call.set_response_model("claude-sonnet-4-5-20250929")
        call.set_usage(input_tokens=1200, output_tokens=300, cache_read_input_tokens=200)


def _ended(genai: bool) -> Any:
    """One ended span (its ReadableSpan, as on_end gets it)."""
    tracer = TracerProvider().get_tracer("com.anthropic.sdk.python")
    span: Any = tracer.start_span("s", attributes=CHAT_START if genai else HTTP_ATTRIBUTES)
    if genai:
        span.set_attributes(CHAT_END)
    span.end()
    return span._readable_span()


def run(*, quick: bool) -> list[Result]:
    """Ratios: each case against the same span on a provider without the processor.

    "on_end alone" is the call path (what the ending thread pays; its values are folded
    after the timed block); "on_end + folding" adds the batch folding of those values,
    which happens at collection or when a thread's buffer fills.
    """
    bare = TracerProvider()
    empty = TracerProvider()
    empty.add_span_processor(SpanProcessor())  # the SDK's own cost of having one processor
    derived = TracerProvider()
    processor = GenAISpanMetrics()
    derived.add_span_processor(processor)
    results: list[Result] = []
    rounds = 5 if quick else 21
    inner = 100 if quick else 1000  # below BUFFER_LIMIT: no fold inside an "alone" block
    for label, genai in (("non-GenAI span", False), ("GenAI chat span", True)):
        ended = _ended(genai)
        results += interleaved(
            f"span metrics: {label}",
            [
                ("span, no processor", _span_case(bare, genai)),
                ("span + an empty SpanProcessor", _span_case(empty, genai)),
                ("span + GenAISpanMetrics, folding included", _span_case(derived, genai), drain),
                ("GenAISpanMetrics.on_end alone", lambda ended=ended: processor.on_end(ended), None, drain),
                *(
                    [
                        ("GenAISpanMetrics.on_end + folding", lambda ended=ended: processor.on_end(ended), drain),
                        ("llmtel.llm_call, same call, folding included", _llm_call, drain),
                    ]
                    if genai
                    else []
                ),
            ],
            rounds=rounds,
            inner=inner,
            baseline="span, no processor",
            clock=time.thread_time,  # nothing here waits: CPU time is steadier on a shared machine
        )
    return results
