"""``spanattributes.set_cleaned`` stores llmtel's cleaned attributes exactly as the SDK's ``set_attributes`` would."""

from __future__ import annotations

import logging
from typing import Any
from unittest import mock

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import Span, SpanLimits, TracerProvider

from llmtel._internal import sdkcompat, spanattributes

needs_span_shortcut = pytest.mark.skipif(
    not spanattributes.available,
    reason=f"stored directly on SDK 1.45 only; {sdkcompat.SDK_VERSION} always takes set_attributes",
)

_CLEANED: dict[str, Any] = {  # what llmtel's cleaning hands over: str, bool, int, float, tuples of one type
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.finish_reasons": ("stop", "length"),
    "gen_ai.usage.input_tokens": 11,
    "gen_ai.request.stream": False,
    "llmtel.cost.usd": 6.45e-06,
    "llmtel.ranks": (1, 3),
}


def _spans(limits: SpanLimits | None = None) -> tuple[Span, Span]:
    tracer = TracerProvider(span_limits=limits or SpanLimits()).get_tracer("llmtel.tests.span_attributes")
    start = {"gen_ai.operation.name": "chat", "server.port": 443}
    ours = tracer.start_span("ours", attributes=start)
    theirs = tracer.start_span("theirs", attributes=start)
    assert isinstance(ours, Span) and isinstance(theirs, Span)
    return ours, theirs


def _state(span: Span) -> tuple[list[tuple[str, Any, type]], int]:
    """The attributes in order, with each value's type, and the dropped count: what an exporter reads."""
    attributes = span.attributes or {}
    return [(key, value, type(value)) for key, value in attributes.items()], span.dropped_attributes


@pytest.mark.parametrize(
    ("limits", "attributes"),
    [
        pytest.param(None, _CLEANED, id="common"),
        pytest.param(None, {}, id="nothing"),
        pytest.param(SpanLimits(max_span_attributes=4), _CLEANED, id="over the count limit: oldest dropped"),
        pytest.param(SpanLimits(max_span_attributes=8), _CLEANED, id="exactly at the count limit"),
        pytest.param(SpanLimits(max_span_attribute_length=5), _CLEANED, id="value length limit: truncated"),
        pytest.param(None, {**_CLEANED, "server.port": 8443}, id="a key set again moves to the end"),
        pytest.param(None, {"gen_ai.response.finish_reasons": ["stop"]}, id="a list becomes a tuple"),
        pytest.param(None, {"odd": b"bytes", "none": None}, id="other value types"),
    ],
)
def test_the_span_ends_up_as_set_attributes_leaves_it(limits: SpanLimits | None, attributes: dict[str, Any]) -> None:
    ours, theirs = _spans(limits)
    spanattributes.set_cleaned(ours, dict(attributes))
    theirs.set_attributes(dict(attributes))
    assert _state(ours) == _state(theirs)
    ours.end()
    theirs.end()
    assert _state(ours) == _state(theirs)


def test_an_ended_span_keeps_its_attributes_and_the_sdk_warns(caplog: pytest.LogCaptureFixture) -> None:
    ours, theirs = _spans()
    ours.end()
    theirs.end()
    with caplog.at_level(logging.WARNING, logger="opentelemetry.sdk.trace"):
        spanattributes.set_cleaned(ours, dict(_CLEANED))
    assert "Setting attribute on ended span." in caplog.messages
    theirs.set_attributes(dict(_CLEANED))
    assert _state(ours) == _state(theirs)
    assert "gen_ai.usage.input_tokens" not in (ours.attributes or {})


@needs_span_shortcut
def test_cleaned_attributes_skip_the_sdks_second_cleaning() -> None:
    ours, _ = _spans()
    with mock.patch.object(Span, "set_attributes", side_effect=AssertionError("cleaned again")):
        spanattributes.set_cleaned(ours, dict(_CLEANED))
    assert dict(ours.attributes or {}).items() >= _CLEANED.items()


@pytest.mark.parametrize(
    "attributes",
    [{**_CLEANED, "gen_ai.request.stop_sequences": ["a"]}, {**_CLEANED, "gen_ai.operation.name": "chat"}],
    ids=["a list", "a key already set"],
)
def test_what_the_sdk_would_change_goes_through_set_attributes(attributes: dict[str, Any]) -> None:
    ours, _ = _spans()
    with mock.patch.object(Span, "set_attributes", autospec=True) as set_attributes:
        spanattributes.set_cleaned(ours, attributes)
    set_attributes.assert_called_once_with(ours, attributes)


def test_spans_of_other_kinds_take_their_own_set_attributes() -> None:
    span = mock.create_autospec(trace.Span, instance=True)
    spanattributes.set_cleaned(span, dict(_CLEANED))
    span.set_attributes.assert_called_once_with(_CLEANED)
    spanattributes.set_cleaned(trace.INVALID_SPAN, dict(_CLEANED))  # a non-recording span: nothing, no error


def test_the_shortcut_follows_the_proven_sdk_versions() -> None:
    assert spanattributes.available is sdkcompat.SDK_PROVEN
