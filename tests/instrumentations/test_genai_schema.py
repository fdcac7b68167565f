"""The message-schema checker rejects what the v1.41.0 schemas reject (so the replay tests' checks can fail)."""

from __future__ import annotations

from typing import Any

import pytest
from genai_schema import check_input_messages, check_output_messages, check_system_instructions, check_tool_definitions

TEXT = {"type": "text", "content": "hi"}


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (check_output_messages, [{"role": "assistant", "parts": [TEXT], "finish_reason": None}], "finish_reason"),
        (check_output_messages, [{"role": "assistant", "parts": [TEXT]}], "finish_reason"),
        (check_input_messages, [{"role": "user"}], "parts"),
        (check_input_messages, [{"parts": [TEXT]}], "role"),
        (check_input_messages, [{"role": "user", "parts": [{"type": "text"}]}], "content"),
        (check_input_messages, [{"role": "user", "parts": [{"content": "x"}]}], "type"),
        (check_input_messages, [{"role": "tool", "parts": [{"type": "tool_call_response", "id": "c"}]}], "response"),
        (check_input_messages, [{"role": "assistant", "parts": [{"type": "tool_call", "id": 1, "name": "f"}]}], "id"),
        (
            check_output_messages,
            [{"role": "assistant", "parts": [{"type": "tool_call"}], "finish_reason": "stop"}],
            "name",
        ),
        (check_input_messages, [{"role": "user", "parts": [{"type": "blob", "content": "AA=="}]}], "modality"),
        (check_system_instructions, [{"type": "tool_call", "name": "f"}], "not allowed"),
        (check_tool_definitions, [{"type": "function"}], "name"),
        (check_tool_definitions, [{"type": "function", "name": "f", "parameters": "x"}], "parameters"),
        (check_input_messages, {"role": "user", "parts": []}, "array"),
    ],
)
def test_checker_rejects(check: Any, value: Any, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check(value)


def test_checker_accepts_the_documented_shapes() -> None:
    check_input_messages(
        [
            {"role": "system", "parts": [TEXT]},
            {"role": "user", "parts": [TEXT, {"type": "image_url"}]},  # a generic part: a type suffices
            {"role": "assistant", "parts": [{"type": "tool_call", "id": None, "name": "f", "arguments": {"a": 1}}]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c", "response": "ok"}]},
        ]
    )
    check_output_messages([{"role": "assistant", "parts": [TEXT], "finish_reason": "error"}])
    check_system_instructions([TEXT])
    check_tool_definitions(
        [
            {"type": "function", "name": "f", "parameters": {"type": "object"}},
            {"type": "web_search", "name": "web_search"},
        ]
    )
