"""Reading openai objects cheaply, and opt-in content capture.

Content (prompts, completions, tool calls, tool definitions) is converted to the
GenAI conventions' formats (v1.41.0 ``gen-ai-input-messages.json``,
``gen-ai-output-messages.json``, ``gen-ai-system-instructions.json``,
``gen-ai-tool-definitions.json``) and written as JSON to the span and/or to one
``gen_ai.client.inference.operation.details`` event emitted through the
OpenTelemetry logs API. Nothing here that builds content runs unless capture is on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

EVENT_NAME = "gen_ai.client.inference.operation.details"


_UNDECLARED: Any = object()


def field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]`` (openai models or plain dicts), else None.

    Reads a pydantic model's field values directly: ``getattr`` on a field the
    model lacks goes through pydantic's ``__getattr__`` and an AttributeError,
    several microseconds each; a dict lookup costs a fraction of that.
    """
    if obj is None:
        return None
    if type(obj) is dict:
        return obj.get(name)
    values = getattr(obj, "__dict__", None)
    if values is None:
        return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    value = values.get(name, _UNDECLARED)
    if value is _UNDECLARED:  # a declared field is in __dict__ even when None (most chunks' finish_reason)
        extra = getattr(obj, "__pydantic_extra__", None)  # fields the installed SDK does not declare
        value = extra.get(name) if extra else None
    return value


def fields_of(obj: Any, names: tuple[str, ...]) -> Mapping[str, Any]:
    """The field values of ``obj`` as a mapping, to read several of them with plain ``.get``:
    a dict itself, a pydantic model's ``__dict__`` (with its undeclared fields when there are
    any), else ``names`` read with ``getattr``. ``fields_of(obj, names).get(name)`` is
    ``field(obj, name)`` for every name in ``names``."""
    if type(obj) is dict:
        return obj
    values = getattr(obj, "__dict__", None)
    if values is None:
        if isinstance(obj, dict):
            return obj
        return {name: getattr(obj, name, None) for name in names}
    extra = getattr(obj, "__pydantic_extra__", None)
    return {**extra, **{k: v for k, v in values.items() if v is not None}} if extra else values


# -- parts -----------------------------------------------------------------------
def _text_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, Iterable):
        for item in content:
            kind = field(item, "type")
            text = field(item, "text")
            if isinstance(text, str):
                parts.append({"type": "text", "content": text})
            elif kind == "refusal" and isinstance(field(item, "refusal"), str):
                parts.append({"type": "refusal", "content": field(item, "refusal")})
            elif kind:
                parts.append({"type": str(kind)})  # images, audio, files: the kind only, never the bytes
    return parts


def _tool_call_part(call: Any) -> dict[str, Any]:
    function = field(call, "function")
    source = function if function is not None else call
    return {
        "type": "tool_call",
        "id": field(call, "id") or field(call, "call_id"),
        "name": field(source, "name") or "",
        "arguments": field(source, "arguments"),
    }


def _tool_response_part(call_id: Any, response: Any) -> dict[str, Any]:
    return {"type": "tool_call_response", "id": call_id, "response": response}


# -- inputs ------------------------------------------------------------------------
def chat_input(messages: Any) -> list[dict[str, Any]]:
    """Input messages from chat ``messages``: system/developer messages stay in the history
    (instructions that are part of the chat history belong in ``gen_ai.input.messages``)."""
    out: list[dict[str, Any]] = []
    if not isinstance(messages, Iterable) or isinstance(messages, str | bytes):
        return out
    for message in messages:
        role = field(message, "role") or "user"
        if role == "tool":
            parts = [_tool_response_part(field(message, "tool_call_id"), field(message, "content"))]
        else:
            parts = _text_parts(field(message, "content"))
            for call in field(message, "tool_calls") or ():
                parts.append(_tool_call_part(call))
        out.append({"role": role, "parts": parts})
    return out


def prompt_input(prompt: Any) -> list[dict[str, Any]]:
    """Input messages from a legacy completions ``prompt`` (a string or a list of strings)."""
    prompts = [prompt] if isinstance(prompt, str) else prompt if isinstance(prompt, list) else []
    return [{"role": "user", "parts": [{"type": "text", "content": p}]} for p in prompts if isinstance(p, str)]


def responses_input(input_value: Any) -> list[dict[str, Any]]:
    """Input messages from the Responses API ``input``."""
    if isinstance(input_value, str):
        return [{"role": "user", "parts": _text_parts(input_value)}]
    out: list[dict[str, Any]] = []
    if isinstance(input_value, Iterable):
        for item in input_value:
            kind = field(item, "type")
            if kind == "function_call":
                out.append({"role": "assistant", "parts": [_tool_call_part(item)]})
            elif kind == "function_call_output":
                out.append(
                    {"role": "tool", "parts": [_tool_response_part(field(item, "call_id"), field(item, "output"))]}
                )
            else:
                out.append({"role": field(item, "role") or "user", "parts": _text_parts(field(item, "content"))})
    return out


def system_instructions(instructions: Any) -> list[dict[str, Any]]:
    """``gen_ai.system_instructions`` from the Responses API ``instructions`` (given apart from the history)."""
    return _text_parts(instructions) if isinstance(instructions, str) else []


def tool_definitions(tools: Any) -> list[dict[str, Any]]:
    """``gen_ai.tool.definitions`` from chat (``{"type": "function", "function": {...}}``) or Responses
    (``{"type": "function", "name": ...}``) tools; built-in tools (web search...) by type."""
    out: list[dict[str, Any]] = []
    if not isinstance(tools, Iterable) or isinstance(tools, str | bytes):
        return out
    for tool in tools:
        kind = field(tool, "type") or "function"
        function = field(tool, "function")
        source = function if function is not None else tool
        name = field(source, "name")
        definition: dict[str, Any] = {"type": kind, "name": name if isinstance(name, str) else kind}
        for key in ("description", "parameters"):
            value = field(source, key)
            if value is not None:
                definition[key] = value
        out.append(definition)
    return out


# -- outputs ----------------------------------------------------------------------
#: Every output message has a finish reason (a string, per the output-messages schema);
#: an answer cut short by an abandoned or failed stream reports this one.
UNFINISHED = "error"


def chat_output(choices: Iterable[Any]) -> list[dict[str, Any]]:
    """Output messages from chat completion choices."""
    out = []
    for choice in choices:
        message = field(choice, "message")
        parts = _text_parts(field(message, "content"))
        refusal = field(message, "refusal")
        if isinstance(refusal, str):
            parts.append({"type": "refusal", "content": refusal})
        for call in field(message, "tool_calls") or ():
            parts.append(_tool_call_part(call))
        out.append({"role": "assistant", "parts": parts, "finish_reason": field(choice, "finish_reason") or UNFINISHED})
    return out


def completion_output(choices: Iterable[Any]) -> list[dict[str, Any]]:
    """Output messages from legacy text completion choices."""
    return [
        {
            "role": "assistant",
            "parts": _text_parts(field(c, "text")),
            "finish_reason": field(c, "finish_reason") or UNFINISHED,
        }
        for c in choices
    ]


def responses_output(response: Any, finish_reason: str) -> list[dict[str, Any]]:
    """Output messages from a Responses API ``Response`` (one message: one generation)."""
    parts: list[dict[str, Any]] = []
    for item in field(response, "output") or ():
        kind = field(item, "type")
        if kind == "message":
            parts.extend(_text_parts(field(item, "content")))
        elif kind == "function_call":
            parts.append(_tool_call_part(item))
        elif kind == "reasoning":
            for summary in field(item, "summary") or ():
                text = field(summary, "text")
                if isinstance(text, str):
                    parts.append({"type": "reasoning", "content": text})
    if not parts:
        return []
    return [{"role": "assistant", "parts": parts, "finish_reason": finish_reason}]


def responses_finish_reason(response: Any) -> str | None:
    """One finish reason for a Responses API ``Response``, in chat-completions terms: ``stop``,
    ``tool_calls`` (a function call is the answer), ``length``, ``content_filter``, ``error``."""
    status = field(response, "status")
    if status == "completed":
        for item in field(response, "output") or ():
            if field(item, "type") == "function_call":
                return "tool_calls"
        return "stop"
    if status == "incomplete":
        reason = field(field(response, "incomplete_details"), "reason")
        return "length" if reason == "max_output_tokens" else (reason if isinstance(reason, str) else "length")
    if status in ("failed", "cancelled"):
        return "error"
    return None  # queued / in_progress: not finished


def dumps(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)
