"""Shared helpers for the Prometheus bridge tests: scraping, parsing, workloads, free ports."""

from __future__ import annotations

import gzip
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from realservers import self_signed_cert

import llmtel

OPENMETRICS_ACCEPT = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"  # noqa: E501 - Prometheus 2.x' Accept header, verbatim
TEXT_ACCEPT = "text/plain;version=0.0.4"
TTFC = "gen_ai_client_operation_time_to_first_chunk_seconds"


def get(
    url: str, *, accept: str = TEXT_ACCEPT, headers: dict[str, str] | None = None, context: Any = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            body = response.read()
            hdrs = {k.lower(): v for k, v in response.headers.items()}
            if hdrs.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            return response.status, hdrs, body
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def samples(families: Any) -> list[Any]:
    return [sample for family in families for sample in family.samples]


def om_families(text: str) -> dict[str, Any]:
    """Parse OpenMetrics text with prometheus_client's strict parser; families by name."""
    return {family.name: family for family in parse_openmetrics(text)}


def text_families(text: str) -> dict[str, Any]:
    return {family.name: family for family in parse_text(text)}


def streamed_call(*, ttfc: float = 0.05, chunks: int = 3, model: str = "gpt-4o") -> llmtel.LLMCall:
    """A streamed client call whose first chunk comes after ``ttfc`` seconds; returns the call."""

    def stream() -> Iterator[str]:
        time.sleep(ttfc)
        for i in range(chunks):
            yield f"chunk{i}"

    with llmtel.llm_call(provider="openai", model=model, stream=True, server_address="127.0.0.1") as call:
        for _ in call.wrap_stream(stream()):
            pass
        call.set_usage(input_tokens=12, output_tokens=chunks)
        call.set_response_model(model)
    return call


def ids(call: Any) -> tuple[str, str]:
    context = call.span.get_span_context()
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def every_instrument_workload() -> None:
    """Touch every instrument of the registry that a process without GPUs can record."""
    from llmtel._internal import errors as _errors
    from llmtel._internal import runtime

    streamed_call(ttfc=0.001)
    with llmtel.llm_call(provider="vllm", model="llama", role="server", stream=True) as server:
        for _ in server.wrap_stream(iter(["a", "b", "c"])):
            pass
        server.set_usage(input_tokens=5, output_tokens=3)
    with llmtel.tool("search"):
        pass
    with llmtel.agent("planner"):
        pass
    with llmtel.retrieval(data_source="docs", top_k=3) as query:
        query.set_documents(3)
        query.record_relevance([2])
    with runtime.session("chat"):
        pass
    with runtime.queued("main") as ticket:
        ticket.start()
    runtime.admission_rejected("main", "full")
    runtime.set_circuit_breaker_state("openai", "open")
    runtime.rate_limit_wait(0.2, provider="openai", model="gpt-4o")
    runtime.cache_lookup("prompt", hit=True)
    runtime.cache_lookup("prompt", hit=False)
    with runtime.model_load("llama"):
        pass
    _errors.report("bridge test problem")
    _errors.export_failed("bridge-test")


@contextmanager
def configured(**kwargs: Any) -> Iterator[llmtel.Telemetry]:
    """llmtel configured on a free port without collectors; always shut down."""
    kwargs.setdefault("prometheus_port", 0)
    kwargs.setdefault("gpu_metrics", False)
    kwargs.setdefault("process_metrics", False)
    kwargs.setdefault("price_table", {"gpt-4o": {"input": 2.5, "output": 10.0}})
    llmtel.shutdown()
    telemetry = llmtel.configure(**kwargs)
    try:
        yield telemetry
    finally:
        llmtel.shutdown()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 written to ``directory``: (cert.pem, key.pem)."""
    key_pem, cert_pem = self_signed_cert()
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    return cert, key
