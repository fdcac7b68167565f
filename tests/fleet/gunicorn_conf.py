"""gunicorn settings of the fleet test's prefork instance, as docs/multiprocess.md recommends.

The master configures llmtel before forking (``preload_app``); it keeps the base port
(``worker="0"``) and each worker binds the next free one. The bind address and the worker count
come from the test through FLEET_BIND and FLEET_WORKERS.
"""

from __future__ import annotations

import os
from typing import Any

import llmtel

bind = os.environ["FLEET_BIND"]
workers = int(os.environ.get("FLEET_WORKERS", "2"))
preload_app = True
worker_class = "sync"
control_socket_disable = True  # gunicorn >= 24: no ~/.gunicorn socket shared between test runs
os.environ.setdefault("LLMTEL_PROMETHEUS_WORKERS", str(workers + 1))  # master (worker 0) + workers


def on_starting(server: Any) -> None:
    llmtel.configure()
