"""Message classes of the tiny test inference service, built from a FileDescriptorProto.

No generated ``*_pb2.py`` and no grpcio-tools: the descriptor is written here and the
protobuf runtime makes the classes. Equivalent .proto::

    syntax = "proto3";
    package llmtel.test;
    message GenerateRequest { string model = 1; repeated int32 prompt_token_ids = 2; int32 max_tokens = 3;
                              bool fail = 4; }
    message GenerateResponse { string text = 1; repeated int32 token_ids = 2; string model = 3; }
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def _messages() -> tuple[Any, Any]:
    f = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="llmtel_test_generator.proto", package="llmtel.test", syntax="proto3")
    req = fdp.message_type.add(name="GenerateRequest")
    req.field.add(name="model", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    req.field.add(name="prompt_token_ids", number=2, type=f.TYPE_INT32, label=f.LABEL_REPEATED)
    req.field.add(name="max_tokens", number=3, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL)
    req.field.add(name="fail", number=4, type=f.TYPE_BOOL, label=f.LABEL_OPTIONAL)
    resp = fdp.message_type.add(name="GenerateResponse")
    resp.field.add(name="text", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    resp.field.add(name="token_ids", number=2, type=f.TYPE_INT32, label=f.LABEL_REPEATED)
    resp.field.add(name="model", number=3, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("llmtel.test.GenerateRequest")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("llmtel.test.GenerateResponse")),
    )


Request, Response = _messages()
