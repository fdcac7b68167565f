"""A compact checker for the GenAI content formats of semantic conventions v1.41.0.

Written from the rules of the conventions' JSON schemas (gen-ai-input-messages.json,
gen-ai-output-messages.json, gen-ai-system-instructions.json, gen-ai-tool-definitions.json):
which keys each message and part must have and of what type. Extra keys are allowed
everywhere (the schemas allow additional properties); unknown part types must still
name their ``type``. Each function raises AssertionError naming the offending path.
"""

from __future__ import annotations

from typing import Any

# part type -> {required key: allowed Python types (None = any JSON value)}
_PARTS: dict[str, dict[str, tuple[type, ...] | None]] = {
    "text": {"content": (str,)},
    "reasoning": {"content": (str,)},
    "tool_call": {"name": (str,)},
    "tool_call_response": {"response": None},
    "server_tool_call": {"name": (str,), "server_tool_call": (dict,)},
    "server_tool_call_response": {"server_tool_call_response": (dict,)},
    "blob": {"modality": (str,), "content": (str,)},
    "file": {"modality": (str,), "file_id": (str,)},
    "uri": {"modality": (str,), "uri": (str,)},
}
# keys that, when present, must be a string or null
_NULLABLE_STR = ("id", "mime_type", "name")


def _check_part(part: Any, where: str, allowed: set[str] | None = None) -> None:
    assert isinstance(part, dict), f"{where}: a part is an object, got {part!r}"
    kind = part.get("type")
    assert isinstance(kind, str), f"{where}.type: required string, got {kind!r}"
    if allowed is not None and kind not in allowed:
        # only the generic form is left: it needs nothing but a type
        assert kind not in _PARTS, f"{where}: {kind!r} parts are not allowed here"
    for key, types in _PARTS.get(kind, {}).items():
        assert key in part, f"{where}: a {kind!r} part requires {key!r}"
        if types is not None:
            assert isinstance(part[key], types), f"{where}.{key}: expected {types}, got {part[key]!r}"
    for key in _NULLABLE_STR:
        if key in part and kind in _PARTS and not (kind == "tool_call" and key == "name"):
            assert part[key] is None or isinstance(part[key], str), f"{where}.{key}: string or null, got {part[key]!r}"


def _check_message(message: Any, where: str) -> None:
    assert isinstance(message, dict), f"{where}: a message is an object"
    assert isinstance(message.get("role"), str), f"{where}.role: required string, got {message.get('role')!r}"
    parts = message.get("parts")
    assert isinstance(parts, list), f"{where}.parts: required array, got {parts!r}"
    for i, part in enumerate(parts):
        _check_part(part, f"{where}.parts[{i}]")
    name = message.get("name")
    assert name is None or isinstance(name, str), f"{where}.name: string or null"


def check_input_messages(value: Any) -> None:
    """gen_ai.input.messages: an array of {role, parts[, name]}."""
    assert isinstance(value, list), "input messages: an array"
    for i, message in enumerate(value):
        _check_message(message, f"input[{i}]")


def check_output_messages(value: Any) -> None:
    """gen_ai.output.messages: an array of {role, parts, finish_reason}; finish_reason is a string."""
    assert isinstance(value, list), "output messages: an array"
    for i, message in enumerate(value):
        _check_message(message, f"output[{i}]")
        reason = message.get("finish_reason")
        assert isinstance(reason, str), f"output[{i}].finish_reason: required string, got {reason!r}"


def check_system_instructions(value: Any) -> None:
    """gen_ai.system_instructions: an array of text or generic parts."""
    assert isinstance(value, list), "system instructions: an array"
    for i, part in enumerate(value):
        _check_part(part, f"system[{i}]", allowed={"text"})


def check_tool_definitions(value: Any) -> None:
    """gen_ai.tool.definitions: an array of {type, name[, description, parameters]}."""
    assert isinstance(value, list), "tool definitions: an array"
    for i, tool in enumerate(value):
        where = f"tools[{i}]"
        assert isinstance(tool, dict), f"{where}: an object"
        assert isinstance(tool.get("type"), str), f"{where}.type: required string"
        assert isinstance(tool.get("name"), str), f"{where}.name: required string"
        if tool["type"] == "function":
            description = tool.get("description")
            assert description is None or isinstance(description, str), f"{where}.description: string or null"
            parameters = tool.get("parameters")
            assert parameters is None or isinstance(parameters, dict), f"{where}.parameters: object or null"


CHECKS = {
    "gen_ai.input.messages": check_input_messages,
    "gen_ai.output.messages": check_output_messages,
    "gen_ai.system_instructions": check_system_instructions,
    "gen_ai.tool.definitions": check_tool_definitions,
}
