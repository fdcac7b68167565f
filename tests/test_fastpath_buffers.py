"""The buffered record path loses nothing and stays bounded: collections, full buffers, dying threads,
fork, shutdown, many threads at once; the plan caches are LRU and as large as the cardinality limit."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.version import __version__ as sdk_version
from sdk_features import needs_fast_path

from llmtel._internal import fastpath

ATTRS = {"gen_ai.request.model": "m"}


def _histogram(**provider_args: Any) -> tuple[MeterProvider, InMemoryMetricReader, Any]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], **provider_args)
    return provider, reader, provider.get_meter("t").create_histogram("h")


def _counts(reader: InMemoryMetricReader) -> dict[str, tuple[int, float]]:
    data = reader.get_metrics_data()
    out = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    out[str(point.attributes.get("gen_ai.request.model"))] = (point.count, point.sum)
    return out


def _buffered() -> int:
    return sum(len(buffer.entries) for buffer in fastpath._buffers)


def test_gate_is_one_version_check() -> None:
    major, minor = (int(part) for part in sdk_version.split(".")[:2])
    assert fastpath.available is ((major, minor) in fastpath.PROVEN_SDK_VERSIONS)


@needs_fast_path
def test_the_newest_supported_sdk_is_proven() -> None:
    assert fastpath.available


@needs_fast_path
def test_a_collection_folds_what_was_recorded_before_it() -> None:
    _, reader, histogram = _histogram()
    fastpath.drain()
    assert fastpath.record(histogram, 0.5, ATTRS)
    assert _buffered() == 1  # on the call path: buffered, not yet aggregated
    assert _counts(reader) == {"m": (1, 0.5)}
    assert _buffered() == 0


@needs_fast_path
def test_a_full_buffer_folds_itself() -> None:
    _, reader, histogram = _histogram()
    fastpath.drain()
    for _ in range(fastpath.BUFFER_LIMIT - 1):
        fastpath.record(histogram, 1, ATTRS)
    assert _buffered() == fastpath.BUFFER_LIMIT - 1
    fastpath.record(histogram, 1, ATTRS)
    assert _buffered() == 0  # bounded: the thread folded its own buffer
    assert _counts(reader) == {"m": (fastpath.BUFFER_LIMIT, fastpath.BUFFER_LIMIT)}


@needs_fast_path
def test_a_full_buffer_does_not_wait_for_another_threads_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastpath, "BUFFER_LIMIT", 4)
    _, reader, histogram = _histogram()
    fastpath.drain()
    limit = fastpath._HARD_FACTOR * fastpath.BUFFER_LIMIT
    below_hard_limit, done = threading.Event(), threading.Event()

    def record() -> None:
        for _ in range(limit - 1):  # past BUFFER_LIMIT while another thread folds: buffered on, no waiting
            fastpath.record(histogram, 1, ATTRS)
        below_hard_limit.set()
        fastpath.record(histogram, 1, ATTRS)  # the hard limit: waits for that fold, then folds its own
        done.set()

    worker = threading.Thread(target=record)
    with fastpath._drain_lock:  # this thread is "folding"
        worker.start()
        assert below_hard_limit.wait(10)
        assert not done.wait(0.2)  # bounded: at the hard limit it waits
        assert _buffered() == limit
    worker.join(10)
    assert done.is_set() and _buffered() == 0
    assert _counts(reader) == {"m": (limit, limit)}


@needs_fast_path
def test_a_dead_threads_values_are_kept_and_its_buffer_dropped() -> None:
    _, reader, histogram = _histogram()
    fastpath.drain()
    buffers = len(fastpath._buffers)
    thread = threading.Thread(target=lambda: [fastpath.record(histogram, 2, ATTRS) for _ in range(3)])
    thread.start()
    thread.join()
    del thread
    assert len(fastpath._buffers) == buffers + 1 and _buffered() == 3
    assert _counts(reader) == {"m": (3, 6)}
    fastpath.drain()  # the next drain finds it empty and its thread gone
    assert len(fastpath._buffers) == buffers


@needs_fast_path
def test_shutdown_exports_everything_recorded() -> None:
    class Keep(MetricExporter):
        def __init__(self) -> None:
            super().__init__(preferred_temporality={Histogram: AggregationTemporality.CUMULATIVE})
            self.counts: list[int] = []

        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
            for rm in metrics_data.resource_metrics:
                for sm in rm.scope_metrics:
                    self.counts += [p.count for m in sm.metrics for p in m.data.data_points]
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            pass

    exporter = Keep()
    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)])
    histogram = provider.get_meter("t").create_histogram("h")
    for _ in range(5):
        assert fastpath.record(histogram, 0.1, ATTRS)
    provider.shutdown()  # the reader's last collection folds the buffers first
    assert exporter.counts == [5]


@needs_fast_path
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_folds_first_and_the_child_starts_empty() -> None:
    _, reader, histogram = _histogram()
    fastpath.drain()
    for _ in range(5):
        fastpath.record(histogram, 1, ATTRS)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: it inherits the folded series (as with the plain SDK) and an empty buffer
        try:
            empty = _buffered() == 0
            fastpath.record(histogram, 1, ATTRS)
            fastpath.record(histogram, 1, ATTRS)
            os.write(write, repr((empty, _counts(reader))).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    assert child == repr((True, {"m": (7, 7)}))
    assert _buffered() == 0 and _counts(reader) == {"m": (5, 5)}


@needs_fast_path
def test_many_threads_one_series_while_collecting() -> None:
    _, reader, histogram = _histogram()
    stop = threading.Event()

    def collect() -> None:
        while not stop.is_set():
            reader.get_metrics_data()

    def work() -> None:
        for i in range(2_000):
            fastpath.record(histogram, i % 7, ATTRS)

    collector = threading.Thread(target=collect)
    collector.start()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    collector.join()
    expected_sum = 8 * sum(i % 7 for i in range(2_000))
    assert _counts(reader) == {"m": (16_000, expected_sum)}


def _model_key(name: str) -> Any:
    return fastpath._key({"gen_ai.request.model": name})


def test_cache_keys_tell_every_attribute_set_apart() -> None:
    sets = [None, {}, {"n": 1}, {"n": 1.0}, {"n": True}, {"n": "1"}, {"a": "b"}, {"b": "a"}, {"a": "b", "c": "d"},
            {"c": "d", "a": "b"}, {"a": "b", "c": 1}, {"a": ("b", "c")}]  # fmt: skip
    keys = [fastpath._key(attributes) for attributes in sets]
    assert keys[-1] is None  # a sequence value: never cached ((1, 2) and (1.0, 2.0) would share a key)
    assert len(set(keys[:-1])) == len(sets) - 1
    assert fastpath._key({"n": 1}) == keys[2] and fastpath._key(None) == keys[0]  # equal sets, equal keys


@needs_fast_path
def test_plan_cache_is_lru_and_sized_by_the_limit() -> None:
    _, reader, histogram = _histogram(views=[View(instrument_name="h", aggregation_cardinality_limit=50)])
    fastpath.record(histogram, 1, {"gen_ai.request.model": "hot"})
    cache = fastpath._instrument_caches[histogram]
    hot = cache.items[_model_key("hot")]
    for i in range(200):
        for _ in range(2):  # past the limit, a set is cached from its second use
            fastpath.record(histogram, 1, {"gen_ai.request.model": f"m{i}"})
        fastpath.record(histogram, 1, {"gen_ai.request.model": "hot"})  # recently used: never evicted
    assert cache.capacity == 100 and len(cache.items) == 100  # full, never cleared all at once
    assert cache.items[_model_key("hot")] is hot
    assert _model_key("m199") in cache.items
    assert _model_key("m0") not in cache.items  # the least recently used went
    counts = _counts(reader)
    assert counts["hot"] == (201, 201) and counts["None"] == (2 * (200 - 49),) * 2  # 49 more series, then overflow


@needs_fast_path
def test_sets_past_the_limit_are_cached_from_their_second_use() -> None:
    _, _, histogram = _histogram(views=[View(instrument_name="h", aggregation_cardinality_limit=2)])
    for name in ("a", "b", "c"):
        fastpath.record(histogram, 1, {"gen_ai.request.model": name})
    cache = fastpath._instrument_caches[histogram]
    key = _model_key("c")
    assert key not in cache.items and key in cache.seen  # "c" overflowed: a one-off set costs no plan
    fastpath.record(histogram, 1, {"gen_ai.request.model": "c"})
    assert key in cache.items


@needs_fast_path
def test_a_collection_in_progress_is_never_waited_for() -> None:
    provider, reader, histogram = _histogram()
    consumer = provider._measurement_consumer
    with consumer._lock:  # as if this thread were inside a collection (an observable callback recording)
        assert fastpath.record(histogram, 1, ATTRS) is False  # not hooked yet: the public API, no wait
    assert fastpath.record(histogram, 1, ATTRS) is True
    assert _counts(reader) == {"m": (2, 2)}
