"""Quantile error of bucket layouts for time to first chunk and time per output chunk.

    python -m benchmarks.buckets

Draws seeded log-normal samples shaped like streamed LLM calls (per-chunk gaps of a
fast model around 25 ms, of a slower one around 60 ms; first chunks around 0.4 s and
1.5 s), estimates p50/p90/p99 the way Prometheus' ``histogram_quantile`` does (linear
inside the bucket) and prints the relative error against the exact quantile, for the
conventions' buckets (llmtel's default) and for finer ones a user can configure.
"""

from __future__ import annotations

import bisect
import json
import random
from collections.abc import Sequence

from llmtel.semconv import DURATION_BUCKETS

# What llmtel used before following the conventions (0.001 ... 5 s).
OLD_FINE = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.25, 0.3, 0.35,
    0.4, 0.45, 0.5, 0.75, 1.0, 2.0, 5.0,
)  # fmt: skip
# The finer per-chunk layout docs/instrumentations.md suggests.
FINE_CHUNK = (
    0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.12, 0.16, 0.2, 0.25, 0.32, 0.64, 1.28,
    2.56, 5.12,
)  # fmt: skip
LAYOUTS = {"conventions (default)": DURATION_BUCKETS, "old llmtel 0.001-5 s": OLD_FINE, "finer per-chunk": FINE_CHUNK}
SHAPES = {
    "per-chunk gap, fast model (median 25 ms)": (0.025, 0.5),
    "per-chunk gap, slower model (median 60 ms)": (0.060, 0.6),
    "first chunk (median 0.4 s)": (0.4, 0.6),
    "first chunk (median 1.5 s)": (1.5, 0.5),
}


def histogram_quantile(q: float, bounds: Sequence[float], values: Sequence[float]) -> float:
    """Prometheus' estimate: find the bucket holding rank q*n, interpolate linearly inside it."""
    counts = [0] * (len(bounds) + 1)
    for value in values:
        counts[bisect.bisect_left(bounds, value)] += 1
    rank = q * len(values)
    seen = 0
    for i, count in enumerate(counts):
        if seen + count >= rank and count:
            if i == len(bounds):
                return bounds[-1]  # +Inf bucket: Prometheus returns the highest finite bound
            lower = bounds[i - 1] if i else 0.0
            return lower + (bounds[i] - lower) * (rank - seen) / count
        seen += count
    return bounds[-1]


def main() -> int:
    rng = random.Random(15)
    for shape, (median, sigma) in SHAPES.items():
        import math

        values = sorted(rng.lognormvariate(math.log(median), sigma) for _ in range(20_000))
        row: dict[str, object] = {"shape": shape}
        for name, bounds in LAYOUTS.items():
            errors = {}
            for q in (0.5, 0.9, 0.99):
                exact = values[int(q * len(values)) - 1]
                estimate = histogram_quantile(q, bounds, values)
                errors[f"p{round(q * 100)}"] = f"{(estimate - exact) / exact * 100:+.1f}%"
            row[name] = errors
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
