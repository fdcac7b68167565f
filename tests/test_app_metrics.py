"""The application's own instruments beside llmtel's: ``llmtel.get_meter()``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.metrics import CallbackOptions, Observation
from sdk_features import needs_cardinality_limits, needs_gauge_last_value

import llmtel
from llmtel._internal import appmeters
from llmtel.testing import Capture

# Made once, before any configure() of this module's tests, as applications do at import time:
# they must work in every test below. (A fixture, not module level: instruments follow every later
# configuration of the process, and other test modules' scrapes must not see this module's.)
METER: Any = None
ORDERS: Any = None
LAG: Any = None
QUEUED: Any = None
TEMPERATURE: Any = None
_nodes = {"up": 3}


def _observe_nodes(options: CallbackOptions) -> list[Observation]:
    return [Observation(_nodes["up"], {"region": "eu"})]


@pytest.fixture(autouse=True, scope="module")
def _shop_instruments() -> Iterator[None]:
    global METER, ORDERS, LAG, QUEUED, TEMPERATURE
    METER = llmtel.get_meter("shop", "1.2.3")
    ORDERS = METER.create_counter("shop.orders", "{order}", "Orders placed.")
    LAG = METER.create_histogram("shop.loop.lag", "s", "Event-loop lag.")
    QUEUED = METER.create_up_down_counter("shop.queue.depth", "{job}", "Jobs waiting.")
    TEMPERATURE = METER.create_gauge("shop.oven.temperature", "Cel", "Oven temperature.")
    METER.create_observable_gauge("shop.nodes.up", [_observe_nodes], "{node}", "Nodes up.")
    yield
    appmeters._meters.pop(("shop", "1.2.3", None))  # forget them for the rest of the session


def _record_all(orders: int) -> None:
    ORDERS.add(orders, {"channel": "web"})
    LAG.record(0.004)
    QUEUED.add(2)
    TEMPERATURE.set(180.5)


@pytest.mark.parametrize("round_", [1, 2, 3])
@needs_gauge_last_value
def test_instruments_made_at_import_work_in_every_capture(llmtel_capture: Capture, round_: int) -> None:
    _nodes["up"] = round_
    _record_all(round_)
    assert llmtel_capture.sum("shop.orders", {"channel": "web"}) == round_  # this test's records only
    assert llmtel_capture.count("shop.loop.lag") == 1
    assert llmtel_capture.sum("shop.queue.depth") == 2
    assert llmtel_capture.sum("shop.oven.temperature") == 180.5
    assert llmtel_capture.sum("shop.nodes.up", {"region": "eu"}) == round_
    scopes = {
        sm.scope.name: sm.scope.version
        for rm in llmtel_capture.reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
    }
    assert scopes["shop"] == "1.2.3"


def test_reconfiguring_rebinds_and_shutdown_silences() -> None:
    first = Capture()
    ORDERS.add(1)
    assert first.sum("shop.orders") == 1
    first.close()
    ORDERS.add(100)  # after shutdown: recorded nowhere, never raises
    second = Capture()
    ORDERS.add(5)
    assert second.sum("shop.orders") == 5
    assert first.reader.get_metrics_data() is None or all(
        p.value == 1 for p in first.points("shop.orders")
    )  # the old provider saw nothing more


def test_same_name_gives_the_same_instrument_and_default_scope_is_llmtels(llmtel_capture: Capture) -> None:
    assert METER.create_counter("shop.orders", "{order}", "Orders placed.") is ORDERS
    assert llmtel.get_meter("shop", "1.2.3") is METER
    own = llmtel.get_meter().create_counter("app.default.scope")
    own.add(1)
    data = llmtel_capture.reader.get_metrics_data()
    scope_of = {m.name: sm.scope.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert scope_of["app.default.scope"] == "llmtel"


@needs_cardinality_limits
def test_bucket_boundaries_and_cardinality_limits_by_name_for_app_instruments() -> None:
    capture = Capture(
        bucket_boundaries={"shop.loop.lag": [0.001, 0.01, 0.1]},
        cardinality_limits={"shop.orders": 3},
    )
    LAG.record(0.004)
    for channel in range(10):
        ORDERS.add(1, {"channel": str(channel)})
    lag = capture.point("shop.loop.lag")
    assert tuple(lag.explicit_bounds) == (0.001, 0.01, 0.1) and list(lag.bucket_counts) == [0, 1, 0, 0]
    points = capture.points("shop.orders")
    assert len(points) == 4  # 3 series + the SDK's overflow series
    assert capture.sum("shop.orders", {"otel.metric.overflow": True}) == 7
    assert sum(p.value for p in points) == 10


def test_buckets_named_for_a_counter_leave_it_a_counter() -> None:
    capture = Capture(bucket_boundaries={"shop.orders": [1.0, 2.0]})
    ORDERS.add(4)
    assert capture.sum("shop.orders") == 4  # a NumberDataPoint: still a counter


def test_names_in_llmtels_namespaces_must_be_registry_names() -> None:
    with pytest.raises(llmtel.ConfigurationError, match="not an llmtel instrument"):
        Capture(bucket_boundaries={"llmtel.tool.durations": [1.0]})
