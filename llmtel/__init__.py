"""llmtel: OpenTelemetry-native telemetry for LLM applications, with a Prometheus bridge.

Three lines::

    import llmtel
    llmtel.configure(service_name="chat-api")
    with llmtel.llm_call(provider="openai", model="gpt-4o-mini", stream=True) as call: ...

Everything public is importable from here; other modules are private unless
documented.
"""

from llmtel._errors import ConfigurationError
from llmtel.api import AgentInvocation, LLMCall, Retrieval, ToolInvocation, agent, llm_call, retrieval, tool
from llmtel.configure import Telemetry, configure, current, force_flush, get_meter, shutdown
from llmtel.pricing import Price, PriceTable
from llmtel.readers.prometheus import PrometheusBridgeReader
from llmtel.runtime import (
    admission_rejected,
    cache_lookup,
    model_load,
    queued,
    rate_limit_wait,
    record_duration,
    session,
    set_circuit_breaker_state,
)

__all__ = [
    "AgentInvocation",
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
