"""Local stand-ins for the cloud endpoints, all on 127.0.0.1, each speaking the vendor's protocol.

* :class:`MotoServer` — moto's ``ThreadedMotoServer`` (CloudWatch, CloudWatch Logs).
* :class:`FailingHttpServer` — answers every request with one status/body (500s, throttling).
* :class:`AzureTrackServer` — Application Insights' ingestion endpoint: ``POST /v2.1/track`` with a
  JSON array of telemetry envelopes (gzip or plain), answered with ``itemsReceived``/``itemsAccepted``.
* :class:`OtlpGrpcReceiver` — an OTLP ``MetricsService`` built from opentelemetry-proto's generated
  service stubs, served with gRPC *local* server credentials so clients can attach call credentials
  (OAuth bearer tokens) exactly as they do against ``telemetry.googleapis.com``, without TLS.
* :class:`TokenServer` — an OAuth2 token endpoint (``grant_type=refresh_token``) for google-auth.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import grpc
from opentelemetry.metrics import Meter
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.metrics import AlwaysOnExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from realservers import free_port

from llmtel import semconv
from llmtel.semconv import Kind

HOST = "127.0.0.1"
T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------- SDK side
def make_instruments(meter: Meter) -> dict[str, Any]:
    """Every synchronous registry instrument, created on ``meter`` by its registry name."""
    out: dict[str, Any] = {}
    for spec in semconv.INSTRUMENTS:
        if spec.kind is Kind.HISTOGRAM:
            out[spec.name] = meter.create_histogram(
                spec.name, spec.unit, spec.description, explicit_bucket_boundaries_advisory=spec.buckets
            )
        elif spec.kind is Kind.COUNTER:
            out[spec.name] = meter.create_counter(spec.name, spec.unit, spec.description)
        elif spec.kind is Kind.UP_DOWN_COUNTER:
            out[spec.name] = meter.create_up_down_counter(spec.name, spec.unit, spec.description)
        elif spec.kind is Kind.GAUGE:
            out[spec.name] = meter.create_gauge(spec.name, spec.unit, spec.description)
    return out


def provider(*readers: MetricReader, service: str = "cloud-test") -> MeterProvider:
    return MeterProvider(
        metric_readers=list(readers),
        resource=Resource.create({"service.name": service}),
        exemplar_filter=AlwaysOnExemplarFilter(),
    )


# ---------------------------------------------------------------------------------------- moto
class MotoServer:
    """moto's threaded server on 127.0.0.1 and a random free port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address=HOST, port=self.port, verbose=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> MotoServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=5).read()


# ---------------------------------------------------------------------------------------- plain HTTP
class _Httpd(ThreadingHTTPServer):
    daemon_threads = True


class _BaseServer:
    handler: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        outer = self

        class Handler(self.handler):  # type: ignore[name-defined,misc]
            server_obj = outer

        self._httpd = _Httpd((HOST, 0), Handler)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> Any:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    server_obj: Any
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
            body = gzip.decompress(body)
        return body

    def _reply(self, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)


class _FailingHandler(_Handler):
    def do_POST(self) -> None:
        srv = self.server_obj
        body = self._body()
        with srv.lock:
            srv.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self._reply(srv.status, srv.body, srv.content_type, **srv.headers)

    do_GET = do_POST


class FailingHttpServer(_BaseServer):
    """Answers every request with ``status`` and ``body`` (and counts what it was sent)."""

    handler = _FailingHandler

    def __init__(self, status: int, body: bytes = b"", content_type: str = "application/json", **headers: str) -> None:
        super().__init__()
        self.status, self.body, self.content_type, self.headers = status, body, content_type, headers


class _TrackHandler(_Handler):
    def do_POST(self) -> None:
        srv = self.server_obj
        if not self.path.split("?", 1)[0].endswith("/v2.1/track"):
            self._reply(404, b"{}")
            return
        raw_encoding = (self.headers.get("Content-Encoding") or "").lower()
        envelopes = json.loads(self._body())
        with srv.lock:
            srv.requests.append({"path": self.path, "headers": dict(self.headers), "encoding": raw_encoding})
            srv.envelopes.extend(envelopes)
        answer = {"itemsReceived": len(envelopes), "itemsAccepted": len(envelopes), "errors": []}
        self._reply(200, json.dumps(answer).encode())


class AzureTrackServer(_BaseServer):
    """Application Insights ingestion (``/v2.1/track``); keeps every envelope it accepted."""

    handler = _TrackHandler

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[dict[str, Any]] = []

    def metrics(self, name: str) -> list[dict[str, Any]]:
        """``{"name", "value", "count", "min", "max", "properties"}`` for each metric data point named ``name``."""
        out = []
        with self.lock:
            for env in self.envelopes:
                base = env.get("data", {}).get("baseData", {})
                if env.get("data", {}).get("baseType") != "MetricData":
                    continue
                for m in base.get("metrics", []):
                    if m.get("name") == name:
                        out.append({**m, "properties": base.get("properties", {}), "envelope": env})
        return out


class _TokenHandler(_Handler):
    def do_POST(self) -> None:
        srv = self.server_obj
        form = urllib.parse.parse_qs(self._body().decode())
        with srv.lock:
            srv.requests.append({k: v[0] for k, v in form.items()})
        answer = {"access_token": srv.token, "expires_in": 3600, "token_type": "Bearer"}
        self._reply(200, json.dumps(answer).encode())


class TokenServer(_BaseServer):
    """OAuth2 token endpoint: every refresh gets ``token``."""

    handler = _TokenHandler

    def __init__(self, token: str = "ya29.local-test-token") -> None:
        super().__init__()
        self.token = token


# ---------------------------------------------------------------------------------------- OTLP gRPC
def _any(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


def kv(attrs: Any) -> dict[str, Any]:
    return {a.key: _any(a.value) for a in attrs}


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, rx: OtlpGrpcReceiver) -> None:
        self.rx = rx

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        metadata = {k: v if isinstance(v, str) else v.decode() for k, v in context.invocation_metadata()}
        with self.rx.lock:
            self.rx.requests.append((metadata, request))
        if self.rx.require_token and metadata.get("authorization") != f"Bearer {self.rx.require_token}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        if self.rx.error is not None:
            context.abort(self.rx.error, "test receiver error")
        return metrics_service_pb2.ExportMetricsServiceResponse()


def service_account_info(token_uri: str, project_id: str, universe: str | None = None) -> tuple[dict[str, str], bytes]:
    """A Google service-account key file's content (fresh RSA key) and the matching public key (PEM).

    ``universe``: a universe domain other than googleapis.com; google-auth then signs its own JWTs
    instead of calling ``token_uri`` and skips its access-boundary lookup at iamcredentials.googleapis.com.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": "test-key",
        "private_key": pem.decode(),
        "client_email": f"llmtel-test@{project_id}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    if universe:
        info["universe_domain"] = universe
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return info, public


class OtlpGrpcReceiver:
    """OTLP metrics receiver over gRPC with local (loopback) server credentials."""

    def __init__(self, require_token: str | None = None, tls: tuple[bytes, bytes] | None = None) -> None:
        """``tls``: ``(key_pem, cert_pem)`` to serve TLS instead of gRPC local credentials."""
        self.require_token = require_token
        self.error: grpc.StatusCode | None = None
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)])
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsServicer(self), self._server)
        if tls is not None:
            creds = grpc.ssl_server_credentials([tls])
        else:
            creds = grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        self.port = self._server.add_secure_port(f"{HOST}:0", creds)

    @property
    def endpoint(self) -> str:
        return f"https://{HOST}:{self.port}"

    def start(self) -> OtlpGrpcReceiver:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=0).wait(5)

    def __enter__(self) -> OtlpGrpcReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def points(self, name: str) -> list[tuple[dict[str, Any], Any, Any]]:
        """``(resource attributes, metric, data point)`` for every point of metric ``name``."""
        out = []
        with self.lock:
            for _, request in self.requests:
                for rm in request.resource_metrics:
                    res = kv(rm.resource.attributes)
                    for sm in rm.scope_metrics:
                        for metric in sm.metrics:
                            if metric.name != name:
                                continue
                            kind = metric.WhichOneof("data")
                            for point in getattr(metric, kind).data_points:
                                out.append((res, metric, point))
        return out
