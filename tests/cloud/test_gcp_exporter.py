"""llmtel_gcp against a local OTLP/gRPC MetricsService standing in for telemetry.googleapis.com."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from cloud_fakes import (
    OtlpGrpcReceiver,
    TokenServer,
    free_port,
    make_instruments,
    provider,
    service_account_info,
)
from google.auth import jwt as google_jwt
from google.oauth2.credentials import Credentials
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from realservers import self_signed_cert

from llmtel import semconv
from llmtel._internal import errors as _errors
from llmtel._internal.errors import ConfigurationError
from llmtel._internal.naming import prometheus_name
from llmtel.readers.gcp import PROJECT_ATTRIBUTE, SCOPES, GcpOtlpMetricExporter

pytestmark = pytest.mark.realserver

DURATION = semconv.spec("gen_ai.client.operation.duration").name
COST = semconv.spec("llmtel.gen_ai.client.cost").name
ACTIVE = semconv.spec("llmtel.gen_ai.requests.active").name
BREAKER = semconv.spec("llmtel.circuit_breaker.state").name
CALL = {semconv.OPERATION_NAME: "chat", semconv.PROVIDER_NAME: "vertex_ai", semconv.REQUEST_MODEL: "gemini-2.5-pro"}
HOUR = 3_600_000
TOKEN = "ya29.fake-injected-token"


def _local() -> grpc.ChannelCredentials:
    return grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)


def _record(inst: dict[str, Any]) -> None:
    inst[DURATION].record(0.4, CALL)
    inst[DURATION].record(2.0, CALL)
    inst[COST].add(0.125, {**CALL, semconv.TOKEN_TYPE: "output"})
    inst[ACTIVE].add(2, CALL)
    inst[BREAKER].set(2, {semconv.CIRCUIT_BREAKER_NAME: "vertex"})


def _assert_received(rx: OtlpGrpcReceiver, project: str) -> None:
    (res, metric, point) = rx.points(DURATION)[0]  # first export (shutdown exports again)
    assert res[PROJECT_ATTRIBUTE] == project
    assert res["service.name"] == "cloud-test"
    assert metric.WhichOneof("data") == "histogram"
    assert metric.unit == "s"
    assert metric.histogram.aggregation_temporality == metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    assert (point.count, point.sum, point.min, point.max) == (2, 2.4, 0.4, 2.0)
    assert list(point.explicit_bounds) == list(semconv.DURATION_BUCKETS)
    assert {a.key: a.value.string_value for a in point.attributes} == CALL

    (_, metric, point) = rx.points(COST)[0]  # first export (shutdown exports again)
    assert metric.WhichOneof("data") == "sum" and metric.sum.is_monotonic
    assert point.as_double == 0.125
    (_, metric, point) = rx.points(ACTIVE)[0]  # first export (shutdown exports again)
    assert metric.WhichOneof("data") == "sum" and not metric.sum.is_monotonic
    assert point.as_int == 2
    (_, metric, point) = rx.points(BREAKER)[0]  # first export (shutdown exports again)
    assert metric.WhichOneof("data") == "gauge"
    assert point.as_int == 2
    assert point.attributes[0].key == semconv.CIRCUIT_BREAKER_NAME


def test_injected_credentials_reach_the_endpoint() -> None:
    with OtlpGrpcReceiver(require_token=TOKEN) as rx:
        exporter = GcpOtlpMetricExporter(
            project_id="llm-prod-123",
            credentials=Credentials(token=TOKEN),  # an access token: nothing is looked up or refreshed
            endpoint=rx.endpoint,
            channel_credentials=_local(),
        )
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=HOUR)
        mp = provider(reader)
        _record(make_instruments(mp.get_meter("llmtel")))
        assert reader.force_flush(10_000)
        mp.shutdown()
        headers, _ = rx.requests[0]
        assert headers["authorization"] == f"Bearer {TOKEN}"
        assert headers["x-goog-user-project"] == "llm-prod-123"
        _assert_received(rx, "llm-prod-123")


def test_no_argument_instance_uses_adc_and_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry-point path: a service-account key found by ADC signs the bearer token; TLS to the receiver.

    The key names its own universe domain so google-auth signs a JWT itself: in the default universe
    it would also look up access boundaries at iamcredentials.googleapis.com in the background.
    """
    key, cert = self_signed_cert()
    ca = tmp_path / "ca.pem"
    ca.write_bytes(cert)
    info, public_key = service_account_info("http://127.0.0.1:9/token", "adc-project", universe="llmtel.test")
    adc = tmp_path / "adc.json"
    adc.write_text(json.dumps(info))
    with OtlpGrpcReceiver(tls=(key, cert)) as rx:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
        monkeypatch.setenv("LLMTEL_GCP_ENDPOINT", rx.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(ca))
        exporter = GcpOtlpMetricExporter()
        assert exporter.project_id == "adc-project"  # from the key file, as ADC reports it
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=HOUR)
        mp = provider(reader)
        _record(make_instruments(mp.get_meter("llmtel")))
        assert reader.force_flush(10_000)
        mp.shutdown()
        headers, _ = rx.requests[0]
        scheme, token = headers["authorization"].split(" ", 1)
        assert scheme == "Bearer"
        claims = google_jwt.decode(token, certs=public_key.decode(), verify=True)  # signed by the ADC key
        assert claims["iss"] == info["client_email"]
        assert claims["scope"] == " ".join(SCOPES)
        assert headers["x-goog-user-project"] == "adc-project"
        _assert_received(rx, "adc-project")


def test_token_refresh_against_a_local_oauth_endpoint() -> None:
    """Credentials that refresh go to their token endpoint (here a local one) before the export."""
    with TokenServer() as tokens, OtlpGrpcReceiver(require_token=tokens.token) as rx:
        creds = Credentials(
            token=None,
            refresh_token="1//refresh",
            client_id="cid",
            client_secret="secret",
            token_uri=f"{tokens.url}/token",
        )
        exporter = GcpOtlpMetricExporter(
            project_id="p", credentials=creds, endpoint=rx.endpoint, channel_credentials=_local()
        )
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=HOUR)
        mp = provider(reader)
        make_instruments(mp.get_meter("llmtel"))[COST].add(1, CALL)
        assert reader.force_flush(10_000)
        mp.shutdown()
        assert tokens.requests[0]["grant_type"] == "refresh_token"
        assert rx.requests[0][0]["authorization"] == f"Bearer {tokens.token}"
        assert rx.points(COST)


def test_project_variable_wins_over_adc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    adc = tmp_path / "adc.json"
    info, _ = service_account_info("http://127.0.0.1:9/token", "adc-project", universe="llmtel.test")
    adc.write_text(json.dumps(info))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    assert GcpOtlpMetricExporter(channel_credentials=_local()).project_id == "env-project"


def test_quota_project_of_the_credentials_is_not_duplicated() -> None:
    with OtlpGrpcReceiver() as rx:
        exporter = GcpOtlpMetricExporter(
            credentials=Credentials(token=TOKEN, quota_project_id="billing-proj"),
            endpoint=rx.endpoint,
            channel_credentials=_local(),
        )
        assert exporter.project_id == "billing-proj"
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=HOUR)
        mp = provider(reader)
        make_instruments(mp.get_meter("llmtel"))[COST].add(1, CALL)
        assert reader.force_flush(10_000)
        mp.shutdown()
        headers, _ = rx.requests[0]
        assert headers["x-goog-user-project"] == "billing-proj"  # sent once, by google-auth
        assert rx.points(COST)[0][0][PROJECT_ATTRIBUTE] == "billing-proj"


@pytest.mark.parametrize(
    "failure", ["refused", grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, "wrong-token"]
)
def test_failing_endpoint_never_raises(failure: Any) -> None:
    with OtlpGrpcReceiver(require_token=TOKEN) as rx:
        if isinstance(failure, grpc.StatusCode):
            rx.error = failure
        endpoint = f"https://127.0.0.1:{free_port()}" if failure == "refused" else rx.endpoint
        token = "wrong" if failure == "wrong-token" else TOKEN
        exporter = GcpOtlpMetricExporter(
            project_id="p", credentials=Credentials(token=token), endpoint=endpoint, channel_credentials=_local(),
            timeout=1.5,
        )  # fmt: skip
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=HOUR)
        mp = provider(reader)
        make_instruments(mp.get_meter("llmtel"))[COST].add(1, CALL)
        started = time.monotonic()
        reader.force_flush(10_000)
        mp.shutdown()
        assert time.monotonic() - started < 10
        assert _errors.problem_counts().get("export failed: gcp", 0) >= 1
        if failure != "refused":
            assert rx.requests, "the receiver was never reached"


def test_configuration_errors_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="GOOGLE_CLOUD_PROJECT"):
        GcpOtlpMetricExporter(credentials=Credentials(token=TOKEN), channel_credentials=_local())
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigurationError, match="application default credentials"):
        GcpOtlpMetricExporter(project_id="p")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(tmp_path / "nope.pem"))
    with pytest.raises(ConfigurationError, match="CA certificate"):
        GcpOtlpMetricExporter(project_id="p", credentials=Credentials(token=TOKEN))


def test_beside_the_prometheus_bridge() -> None:
    registry = CollectorRegistry(auto_describe=False)
    prom = PrometheusMetricReader(registry=registry)
    with OtlpGrpcReceiver(require_token=TOKEN) as rx:
        exporter = GcpOtlpMetricExporter(
            project_id="p", credentials=Credentials(token=TOKEN), endpoint=rx.endpoint, channel_credentials=_local()
        )
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=HOUR)
        mp = provider(prom, reader)
        inst = make_instruments(mp.get_meter("llmtel"))
        inst[COST].add(0.25, CALL)
        inst[COST].add(0.5, CALL)
        assert reader.force_flush(10_000)
        scrape = generate_latest(registry).decode()
        mp.shutdown()
        family = prometheus_name(semconv.spec(COST))
        assert any(line.startswith(f"{family}_total{{") and line.endswith(" 0.75") for line in scrape.splitlines())
        assert rx.points(COST)[0][2].as_double == 0.75
