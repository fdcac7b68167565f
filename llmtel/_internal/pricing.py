"""Price table: token usage → cost in USD.

Prices are USD per one million tokens, per model, for ``input``, ``output``,
``cache_read`` and ``cache_creation`` tokens. A model is found by exact name,
then by the longest table key it starts with (``gpt-4o-mini-2024-07-18`` uses
``gpt-4o-mini``). An unknown model gives no cost at all, never a wrong 0.

The user's table (file or dict) comes first; models it lacks are looked up in
the default prices of pydantic's ``genai-prices`` package when it is installed
(``pip install "llmtel[prices]"``), by provider and model. Only its bundled data
is read: nothing is fetched at run time.

File format (JSON)::

    {"gpt-4o-mini": {"input": 0.15, "output": 0.60, "cache_read": 0.075}}
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

from llmtel._internal import errors as _errors
from llmtel._internal.bounded import remember
from llmtel._internal.errors import ConfigurationError
from llmtel._internal.values import MAX_VALUE

logger = logging.getLogger("llmtel")

_KINDS = ("input", "output", "cache_read", "cache_creation")
#: Where a cost came from (the ``llmtel.cost.source`` attribute).
SOURCE_TABLE: Final = "price_table"
SOURCE_DEFAULTS: Final = "genai_prices"
SOURCE_REPORTED: Final = "reported"


@dataclass(frozen=True)
class Price:
    """USD per million tokens of each kind (None: that kind is priced as input)."""

    input: float
    output: float
    cache_read: float | None = None
    cache_creation: float | None = None
    #: Cliff tiers, ascending: ``(n, price)`` prices every token of a call with more than n input tokens.
    tiers: tuple[tuple[int, Price], ...] = ()

    def split(
        self, input_tokens: int, output_tokens: int, cache_read_input_tokens: int, cache_creation_input_tokens: int
    ) -> tuple[float, float]:
        """USD of the input side (cached tokens included) and of the output side of one call."""
        if not (self.tiers or cache_read_input_tokens or cache_creation_input_tokens):  # the common call
            return input_tokens * self.input / 1_000_000, output_tokens * self.output / 1_000_000
        price = self
        for start, tier in reversed(self.tiers):
            if input_tokens > start:
                price = tier
                break
        cache_read_price = price.input if price.cache_read is None else price.cache_read
        cache_creation_price = price.input if price.cache_creation is None else price.cache_creation
        plain_input = max(input_tokens - cache_read_input_tokens - cache_creation_input_tokens, 0)
        input_usd = (
            plain_input * price.input
            + cache_read_input_tokens * cache_read_price
            + cache_creation_input_tokens * cache_creation_price
        )
        return input_usd / 1_000_000, output_tokens * price.output / 1_000_000


#: gen_ai.provider.name values → genai-prices provider ids (others are tried as they are).
_PROVIDER_IDS: Final = {
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
}
# Resolved prices kept (hits and misses): above the default cardinality limit of 2000 models, so a
# fleet of models never resolves each call again; the oldest entry goes first (no clear-all cliff).
_MAX_CACHED = 4096


class DefaultPrices:
    """Prices from the ``genai-prices`` package's bundled data, resolved once per provider and model."""

    def __init__(self, snapshot: Any) -> None:
        self._snapshot = snapshot
        self._known = {provider.id for provider in snapshot.providers}
        self._cache: dict[tuple[str, str], Price | None] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls) -> DefaultPrices | None:
        """The default prices, or None when ``genai-prices`` is not installed."""
        try:
            from genai_prices import data_snapshot
        except ImportError:
            logger.debug("llmtel: genai-prices not installed; only the configured price_table prices calls")
            return None
        return cls(data_snapshot.get_snapshot())  # loads the bundled data now, not in a request

    def price(self, provider: str | None, model: str) -> Price | None:
        """The price of ``model`` at ``provider`` (None: unknown provider or model)."""
        provider_id = _PROVIDER_IDS.get(provider or "", provider)
        if provider_id not in self._known:
            return None  # self-hosted servers (vllm, ollama...) are not priced by a public list
        assert provider_id is not None
        key = (provider_id, model)
        try:
            return self._cache[key]
        except KeyError:
            pass
        price: Price | None = None
        with _errors.guarded("default prices"):
            try:
                _, info = self._snapshot.find_provider_model(model, None, provider_id, None)
            except LookupError:
                info = None
            if info is not None:
                price = _from_model_price(info.get_prices(datetime.now(timezone.utc)))
        with self._lock:
            remember(self._cache, key, price, _MAX_CACHED)
        return price


def _at(value: Any, tokens: int) -> float | None:
    """A genai-prices price (Decimal or TieredPrices) for a call of more than ``tokens`` input tokens."""
    if value is None:
        return None
    base = getattr(value, "base", None)
    if base is None:
        return float(value)
    applicable = base
    for tier in value.tiers:  # ascending
        if tokens >= tier.start:
            applicable = tier.price
    return float(applicable)


def _from_model_price(model_price: Any) -> Price | None:
    fields = {
        "input": getattr(model_price, "input_mtok", None),
        "output": getattr(model_price, "output_mtok", None),
        "cache_read": getattr(model_price, "cache_read_mtok", None),
        "cache_creation": getattr(model_price, "cache_write_mtok", None),
    }
    if fields["input"] is None:
        return None  # not priced per token (images, audio seconds, requests)

    def at(tokens: int) -> Price:
        values = {kind: _at(value, tokens) for kind, value in fields.items()}
        return Price(
            input=values["input"] or 0.0,
            output=values["output"] or 0.0,
            cache_read=values["cache_read"],
            cache_creation=values["cache_creation"],
        )

    starts = sorted({tier.start for value in fields.values() for tier in getattr(value, "tiers", ())})
    base = at(-1)
    return Price(base.input, base.output, base.cache_read, base.cache_creation, tiers=tuple((s, at(s)) for s in starts))


class PriceTable:
    """Looks up prices per model (the user's table, then the default prices) and turns usage into USD."""

    def __init__(self, prices: Mapping[str, Price] | None = None, *, defaults: DefaultPrices | None = None) -> None:
        self._prices = dict(prices or {})
        # Longest prefix first so the most specific key wins.
        self._prefixes = sorted(self._prices, key=len, reverse=True)
        self.defaults = defaults
        # What lookup() found per (model, provider), hits and misses: one dict read per priced call
        # instead of a prefix scan; bounded like the default prices' cache, oldest out first.
        self._found: dict[tuple[str, str | None], tuple[Price, str] | None] = {}
        self._found_lock = threading.Lock()

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any] | PriceTable | None, *, defaults: bool = False) -> PriceTable:
        """Build a table from a JSON file path, a mapping, or return an existing table.

        ``defaults``: fall back to genai-prices' data (when installed) for models the table lacks.
        """
        default_prices = DefaultPrices.load() if defaults else None
        if isinstance(source, PriceTable):
            if default_prices is not None and source.defaults is None:
                return cls(source._prices, defaults=default_prices)
            return source
        if source is None:
            return cls(defaults=default_prices)
        if isinstance(source, str | Path):
            try:
                data = json.loads(Path(source).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"price_table: cannot read {source}: {exc}") from None
        else:
            data = source
        prices: dict[str, Price] = {}
        for model, entry in data.items():
            if not isinstance(entry, Mapping) or "input" not in entry or "output" not in entry:
                raise ConfigurationError(f"price_table: {model!r} needs at least 'input' and 'output' prices")
            unknown = set(entry) - set(_KINDS)
            if unknown:
                raise ConfigurationError(f"price_table: {model!r} has unknown price kinds {sorted(unknown)}")
            values = {kind: float(entry[kind]) for kind in _KINDS if entry.get(kind) is not None}
            if any(not math.isfinite(v) or v < 0 for v in values.values()):
                raise ConfigurationError(f"price_table: {model!r} has a negative or non-finite price")
            prices[str(model)] = Price(
                values["input"], values["output"], values.get("cache_read"), values.get("cache_creation")
            )
        return cls(prices, defaults=default_prices)

    def price(self, model: str | None, provider: str | None = None) -> Price | None:
        """The price entry for ``model`` (at ``provider``, for the default prices), or None when unknown."""
        found = self.lookup(model, provider)
        return found[0] if found is not None else None

    def lookup(self, model: str | None, provider: str | None = None) -> tuple[Price, str] | None:
        """The price for ``model`` and where it came from (``price_table`` or ``genai_prices``)."""
        if not model:
            return None
        key = (model, provider)
        try:
            return self._found[key]
        except KeyError:
            pass
        found = self._resolve(model, provider)
        with self._found_lock:
            remember(self._found, key, found, _MAX_CACHED)
        return found

    def _resolve(self, model: str, provider: str | None) -> tuple[Price, str] | None:
        if self._prices:
            exact = self._prices.get(model)
            if exact is not None:
                return exact, SOURCE_TABLE
            for key in self._prefixes:
                if model.startswith(key):
                    return self._prices[key], SOURCE_TABLE
        if self.defaults is not None:
            price = self.defaults.price(provider, model)
            if price is not None:
                return price, SOURCE_DEFAULTS
        return None

    def split_cost(
        self,
        model: str | None,
        provider: str | None,
        input_tokens: int,
        output_tokens: int,
        cache_read_input_tokens: int = 0,
        cache_creation_input_tokens: int = 0,
    ) -> tuple[float, float, str] | None:
        """USD of the input side and of the output side of one call, and the prices' source.

        None: no price, or an amount past ``MAX_VALUE`` (a huge price times a huge count; counted as
        ``invalid cost``), so that a cost counter's sum stays finite.
        """
        found = self.lookup(model, provider)
        if found is None:
            return None
        price, source = found
        input_usd, output_usd = price.split(
            input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens
        )
        if not (0 <= input_usd <= MAX_VALUE and 0 <= output_usd <= MAX_VALUE):  # NaN and inf fail too
            _errors.report("invalid cost", detail=f"{input_usd!r} + {output_usd!r} USD")
            return None
        return input_usd, output_usd, source

    def cost(
        self,
        model: str | None,
        *,
        provider: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_input_tokens: int = 0,
        cache_creation_input_tokens: int = 0,
    ) -> float | None:
        """USD for this usage, or None when the model has no price.

        ``input_tokens`` includes cached tokens (as the GenAI conventions and
        the OpenAI/Anthropic usage fields report them); cached ones are charged
        at their own price where the table has one.
        """
        found = self.lookup(model, provider)
        if found is None:
            return None
        input_usd, output_usd = found[0].split(
            input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens
        )
        return input_usd + output_usd
