"""llmtel_cloudwatch against moto's server on 127.0.0.1: EMF via GetLogEvents, PutMetricData via GetMetricStatistics."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import boto3
import pytest
from cloud_fakes import FailingHttpServer, free_port, make_instruments, provider
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, generate_latest

from llmtel import semconv
from llmtel._internal import errors as _errors
from llmtel._internal.errors import ConfigurationError
from llmtel._internal.naming import prometheus_name
from llmtel.readers.cloudwatch import (
    NOT_DIMENSIONS,
    CloudWatchMetricExporter,
    default_dimensions,
    representative_values,
)

pytestmark = pytest.mark.realserver

DURATION = semconv.spec("gen_ai.client.operation.duration").name
COST = semconv.spec("llmtel.gen_ai.client.cost").name
ACTIVE = semconv.spec("llmtel.gen_ai.requests.active").name
CACHE = semconv.spec("llmtel.cache.requests").name
REJECTED = semconv.spec("llmtel.admission.rejected").name

CALL = {
    semconv.OPERATION_NAME: "chat",
    semconv.PROVIDER_NAME: "openai",
    semconv.REQUEST_MODEL: "gpt-4o",
    semconv.RESPONSE_MODEL: "gpt-4o-2024-08-06",
    semconv.SERVER_ADDRESS: "api.openai.com",
    semconv.SERVER_PORT: 443,
}
CALL_DIMS = {
    "service.name": "cloud-test",
    semconv.OPERATION_NAME: "chat",
    semconv.PROVIDER_NAME: "openai",
    semconv.REQUEST_MODEL: "gpt-4o",
}
HOUR = 3_600_000


def _setup(exporter: CloudWatchMetricExporter) -> tuple[Any, PeriodicExportingMetricReader, dict[str, Any]]:
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=HOUR)
    mp = provider(reader)
    return mp, reader, make_instruments(mp.get_meter("llmtel"))


def _log_records(group: str, stream: str) -> list[dict[str, Any]]:
    logs = boto3.client("logs", region_name="eu-west-1")
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    return [json.loads(e["message"]) for e in events]


def _metric_name(record: dict[str, Any]) -> str:
    return str(record["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"])


def _stats(name: str, dims: dict[str, str], **extra: Any) -> dict[str, float]:
    cw = boto3.client("cloudwatch", region_name="eu-west-1")
    now = dt.datetime.now(dt.timezone.utc)
    answer = cw.get_metric_statistics(
        Namespace=extra.get("namespace", "llmtel"),
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=now - dt.timedelta(hours=1),
        EndTime=now + dt.timedelta(hours=1),
        Period=3600,
        Statistics=["Sum", "SampleCount", "Minimum", "Maximum"],
    )
    points = answer["Datapoints"]
    assert points, f"no datapoints for {name} {dims}"
    return {
        "Sum": sum(p["Sum"] for p in points),
        "SampleCount": sum(p["SampleCount"] for p in points),
        "Minimum": min(p["Minimum"] for p in points),
        "Maximum": max(p["Maximum"] for p in points),
    }


# --------------------------------------------------------------------------------- pure conversion
def test_representative_values_are_clamped_bucket_middles() -> None:
    bounds = semconv.DURATION_BUCKETS
    counts = [0] * (len(bounds) + 1)
    counts[3] = 1  # (0.04, 0.08]: holds the minimum 0.05
    counts[5] = 1  # (0.16, 0.32]
    counts[8] = 1  # (1.28, 2.56]: holds the maximum 1.5
    values, weights = representative_values(bounds, counts, 0.05, 1.5)
    assert values == pytest.approx([0.065, 0.24, 1.39])
    assert weights == [1.0, 1.0, 1.0]
    # open-ended buckets stay finite; without min/max the edges are used
    values, _ = representative_values((1.0, 2.0), [1, 0, 1], float("inf"), float("-inf"))
    assert values == [1.0, 2.0]
    values, _ = representative_values((1.0, 2.0), [1, 0, 1], 0.5, 7.0)
    assert values == [0.75, 4.5]


def test_default_dimensions_come_from_the_registry_minus_high_cardinality() -> None:
    dims = default_dimensions(DURATION)
    assert dims == semconv.spec(DURATION).attributes - NOT_DIMENSIONS
    assert semconv.SERVER_ADDRESS not in dims and semconv.RESPONSE_MODEL not in dims
    assert semconv.REQUEST_MODEL in dims and semconv.ERROR_TYPE in dims
    assert default_dimensions("not.in.registry") == frozenset()


# --------------------------------------------------------------------------------- EMF
def test_emf_records_land_in_cloudwatch_logs(aws: Any) -> None:
    exporter = CloudWatchMetricExporter(log_group="/test/llm", log_stream="proc-1")
    mp, reader, inst = _setup(exporter)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("chat gpt-4o") as span:
        inst[DURATION].record(0.3, CALL)
        inst[DURATION].record(1.5, CALL)  # the largest value: its trace id is the one kept
        trace_id = f"{span.get_span_context().trace_id:032x}"
        span_id = f"{span.get_span_context().span_id:016x}"
    inst[DURATION].record(0.05, CALL)  # outside any span: exemplar without trace id
    inst[COST].add(0.25, {**CALL, semconv.TOKEN_TYPE: "input"})
    active = {k: CALL[k] for k in (semconv.OPERATION_NAME, semconv.PROVIDER_NAME, semconv.REQUEST_MODEL)}
    inst[ACTIVE].add(3, active)
    inst[ACTIVE].add(-1, active)
    assert reader.force_flush(10_000)

    records = {_metric_name(r): r for r in _log_records("/test/llm", "proc-1")}
    assert set(records) == {DURATION, COST, ACTIVE}

    hist = records[DURATION]
    directive = hist["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "llmtel"
    assert directive["Dimensions"] == [sorted(CALL_DIMS)]
    assert directive["Metrics"] == [{"Name": DURATION, "Unit": "Seconds"}]
    assert abs(hist["_aws"]["Timestamp"] - time.time() * 1000) < 60_000
    for key, value in CALL_DIMS.items():
        assert hist[key] == value
    # high-cardinality attributes are properties of the record, not dimensions
    assert hist[semconv.SERVER_ADDRESS] == "api.openai.com"
    assert hist[semconv.SERVER_PORT] == 443
    assert hist[semconv.RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    value = hist[DURATION]
    assert value["Values"] == pytest.approx([0.065, 0.24, 1.39])
    assert value["Counts"] == [1, 1, 1]
    assert value["Count"] == 3
    assert value["Sum"] == pytest.approx(1.85)
    assert (value["Min"], value["Max"]) == (0.05, 1.5)
    assert hist["trace_id"] == trace_id
    assert hist["span_id"] == span_id
    assert hist["xray_trace_id"] == f"1-{trace_id[:8]}-{trace_id[8:]}"

    cost = records[COST]
    assert cost[COST] == 0.25
    assert cost["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [sorted({**CALL_DIMS, semconv.TOKEN_TYPE: ""})]
    assert cost["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "None"
    assert records[ACTIVE][ACTIVE] == 2  # a level, not a delta
    assert records[ACTIVE]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Count"
    mp.shutdown()


def test_emf_exports_deltas_and_reuses_an_existing_stream(aws: Any) -> None:
    logs = boto3.client("logs", region_name="eu-west-1")
    logs.create_log_group(logGroupName="/llmtel/metrics")
    logs.create_log_stream(logGroupName="/llmtel/metrics", logStreamName="s")
    exporter = CloudWatchMetricExporter(log_stream="s")  # default group
    mp, reader, inst = _setup(exporter)
    cost = {**CALL, semconv.TOKEN_TYPE: "output"}
    inst[COST].add(0.25, cost)
    inst[DURATION].record(0.3, CALL)
    assert reader.force_flush(10_000)
    inst[COST].add(0.5, cost)
    inst[DURATION].record(2.0, CALL)
    inst[DURATION].record(2.0, CALL)
    assert reader.force_flush(10_000)
    assert reader.force_flush(10_000)  # nothing new: no records
    records = _log_records("/llmtel/metrics", "s")
    assert [r[COST] for r in records if _metric_name(r) == COST] == [0.25, 0.5]
    hists = [r[DURATION] for r in records if _metric_name(r) == DURATION]
    assert [(h["Count"], h["Sum"], h["Values"], h["Counts"]) for h in hists] == [
        (1, 0.3, [0.3], [1]),
        (2, 4.0, [2.0], [2]),
    ]
    mp.shutdown()


def test_emf_dimension_allowlist_from_env(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_CLOUDWATCH_DIMENSIONS", f"{semconv.PROVIDER_NAME},{semconv.SERVER_ADDRESS}")
    monkeypatch.setenv("LLMTEL_CLOUDWATCH_RESOURCE_DIMENSIONS", "none")
    monkeypatch.setenv("LLMTEL_CLOUDWATCH_NAMESPACE", "MyApp/LLM")
    monkeypatch.setenv("LLMTEL_CLOUDWATCH_LOG_GROUP", "/env/group")
    monkeypatch.setenv("LLMTEL_CLOUDWATCH_LOG_STREAM", "env-stream")
    monkeypatch.setenv("LLMTEL_CLOUDWATCH_STORAGE_RESOLUTION", "1")
    mp, reader, inst = _setup(CloudWatchMetricExporter())
    inst[DURATION].record(0.3, CALL)
    assert reader.force_flush(10_000)
    (record,) = _log_records("/env/group", "env-stream")
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "MyApp/LLM"
    assert directive["Dimensions"] == [[semconv.PROVIDER_NAME, semconv.SERVER_ADDRESS]]
    assert directive["Metrics"][0]["StorageResolution"] == 1
    assert record[semconv.REQUEST_MODEL] == "gpt-4o"  # still there, as a property
    mp.shutdown()


# --------------------------------------------------------------------------------- PutMetricData
def test_put_metric_data_statistic_values(aws: Any) -> None:
    mp, reader, inst = _setup(CloudWatchMetricExporter(mode="metric_data"))
    for v in (0.2, 0.3, 1.0):
        inst[DURATION].record(v, CALL)
    inst[COST].add(0.25, {**CALL, semconv.TOKEN_TYPE: "input"})
    assert reader.force_flush(10_000)
    inst[DURATION].record(4.0, CALL)
    inst[COST].add(0.5, {**CALL, semconv.TOKEN_TYPE: "input"})
    assert reader.force_flush(10_000)

    stats = _stats(DURATION, CALL_DIMS)
    assert stats["SampleCount"] == 4
    assert stats["Sum"] == pytest.approx(5.5)
    assert (stats["Minimum"], stats["Maximum"]) == (0.2, 4.0)
    cost = _stats(COST, {**CALL_DIMS, semconv.TOKEN_TYPE: "input"})
    assert cost["Sum"] == pytest.approx(0.75)  # deltas 0.25 + 0.5, not 0.25 + 0.75
    assert cost["SampleCount"] == 2
    mp.shutdown()


def test_put_metric_data_values_and_counts(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_CLOUDWATCH_MODE", "metric_data")
    monkeypatch.setenv("LLMTEL_CLOUDWATCH_HISTOGRAMS", "values")
    exporter = CloudWatchMetricExporter()
    sent: list[dict[str, Any]] = []
    exporter._cloudwatch.meta.events.register(
        "provide-client-params.cloudwatch.PutMetricData", lambda params, **kw: sent.extend(params["MetricData"])
    )
    mp, reader, inst = _setup(exporter)
    inst[DURATION].record(0.3, CALL)  # one value per export: representative values are exact
    assert reader.force_flush(10_000)
    for _ in range(3):
        inst[DURATION].record(0.7, CALL)
    assert reader.force_flush(10_000)
    assert [(d["Values"], d["Counts"]) for d in sent] == [([0.3], [1.0]), ([0.7], [3.0])]
    stats = _stats(DURATION, CALL_DIMS)
    assert stats["SampleCount"] == 4
    assert stats["Sum"] == pytest.approx(2.4)
    assert (stats["Minimum"], stats["Maximum"]) == (0.3, 0.7)
    mp.shutdown()


def test_put_metric_data_batches_within_api_limits(aws: Any) -> None:
    exporter = CloudWatchMetricExporter(
        mode="metric_data",
        histograms="values",
        dimensions={CACHE: [semconv.CACHE_NAME], "*": [f"k{i}" for i in range(40)]},
    )
    batches: list[int] = []
    datums: list[dict[str, Any]] = []

    def seen(params: dict[str, Any], **kw: Any) -> None:
        batches.append(len(params["MetricData"]))
        datums.extend(params["MetricData"])

    exporter._cloudwatch.meta.events.register("provide-client-params.cloudwatch.PutMetricData", seen)
    mp, reader, _ = _setup(exporter)
    meter = mp.get_meter("llmtel")
    cache = meter.create_counter(CACHE)
    rejected = meter.create_counter(REJECTED)
    for i in range(1200):  # two metrics: the SDK's default cardinality limit is 2000 per metric
        cache.add(1, {semconv.CACHE_NAME: f"c{i}"})
        rejected.add(1, {semconv.QUEUE_NAME: f"q{i}"})
    wide = meter.create_histogram("wide", "s", explicit_bucket_boundaries_advisory=[float(b) for b in range(400)])
    for b in range(400):
        wide.record(b + 0.5)
    many = meter.create_counter("many.dims")
    many.add(1, {f"k{i}": "v" for i in range(40)})
    assert reader.force_flush(30_000)

    assert sorted(batches, reverse=True)[:3] == [1000, 1000, 402] and sum(batches) == 2402
    (wide_datum,) = [d for d in datums if d["MetricName"] == "wide"]
    assert len(wide_datum["Values"]) <= 150
    assert sum(wide_datum["Counts"]) == 400
    (many_datum,) = [d for d in datums if d["MetricName"] == "many.dims"]
    assert len(many_datum["Dimensions"]) == 30
    assert _stats("wide", {"service.name": "cloud-test"})["SampleCount"] == 400
    assert _stats(CACHE, {"service.name": "cloud-test", semconv.CACHE_NAME: "c1199"})["Sum"] == 1
    mp.shutdown()


# --------------------------------------------------------------------------------- failures
@pytest.mark.parametrize(
    ("mode", "status", "body", "content_type"),
    [
        ("emf", None, b"", ""),
        ("metric_data", None, b"", ""),
        ("emf", 500, b'{"__type":"InternalFailure","message":"boom"}', "application/x-amz-json-1.1"),
        ("metric_data", 500, b"", "application/cbor"),
        ("emf", 400, b'{"__type":"ThrottlingException","message":"Rate exceeded"}', "application/x-amz-json-1.1"),
        ("metric_data", 429, b"", "application/cbor"),
    ],
    ids=["emf-refused", "metric-data-refused", "emf-500", "metric-data-500", "emf-throttled", "metric-data-429"],
)
def test_failing_endpoint_never_raises(
    aws: Any, monkeypatch: pytest.MonkeyPatch, mode: str, status: int | None, body: bytes, content_type: str
) -> None:
    server = FailingHttpServer(status, body, content_type).start() if status else None
    try:
        endpoint = server.url if server else f"http://127.0.0.1:{free_port()}"
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        exporter = CloudWatchMetricExporter(mode=mode, timeout=2)
        mp, reader, inst = _setup(exporter)
        inst[DURATION].record(0.3, CALL)  # recording is unaffected
        inst[COST].add(1, CALL)
        started = time.monotonic()
        reader.force_flush(10_000)  # the SDK reader must not see an exception either
        mp.shutdown()
        assert time.monotonic() - started < 15
        assert _errors.problem_counts().get("export failed: cloudwatch", 0) >= 1
        if server:
            assert server.requests, "the failing server was never reached"
        # the exporter itself returns FAILURE instead of raising
        again = exporter.export(_one_point(), 1000)
        assert again is MetricExportResult.FAILURE
    finally:
        if server:
            server.stop()


def _one_point() -> Any:
    from opentelemetry.sdk.metrics import Counter
    from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader

    mem = InMemoryMetricReader(preferred_temporality={Counter: AggregationTemporality.DELTA})
    mp = provider(mem)
    mp.get_meter("x").create_counter("c").add(1)
    data = mem.get_metrics_data()
    mp.shutdown()
    return data


# --------------------------------------------------------------------------------- configuration
def test_configuration_errors_are_clear(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="LLMTEL_CLOUDWATCH_MODE"):
        CloudWatchMetricExporter(mode="kinesis")
    with pytest.raises(ConfigurationError, match="STORAGE_RESOLUTION"):
        CloudWatchMetricExporter(storage_resolution=5)
    monkeypatch.delenv("AWS_REGION")
    with pytest.raises(ConfigurationError, match="AWS_REGION"):
        CloudWatchMetricExporter()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert CloudWatchMetricExporter()._logs.meta.region_name == "ap-south-1"


# --------------------------------------------------------------------------------- beside Prometheus
def test_beside_the_prometheus_bridge(aws: Any) -> None:
    registry = CollectorRegistry(auto_describe=False)
    prom = PrometheusMetricReader(registry=registry)
    exporter = CloudWatchMetricExporter(log_stream="both")
    cw_reader = PeriodicExportingMetricReader(exporter, export_interval_millis=HOUR)
    mp = provider(prom, cw_reader)
    inst = make_instruments(mp.get_meter("llmtel"))
    cost = {**CALL, semconv.TOKEN_TYPE: "input"}
    inst[COST].add(0.25, cost)
    assert cw_reader.force_flush(10_000)
    inst[COST].add(0.5, cost)
    assert cw_reader.force_flush(10_000)
    scrape = generate_latest(registry).decode()
    family = prometheus_name(semconv.spec(COST))
    totals = [line for line in scrape.splitlines() if line.startswith(f"{family}_total{{")]
    assert totals and totals[0].endswith(" 0.75")  # Prometheus keeps cumulative totals
    records = _log_records("/llmtel/metrics", "both")
    assert [r[COST] for r in records if _metric_name(r) == COST] == [0.25, 0.5]  # CloudWatch got deltas
    mp.shutdown()


def test_a_rejected_batch_does_not_stop_the_others(aws: Any) -> None:
    from llmtel.readers.cloudwatch import _send_batches

    cw = boto3.client("cloudwatch", region_name="eu-west-1")
    now = dt.datetime.now(dt.timezone.utc)
    bad = [{"MetricName": "bad", "Value": float("nan"), "Timestamp": now}]  # moto answers 400, as AWS does
    good = [{"MetricName": "good", "Value": 7.0, "Timestamp": now, "Dimensions": [{"Name": "k", "Value": "v"}]}]

    def send(batch: list[dict[str, Any]]) -> bool:
        cw.put_metric_data(Namespace="llmtel", MetricData=batch)
        return True

    assert _send_batches([bad, good], send) is False
    assert _stats("good", {"k": "v"})["Sum"] == 7
    assert _errors.problem_counts()["export failed: cloudwatch"] == 1


def test_a_server_error_ends_the_export(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with FailingHttpServer(503, b"", "application/cbor") as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        exporter = CloudWatchMetricExporter(mode="metric_data")
        mp, reader, _ = _setup(exporter)
        cache = mp.get_meter("llmtel").create_counter(CACHE)
        for i in range(1500):  # two requests' worth
            cache.add(1, {semconv.CACHE_NAME: f"c{i}"})
        reader.force_flush(10_000)
        assert len(server.requests) == 1  # the second batch was not sent to an unwell endpoint
        assert _errors.problem_counts()["export failed: cloudwatch"] == 1
        mp.shutdown()
