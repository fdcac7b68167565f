"""The embedded HTTP endpoint: ``/metrics``, ``/health`` and ``/traces/<trace_id>``.

One small threaded HTTP server (standard library) per process. Scrapes render
the Prometheus bridge in the format the scraper asks for (OpenMetrics with
exemplars when negotiated, classic text otherwise), gzip it when asked, and
can append the application's own ``prometheus_client`` metrics (never a family
twice). Optional basic auth and TLS; ``/health`` stays open for probes.

Slow or idle clients cannot exhaust it: at most ``max_connections`` are served
at once (one thread each); a connection must deliver its request head within
``head_timeout`` seconds (also the keep-alive idle limit) and be done within
``request_timeout``; when all slots are taken, the connection that has waited
longest for its request is closed to make room, so a scraper still gets in
behind a thousand idle connections.

Several worker processes (gunicorn, uvicorn ``--workers``): with
``prometheus_workers=N`` each process serves on the first free port of
``port .. port+N-1`` and labels its series ``worker="<port - base>"``; a
process forked after ``configure()`` moves to its own port the same way.
See docs/multiprocess.md.
"""

from __future__ import annotations

import base64
import errno
import gzip
import hmac
import json
import logging
import os
import socket
import ssl
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.exposition import generate_latest as generate_text
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from llmtel._internal import errors as _errors
from llmtel._internal.errors import ConfigurationError
from llmtel.readers.prometheus import (
    CONTENT_TYPE_OPENMETRICS,
    CONTENT_TYPE_TEXT,
    PrometheusBridgeReader,
    bridge_for,
    wants_openmetrics,
)
from llmtel.serving.pages import Pages, trace_list
from llmtel.serving.tracestore import TraceStore

logger = logging.getLogger("llmtel")

__all__ = ["WORKER_LABEL", "Endpoint"]

#: Label that tells worker processes apart when ``prometheus_workers`` > 1.
WORKER_LABEL = "worker"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # SO_REUSEADDR: a restart may bind while the last scrape's connections sit in TIME-WAIT. On POSIX it never
    # lets a second listener share the port (that is SO_REUSEPORT); on Windows it would, so it stays off there.
    allow_reuse_address = os.name != "nt"
    #: Connections served at once (one thread each).
    max_connections = 64
    # A burst of connections waits in the kernel's accept queue instead of timing out (socketserver's is 5).
    request_queue_size = 1024
    #: Seconds a connection may take to send a complete request head, and stay idle between requests.
    head_timeout = 10.0
    #: Seconds a request may take from its head to the end of the response.
    request_timeout = 60.0
    registry: CollectorRegistry | None
    bridge: PrometheusBridgeReader | None
    extra_registry: CollectorRegistry | None
    trace_store: TraceStore | None
    pages: Pages | None  # the live page (option ui), None when off
    metrics_path: str
    auth: bytes | None  # expected base64 credentials of the "Basic" scheme
    tls: ssl.SSLContext | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Open connections → (deadline on the monotonic clock, still waiting for a request head?).
        self._deadlines: dict[socket.socket, tuple[float, bool]] = {}
        # Connections that completed a request: idling on them is keep-alive, not a slow client.
        self._served: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _errors.report("endpoint connection failed")  # not a traceback on the app's stderr

    # -- connection bounds -----------------------------------------------------------
    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            if len(self._deadlines) >= self.max_connections and not self._evict_oldest_waiting():
                full = True
            else:
                full = False
                self._deadlines[request] = (time.monotonic() + self.head_timeout, True)
        if full:
            _errors.report("endpoint connection limit reached")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def _evict_oldest_waiting(self) -> bool:
        waiting = [(deadline, conn) for conn, (deadline, idle) in self._deadlines.items() if idle]
        if not waiting:
            return False
        _, conn = min(waiting, key=lambda item: item[0])
        self._drop(conn)
        _errors.report("endpoint idle connection closed for a new one")
        return True

    def _drop(self, conn: socket.socket) -> None:
        """Forget ``conn`` and wake its thread (caller holds the lock); the thread closes it."""
        self._deadlines.pop(conn, None)
        self._served.discard(conn)
        try:
            socket.socket.shutdown(conn, socket.SHUT_RDWR)  # the plain socket's: no TLS close_notify dance
        except OSError:
            pass

    def mark(self, conn: socket.socket, *, waiting: bool) -> None:
        """A handler waits for a request head (``waiting``) or serves one: restart that deadline."""
        timeout = self.head_timeout if waiting else self.request_timeout
        with self._connections_lock:
            if conn in self._deadlines:
                self._deadlines[conn] = (time.monotonic() + timeout, waiting)
                if not waiting:
                    self._served.add(conn)

    def service_actions(self) -> None:
        # serve_forever calls this every poll interval: close connections past their deadline.
        now = time.monotonic()
        with self._connections_lock:
            late = [(conn, waiting) for conn, (deadline, waiting) in self._deadlines.items() if deadline < now]
            # An idle keep-alive connection (a browser tab, a scraper between scrapes) is closed quietly;
            # one that never finished a request, or a request past its deadline, is a slow client.
            slow = [conn for conn, waiting in late if not (waiting and conn in self._served)]
            for conn, _ in late:
                self._drop(conn)
        if slow:
            _errors.report("endpoint slow connection closed")

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._deadlines.pop(request, None)
            self._served.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        # Kept-alive connections outlive the listener: without this a scraper would go on reading a stopped
        # configuration (and never reach the one configured next on the same port).
        super().server_close()
        with self._connections_lock:
            for conn in list(self._deadlines):
                self._drop(conn)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        if self.tls is not None:
            # Handshake later, in the request thread: a slow client must not stall accept().
            conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, address


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Filtered:
    """A registry view without the families the bridge already served (never a series twice)."""

    def __init__(self, registry: CollectorRegistry, served: frozenset[str]) -> None:
        self._registry, self._served = registry, served

    def collect(self) -> Iterator[Any]:
        families: list[Any] = []
        with _errors.guarded("application prometheus_client collector failed", expected=True):
            families = list(self._registry.collect())
        for family in families:
            if family.name in self._served:
                _errors.report("duplicate prometheus family skipped", detail=family.name)
                continue
            yield family


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30  # a stuck client must not pin a thread forever

    def handle(self) -> None:
        try:
            if isinstance(self.connection, ssl.SSLSocket):
                self.connection.do_handshake()
            super().handle()
        except OSError:
            pass  # bad TLS client, dropped, timed-out or closed-for-room connection: nothing to answer

    def log_message(self, format: str, *args: Any) -> None:
        return None  # scrapes must not spam the host's stderr

    def handle_one_request(self) -> None:
        self.server.mark(self.connection, waiting=True)
        super().handle_one_request()

    def parse_request(self) -> bool:
        parsed = super().parse_request()  # reads the headers
        self.server.mark(self.connection, waiting=False)
        return parsed

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        *,
        compress: bool = False,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        extra = list(headers)
        if compress and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=1)  # ~3x faster than 6 on big scrapes; text still shrinks ~25x
            extra.append(("Content-Encoding", "gzip"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in extra:
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_page(self, status: int, body: bytes, content_type: str, headers: Sequence[tuple[str, str]]) -> None:
        self._send(status, body, content_type, compress=True, headers=headers)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _authorized(self) -> bool:
        expected = self.server.auth
        if expected is None:
            return True
        # The scheme name is case-insensitive (RFC 7617 / RFC 9110).
        scheme, _, credentials = self.headers.get("Authorization", "").strip().partition(" ")
        given = credentials.strip().encode("utf-8", "replace")
        if scheme.lower() == "basic" and hmac.compare_digest(given, expected):
            return True
        challenge = ("WWW-Authenticate", 'Basic realm="llmtel", charset="UTF-8"')
        self._send(401, b"unauthorized\n", "text/plain", headers=[challenge])
        return False

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        # A request that fails answers 500 and is counted; the server thread keeps serving.
        with _errors.guarded("endpoint request failed", expected=True) as block:
            path, _, query = self.path.partition("?")
            self._route(path, query)
        if block.failed:
            self._send(500, b"internal error\n", "text/plain")

    def _route(self, path: str, query: str) -> None:
        if path == "/health":
            self._json(200, {"status": "ok"})
        elif not self._authorized():
            return
        elif path == self.server.metrics_path and self.server.registry is not None:
            body, content_type = self._metrics()
            self._send(200, body, content_type, compress=True)
        elif self.server.pages is not None and self.server.pages.handle(
            path, query, self.headers.get("Accept", ""), self._send_page
        ):
            return
        elif path.startswith("/traces") and self.server.trace_store is not None:
            trace_id = path[len("/traces") :].strip("/")
            if not trace_id:
                self._json(200, trace_list(self.server.trace_store, query))
                return
            if len(trace_id) != 32 or not all(c in "0123456789abcdefABCDEF" for c in trace_id):
                self._json(404, {"error": "not a trace id (32 hex digits)"})  # never echo a long path
                return
            spans = self.server.trace_store.get(trace_id)
            if spans is None:
                self._json(404, {"error": f"trace {trace_id} not in the store (it keeps recent traces only)"})
            else:
                self._json(200, {"trace_id": trace_id.lower(), "spans": spans})
        else:
            paths = [self.server.metrics_path, "/health"]
            if self.server.trace_store is not None:
                paths.append("/traces/<id>")
            self._json(404, {"error": "not found", "paths": paths})

    def _metrics(self) -> tuple[bytes, str]:
        server = self.server
        accept = self.headers.get("Accept", "")
        bridge = server.bridge
        if bridge is None:  # someone else's registry: prometheus_client renders it
            assert server.registry is not None
            encoder, content_type = choose_encoder(accept)
            return encoder(server.registry), content_type
        openmetrics = wants_openmetrics(accept)
        text = bridge.render(openmetrics=openmetrics, eof=False)
        extra = server.extra_registry
        if extra is not None:
            view = _Filtered(extra, bridge.family_names)
            more = generate_openmetrics(view) if openmetrics else generate_text(view)  # type: ignore[no-untyped-call]
            if openmetrics:
                more = more[: -len(b"# EOF\n")]
            text += more.decode()
        if openmetrics:
            text += "# EOF\n"
        return text.encode(), CONTENT_TYPE_OPENMETRICS if openmetrics else CONTENT_TYPE_TEXT


def _tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert and not key:
        return None
    if not cert:
        raise ConfigurationError("prometheus_tls_key is set but prometheus_tls_cert is not: give both (PEM files)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"llmtel cannot load the endpoint's TLS certificate/key ({cert}, {key}): {exc}"
        ) from None
    return context


def _basic_auth(credentials: str | None) -> bytes | None:
    if not credentials:
        return None
    if ":" not in credentials:
        raise ConfigurationError("prometheus_basic_auth must be 'user:password'")
    return base64.b64encode(credentials.encode())


def _bind_advice(error: OSError | None, workers: int) -> str:
    """Why a bind failed, in words that point at the setting to change (never "another process" for a bad host)."""
    reason = (error.strerror or str(error)) if error else "no port"
    if isinstance(error, socket.gaierror) or (error is not None and error.errno == errno.EADDRNOTAVAIL):
        return (
            f"{reason}. The host is not an address of this machine: set prometheus_host "
            "(OTEL_EXPORTER_PROMETHEUS_HOST) to one of its addresses, 127.0.0.1 (default) or 0.0.0.0 for all"
        )
    if error is not None and error.errno == errno.EACCES:
        return f"{reason}. Ports below 1024 need privileges: choose a port above 1023"
    if error is not None and error.errno != errno.EADDRINUSE:
        return f"{reason}. Check prometheus_host and prometheus_port (OTEL_EXPORTER_PROMETHEUS_HOST/_PORT)"
    return (
        f"{reason}. Another process (or another llmtel in this one) uses that port: choose another with "
        "configure(prometheus_port=...) or OTEL_EXPORTER_PROMETHEUS_PORT, or 0 for any free port"
        + (
            "; with several worker processes set prometheus_workers (LLMTEL_PROMETHEUS_WORKERS)."
            if workers == 1
            else "; raise prometheus_workers if there are more workers."
        )
    )


_live: weakref.WeakSet[Endpoint] = weakref.WeakSet()
#: Backoff of a worker waiting for its port: 50 ms, doubling, at most 2 s between tries.
_RETRY_FIRST, _RETRY_MAX = 0.05, 2.0
_forked = False  # set in a child forked from a process that had an endpoint


def in_worker_process() -> bool:
    """Whether this process is a worker of another one (forked from a configured process, or a multiprocessing
    child such as uvicorn's ``--workers``): a bind failure there must not stop it."""
    multiprocessing = sys.modules.get("multiprocessing")  # a multiprocessing child has imported it
    return _forked or (multiprocessing is not None and multiprocessing.parent_process() is not None)


class Endpoint:
    """A running endpoint; :meth:`close` stops it.

    With ``must_bind`` (a standalone process) a port that cannot be bound is a
    :class:`ConfigurationError`. Without it (a worker of a prefork server) a
    bind failure never stops the process: it is logged once and counted, and a
    taken port is retried in the background with backoff, so a replacement
    worker gets the port of the one it replaces as soon as that one is gone.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        registry: CollectorRegistry | None,
        trace_store: TraceStore | None,
        metrics_path: str = "/metrics",
        basic_auth: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        serve_default_registry: bool = False,
        workers: int = 1,
        ui: bool = True,
        must_bind: bool = True,
    ) -> None:
        if not metrics_path.startswith("/") or metrics_path in ("/health",) or metrics_path.startswith("/traces"):
            raise ConfigurationError(
                f"prometheus_path {metrics_path!r} must start with '/' and not be /health or /traces"
            )
        if workers < 1:
            raise ConfigurationError(f"prometheus_workers must be at least 1, got {workers}")
        self._base_host, self._base_port, self._workers = host, port, workers
        bridge = bridge_for(registry) if registry is not None else None
        self._settings = {
            "registry": registry,
            "bridge": bridge,
            "extra_registry": REGISTRY if serve_default_registry and registry is not REGISTRY else None,
            "trace_store": trace_store,
            "metrics_path": metrics_path,
            "auth": _basic_auth(basic_auth),
            "tls": _tls_context(tls_cert, tls_key),
            "pages": Pages(bridge=bridge, trace_store=trace_store, metrics_path=metrics_path) if ui else None,
        }
        self._server: _Server | None = None
        self._closed = threading.Event()
        self.host: str = host
        #: The bound port; None while a worker waits for a free one (see :attr:`serving`).
        self.port: int | None = None
        #: This process' worker index (port - base port) when ``prometheus_workers`` > 1, else None.
        self.worker: int | None = None
        if must_bind:
            self._bind_or_raise()
        else:
            self._bind_or_retry()
        _live.add(self)

    # -- lifecycle --------------------------------------------------------------
    def _candidates(self) -> list[int]:
        base, workers = self._base_port, self._workers
        return [base] if workers == 1 or base == 0 else list(range(base, min(base + workers, 65536)))

    def _try_bind(self) -> OSError | None:
        """Serve on the first free candidate port; the last bind error when none is free."""
        host, base, workers = self._base_host, self._base_port, self._workers
        error: OSError | None = None
        server: _Server | None = None
        for port in self._candidates():
            try:
                server = (_Server6 if ":" in host else _Server)((host, port), _Handler)
                break
            except OSError as exc:
                error = exc
                if error.errno != errno.EADDRINUSE:
                    break  # a bad host or a privileged port: the next port will not do better
        if server is None:
            return error or OSError(errno.EADDRINUSE, "no port")
        for key, value in self._settings.items():
            setattr(server, key, value)
        self.host = str(server.server_address[0])
        self.port = int(server.server_address[1])
        bridge = self._settings["bridge"]
        if workers > 1:
            # With port 0 there is no base to count from: the pid tells workers apart.
            self.worker = self.port - base if base else os.getpid()
            if isinstance(bridge, PrometheusBridgeReader):
                bridge.set_constant_labels({**bridge.constant_labels, WORKER_LABEL: str(self.worker)})
        # A short poll interval keeps shutdown() quick (serve_forever's default waits up to 0.5 s).
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="llmtel-endpoint", daemon=True
        )
        self._thread.start()
        self._server = server
        return None

    def _where(self) -> str:
        candidates = self._candidates()
        if len(candidates) == 1:
            return f"{self._base_host}:{candidates[0]}"
        return f"{self._base_host}:{candidates[0]}-{candidates[-1]}"

    def _bind_or_raise(self) -> None:
        error = self._try_bind()
        if error is not None:
            raise ConfigurationError(
                f"llmtel cannot serve its endpoint on {self._where()}: {_bind_advice(error, self._workers)}"
            )

    def _bind_or_retry(self) -> None:
        error = self._try_bind()
        if error is None:
            return
        detail = f"{self._where()}: {_bind_advice(error, self._workers)}"
        if error.errno != errno.EADDRINUSE:
            _errors.report("endpoint not served", detail=detail)  # retrying cannot help
            return
        # A worker restarting while its predecessor still holds the port (HUP, kill -9 with TIME-WAIT...).
        _errors.report("endpoint port busy, retrying in the background", detail=detail)
        threading.Thread(target=self._retry, name="llmtel-endpoint-bind", daemon=True).start()

    def _retry(self) -> None:
        delay = _RETRY_FIRST
        while not self._closed.wait(delay):
            if self._try_bind() is None:
                if self._closed.is_set():  # close() ran while this bound: give the port back
                    self.close()
                    return
                logger.info("llmtel: process %d serves its endpoint on %s (after retrying)", os.getpid(), self.url)
                return
            delay = min(delay * 2, _RETRY_MAX)

    @property
    def serving(self) -> bool:
        """Whether the endpoint is bound (a worker may still wait for its port)."""
        return self._server is not None

    def _after_fork_in_child(self) -> None:
        global _forked
        _forked = True
        if self._closed.is_set():
            return
        server, self._server = self._server, None
        if server is not None:
            # The serving thread did not survive the fork; the child only holds a copy of the listening socket.
            server.socket.close()
        bridge = self._settings["bridge"]
        if isinstance(bridge, PrometheusBridgeReader):
            bridge.after_fork_in_child(forget_inherited=self._workers > 1)
        pages = self._settings["pages"]
        if isinstance(pages, Pages):
            pages.after_fork_in_child()
        self.port = self.worker = None
        if self._workers > 1:
            self._bind_or_retry()
            if self.serving:
                logger.info("llmtel: worker %s (pid %d) serves %s", self.worker, os.getpid(), self.url)
        else:
            self._closed.set()
            # info, not warning: pools and data-loader workers fork too, and are fine unserved.
            logger.info(
                "llmtel: process %d was forked after configure(); its metrics are not served. "
                "Set prometheus_workers (LLMTEL_PROMETHEUS_WORKERS) to the number of workers, "
                "or call llmtel.configure() in each worker (docs/multiprocess.md).",
                os.getpid(),
            )

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9464`` (``https://`` with TLS)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self._settings["tls"] is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def metrics_path(self) -> str:
        """The scrape path (``prometheus_path``, ``/metrics`` by default)."""
        return str(self._settings["metrics_path"])

    @property
    def metrics_url(self) -> str:
        """The scrape URL, e.g. ``http://127.0.0.1:9464/metrics``."""
        return f"{self.url}{self.metrics_path}"

    def close(self) -> None:
        """Stop serving (and retrying) and release the port."""
        self._closed.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        self._thread.join(timeout=5)
        pages = self._settings["pages"]
        if isinstance(pages, Pages):
            pages.close()


def _reopen_in_child() -> None:
    for endpoint in list(_live):
        with _errors.guarded("endpoint after fork"):
            endpoint._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reopen_in_child)
