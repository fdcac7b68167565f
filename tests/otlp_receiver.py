"""A test OTLP receiver built from opentelemetry-proto's official collector service definitions.

One object serves both OTLP transports on 127.0.0.1, each on its own free port:

* gRPC: ``opentelemetry.proto.collector.{metrics,trace}.v1`` ``MetricsService/Export`` and
  ``TraceService/Export`` (the generated ``*_pb2_grpc`` servicers);
* HTTP: ``POST /v1/metrics`` and ``POST /v1/traces`` with ``application/x-protobuf`` (or
  ``application/json``) bodies, optionally ``Content-Encoding: gzip``.

Every decoded ``ExportMetricsServiceRequest`` / ``ExportTraceServiceRequest`` is stored with the
transport and headers it came with. The receiver can be stopped and started again on the same
ports (to simulate a collector that goes away and comes back), and can be told to answer with
errors or slowly.

Usage::

    with OtlpReceiver() as rx:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = rx.grpc_endpoint   # or rx.http_endpoint
        ...
        rx.wait_for(lambda: rx.metric_points("gen_ai.client.operation.duration"))

Plain ``http.server`` and ``grpc.server`` are used on purpose: no collector binary is needed and
what is asserted is exactly what the SDK's exporters put on the wire.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from realservers import free_port

__all__ = ["MetricPoint", "OtlpReceiver", "Received", "SpanRecord", "attributes", "free_port"]

T = TypeVar("T")

HOST = "127.0.0.1"

# Error kinds the receiver can be told to answer with, per transport. "unavailable" is retryable
# for the SDK exporters (they back off and retry), "invalid" is not (dropped at once).
_ERRORS: dict[str, tuple[grpc.StatusCode, int]] = {
    "unavailable": (grpc.StatusCode.UNAVAILABLE, 503),
    "invalid": (grpc.StatusCode.INVALID_ARGUMENT, 400),
    "internal": (grpc.StatusCode.INTERNAL, 500),
}


def _any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(kvs: Any) -> dict[str, Any]:
    """OTLP ``repeated KeyValue`` → plain dict."""
    return {kv.key: _any_value(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


@dataclass
class Received:
    """One export request as it arrived."""

    signal: str  # "metrics" | "traces"
    transport: str  # "grpc" | "http"
    headers: dict[str, str]
    request: Message
    at: float = field(default_factory=time.monotonic)


@dataclass
class MetricPoint:
    """One data point with the metric, scope and resource it was exported under."""

    resource: dict[str, Any]
    scope: str
    metric: metrics_pb2.Metric
    point: Any  # NumberDataPoint | HistogramDataPoint | ExponentialHistogramDataPoint | SummaryDataPoint
    transport: str

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes(self.point.attributes)


@dataclass
class SpanRecord:
    """One exported span with its resource and scope."""

    resource: dict[str, Any]
    scope: str
    span: trace_pb2.Span
    transport: str

    @property
    def name(self) -> str:
        return str(self.span.name)

    @property
    def trace_id(self) -> bytes:
        return bytes(self.span.trace_id)

    @property
    def span_id(self) -> bytes:
        return bytes(self.span.span_id)

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes(self.span.attributes)


class OtlpReceiver:
    """gRPC + HTTP OTLP receiver for tests; see the module docstring."""

    def __init__(self, *, grpc_port: int = 0, http_port: int = 0) -> None:
        self.grpc_port = grpc_port
        self.http_port = http_port
        self.received: list[Received] = []
        #: Seconds each Export waits before answering (a slow collector).
        self.delay = 0.0
        #: None, or a key of _ERRORS: answer every export with that error.
        self.error: str | None = None
        #: Exports that were answered with an error (or arrived while delayed), for assertions.
        self.rejected = 0
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._grpc: grpc.Server | None = None
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    @property
    def running(self) -> bool:
        return self._grpc is not None

    @property
    def grpc_endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` (the scheme tells the SDK's gRPC exporter to use plaintext)."""
        return f"http://{HOST}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """Base URL; the SDK's HTTP exporter appends ``/v1/metrics`` and ``/v1/traces``."""
        return f"http://{HOST}:{self.http_port}"

    def endpoint(self, protocol: str) -> str:
        """The endpoint for an ``OTEL_EXPORTER_OTLP_PROTOCOL`` value (``grpc`` or ``http/protobuf``)."""
        return self.grpc_endpoint if protocol == "grpc" else self.http_endpoint

    def start(self) -> OtlpReceiver:
        """Start both servers (on the same ports as before after a stop())."""
        if self.running:
            return self
        self._stopping.clear()
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="otlp-rx-grpc"),
            # Without SO_REUSEPORT a second receiver could never share a port by accident.
            options=[("grpc.so_reuseport", 0)],
        )
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsServicer(self), server)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceServicer(self), server)
        self.grpc_port = _retry_bind(lambda: server.add_insecure_port(f"{HOST}:{self.grpc_port}"))
        server.start()
        self._grpc = server

        receiver = self

        class Handler(_HttpHandler):
            rx = receiver

        httpd = _retry_bind(lambda: _Server((HOST, self.http_port), Handler))
        self.http_port = int(httpd.server_address[1])
        self._http = httpd
        self._http_thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), name="otlp-rx-http", daemon=True)
        self._http_thread.start()
        return self

    def stop(self) -> None:
        """Stop both servers; in-flight (delayed) exports are cut off. Stored data is kept."""
        self._stopping.set()
        if self._grpc is not None:
            self._grpc.stop(grace=0).wait(5)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._http_thread is not None:
            self._http_thread.join(5)
            self._http_thread = None

    def restart(self) -> OtlpReceiver:
        self.stop()
        return self.start()

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self.rejected = 0

    # ----------------------------------------------------------------- receiving
    def _accept(self, signal: str, transport: str, headers: dict[str, str], request: Message) -> str | None:
        """Store a request, or return the error kind to answer with."""
        if self.delay:
            self._stopping.wait(self.delay)
        with self._lock:
            if self.error is not None or self._stopping.is_set():
                self.rejected += 1
                self._lock.notify_all()
                return self.error or "unavailable"
            self.received.append(Received(signal, transport, headers, request))
            self._lock.notify_all()
        return None

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Wait until ``predicate()`` is truthy (re-checked on every export); return its value."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s; received: {self.summary()}")
                self._lock.wait(min(left, 0.1))

    # ----------------------------------------------------------------- reading
    def requests(self, signal: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.signal == signal]

    def metric_points(self, name: str | None = None) -> list[MetricPoint]:
        """Every data point received (in arrival order), optionally of one metric name."""
        out: list[MetricPoint] = []
        for rec in self.requests("metrics"):
            assert isinstance(rec.request, metrics_service_pb2.ExportMetricsServiceRequest)
            for rm in rec.request.resource_metrics:
                res = attributes(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        if name is not None and metric.name != name:
                            continue
                        kind = metric.WhichOneof("data")
                        if kind is None:
                            continue
                        for point in getattr(metric, kind).data_points:
                            out.append(MetricPoint(res, sm.scope.name, metric, point, rec.transport))
        return out

    def metric_names(self) -> set[str]:
        return {p.metric.name for p in self.metric_points()}

    def spans(self, name: str | None = None) -> list[SpanRecord]:
        out: list[SpanRecord] = []
        for rec in self.requests("traces"):
            assert isinstance(rec.request, trace_service_pb2.ExportTraceServiceRequest)
            for rs in rec.request.resource_spans:
                res = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        if name is None or span.name == name:
                            out.append(SpanRecord(res, ss.scope.name, span, rec.transport))
        return out

    def summary(self) -> str:
        with self._lock:
            counts: dict[str, int] = {}
            for r in self.received:
                key = f"{r.transport}/{r.signal}"
                counts[key] = counts.get(key, 0) + 1
            return f"{counts} rejected={self.rejected} metrics={sorted(self._names_unlocked())}"

    def _names_unlocked(self) -> Iterator[str]:
        for r in self.received:
            if isinstance(r.request, metrics_service_pb2.ExportMetricsServiceRequest):
                for rm in r.request.resource_metrics:
                    for sm in rm.scope_metrics:
                        yield from (m.name for m in sm.metrics)


def _retry_bind(bind: Callable[[], T]) -> T:
    """Binding the same port right after a stop can race the kernel for a moment; retry briefly."""
    deadline = time.monotonic() + 5
    while True:
        try:
            value = bind()
        except (OSError, RuntimeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        if value == 0:  # grpc's add_insecure_port reports failure as port 0 in some versions
            if time.monotonic() > deadline:
                raise OSError("could not bind gRPC port")
            time.sleep(0.05)
            continue
        return value


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _grpc_headers(context: grpc.ServicerContext) -> dict[str, str]:
    return {k: v if isinstance(v, str) else v.decode() for k, v in context.invocation_metadata()}


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, rx: OtlpReceiver) -> None:
        self.rx = rx

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        error = self.rx._accept("metrics", "grpc", _grpc_headers(context), request)
        if error is not None:
            context.abort(_ERRORS[error][0], f"test receiver: {error}")
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, rx: OtlpReceiver) -> None:
        self.rx = rx

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        error = self.rx._accept("traces", "grpc", _grpc_headers(context), request)
        if error is not None:
            context.abort(_ERRORS[error][0], f"test receiver: {error}")
        return trace_service_pb2.ExportTraceServiceResponse()


_HTTP_ROUTES: dict[str, tuple[str, type[Message], type[Message]]] = {
    "/v1/metrics": (
        "metrics",
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "/v1/traces": (
        "traces",
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    ),
}


class _HttpHandler(BaseHTTPRequestHandler):
    """OTLP/HTTP as in the spec: protobuf or JSON body, optional gzip/deflate, status codes."""

    rx: OtlpReceiver
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_POST(self) -> None:
        route = _HTTP_ROUTES.get(self.path.split("?", 1)[0])
        if route is None:
            self._reply(404, b"", "text/plain")
            return
        signal, request_type, response_type = route
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        is_json = (self.headers.get("Content-Type") or "").startswith("application/json")
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            request = request_type()
            if is_json:
                json_format.Parse(body.decode(), request)
            else:
                request.ParseFromString(body)
        except (OSError, DecodeError, json_format.ParseError, zlib.error, UnicodeDecodeError):
            self._reply(400, b"bad request body", "text/plain")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        error = self.rx._accept(signal, "http", headers, request)
        if error is not None:
            self._reply(_ERRORS[error][1], f"test receiver: {error}".encode(), "text/plain")
            return
        response = response_type()
        if is_json:
            self._reply(200, json_format.MessageToJson(response).encode(), "application/json")
        else:
            self._reply(200, response.SerializeToString(), "application/x-protobuf")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout) while we were slow
            pass
