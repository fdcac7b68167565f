"""A small OpenAI-compatible HTTP server on 127.0.0.1 for the instrumentation tests.

Speaks the wire format the real API uses: JSON bodies, SSE streams
(``data: {...}`` lines, ``data: [DONE]``, Responses API ``event:`` lines),
OpenAI error bodies with ``Retry-After`` on 429. The model name picks the
behaviour:

* ``rate-limited-once``: the first request gets 429 with ``Retry-After``, later ones succeed;
* ``broken``: 500 with an error body;
* ``slow``: answers after ``SLOW_SECONDS`` (client timeouts);
* ``reasoner``: usage reports cached and reasoning tokens;
* ``trickle``: streams many chunks slowly (abandoned-stream tests);
* ``stream-error``: the stream sends two chunks then an ``error`` payload;
* anything else: a normal answer.

Runs in a thread of the test process (``FakeOpenAI().start()``), stopped by ``stop()``.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WORDS = ["Hello", " from", " the", " fake", " server"]
CHUNK_DELAY = 0.005
SLOW_SECONDS = 1.5
RETRY_AFTER = 0.3


def _usage(model: str, prompt: int = 11, completion: int = len(WORDS)) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if model == "reasoner":
        usage["prompt_tokens_details"] = {"cached_tokens": 4, "cache_write_tokens": 2}
        usage["completion_tokens_details"] = {"reasoning_tokens": 3}
    return usage


def _responses_usage(model: str) -> dict[str, Any]:
    return {
        "input_tokens": 9,
        "output_tokens": len(WORDS),
        "total_tokens": 9 + len(WORDS),
        "input_tokens_details": {"cached_tokens": 4 if model == "reasoner" else 0, "cache_write_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 3 if model == "reasoner" else 0},
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    # -- helpers ---------------------------------------------------------------
    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_fake")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"error": {"message": message, "type": kind, "param": None, "code": kind}}, headers)

    def _sse_start(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def _sse(self, data: Any, event: str | None = None) -> None:
        text = (
            f"event: {event}\n" if event else ""
        ) + f"data: {json.dumps(data) if not isinstance(data, str) else data}\n\n"
        self.wfile.write(text.encode())
        self.wfile.flush()

    # -- routing ----------------------------------------------------------------
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        model = str(body.get("model", ""))
        with self.server.lock:
            self.server.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
            seen = self.server.seen.get(model, 0)
            self.server.seen[model] = seen + 1
        try:
            if model == "rate-limited-once" and seen == 0:
                self._error(429, "Rate limit reached", "rate_limit_exceeded", {"Retry-After": str(RETRY_AFTER)})
                return
            if model == "broken":
                self._error(500, "The server had an error", "server_error")
                return
            if model == "slow":
                time.sleep(SLOW_SECONDS)
            path = self.path.split("?", 1)[0]
            if path.endswith("/chat/completions"):
                self._chat(body, model)
            elif path.endswith("/embeddings"):
                self._embeddings(body, model)
            elif path.endswith("/responses"):
                self._responses(body, model)
            elif path.endswith("/completions"):
                self._completions(body, model)
            else:
                self._error(404, f"no route {self.path}", "not_found")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (timeouts, abandoned streams)

    def _chat(self, body: dict[str, Any], model: str) -> None:
        created = int(time.time())
        tool_call = bool(body.get("tools"))
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": "".join(WORDS)}
            if body.get("response_format"):  # structured output (.parse())
                message["content"] = json.dumps({"answer": "".join(WORDS)})
            if tool_call:
                message = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                }
            self._json(
                200,
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": created,
                    "model": f"{model}-2024",
                    "system_fingerprint": "fp_fake",
                    "service_tier": "default",
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "logprobs": None,
                            "finish_reason": "tool_calls" if tool_call else "stop",
                        }
                    ],
                    "usage": _usage(model),
                },
            )
            return
        self._sse_start()
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": created,
            "model": f"{model}-2024",
            "system_fingerprint": "fp_fake",
            "service_tier": "default",
        }
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        words = WORDS * 40 if model == "trickle" else WORDS
        delay = 0.05 if model == "trickle" else CHUNK_DELAY
        self._sse(
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        )
        for i, word in enumerate(words):
            time.sleep(delay)
            if model == "stream-error" and i == 2:
                self._sse({"error": {"message": "overloaded mid-stream", "type": "server_error", "code": None}})
                return
            self._sse({**base, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]})
        if tool_call:
            for piece in ('{"city"', ': "Paris"}'):
                self._sse(
                    {
                        **base,
                        "choices": [
                            {
                                "index": 0,
                                "delta": {
                                    "tool_calls": [
                                        {
                                            "index": 0,
                                            "id": "call_1" if piece.startswith("{") else None,
                                            "type": "function",
                                            "function": {
                                                "name": "get_weather" if piece.startswith("{") else None,
                                                "arguments": piece,
                                            },
                                        }
                                    ]
                                },
                                "finish_reason": None,
                            }
                        ],
                    }
                )
        self._sse(
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if tool_call else "stop"}]}
        )
        if include_usage:
            self._sse({**base, "choices": [], "usage": _usage(model, completion=len(words))})
        self._sse("[DONE]")

    def _completions(self, body: dict[str, Any], model: str) -> None:
        self._json(
            200,
            {
                "id": "cmpl-fake",
                "object": "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "text": "".join(WORDS), "logprobs": None, "finish_reason": "length"}],
                "usage": _usage(model),
            },
        )

    def _embeddings(self, body: dict[str, Any], model: str) -> None:
        inputs = body.get("input")
        count = len(inputs) if isinstance(inputs, list) else 1
        vector = [0.25, -0.5, 0.75, 1.0]
        data = []
        for index in range(count):
            embedding: Any = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        self._json(
            200,
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": 4 * count, "total_tokens": 4 * count},
            },
        )

    def _response_object(self, model: str, status: str, text: str) -> dict[str, Any]:
        return {
            "id": "resp_fake",
            "object": "response",
            "created_at": time.time(),
            "model": f"{model}-2024",
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "metadata": {},
            "parallel_tool_calls": True,
            "temperature": 1.0,
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "service_tier": "default",
            "output": []
            if not text
            else [
                {
                    "type": "message",
                    "id": "msg_fake",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "usage": _responses_usage(model) if status == "completed" else None,
        }

    def _responses(self, body: dict[str, Any], model: str) -> None:
        if not body.get("stream"):
            self._json(200, self._response_object(model, "completed", "".join(WORDS)))
            return
        self._sse_start()
        seq = 0

        def event(kind: str, **fields: Any) -> None:
            nonlocal seq
            self._sse({"type": kind, "sequence_number": seq, **fields}, event=kind)
            seq += 1

        event("response.created", response=self._response_object(model, "in_progress", ""))
        item = {"type": "message", "id": "msg_fake", "status": "in_progress", "role": "assistant", "content": []}
        event("response.output_item.added", output_index=0, item=item)
        event(
            "response.content_part.added",
            item_id="msg_fake",
            output_index=0,
            content_index=0,
            part={"type": "output_text", "text": "", "annotations": []},
        )
        for word in WORDS:
            time.sleep(CHUNK_DELAY)
            event(
                "response.output_text.delta",
                item_id="msg_fake",
                output_index=0,
                content_index=0,
                delta=word,
                logprobs=[],
            )
        event(
            "response.output_text.done",
            item_id="msg_fake",
            output_index=0,
            content_index=0,
            text="".join(WORDS),
            logprobs=[],
        )
        event("response.completed", response=self._response_object(model, "completed", "".join(WORDS)))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.seen: dict[str, int] = {}


class FakeOpenAI:
    """Start/stop wrapper; ``base_url`` is ``http://127.0.0.1:<port>/v1``."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self._server.requests

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


if __name__ == "__main__":  # used by the opentelemetry-instrument subprocess test
    import sys

    server = FakeOpenAI().start()
    print(server.port, flush=True)
    sys.stdin.read()  # runs until the test closes our stdin
    server.stop()
