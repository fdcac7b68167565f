"""Cost: the provider's reported amount (``call.set_cost``), the price tables, the split by token type."""

from __future__ import annotations

import sys
from typing import Any

import pytest

import llmtel
from llmtel._internal import errors as _errors
from llmtel._internal.pricing import PriceTable
from llmtel.testing import Capture

COST = "llmtel.gen_ai.client.cost"


def _genai_prices() -> object:
    # Without the package (Python 3.10) the fallback is tested below with the import blocked.
    return pytest.importorskip("genai_prices", reason="genai-prices (the prices extra) needs Python 3.11+")


def _cost_points(capture: Capture) -> dict[tuple[str | None, str | None], float]:
    return {
        (p.attributes.get("gen_ai.token.type"), p.attributes.get("llmtel.cost.source")): p.value
        for p in capture.points(COST)
    }


def test_reported_cost_wins_over_the_price_table_and_is_marked() -> None:
    capture = Capture(price_table={"m": {"input": 1.0, "output": 2.0}})
    with llmtel.llm_call(provider="openrouter", model="m") as call:
        call.set_usage(input_tokens=1_000_000, output_tokens=1_000_000)
        call.set_cost(0.0123)
    assert _cost_points(capture) == {(None, "reported"): 0.0123}
    (span,) = capture.spans()
    assert span.attributes["llmtel.cost.usd"] == 0.0123 and span.attributes["llmtel.cost.source"] == "reported"


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "0.5", True])
def test_bad_reported_costs_are_dropped_and_counted(bad: object) -> None:
    _errors.reset()
    capture = Capture(default_prices=False)
    with llmtel.llm_call(provider="openrouter", model="m") as call:
        call.set_usage(input_tokens=10, output_tokens=10)
        call.set_cost(bad)
    assert capture.points(COST) == []  # "m" has no price: nothing, not a wrong 0
    assert _errors.problem_counts()["invalid cost"] == 1


@pytest.mark.parametrize("price", [1e20, 1e306])  # past MAX_VALUE USD; overflows to inf
def test_a_priced_amount_out_of_bounds_is_not_recorded_and_is_counted(price: float) -> None:
    _errors.reset()
    capture = Capture(price_table={"m": {"input": price, "output": 1.0}})
    with llmtel.llm_call(provider="openai", model="m") as call:
        call.set_usage(input_tokens=10**15, output_tokens=10)
    assert capture.points(COST) == []
    (span,) = capture.spans()
    assert "llmtel.cost.usd" not in span.attributes
    assert _errors.problem_counts()["invalid cost"] == 1


def test_the_common_split_equals_the_full_formula() -> None:
    """The shortcut for a call without cached tokens or tiers gives the full formula's floats, bit for bit."""
    from llmtel._internal.pricing import Price

    price = Price(input=0.15, output=0.6)
    tiered = Price(input=0.15, output=0.6, tiers=((10**12, price),))  # same prices, takes the full formula
    for input_tokens, output_tokens in [(0, 0), (11, 8), (1, 10**6), (123_457, 98_765), (2**40, 3)]:
        assert price.split(input_tokens, output_tokens, 0, 0) == tiered.split(input_tokens, output_tokens, 0, 0)


def test_set_cost_none_means_not_reported_and_the_price_table_applies() -> None:
    capture = Capture(price_table={"m": {"input": 1.0, "output": 2.0}})
    with llmtel.llm_call(provider="openrouter", model="m") as call:
        call.set_usage(input_tokens=1_000_000, output_tokens=0)
        call.set_cost(None)  # a gateway response without a cost field
    assert _cost_points(capture) == {("input", "price_table"): 1.0, ("output", "price_table"): 0.0}


def test_priced_cost_is_split_by_token_type_and_says_which_table() -> None:
    capture = Capture(price_table={"m": {"input": 1.0, "output": 2.0, "cache_read": 0.5}})
    with llmtel.llm_call(provider="openai", model="m") as call:
        call.set_usage(input_tokens=1_000_000, output_tokens=500_000, cache_read_input_tokens=400_000)
    assert _cost_points(capture) == {
        ("input", "price_table"): pytest.approx(0.6 + 0.2),
        ("output", "price_table"): pytest.approx(1.0),
    }
    (span,) = capture.spans()
    assert span.attributes["llmtel.cost.usd"] == pytest.approx(1.8)


@pytest.mark.parametrize(
    ("provider", "prices_provider", "model", "usage"),
    [
        ("openai", "openai", "gpt-4o-mini-2024-07-18", (120_000, 3_000, 100_000, 0)),
        ("openai", "openai", "gpt-4.1", (5_000, 700, 0, 0)),
        ("anthropic", "anthropic", "claude-sonnet-4-5", (10_000, 2_000, 4_000, 1_000)),
        ("anthropic", "anthropic", "claude-sonnet-4-5", (250_000, 2_000, 0, 0)),  # past the 200k tier
        ("gcp.gemini", "google", "gemini-2.5-pro", (300_000, 1_000, 50_000, 0)),
        ("aws.bedrock", "aws", "anthropic.claude-3-5-haiku-20241022-v1:0", (2_000, 300, 0, 0)),
    ],
)
def test_default_prices_equal_genai_prices_own_calculation(
    provider: str, prices_provider: str, model: str, usage: tuple[int, int, int, int]
) -> None:
    genai_prices: Any = _genai_prices()
    inputs, outputs, cache_read, cache_write = usage
    expected = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=inputs, output_tokens=outputs, cache_read_tokens=cache_read, cache_write_tokens=cache_write
        ),
        model,
        provider_id=prices_provider,
    )
    capture = Capture()
    with llmtel.llm_call(provider=provider, model=model) as call:
        call.set_usage(
            input_tokens=inputs,
            output_tokens=outputs,
            cache_read_input_tokens=cache_read,
            cache_creation_input_tokens=cache_write,
        )
    assert _cost_points(capture) == {
        ("input", "genai_prices"): pytest.approx(float(expected.input_price), rel=1e-9),
        ("output", "genai_prices"): pytest.approx(float(expected.output_price), rel=1e-9),
    }


def test_user_table_overrides_and_extends_the_defaults() -> None:
    _genai_prices()
    capture = Capture(price_table={"gpt-4.1": {"input": 100.0, "output": 100.0}, "my-model": {"input": 1, "output": 1}})
    for model in ("gpt-4.1", "my-model", "gpt-4o-mini"):
        with llmtel.llm_call(provider="openai", model=model) as call:
            call.set_usage(input_tokens=1_000_000, output_tokens=0)
    sources = {
        p.attributes["gen_ai.request.model"]: (p.attributes["llmtel.cost.source"], p.value)
        for p in capture.points(COST)
        if p.attributes["gen_ai.token.type"] == "input"
    }
    assert sources["gpt-4.1"] == ("price_table", 100.0)
    assert sources["my-model"] == ("price_table", 1.0)
    assert sources["gpt-4o-mini"][0] == "genai_prices"


@pytest.mark.parametrize(
    ("provider", "model"),
    [("openai", "no-such-model-xyz"), ("vllm", "gpt-4o-mini"), ("ollama", "llama3"), (None, "gpt-4o-mini")],
)
def test_unknown_models_and_self_hosted_servers_get_no_point(provider: str | None, model: str) -> None:
    capture = Capture()
    with llmtel.llm_call(provider=provider, model=model) as call:
        call.set_usage(input_tokens=1000, output_tokens=1000)
    assert capture.points(COST) == []


def test_default_prices_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_DEFAULT_PRICES", "false")
    capture = Capture()
    with llmtel.llm_call(provider="openai", model="gpt-4o-mini") as call:
        call.set_usage(input_tokens=1000, output_tokens=1000)
    assert capture.points(COST) == []


def test_without_the_package_only_the_users_table_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "genai_prices", None)  # what an install without the extra sees
    table = PriceTable.load({"m": {"input": 1, "output": 1}}, defaults=True)
    assert table.defaults is None
    assert table.lookup("gpt-4o-mini", "openai") is None
    assert table.cost("m", input_tokens=1_000_000) == 1.0


def test_price_lookups_are_remembered_per_model_and_provider_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmtel._internal import pricing

    monkeypatch.setattr(pricing, "_MAX_CACHED", 4)
    table = PriceTable.load({"gpt-4o": {"input": 1.0, "output": 2.0}, "gpt-4o-mini": {"input": 0.5, "output": 1.0}})
    scans: list[str] = []
    resolve = table._resolve
    monkeypatch.setattr(table, "_resolve", lambda model, provider: scans.append(model) or resolve(model, provider))
    for _ in range(3):  # the longest prefix wins, found once, then remembered (misses too)
        assert table.lookup("gpt-4o-mini-2024-07-18", "openai") == (table._prices["gpt-4o-mini"], "price_table")
        assert table.lookup("unknown", "openai") is None
    assert scans == ["gpt-4o-mini-2024-07-18", "unknown"]
    for n in range(10):  # bounded: the oldest entries go first
        table.lookup(f"gpt-4o-{n}", "openai")
    assert len(table._found) == 4
    assert table.lookup("gpt-4o-9", "openai") == (table._prices["gpt-4o"], "price_table")
    assert scans[-1] == "gpt-4o-9" and len(scans) == 12
