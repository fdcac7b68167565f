"""The public kit for writing llmtel instrumentations (llmtel-openai and llmtel-grpc use only this).

An instrumentation builds an invocation object, drives its lifecycle explicitly and
sets plain data on it; llmtel turns that into the span and every metric::

    from llmtel.instrumentation import guarded, llm_call

    call = llm_call(provider="acme", model=model, operation="chat", stream=True).start(attach=False)
    try:
        with call.activated():              # the HTTP request runs under the call's span
            response = send(request)
    except Exception as exc:
        call.fail(exc)                      # error.type, exception event, error status
        raise
    with guarded("acme read response"):     # never raise into the application
        call.set_usage(input_tokens=..., output_tokens=...)
    call.stop()                             # only the first stop()/fail() counts

``start()``/``stop()``/``fail()`` are what ``with`` does on entry and exit; the same
objects serve sync, async and streamed calls (``wrap_stream``). :func:`capture_mode`
says whether content may be recorded, and where.
"""

from __future__ import annotations

from llmtel._internal import state as _state
from llmtel._internal.api import (
    AgentInvocation,
    LLMCall,
    Retrieval,
    ToolInvocation,
    agent,
    llm_call,
    retrieval,
    tool,
)
from llmtel._internal.capture import CaptureMode
from llmtel._internal.errors import guard, guarded
from llmtel._internal.errors import report as report_problem

__all__ = [
    "AgentInvocation",
    "CaptureMode",
    "LLMCall",
    "Retrieval",
    "ToolInvocation",
    "agent",
    "capture_mode",
    "guard",
    "guarded",
    "llm_call",
    "report_problem",
    "retrieval",
    "tool",
]


def capture_mode() -> CaptureMode:
    """The active content-capture mode (``capture_content`` / ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``).

    Resolved once by ``configure()``; :attr:`CaptureMode.NO_CONTENT` before it and by default.
    """
    return _state.current().capture_content
