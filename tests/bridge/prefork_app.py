"""The app of tests/bridge/test_prefork.py: WSGI (gunicorn) and ASGI (uvicorn), one llmtel count per request.

Like an app written for docs/multiprocess.md, it calls ``llmtel.configure()`` where it is created;
under gunicorn with ``preload_app`` the master configured llmtel before importing it, and the call
then keeps that configuration.
"""

from __future__ import annotations

import os
from typing import Any

import llmtel

if llmtel.current() is None:
    llmtel.configure(service_name="prefork-app")

CACHE = "prefork"


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """WSGI: count one cache hit, answer with this worker's pid."""
    llmtel.cache_lookup(CACHE, hit=True)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI: the same, for uvicorn."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    llmtel.cache_lookup(CACHE, hit=True)
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
