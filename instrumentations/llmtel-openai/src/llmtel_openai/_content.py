"""Opt-in content capture: prompts, completions and tool-call arguments.

Messages are converted to the GenAI conventions' message format
(``{"role": ..., "parts": [{"type": "text", "content": ...}]}``) and written
as JSON to the span (``gen_ai.input.messages``/``gen_ai.output.messages``) and
to one ``gen_ai.client.inference.operation.details`` event emitted through the
OpenTelemetry logs API. Nothing here runs unless capture is switched on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import llmtel

EVENT_NAME = "gen_ai.client.inference.operation.details"
_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def capture_mode() -> llmtel.CaptureMode:
    """Where content goes: the OTel variable when set (it wins, as for contrib's instrumentations),
    else llmtel's ``capture_content`` option; an unusable value means no content."""
    raw = os.environ.get(_VARIABLE, "")
    if raw.strip():
        try:
            return llmtel.CaptureMode.parse(raw)
        except ValueError:
            return llmtel.CaptureMode.NO_CONTENT  # configure() reports it; never guess towards capturing
    telemetry = llmtel.current()
    mode = telemetry.options.get("capture_content") if telemetry is not None else None
    return mode if isinstance(mode, llmtel.CaptureMode) else llmtel.CaptureMode.NO_CONTENT


def field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]`` (openai models or plain dicts), else None."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


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
            elif kind:
                parts.append({"type": str(kind)})  # images, audio, files: the kind only, never the bytes
    return parts


def _tool_call_part(call: Any) -> dict[str, Any]:
    function = field(call, "function")
    return {
        "type": "tool_call",
        "id": field(call, "id") or field(call, "call_id"),
        "name": field(function, "name") if function is not None else field(call, "name"),
        "arguments": field(function, "arguments") if function is not None else field(call, "arguments"),
    }


def chat_input(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system instructions, input messages) from chat ``messages``."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    if not isinstance(messages, Iterable) or isinstance(messages, str | bytes):
        return system, out
    for message in messages:
        role = field(message, "role") or "user"
        parts = _text_parts(field(message, "content"))
        for call in field(message, "tool_calls") or ():
            parts.append(_tool_call_part(call))
        if role == "tool":
            parts = [
                {
                    "type": "tool_call_response",
                    "id": field(message, "tool_call_id"),
                    "response": field(message, "content"),
                }
            ]
        if role in ("system", "developer"):
            system.extend(parts)
        else:
            out.append({"role": role, "parts": parts})
    return system, out


def responses_input(input_value: Any, instructions: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system instructions, input messages) from Responses API ``input``/``instructions``."""
    system = _text_parts(instructions) if isinstance(instructions, str) else []
    if isinstance(input_value, str):
        return system, [{"role": "user", "parts": _text_parts(input_value)}]
    out: list[dict[str, Any]] = []
    if isinstance(input_value, Iterable):
        for item in input_value:
            kind = field(item, "type")
            if kind == "function_call":
                out.append({"role": "assistant", "parts": [_tool_call_part(item)]})
            elif kind == "function_call_output":
                out.append(
                    {
                        "role": "tool",
                        "parts": [
                            {
                                "type": "tool_call_response",
                                "id": field(item, "call_id"),
                                "response": field(item, "output"),
                            }
                        ],
                    }
                )
            else:
                out.append({"role": field(item, "role") or "user", "parts": _text_parts(field(item, "content"))})
    return system, out


def chat_output(choices: Iterable[Any]) -> list[dict[str, Any]]:
    """Output messages from chat completion choices."""
    out = []
    for choice in choices:
        message = field(choice, "message")
        parts = _text_parts(field(message, "content"))
        for call in field(message, "tool_calls") or ():
            parts.append(_tool_call_part(call))
        out.append({"role": "assistant", "parts": parts, "finish_reason": field(choice, "finish_reason")})
    return out


def responses_output(response: Any) -> list[dict[str, Any]]:
    """Output messages from a Responses API ``Response``."""
    parts: list[dict[str, Any]] = []
    for item in field(response, "output") or ():
        kind = field(item, "type")
        if kind == "message":
            parts.extend(_text_parts(field(item, "content")))
        elif kind == "function_call":
            parts.append(_tool_call_part(item))
    if not parts:
        return []
    return [{"role": "assistant", "parts": parts, "finish_reason": field(response, "status")}]


def dumps(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)
