"""A small LLM app with no telemetry setup of its own, run by test_auto_run.py as

    opentelemetry-instrument python app_auto.py

configured only by environment variables. It makes a few llmtel calls, prints one JSON line of
facts about the providers it ended up with, then waits for stdin to close (so the test can scrape
and read the receiver while the app is alive) and exits normally (atexit flushes).

APP_CALLS_CONFIGURE=1 makes it also call llmtel.configure() itself, as an app written for manual
setup would.
"""

from __future__ import annotations

import json
import os
import sys
import time

from opentelemetry import metrics, trace

import llmtel


def main() -> None:
    if os.environ.get("APP_CALLS_CONFIGURE") == "1":
        llmtel.configure(service_name="app-code-name")
    for _ in range(3):
        with llmtel.llm_call(provider="openai", model="gpt-auto", stream=True) as call:
            for _chunk in call.wrap_stream(iter(["a", "b", "c"])):
                time.sleep(0.001)
            call.set_usage(input_tokens=10, output_tokens=3)
            span = call.span.get_span_context()
    active = llmtel.current()
    facts = {
        "configured": active is not None,
        "disabled": bool(active and active.disabled),
        "from_auto_instrumentation": bool(active and active.from_auto_instrumentation),
        "metrics_url": active.metrics_url if active else None,
        "global_meter_provider_is_llmtels": bool(active) and metrics.get_meter_provider() is active.meter_provider,
        "global_tracer_provider_is_llmtels": bool(active) and trace.get_tracer_provider() is active.tracer_provider,
        "meter_provider_type": type(metrics.get_meter_provider()).__name__,
        "last_trace_id": f"{span.trace_id:032x}",
        "last_span_id": f"{span.span_id:016x}",
    }
    print(json.dumps(facts), flush=True)
    sys.stdin.read()  # until the test closes our stdin


if __name__ == "__main__":
    main()
