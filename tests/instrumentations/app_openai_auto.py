"""An app that uses the openai client and knows nothing about telemetry (run under opentelemetry-instrument)."""

import json
import os
import sys

import openai

client = openai.OpenAI(base_url=os.environ["FAKE_OPENAI_BASE_URL"], api_key="test-key")
stream = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Say hello"}],
    stream=True,
    stream_options={"include_usage": True},
)
text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
client.embeddings.create(model="text-embedding-3-small", input="hello")
create = vars(openai.resources.chat.completions.Completions)["create"]
print(json.dumps({"text": text, "create_is_wrapped": hasattr(create, "_self_wrapper")}), flush=True)  # wrapt
sys.stdin.read()  # keep serving /metrics until the test closes stdin
