"""A gRPC inference server that knows nothing about telemetry (run under opentelemetry-instrument).

It serves ``/llmtel.test.Generator/GenerateStream`` on 127.0.0.1, calls it once itself, prints a
JSON line and keeps running (serving /metrics) until stdin is closed.
"""

import json
import sys
from concurrent import futures

import grpc
from grpc_messages import Request, Response


def generate_stream(request, context):
    for i in range(request.max_tokens // 2):
        yield Response(text=f"t{i}", token_ids=[i, i])


opts = {"request_deserializer": Request.FromString, "response_serializer": Response.SerializeToString}
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
server.add_generic_rpc_handlers(
    (
        grpc.method_handlers_generic_handler(
            "llmtel.test.Generator",
            {"GenerateStream": grpc.unary_stream_rpc_method_handler(generate_stream, **opts)},
        ),
    )
)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
    stream = channel.unary_stream(
        "/llmtel.test.Generator/GenerateStream",
        request_serializer=Request.SerializeToString,
        response_deserializer=Response.FromString,
    )
    replies = list(stream(Request(model="tiny", prompt_token_ids=[1, 2, 3], max_tokens=6), timeout=5))
server.stop(None).wait(5)  # the server-side call has ended and recorded
print(json.dumps({"replies": len(replies)}), flush=True)
sys.stdin.read()
