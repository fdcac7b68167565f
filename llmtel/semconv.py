"""The one registry: every instrument llmtel emits and the attribute keys it records, declared once.

Names come from the upstream ``opentelemetry-semantic-conventions`` package
where it has them (GenAI conventions as released in semconv v1.41.0, hardware
``hw.*`` conventions); llmtel's own additions live under the ``llmtel.``
namespace. Docs, dashboards and alert rules are generated from this table.

This module imports nothing from the rest of llmtel.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import Final

from opentelemetry.semconv._incubating.attributes import cpu_attributes as _cpu
from opentelemetry.semconv._incubating.attributes import cpython_attributes as _cpy
from opentelemetry.semconv._incubating.attributes import error_attributes as _error
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _ga
from opentelemetry.semconv._incubating.attributes import hw_attributes as _hw
from opentelemetry.semconv._incubating.attributes import network_attributes as _net
from opentelemetry.semconv._incubating.attributes import openai_attributes as _oa
from opentelemetry.semconv._incubating.attributes import process_attributes as _proc
from opentelemetry.semconv._incubating.attributes import server_attributes as _server
from opentelemetry.semconv._incubating.metrics import cpython_metrics as _cpym
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as _gm
from opentelemetry.semconv._incubating.metrics import hw_metrics as _hwm
from opentelemetry.semconv._incubating.metrics import process_metrics as _pm

#: Version of the semantic conventions llmtel follows for ``gen_ai.*``.
SEMCONV_VERSION: Final = "1.41.0"
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.41.0"
#: ``OTEL_SEMCONV_STABILITY_OPT_IN`` value that switches to the newer names of
#: the semantic-conventions-genai repository.
GEN_AI_LATEST_OPT_IN: Final = "gen_ai_latest_experimental"

# Attribute keys (upstream constants re-exported; llmtel's own under llmtel.*)
OPERATION_NAME: Final = _ga.GEN_AI_OPERATION_NAME
PROVIDER_NAME: Final = _ga.GEN_AI_PROVIDER_NAME
REQUEST_MODEL: Final = _ga.GEN_AI_REQUEST_MODEL
RESPONSE_MODEL: Final = _ga.GEN_AI_RESPONSE_MODEL
TOKEN_TYPE: Final = _ga.GEN_AI_TOKEN_TYPE
TOOL_NAME: Final = _ga.GEN_AI_TOOL_NAME
AGENT_NAME: Final = _ga.GEN_AI_AGENT_NAME
DATA_SOURCE_ID: Final = _ga.GEN_AI_DATA_SOURCE_ID
ERROR_TYPE: Final = _error.ERROR_TYPE
SERVER_ADDRESS: Final = _server.SERVER_ADDRESS
SERVER_PORT: Final = _server.SERVER_PORT
QUEUE_NAME: Final = "llmtel.queue.name"
REASON: Final = "llmtel.reason"
CIRCUIT_BREAKER_NAME: Final = "llmtel.circuit_breaker.name"
CACHE_NAME: Final = "llmtel.cache.name"
CACHE_RESULT: Final = "llmtel.cache.result"
RETRIEVAL_HIT: Final = "llmtel.retrieval.hit"
#: On ``retrieval`` spans. Formerly ``gen_ai.retrieval.documents.count``: the conventions define no
#: such key, and ``gen_ai.*`` is theirs.
RETRIEVAL_DOCUMENTS_COUNT: Final = "llmtel.retrieval.documents.count"
SESSION_KIND: Final = "llmtel.session.kind"
SELF_PROBLEM: Final = "llmtel.problem"
EXPORTER_NAME: Final = "llmtel.exporter"
COST_SOURCE: Final = "llmtel.cost.source"
# Span attributes the invocation objects set (upstream constants re-exported).
REQUEST_STREAM: Final = _ga.GEN_AI_REQUEST_STREAM
REQUEST_TOP_K: Final = _ga.GEN_AI_REQUEST_TOP_K
RESPONSE_ID: Final = _ga.GEN_AI_RESPONSE_ID
RESPONSE_FINISH_REASONS: Final = _ga.GEN_AI_RESPONSE_FINISH_REASONS
RESPONSE_TIME_TO_FIRST_CHUNK: Final = _ga.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
USAGE_INPUT_TOKENS: Final = _ga.GEN_AI_USAGE_INPUT_TOKENS
USAGE_OUTPUT_TOKENS: Final = _ga.GEN_AI_USAGE_OUTPUT_TOKENS
USAGE_CACHE_READ_INPUT_TOKENS: Final = _ga.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
USAGE_CACHE_CREATION_INPUT_TOKENS: Final = _ga.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
USAGE_REASONING_OUTPUT_TOKENS: Final = _ga.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
INPUT_MESSAGES: Final = _ga.GEN_AI_INPUT_MESSAGES
OUTPUT_MESSAGES: Final = _ga.GEN_AI_OUTPUT_MESSAGES
SYSTEM_INSTRUCTIONS: Final = _ga.GEN_AI_SYSTEM_INSTRUCTIONS
TOOL_DEFINITIONS: Final = _ga.GEN_AI_TOOL_DEFINITIONS
TOOL_TYPE: Final = _ga.GEN_AI_TOOL_TYPE
TOOL_CALL_ID: Final = _ga.GEN_AI_TOOL_CALL_ID
AGENT_ID: Final = _ga.GEN_AI_AGENT_ID

# Older and source-specific keys other instrumentations still emit; the GenAI span metrics read
# them, llmtel never writes them. Deprecated upstream names first, then the sources' own.
LEGACY_SYSTEM: Final = _ga.GEN_AI_SYSTEM
LEGACY_USAGE_PROMPT_TOKENS: Final = _ga.GEN_AI_USAGE_PROMPT_TOKENS
LEGACY_USAGE_COMPLETION_TOKENS: Final = _ga.GEN_AI_USAGE_COMPLETION_TOKENS
OPENLLMETRY_REQUEST_TYPE: Final = "llm.request.type"
OPENLLMETRY_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read_input_tokens"
OPENLLMETRY_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation_input_tokens"
ANTHROPIC_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"

# Metric names of the GenAI conventions (upstream constants re-exported).
CLIENT_OPERATION_DURATION: Final = _gm.GEN_AI_CLIENT_OPERATION_DURATION
CLIENT_TOKEN_USAGE: Final = _gm.GEN_AI_CLIENT_TOKEN_USAGE
CLIENT_TIME_TO_FIRST_CHUNK: Final = _gm.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK
CLIENT_TIME_PER_OUTPUT_CHUNK: Final = _gm.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK
SERVER_REQUEST_DURATION: Final = _gm.GEN_AI_SERVER_REQUEST_DURATION
SERVER_TIME_TO_FIRST_TOKEN: Final = _gm.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN
SERVER_TIME_PER_OUTPUT_TOKEN: Final = _gm.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN


class Kind(str, enum.Enum):
    """Instrument kinds, named as in the OpenTelemetry metrics API."""

    COUNTER = "counter"
    UP_DOWN_COUNTER = "updowncounter"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"
    OBSERVABLE_COUNTER = "observable_counter"
    OBSERVABLE_UP_DOWN_COUNTER = "observable_updowncounter"
    OBSERVABLE_GAUGE = "observable_gauge"

    @property
    def observable(self) -> bool:
        return self.value.startswith("observable_")


@dataclass(frozen=True)
class InstrumentSpec:
    """One instrument: everything needed to create, document and query it."""

    name: str
    kind: Kind
    unit: str
    description: str
    #: Attribute keys allowed on this instrument's data points; others are dropped.
    attributes: frozenset[str]
    #: Advisory explicit bucket boundaries (histograms only).
    buckets: tuple[float, ...] | None = None
    #: Dashboard/doc grouping: llm, server, tool, agent, retrieval, runtime, gpu, process, self.
    group: str = "llm"
    #: True when the name comes from opentelemetry-semantic-conventions.
    upstream: bool = False
    #: Name used instead under OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental.
    latest_name: str | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


# Bucket boundaries given by the GenAI conventions (v1.41.0); the client's time to first chunk and
# time per output chunk use the duration buckets, as the conventions advise.
DURATION_BUCKETS: Final = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS: Final = (
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
)  # fmt: skip
TTFT_BUCKETS: Final = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS: Final = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
# llmtel's own: short waits (queues, tools, retrieval) need finer low buckets.
WAIT_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RANK_BUCKETS: Final = (0.0, 0.1, 0.2, 0.25, 0.34, 0.5, 1.0)
COUNT_BUCKETS: Final = (0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)

_CALL = frozenset({OPERATION_NAME, PROVIDER_NAME, REQUEST_MODEL, RESPONSE_MODEL, SERVER_ADDRESS, SERVER_PORT})
_CALL_ERR = _CALL | {ERROR_TYPE}
# Provider-specific attributes the conventions recommend on the duration and token-usage points
# (openai.md); set through LLMCall.set_attributes().
_PROVIDER_EXTRA = frozenset({_oa.OPENAI_RESPONSE_SERVICE_TIER, _oa.OPENAI_RESPONSE_SYSTEM_FINGERPRINT})

INSTRUMENTS: Final[tuple[InstrumentSpec, ...]] = (
    # --- GenAI client (upstream) ---
    InstrumentSpec(
        CLIENT_OPERATION_DURATION, Kind.HISTOGRAM, "s", "GenAI operation duration.",
        _CALL_ERR | _PROVIDER_EXTRA, DURATION_BUCKETS, "llm", upstream=True,
    ),
    InstrumentSpec(
        CLIENT_TOKEN_USAGE, Kind.HISTOGRAM, "{token}", "Number of input and output tokens used.",
        _CALL | {TOKEN_TYPE} | _PROVIDER_EXTRA, TOKEN_BUCKETS, "llm", upstream=True,
    ),
    InstrumentSpec(
        CLIENT_TIME_TO_FIRST_CHUNK, Kind.HISTOGRAM, "s",
        "Time to receive the first chunk, measured from when the client issues the generation request "
        "to when the first chunk is received in the response stream.",
        _CALL_ERR, DURATION_BUCKETS, "llm", upstream=True,
    ),
    InstrumentSpec(
        CLIENT_TIME_PER_OUTPUT_CHUNK, Kind.HISTOGRAM, "s",
        "Time per output chunk, recorded for each chunk received after the first one, measured as the "
        "time elapsed from the end of the previous chunk to the end of the current chunk.",
        _CALL_ERR, DURATION_BUCKETS, "llm", upstream=True,
    ),
    # --- GenAI server (upstream) ---
    InstrumentSpec(
        SERVER_REQUEST_DURATION, Kind.HISTOGRAM, "s",
        "Generative AI server request duration such as time-to-last byte or last output token.",
        _CALL_ERR, DURATION_BUCKETS, "server", upstream=True,
    ),
    InstrumentSpec(
        SERVER_TIME_TO_FIRST_TOKEN, Kind.HISTOGRAM, "s",
        "Time to generate first token for successful responses.",
        _CALL, TTFT_BUCKETS, "server", upstream=True,
    ),
    InstrumentSpec(
        SERVER_TIME_PER_OUTPUT_TOKEN, Kind.HISTOGRAM, "s",
        "Time per output token generated after the first token for successful responses.",
        _CALL, TPOT_BUCKETS, "server", upstream=True,
    ),
    # --- llmtel: cost ---
    InstrumentSpec(
        "llmtel.gen_ai.client.cost", Kind.COUNTER, "USD",
        "Cost of GenAI calls in US dollars: as the provider reported it (llmtel.cost.source=reported, "
        "call.set_cost) or from the price table (price_table, genai_prices) split by gen_ai.token.type; "
        "unknown models are not counted.",
        _CALL | {TOKEN_TYPE, COST_SOURCE}, None, "llm",
    ),
    InstrumentSpec(
        "llmtel.gen_ai.requests.active", Kind.UP_DOWN_COUNTER, "{request}",
        "GenAI calls in flight in this process.",
        frozenset({OPERATION_NAME, PROVIDER_NAME, REQUEST_MODEL}), None, "runtime",
    ),
    # --- llmtel: tools, agents, retrieval (the conventions define spans only) ---
    InstrumentSpec(
        "llmtel.tool.duration", Kind.HISTOGRAM, "s", "Duration of tool executions.",
        frozenset({TOOL_NAME, ERROR_TYPE}), WAIT_BUCKETS, "tool",
        latest_name="gen_ai.execute_tool.duration",
    ),
    InstrumentSpec(
        "llmtel.agent.duration", Kind.HISTOGRAM, "s", "Duration of agent invocations.",
        frozenset({AGENT_NAME, ERROR_TYPE}), DURATION_BUCKETS, "agent",
        latest_name="gen_ai.invoke_agent.duration",
    ),
    InstrumentSpec(
        "llmtel.retrieval.duration", Kind.HISTOGRAM, "s", "Duration of retrieval (RAG) queries.",
        frozenset({DATA_SOURCE_ID, ERROR_TYPE}), WAIT_BUCKETS, "retrieval",
    ),
    InstrumentSpec(
        "llmtel.retrieval.documents", Kind.HISTOGRAM, "{document}", "Documents returned per retrieval query.",
        frozenset({DATA_SOURCE_ID}), COUNT_BUCKETS, "retrieval",
    ),
    InstrumentSpec(
        "llmtel.retrieval.judged", Kind.COUNTER, "{query}",
        "Retrieval queries with relevance judgements; llmtel.retrieval.hit tells whether a relevant "
        "document was in the top k (hit@k = hits / judged).",
        frozenset({DATA_SOURCE_ID, RETRIEVAL_HIT}), None, "retrieval",
    ),
    InstrumentSpec(
        "llmtel.retrieval.reciprocal_rank", Kind.HISTOGRAM, "1",
        "Reciprocal rank of the first relevant document (0 when none); MRR = sum / count.",
        frozenset({DATA_SOURCE_ID}), RANK_BUCKETS, "retrieval",
    ),
    # --- llmtel: serving runtime helpers ---
    InstrumentSpec(
        "llmtel.sessions.active", Kind.UP_DOWN_COUNTER, "{session}", "Open sessions (chats, websockets).",
        frozenset({SESSION_KIND}), None, "runtime",
    ),
    InstrumentSpec(
        "llmtel.queue.depth", Kind.UP_DOWN_COUNTER, "{request}", "Requests waiting in a queue.",
        frozenset({QUEUE_NAME}), None, "runtime",
    ),
    InstrumentSpec(
        "llmtel.queue.wait", Kind.HISTOGRAM, "s", "Time a request waited in a queue before service.",
        frozenset({QUEUE_NAME}), WAIT_BUCKETS, "runtime",
    ),
    InstrumentSpec(
        "llmtel.admission.rejected", Kind.COUNTER, "{request}", "Requests rejected by admission control.",
        frozenset({QUEUE_NAME, REASON}), None, "runtime",
    ),
    InstrumentSpec(
        "llmtel.circuit_breaker.state", Kind.GAUGE, "1",
        "Circuit-breaker state: 0 closed, 1 half-open, 2 open.",
        frozenset({CIRCUIT_BREAKER_NAME}), None, "runtime",
    ),
    InstrumentSpec(
        "llmtel.rate_limit.wait", Kind.HISTOGRAM, "s", "Time spent waiting on a provider rate limit.",
        frozenset({PROVIDER_NAME, REQUEST_MODEL}), WAIT_BUCKETS, "runtime",
    ),
    InstrumentSpec(
        "llmtel.cache.requests", Kind.COUNTER, "{request}",
        "Cache look-ups (prompt, semantic or response caches) by result (hit or miss).",
        frozenset({CACHE_NAME, CACHE_RESULT}), None, "runtime",
    ),
    InstrumentSpec(
        "llmtel.model.load.duration", Kind.HISTOGRAM, "s", "Time to load a model into memory.",
        frozenset({REQUEST_MODEL}), DURATION_BUCKETS, "runtime",
    ),
    # --- llmtel self-telemetry ---
    InstrumentSpec(
        "llmtel.sdk.problems", Kind.COUNTER, "{event}",
        "Values llmtel dropped, clamped or sanitized, and internal errors it swallowed, by kind of problem.",
        frozenset({SELF_PROBLEM}), None, "self",
    ),
    InstrumentSpec(
        "llmtel.sdk.export.failures", Kind.COUNTER, "{export}", "Failed exports, by exporter.",
        frozenset({EXPORTER_NAME}), None, "self",
    ),
    # ===== BEGIN gpu/process collectors (issue 5; owned by llmtel/collectors/) =====
    # Hardware conventions (semconv 1.44 as shipped in opentelemetry-semantic-conventions 0.66b2):
    # every hw.* point carries hw.id (required), hw.name, hw.parent, hw.type; GPU metrics add
    # hw.vendor/hw.model/hw.driver_version. A MIG instance is its own component (its hw.id is the
    # MIG UUID, hw.parent the GPU's) plus llmtel.gpu.mig.instance ("gi<G>/ci<C>"). All observable:
    # the collectors read NVML/psutil once per collection.
    InstrumentSpec(
        _hwm.HW_GPU_UTILIZATION, Kind.OBSERVABLE_GAUGE, "1", "Fraction of time spent in a specific task.",
        frozenset({_hw.HW_ID, _hw.HW_NAME, _hw.HW_PARENT, _hw.HW_TYPE, _hw.HW_VENDOR, _hw.HW_MODEL,
                   _hw.HW_DRIVER_VERSION, "llmtel.gpu.mig.instance", _hw.HW_GPU_TASK}),
        None, "gpu", upstream=True,
    ),
    InstrumentSpec(
        _hwm.HW_GPU_MEMORY_USAGE, Kind.OBSERVABLE_UP_DOWN_COUNTER, "By", "GPU memory used.",
        frozenset({_hw.HW_ID, _hw.HW_NAME, _hw.HW_PARENT, _hw.HW_TYPE, _hw.HW_VENDOR, _hw.HW_MODEL,
                   _hw.HW_DRIVER_VERSION, "llmtel.gpu.mig.instance"}),
        None, "gpu", upstream=True,
    ),
    InstrumentSpec(
        _hwm.HW_GPU_MEMORY_LIMIT, Kind.OBSERVABLE_UP_DOWN_COUNTER, "By", "Size of the GPU memory.",
        frozenset({_hw.HW_ID, _hw.HW_NAME, _hw.HW_PARENT, _hw.HW_TYPE, _hw.HW_VENDOR, _hw.HW_MODEL,
                   _hw.HW_DRIVER_VERSION, "llmtel.gpu.mig.instance"}),
        None, "gpu", upstream=True,
    ),
    InstrumentSpec(
        _hwm.HW_GPU_MEMORY_UTILIZATION, Kind.OBSERVABLE_GAUGE, "1", "Fraction of GPU memory used.",
        frozenset({_hw.HW_ID, _hw.HW_NAME, _hw.HW_PARENT, _hw.HW_TYPE, _hw.HW_VENDOR, _hw.HW_MODEL,
                   _hw.HW_DRIVER_VERSION, "llmtel.gpu.mig.instance"}),
        None, "gpu", upstream=True,
    ),
    InstrumentSpec(
        _hwm.HW_GPU_IO, Kind.OBSERVABLE_COUNTER, "By", "Received and transmitted bytes by the GPU.",
        frozenset({_hw.HW_ID, _hw.HW_NAME, _hw.HW_PARENT, _hw.HW_TYPE, _hw.HW_VENDOR, _hw.HW_MODEL,
                   _hw.HW_DRIVER_VERSION, _net.NETWORK_IO_DIRECTION}),
        None, "gpu", upstream=True,
    ),
    InstrumentSpec(
        _hwm.HW_POWER, Kind.OBSERVABLE_GAUGE, "W", "Instantaneous power consumed by the component.",
        frozenset({_hw.HW_ID, _hw.HW_NAME, _hw.HW_PARENT, _hw.HW_TYPE}), None, "gpu", upstream=True,
    ),
    InstrumentSpec(
        _hwm.HW_ENERGY, Kind.OBSERVABLE_COUNTER, "J", "Energy consumed by the component.",
        frozenset({_hw.HW_ID, _hw.HW_NAME, _hw.HW_PARENT, _hw.HW_TYPE}), None, "gpu", upstream=True,
    ),
    InstrumentSpec(
        _hwm.HW_TEMPERATURE, Kind.OBSERVABLE_GAUGE, "Cel", "Temperature in degrees Celsius.",
        frozenset({_hw.HW_ID, _hw.HW_NAME, _hw.HW_PARENT, _hw.HW_TYPE, _hw.HW_SENSOR_LOCATION}),
        None, "gpu", upstream=True,
    ),
    InstrumentSpec(
        "llmtel.process.gpu.memory.usage", Kind.OBSERVABLE_UP_DOWN_COUNTER, "By",
        "GPU memory used by this process on each GPU (or MIG instance), where NVML reports it.",
        frozenset({_hw.HW_ID, _hw.HW_NAME, _hw.HW_PARENT, "llmtel.gpu.mig.instance"}), None, "gpu",
    ),
    # Process and CPython runtime (psutil + gc), on the process.* / cpython.gc.* conventions.
    InstrumentSpec(
        _pm.PROCESS_CPU_TIME, Kind.OBSERVABLE_COUNTER, "s", "Total CPU seconds broken down by different CPU modes.",
        frozenset({_cpu.CPU_MODE}), None, "process", upstream=True,
    ),
    InstrumentSpec(
        _pm.PROCESS_CPU_UTILIZATION, Kind.OBSERVABLE_GAUGE, "1",
        "Difference in process.cpu.time since the last measurement, divided by the elapsed time and number "
        "of CPUs available to the process.",
        frozenset({_cpu.CPU_MODE}), None, "process", upstream=True,
    ),
    InstrumentSpec(
        _pm.PROCESS_MEMORY_USAGE, Kind.OBSERVABLE_UP_DOWN_COUNTER, "By",
        "The amount of physical memory in use (resident set size).",
        frozenset(), None, "process", upstream=True,
    ),
    InstrumentSpec(
        _pm.PROCESS_MEMORY_VIRTUAL, Kind.OBSERVABLE_UP_DOWN_COUNTER, "By", "The amount of committed virtual memory.",
        frozenset(), None, "process", upstream=True,
    ),
    InstrumentSpec(
        _pm.PROCESS_THREAD_COUNT, Kind.OBSERVABLE_UP_DOWN_COUNTER, "{thread}", "Process threads count.",
        frozenset(), None, "process", upstream=True,
    ),
    InstrumentSpec(
        _pm.PROCESS_UNIX_FILE_DESCRIPTOR_COUNT, Kind.OBSERVABLE_UP_DOWN_COUNTER, "{file_descriptor}",
        "Number of UNIX file descriptors in use by the process.",
        frozenset(), None, "process", upstream=True,
    ),
    InstrumentSpec(
        _pm.PROCESS_CONTEXT_SWITCHES, Kind.OBSERVABLE_COUNTER, "{context_switch}",
        "Number of times the process has been context switched.",
        frozenset({_proc.PROCESS_CONTEXT_SWITCH_TYPE}), None, "process", upstream=True,
    ),
    InstrumentSpec(
        _pm.PROCESS_UPTIME, Kind.OBSERVABLE_GAUGE, "s", "The time the process has been running.",
        frozenset(), None, "process", upstream=True,
    ),
    InstrumentSpec(
        _cpym.CPYTHON_GC_COLLECTIONS, Kind.OBSERVABLE_COUNTER, "{collection}",
        "The number of times a generation was collected since interpreter start.",
        frozenset({_cpy.CPYTHON_GC_GENERATION}), None, "process", upstream=True,
    ),
    InstrumentSpec(
        _cpym.CPYTHON_GC_COLLECTED_OBJECTS, Kind.OBSERVABLE_COUNTER, "{object}",
        "The total number of objects collected inside a generation since interpreter start.",
        frozenset({_cpy.CPYTHON_GC_GENERATION}), None, "process", upstream=True,
    ),
    InstrumentSpec(
        _cpym.CPYTHON_GC_UNCOLLECTABLE_OBJECTS, Kind.OBSERVABLE_COUNTER, "{object}",
        "The total number of objects which were found to be uncollectable inside a generation since "
        "interpreter start.",
        frozenset({_cpy.CPYTHON_GC_GENERATION}), None, "process", upstream=True,
    ),
    InstrumentSpec(
        "llmtel.cpython.gc.pause_time", Kind.OBSERVABLE_COUNTER, "s",
        "Time the garbage collector paused the interpreter, per generation, since llmtel started collecting.",
        frozenset({_cpy.CPYTHON_GC_GENERATION}), None, "process",
    ),
    InstrumentSpec(
        "llmtel.build.info", Kind.OBSERVABLE_GAUGE, "1",
        "Always 1; the attributes tell the llmtel, OpenTelemetry SDK and Python versions.",
        frozenset({"llmtel.version", "llmtel.otel_sdk.version", _proc.PROCESS_RUNTIME_NAME,
                   _proc.PROCESS_RUNTIME_VERSION}),
        None, "process",
    ),
    # ===== END gpu/process collectors =====
)  # fmt: skip

_BY_NAME: Final = {spec.name: spec for spec in INSTRUMENTS}


def spec(name: str) -> InstrumentSpec:
    """Return the registry entry for ``name`` (KeyError when unknown)."""
    return _BY_NAME[name]


def latest_experimental() -> bool:
    """True when OTEL_SEMCONV_STABILITY_OPT_IN asks for the newer GenAI names."""
    values = os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "")
    return GEN_AI_LATEST_OPT_IN in {v.strip() for v in values.split(",")}


def emitted_name(instrument: InstrumentSpec, *, latest: bool | None = None) -> str:
    """The name an instrument is emitted under, given the stability opt-in."""
    use_latest = latest_experimental() if latest is None else latest
    return instrument.latest_name if use_latest and instrument.latest_name else instrument.name
