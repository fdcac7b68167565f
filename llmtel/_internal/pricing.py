"""Price table: token usage → cost in USD.

Prices are USD per one million tokens, per model, for ``input``, ``output``,
``cache_read`` and ``cache_creation`` tokens. A model is found by exact name,
then by the longest table key it starts with (``gpt-4o-mini-2024-07-18`` uses
``gpt-4o-mini``). An unknown model gives no cost at all, never a wrong 0.

File format (JSON)::

    {"gpt-4o-mini": {"input": 0.15, "output": 0.60, "cache_read": 0.075}}
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmtel._internal.errors import ConfigurationError

_KINDS = ("input", "output", "cache_read", "cache_creation")


@dataclass(frozen=True)
class Price:
    """USD per million tokens of each kind (None: that kind is priced as input)."""

    input: float
    output: float
    cache_read: float | None = None
    cache_creation: float | None = None


class PriceTable:
    """Looks up prices per model and turns usage into USD."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self._prices = dict(prices or {})
        # Longest prefix first so the most specific key wins.
        self._prefixes = sorted(self._prices, key=len, reverse=True)

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any] | PriceTable | None) -> PriceTable:
        """Build a table from a JSON file path, a mapping, or return an existing table."""
        if source is None:
            return cls()
        if isinstance(source, PriceTable):
            return source
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
            prices[str(model)] = Price(**values)
        return cls(prices)

    def price(self, model: str | None) -> Price | None:
        """The price entry for ``model``, or None when unknown."""
        if not model or not self._prices:
            return None
        exact = self._prices.get(model)
        if exact is not None:
            return exact
        for key in self._prefixes:
            if model.startswith(key):
                return self._prices[key]
        return None

    def cost(
        self,
        model: str | None,
        *,
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
        price = self.price(model)
        if price is None:
            return None
        cache_read_price = price.input if price.cache_read is None else price.cache_read
        cache_creation_price = price.input if price.cache_creation is None else price.cache_creation
        plain_input = max(input_tokens - cache_read_input_tokens - cache_creation_input_tokens, 0)
        total = (
            plain_input * price.input
            + cache_read_input_tokens * cache_read_price
            + cache_creation_input_tokens * cache_creation_price
            + output_tokens * price.output
        )
        return total / 1_000_000
