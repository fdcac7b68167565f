"""llmtel: OpenTelemetry-native telemetry for LLM applications, with a Prometheus bridge.

Three lines::

    import llmtel
    llmtel.configure(service_name="chat-api")
    with llmtel.llm_call(provider="openai", model="gpt-4o-mini", stream=True) as call: ...

Everything public is importable from here (and, for instrumentation authors, from
:mod:`llmtel.instrumentation`); every other module is private. Names load lazily on
first use, so ``import llmtel`` stays cheap for applications that only import it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - the eager view for type checkers and IDEs
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
    from llmtel._internal.dimensions import attributes
    from llmtel._internal.errors import ConfigurationError
    from llmtel._internal.pricing import Price, PriceTable
    from llmtel._internal.runtime import (
        admission_rejected,
        cache_lookup,
        model_load,
        queued,
        rate_limit_wait,
        record_duration,
        session,
        set_circuit_breaker_state,
    )
    from llmtel.config.setup import Telemetry, configure, current, force_flush, get_meter, shutdown
    from llmtel.readers.prometheus import PrometheusBridgeReader

#: Public name → the module that defines it (loaded on first attribute access, PEP 562).
_EXPORTS: dict[str, str] = {
    "AgentInvocation": "llmtel._internal.api",
    "LLMCall": "llmtel._internal.api",
    "Retrieval": "llmtel._internal.api",
    "ToolInvocation": "llmtel._internal.api",
    "agent": "llmtel._internal.api",
    "llm_call": "llmtel._internal.api",
    "retrieval": "llmtel._internal.api",
    "tool": "llmtel._internal.api",
    "ConfigurationError": "llmtel._internal.errors",
    "attributes": "llmtel._internal.dimensions",
    "Price": "llmtel._internal.pricing",
    "PriceTable": "llmtel._internal.pricing",
    "admission_rejected": "llmtel._internal.runtime",
    "cache_lookup": "llmtel._internal.runtime",
    "model_load": "llmtel._internal.runtime",
    "queued": "llmtel._internal.runtime",
    "rate_limit_wait": "llmtel._internal.runtime",
    "record_duration": "llmtel._internal.runtime",
    "session": "llmtel._internal.runtime",
    "set_circuit_breaker_state": "llmtel._internal.runtime",
    "CaptureMode": "llmtel._internal.capture",
    "Telemetry": "llmtel.config.setup",
    "configure": "llmtel.config.setup",
    "current": "llmtel.config.setup",
    "force_flush": "llmtel.config.setup",
    "get_meter": "llmtel.config.setup",
    "shutdown": "llmtel.config.setup",
    "PrometheusBridgeReader": "llmtel.readers.prometheus",
}

__all__ = [
    "AgentInvocation",
    "CaptureMode",
    "ConfigurationError",
    "LLMCall",
    "Price",
    "PriceTable",
    "PrometheusBridgeReader",
    "Retrieval",
    "Telemetry",
    "ToolInvocation",
    "admission_rejected",
    "agent",
    "attributes",
    "cache_lookup",
    "configure",
    "current",
    "force_flush",
    "get_meter",
    "llm_call",
    "model_load",
    "queued",
    "rate_limit_wait",
    "record_duration",
    "retrieval",
    "session",
    "set_circuit_breaker_state",
    "shutdown",
    "tool",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmtel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
