"""The live page's numbers: LLM golden signals per model, computed from the process's own instruments.

Nothing here runs on the record path. The Prometheus bridge calls
:meth:`Overview.observe` after each collection (a scrape or the page's own
request, both in the endpoint thread); it folds the cumulative data into a
small per-model summary and keeps the time-to-first-chunk exemplars. A page
request then subtracts the summary from about a window ago: rates and
percentiles over that window, the way ``rate()`` and ``histogram_quantile()``
read the same series in Prometheus. Until a window of history exists, the
window starts at the series' start (process start).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics.export import HistogramDataPoint, MetricsData

from llmtel import semconv

__all__ = ["Overview", "quantile"]

#: Seconds of history rates and percentiles are computed over.
WINDOW_S = 60.0
#: Least spacing of the summaries kept for the window's start (the window is exact to this many seconds).
HISTORY_STEP_S = 2.0
#: Seconds after the last page request during which scrapes are still folded in (no page open: no work).
FOLLOW_S = 300.0
#: Time-to-first-chunk samples kept for the scatter (newest win), and for how long.
MAX_SAMPLES = 600
SAMPLE_AGE_S = 600.0

_NO_MODEL = "(no model)"


def _names(name: str) -> frozenset[str]:
    spec = semconv.spec(name)
    return frozenset(n for n in (spec.name, spec.latest_name) if n)


_DURATION = _names(semconv.CLIENT_OPERATION_DURATION)
_TTFT = _names(semconv.CLIENT_TIME_TO_FIRST_CHUNK)
_TOKENS = _names(semconv.CLIENT_TOKEN_USAGE)
_COST = _names("llmtel.gen_ai.client.cost")
_ACTIVE = _names("llmtel.gen_ai.requests.active")
_TOOL = _names("llmtel.tool.duration")
_RETRIEVAL = _names("llmtel.retrieval.duration")
_GPU_UTIL = _names("hw.gpu.utilization")
_GPU_MEM_USED = _names("hw.gpu.memory.usage")
_GPU_MEM_LIMIT = _names("hw.gpu.memory.limit")
_GPU = _GPU_UTIL | _GPU_MEM_USED | _GPU_MEM_LIMIT
_FOLDED = _DURATION | _TTFT | _TOKENS | _COST | _ACTIVE | _TOOL | _RETRIEVAL | _GPU


def quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float | None:
    """The ``q`` quantile of bucketed samples, interpolated inside its bucket (as ``histogram_quantile``).

    ``counts`` has one more entry than ``bounds`` (the +Inf bucket). None without samples; a quantile
    in the +Inf bucket answers the highest bound.
    """
    total = sum(counts)
    if total <= 0 or not bounds:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index >= len(bounds):
                return float(bounds[-1])
            upper = float(bounds[index])
            lower = float(bounds[index - 1]) if index else min(0.0, upper)
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return float(bounds[-1])


@dataclass
class _Hist:
    bounds: tuple[float, ...]
    counts: list[int]

    def add(self, bounds: Sequence[float], counts: Sequence[int]) -> None:
        if tuple(bounds) != self.bounds:
            return  # a view gave this series other buckets: not mergeable, left out
        self.counts = [a + b for a, b in zip(self.counts, counts, strict=False)]

    def since(self, base: _Hist | None) -> _Hist:
        if base is None or base.bounds != self.bounds:
            return self
        delta = [a - b for a, b in zip(self.counts, base.counts, strict=False)]
        if any(d < 0 for d in delta):  # the series restarted (a forked worker's reset): count from zero
            return self
        return _Hist(self.bounds, delta)

    @property
    def count(self) -> int:
        return sum(self.counts)


def _merge(hist: _Hist | None, point: HistogramDataPoint) -> _Hist:
    if hist is None:
        return _Hist(tuple(point.explicit_bounds), list(point.bucket_counts))
    hist.add(point.explicit_bounds, point.bucket_counts)
    return hist


@dataclass
class _Group:
    """Cumulative numbers of one model, tool or data source."""

    provider: str = ""
    duration: _Hist | None = None
    ttft: _Hist | None = None
    errors: dict[str, int] = field(default_factory=dict)  # error.type → operations
    tokens: dict[str, float] = field(default_factory=dict)  # gen_ai.token.type → tokens
    cost: float | None = None
    active: float = 0.0


@dataclass
class _Summary:
    time_s: float
    start_s: float
    models: dict[str, _Group] = field(default_factory=dict)
    tools: dict[str, _Group] = field(default_factory=dict)
    retrievals: dict[str, _Group] = field(default_factory=dict)
    gpus: dict[str, dict[str, Any]] = field(default_factory=dict)
    service: str = ""


def _model(attributes: Mapping[str, Any]) -> str:
    value = attributes.get(semconv.REQUEST_MODEL) or attributes.get(semconv.RESPONSE_MODEL)
    return str(value) if value else _NO_MODEL


def _group(groups: dict[str, _Group], key: str) -> _Group:
    group = groups.get(key)
    if group is None:
        group = groups[key] = _Group()
    return group


def _summarize(data: MetricsData, now_s: float, samples: deque[dict[str, Any]]) -> _Summary:
    summary = _Summary(time_s=now_s, start_s=now_s)
    for resource_metrics in data.resource_metrics:
        if not summary.service:
            summary.service = str(resource_metrics.resource.attributes.get("service.name", ""))
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name in _FOLDED:
                    points = metric.data.data_points
                    starts = [p.start_time_unix_nano for p in points if p.start_time_unix_nano]
                    if starts:
                        summary.start_s = min(summary.start_s, min(starts) / 1e9)
                    _fold(metric.name, points, summary, samples)
    return summary


def _fold(name: str, points: Iterable[Any], summary: _Summary, samples: deque[dict[str, Any]]) -> None:
    if name in _DURATION or name in _TTFT:
        for point in points:
            attributes = point.attributes or {}
            group = _group(summary.models, _model(attributes))
            group.provider = group.provider or str(attributes.get(semconv.PROVIDER_NAME, ""))
            if name in _TTFT:
                group.ttft = _merge(group.ttft, point)
                _keep_samples(point, _model(attributes), samples)
                continue
            group.duration = _merge(group.duration, point)
            error = attributes.get(semconv.ERROR_TYPE)
            if error:
                group.errors[str(error)] = group.errors.get(str(error), 0) + point.count
    elif name in _TOKENS:
        for point in points:
            attributes = point.attributes or {}
            tokens = _group(summary.models, _model(attributes)).tokens
            kind = str(attributes.get(semconv.TOKEN_TYPE, "other"))
            tokens[kind] = tokens.get(kind, 0.0) + point.sum
    elif name in _COST:
        for point in points:
            group = _group(summary.models, _model(point.attributes or {}))
            group.cost = (group.cost or 0.0) + point.value
    elif name in _ACTIVE:
        for point in points:
            _group(summary.models, _model(point.attributes or {})).active += point.value
    elif name in _TOOL or name in _RETRIEVAL:
        groups = summary.tools if name in _TOOL else summary.retrievals
        key = semconv.TOOL_NAME if name in _TOOL else semconv.DATA_SOURCE_ID
        for point in points:
            attributes = point.attributes or {}
            label = attributes.get(key) or "(unnamed)"
            group = _group(groups, str(label))
            group.duration = _merge(group.duration, point)
            error = attributes.get(semconv.ERROR_TYPE)
            if error:
                group.errors[str(error)] = group.errors.get(str(error), 0) + point.count
    elif name in _GPU:
        field_name = "utilization" if name in _GPU_UTIL else "memory_used" if name in _GPU_MEM_USED else "memory_limit"
        for point in points:
            attributes = point.attributes or {}
            task = attributes.get("hw.gpu.task")
            if task not in (None, "general"):
                continue  # per-task utilization (encoder, decoder): the page shows the general one
            gpu_id = str(attributes.get("hw.id", "?"))
            gpu = summary.gpus.get(gpu_id)
            if gpu is None:
                name, model = attributes.get("hw.name", gpu_id), attributes.get("hw.model", "")
                gpu = summary.gpus[gpu_id] = {"id": gpu_id, "name": str(name), "model": str(model)}
            gpu[field_name] = float(point.value)


def _keep_samples(point: HistogramDataPoint, model: str, samples: deque[dict[str, Any]]) -> None:
    for exemplar in point.exemplars:
        if not exemplar.trace_id or not exemplar.span_id:
            continue
        samples.append(
            {
                "time_s": exemplar.time_unix_nano / 1e9,
                "value_s": float(exemplar.value),
                "trace_id": format(exemplar.trace_id, "032x"),
                "span_id": format(exemplar.span_id, "016x"),
                "model": model,
                "error": bool((point.attributes or {}).get(semconv.ERROR_TYPE)),
            }
        )


def _rate(value: float, seconds: float) -> float:
    return value / seconds if seconds > 0 else 0.0


def _latency(hist: _Hist | None, prefix: str) -> dict[str, float | None]:
    if hist is None:
        return {f"{prefix}p50_s": None, f"{prefix}p95_s": None}
    return {
        f"{prefix}p50_s": quantile(0.5, hist.bounds, hist.counts),
        f"{prefix}p95_s": quantile(0.95, hist.bounds, hist.counts),
    }


def _delta(now: _Group, base: _Group | None) -> _Group:
    """``now - base`` (a group absent from ``base`` counts from zero; restarted counters too)."""
    if base is None:
        return now

    def minus(a: float, b: float) -> float:
        return a - b if a >= b else a

    return _Group(
        provider=now.provider,
        duration=now.duration.since(base.duration) if now.duration else None,
        ttft=now.ttft.since(base.ttft) if now.ttft else None,
        errors={k: int(minus(v, base.errors.get(k, 0))) for k, v in now.errors.items()},
        tokens={k: minus(v, base.tokens.get(k, 0.0)) for k, v in now.tokens.items()},
        cost=None if now.cost is None else minus(now.cost, base.cost or 0.0),
        active=now.active,
    )


def _combine(groups: Iterable[_Group]) -> _Group:
    total = _Group()
    for group in groups:
        for attr in ("duration", "ttft"):
            hist: _Hist | None = getattr(group, attr)
            if hist is not None:
                mine: _Hist | None = getattr(total, attr)
                if mine is None:
                    setattr(total, attr, _Hist(hist.bounds, list(hist.counts)))
                else:
                    mine.add(hist.bounds, hist.counts)
        for key, count in group.errors.items():
            total.errors[key] = total.errors.get(key, 0) + count
        for key, tokens in group.tokens.items():
            total.tokens[key] = total.tokens.get(key, 0.0) + tokens
        if group.cost is not None:
            total.cost = (total.cost or 0.0) + group.cost
        total.active += group.active
    return total


def _model_row(name: str, group: _Group, seconds: float) -> dict[str, Any]:
    calls = group.duration.count if group.duration else 0
    errors = sum(group.errors.values())
    return {
        "model": name,
        "provider": group.provider,
        "calls": calls,
        "calls_per_s": _rate(calls, seconds),
        "error_ratio": errors / calls if calls else 0.0,
        "errors_per_s": {kind: _rate(count, seconds) for kind, count in sorted(group.errors.items()) if count},
        **_latency(group.duration, "duration_"),
        **_latency(group.ttft, "ttft_"),
        "input_tokens_per_s": _rate(group.tokens.get("input", 0.0), seconds),
        "output_tokens_per_s": _rate(group.tokens.get("output", 0.0), seconds),
        "cost_per_hour": None if group.cost is None else _rate(group.cost, seconds) * 3600,
        "active": group.active,
    }


def _latency_row(name: str, group: _Group, seconds: float) -> dict[str, Any]:
    calls = group.duration.count if group.duration else 0
    return {
        "name": name,
        "calls": calls,
        "calls_per_s": _rate(calls, seconds),
        "error_ratio": sum(group.errors.values()) / calls if calls else 0.0,
        **_latency(group.duration, ""),
    }


class Overview:
    """Golden signals of this process, for the endpoint's live page.

    Register :meth:`observe` as a collect listener of the Prometheus bridge;
    :meth:`view` answers the page from the latest collection.
    """

    def __init__(self, window_s: float = WINDOW_S, max_samples: int = MAX_SAMPLES) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._history: deque[_Summary] = deque()
        self._samples: deque[dict[str, Any]] = deque(maxlen=max_samples)
        self._follow_until = 0.0
        #: When a collection was last folded in (monotonic seconds; 0: never).
        self.last_observed = 0.0

    def follow(self) -> None:
        """A page is looking: fold collections in for the next :data:`FOLLOW_S` seconds."""
        self._follow_until = time.monotonic() + FOLLOW_S

    def observe(self, data: MetricsData) -> None:
        """Fold one collection in (the bridge calls this after every collect, in its thread).

        Does nothing unless a page asked recently (:meth:`follow`): scrapes cost nothing extra while
        nobody looks.
        """
        if time.monotonic() > self._follow_until:
            return
        self.last_observed = time.monotonic()
        now = time.time()
        with self._lock:
            summary = _summarize(data, now, self._samples)
            history = self._history
            # Keep one summary older than the window (the base) and drop the rest beyond it.
            while len(history) > 1 and history[1].time_s <= now - self.window_s:
                history.popleft()
            # Older summaries stay at least HISTORY_STEP_S apart (memory stays ~window/step summaries
            # however often pages refresh); the newest is always the latest collection.
            if len(history) >= 2 and history[-1].time_s - history[-2].time_s < HISTORY_STEP_S:
                history[-1] = summary
            else:
                history.append(summary)

    def view(self) -> dict[str, Any]:
        """The page's JSON: per-model rows and totals over the window, tools, retrieval, GPUs, TTFT samples."""
        with self._lock:
            # Nothing collected yet (no instrument has a point): an empty view, not an error.
            now = self._history[-1] if self._history else _Summary(time.time(), time.time())
            base = next((s for s in reversed(self._history) if s.time_s <= now.time_s - self.window_s), None)
            samples = [s for s in self._samples if s["time_s"] >= now.time_s - SAMPLE_AGE_S]
        start = base.time_s if base is not None else now.start_s
        seconds = max(now.time_s - start, 1e-9)
        models = {name: _delta(group, base.models.get(name) if base else None) for name, group in now.models.items()}
        tools = {name: _delta(group, base.tools.get(name) if base else None) for name, group in now.tools.items()}
        retrievals = {
            name: _delta(group, base.retrievals.get(name) if base else None) for name, group in now.retrievals.items()
        }
        return {
            "metrics": True,
            "service": now.service,
            "time_s": now.time_s,
            "window_s": seconds,
            "totals": _model_row("all models", _combine(models.values()), seconds),
            "models": [_model_row(name, models[name], seconds) for name in sorted(models)],
            "tools": [_latency_row(name, tools[name], seconds) for name in sorted(tools)],
            "retrievals": [_latency_row(name, retrievals[name], seconds) for name in sorted(retrievals)],
            "gpus": [now.gpus[key] for key in sorted(now.gpus)],
            "ttft_samples": samples,
        }
