"""A FastAPI app composed as docs/middleware.md shows: one ``llmtel.configure()``, contrib's
FastAPI instrumentation for the HTTP server metrics, llmtel's ``llm_call`` inside a route.

Run by tests/middleware/test_http_middleware.py under a real uvicorn worker; the environment
chooses the stable HTTP conventions and the excluded paths (OTEL_SEMCONV_STABILITY_OPT_IN,
OTEL_PYTHON_FASTAPI_EXCLUDED_URLS) and llmtel's endpoint port.
"""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

import llmtel

llmtel.configure()  # before the instrumentor: its meter and tracer come from llmtel's providers
app = FastAPI()


@app.get("/chat")
def chat(topic: str = "") -> dict[str, str]:
    with llmtel.llm_call(provider="openai", model="gpt-4o-mini") as call:
        call.set_usage(input_tokens=10, output_tokens=3)
        trace_id = format(call.span.get_span_context().trace_id, "032x")
    return {"trace_id": trace_id}


@app.get("/items/{item_id}")
def item(item_id: int) -> dict[str, int]:
    return {"item": item_id}


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/metrics")
def metrics() -> dict[str, str]:  # an app's own /metrics route (a load balancer probe, a legacy exporter)
    return {"see": "llmtel's endpoint"}


FastAPIInstrumentor.instrument_app(app)
