"""Recorded-style OpenAI exchanges, replayed through the HTTP client's own mock transport.

Each exchange is what the API reference documents for one request: the request
body fields the client must send, and the response: a JSON body, an SSE stream
(``data: {...}`` lines, ``data: [DONE]``; Responses API ``event:`` lines), an
OpenAI error body, or a connection failure. :class:`Replay` serves them in order
through ``httpx.MockTransport`` (openai 2.x) or ``httpx2.MockTransport``
(openai 3.x), checks each request against its recording, and keeps what was sent.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from typing import Any

import openai

httpx: Any = importlib.import_module("httpx2" if int(openai.__version__.split(".")[0]) >= 3 else "httpx")

MODEL = "gpt-4o-mini"
ANSWER = ["Hello", "!", " How", " can", " I", " help", "?"]
USAGE = {
    "prompt_tokens": 19,
    "completion_tokens": len(ANSWER),
    "total_tokens": 19 + len(ANSWER),
    "prompt_tokens_details": {"cached_tokens": 8, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}
TOOL_CALL = {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}


@dataclass
class Exchange:
    """One recorded request and its response."""

    path: str
    request: dict[str, Any] = field(default_factory=dict)  # fields the request body must hold
    status: int = 200
    json_body: Any = None
    sse: list[tuple[str | None, Any]] | None = None  # (event name, data)
    headers: dict[str, str] = field(default_factory=dict)
    connect_error: bool = False


# -- chat completions -------------------------------------------------------------
def chat(request: dict[str, Any] | None = None, *, tool_call: bool = False, n: int = 1) -> Exchange:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(ANSWER), "refusal": None}
    if tool_call:
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [TOOL_CALL]}
    choices = [
        {"index": i, "message": message, "logprobs": None, "finish_reason": "tool_calls" if tool_call else "stop"}
        for i in range(n)
    ]
    body = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": choices,
        "usage": USAGE,
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }
    return Exchange("/v1/chat/completions", request or {}, json_body=body, headers={"x-request-id": "req_123"})


def chat_chunks(*, usage: bool = True, tool_call: bool = False, cut_after: int | None = None) -> list[Any]:
    base = {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1694268190,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_44709d6fcb",
    }
    chunks: list[Any] = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [{**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]} for w in ANSWER]
    if tool_call:
        calls = [
            {"index": 0, "id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
            {"index": 0, "function": {"arguments": '{"city":'}},
            {"index": 0, "function": {"arguments": '"Paris"}'}},
        ]
        chunks += [
            {**base, "choices": [{"index": 0, "delta": {"tool_calls": [c]}, "finish_reason": None}]} for c in calls
        ]
    chunks.append(
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if tool_call else "stop"}]}
    )
    if usage:
        chunks.append({**base, "choices": [], "usage": USAGE})
    if cut_after is not None:
        chunks = chunks[:cut_after]
        chunks.append(
            {"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}
        )
        return chunks
    return [*chunks, "[DONE]"]


def chat_stream(request: dict[str, Any] | None = None, **kwargs: Any) -> Exchange:
    return Exchange(
        "/v1/chat/completions", {"stream": True, **(request or {})}, sse=[(None, c) for c in chat_chunks(**kwargs)]
    )


# -- legacy completions, embeddings --------------------------------------------------
def completion() -> Exchange:
    body = {
        "id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7",
        "object": "text_completion",
        "created": 1589478378,
        "model": "gpt-3.5-turbo-instruct",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"text": "\n\nThis is indeed a test", "index": 0, "logprobs": None, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
    return Exchange("/v1/completions", {"prompt": "Say this is a test"}, json_body=body)


def embeddings(count: int = 2) -> Exchange:
    body = {
        "object": "list",
        "data": [{"object": "embedding", "embedding": [0.0023, -0.0093, 0.0152], "index": i} for i in range(count)],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    return Exchange("/v1/embeddings", {"encoding_format": "float"}, json_body=body)


# -- Responses API --------------------------------------------------------------------
def response_object(status: str = "completed", *, function_call: bool = False, incomplete: str | None = None) -> Any:
    output: list[Any] = []
    if status != "in_progress":
        if function_call:
            output = [
                {
                    "type": "function_call",
                    "id": "fc_12345xyz",
                    "call_id": "call_12345xyz",
                    "name": "get_weather",
                    "arguments": '{"location":"Paris, France"}',
                    "status": "completed",
                }
            ]
        else:
            output = [
                {
                    "type": "message",
                    "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e6",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "".join(ANSWER), "annotations": []}],
                }
            ]
    return {
        "id": "resp_67ccd2bed1ec8190b14f964abc054267",
        "object": "response",
        "created_at": 1741476542,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "gpt-4.1-2025-04-14",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None
        if status == "in_progress"
        else {
            "input_tokens": 36,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 87,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 123,
        },
        "user": None,
        "metadata": {},
    }


def responses(request: dict[str, Any] | None = None, **kwargs: Any) -> Exchange:
    return Exchange("/v1/responses", request or {}, json_body=response_object(**kwargs))


def responses_stream(request: dict[str, Any] | None = None) -> Exchange:
    events: list[tuple[str | None, Any]] = []

    def event(kind: str, **fields: Any) -> None:
        events.append((kind, {"type": kind, "sequence_number": len(events), **fields}))

    event("response.created", response=response_object("in_progress"))
    event("response.in_progress", response=response_object("in_progress"))
    item = {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    event("response.output_item.added", output_index=0, item=item)
    part = {"type": "output_text", "text": "", "annotations": []}
    event("response.content_part.added", item_id="msg_1", output_index=0, content_index=0, part=part)
    for word in ANSWER:
        event("response.output_text.delta", item_id="msg_1", output_index=0, content_index=0, delta=word, logprobs=[])
    text = "".join(ANSWER)
    event("response.output_text.done", item_id="msg_1", output_index=0, content_index=0, text=text, logprobs=[])
    done_part = {"type": "output_text", "text": text, "annotations": []}
    event("response.content_part.done", item_id="msg_1", output_index=0, content_index=0, part=done_part)
    done_item = {**item, "status": "completed", "content": [done_part]}
    event("response.output_item.done", output_index=0, item=done_item)
    event("response.completed", response=response_object("completed"))
    return Exchange("/v1/responses", {"stream": True, **(request or {})}, sse=events)


# -- errors -----------------------------------------------------------------------------
def error(status: int, message: str, kind: str, code: str | None, headers: dict[str, str] | None = None) -> Exchange:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return Exchange("/v1/chat/completions", json_body=body, status=status, headers=headers or {})


def model_not_found() -> Exchange:
    return error(404, "The model `gpt-9` does not exist or you do not have access to it.", "invalid_request_error",
                 "model_not_found")  # fmt: skip


def rate_limited() -> Exchange:
    return error(429, "Rate limit reached for gpt-4o-mini.", "requests", "rate_limit_exceeded", {"retry-after-ms": "1"})


def connection_refused() -> Exchange:
    return Exchange("/v1/chat/completions", connect_error=True)


# -- the transport ------------------------------------------------------------------------
class Replay:
    """Serves ``exchanges`` in order; ``sent`` keeps each request body."""

    def __init__(self, *exchanges: Exchange) -> None:
        self.pending = list(exchanges)
        self.sent: list[dict[str, Any]] = []

    def _handle(self, request: Any) -> Any:
        assert self.pending, f"unexpected request {request.method} {request.url}"
        exchange = self.pending.pop(0)
        assert request.method == "POST" and request.url.path == exchange.path, (request.url.path, exchange.path)
        body = json.loads(request.content or b"{}")
        self.sent.append(body)
        for key, value in exchange.request.items():
            assert body.get(key) == value, f"request {key}: sent {body.get(key)!r}, recorded {value!r}"
        if exchange.connect_error:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        headers = {"x-request-id": "req_replay", **exchange.headers}
        if exchange.sse is not None:
            lines = []
            for event, data in exchange.sse:
                text = data if isinstance(data, str) else json.dumps(data)
                lines.append((f"event: {event}\n" if event else "") + f"data: {text}\n\n")
            content = "".join(lines).encode()
            return httpx.Response(
                exchange.status, content=content, headers={**headers, "content-type": "text/event-stream"}
            )
        return httpx.Response(exchange.status, json=exchange.json_body, headers=headers)

    def client(self, *, is_async: bool = False, **kwargs: Any) -> Any:
        """An ``openai.OpenAI`` (or ``AsyncOpenAI``) whose HTTP client replays the exchanges."""
        transport = httpx.MockTransport(self._handle)
        options = {"api_key": "sk-test", "base_url": "https://api.openai.com/v1", "max_retries": 0, **kwargs}
        if is_async:
            return openai.AsyncOpenAI(http_client=httpx.AsyncClient(transport=transport), **options)
        return openai.OpenAI(http_client=httpx.Client(transport=transport), **options)
