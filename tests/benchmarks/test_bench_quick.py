"""The benchmark suite's quick mode runs and prints a complete table (so it cannot rot).

No timing thresholds here: CI machines are noisy. The assertions are on the
shape of the output: every row present, every figure a positive finite number.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

from sdk_features import benchmarked_sdk

ROOT = Path(__file__).resolve().parents[2]

IMPLEMENTATIONS = [
    "llmtel.llm_call",
    "llmtel.llm_call, fast path off",
    "raw SDK, span + metrics",
    "raw SDK, metrics only",
    "prometheus_client, labels()",
    "prometheus_client, pre-bound",
]
DIMENSION_CASES = [
    "llmtel.llm_call",
    "llmtel.llm_call, 2 opted-in keys as keywords",
    "llmtel.llm_call, 2 opted-in keys from llmtel.attributes()",
]
SPAN_GROUPS = ["span metrics: non-GenAI span", "span metrics: GenAI chat span"]
SPAN_CASES = [
    "span, no processor",
    "span + an empty SpanProcessor",
    "span + GenAISpanMetrics, folding included",
    "GenAISpanMetrics.on_end alone",
]
GENAI_SPAN_CASES = ["GenAISpanMetrics.on_end + folding", "llmtel.llm_call, same call, folding included"]
RECORD_GROUPS = ["record: non-streaming", "record: stream 8 chunks", "record: stream 128 chunks", "per streamed chunk"]
SCRAPE_CASES = [
    "llmtel bridge, OpenMetrics + exemplars",
    "llmtel bridge, text 0.0.4",
    "llmtel endpoint, HTTP OpenMetrics gzip",
    "stock OTel exporter, text 0.0.4",
    "prometheus_client Histogram, text 0.0.4",
]
SERIES_CASES = ["llmtel.llm_call, 1 model", "llmtel.llm_call, 300 models"]  # quick: no 2000
SERIES_GROUPS = ["record: series scaling", "record: series scaling, CPU time"]
THREAD_CASES = [
    "llmtel.llm_call, 1 thread",
    "llmtel.llm_call, 8 threads",
    "raw SDK, span + metrics, 1 thread",
    "raw SDK, span + metrics, 8 threads",
]
THREAD_GROUPS = ["record: threads, one series", "record: threads, one series, process CPU"]
CHUNK_PAIR_GROUPS = ["record: per chunk, paired", "record: per chunk, paired, CPU time"]
CHUNK_PAIR_CASES = ["llmtel.llm_call, non-streaming", "llmtel.llm_call, stream 128 chunks"]
#: The wrapper harness's two call shapes (rows only where openai and llmtel-openai are installed).
WRAPPER_GROUPS = [
    f"wrapper: {shape}, {call}"
    for shape in ("OpenAI client, in-memory transport", "fake create")
    for call in ("non-streaming", "stream 8 chunks")
]
WRAPPER_CASES = ["llmtel-openai added", "bare client"]
CHUNK_ROWS = [
    ("chunk cost, paired per round", f"llmtel.llm_call ({clock})") for clock in ("wall time", "thread CPU time")
]
MEMORY_CASES = [
    "SDK histogram + exemplars, llmtel bridge, before scrape",
    "SDK histogram + exemplars, llmtel bridge, after a scrape",
    "SDK histogram, stock OTel exporter, after a scrape",
    "llmtel.llm_call, distinct models (all its series)",
    "prometheus_client Histogram children",
]


@benchmarked_sdk
def test_quick_mode_prints_every_row(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env["LLMTEL_RAISE_INTERNAL_ERRORS"] = "0"  # the suite runs as an application would
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    keys = {(r["group"], r["name"]) for r in rows}

    expected = {(g, name) for g in RECORD_GROUPS for name in IMPLEMENTATIONS}
    expected |= {(g, name) for g in ("scrape: 200 series", "scrape size: 200 series") for name in SCRAPE_CASES}
    expected |= {("memory per 1k series", name) for name in MEMORY_CASES}
    expected |= {(g, name) for g in SPAN_GROUPS for name in SPAN_CASES}
    expected |= {("span metrics: GenAI chat span", name) for name in GENAI_SPAN_CASES}
    expected |= {(f"record: {g}, metric_attributes", name) for g in ("non-streaming", "stream 8 chunks")
                 for name in DIMENSION_CASES}  # fmt: skip
    expected |= {(g, name) for g in SERIES_GROUPS for name in SERIES_CASES}
    expected |= {(g, name) for g in THREAD_GROUPS for name in THREAD_CASES}
    expected |= {(g, name) for g in CHUNK_PAIR_GROUPS for name in CHUNK_PAIR_CASES}
    expected |= set(CHUNK_ROWS)
    scaling = ("llmtel.llm_call, 8 / 1 threads", "raw SDK, span + metrics, 8 / 1 threads",
               "llmtel's ratio / raw SDK's ratio")  # fmt: skip
    expected |= {(g, name) for g in ("thread scaling (8 threads / 1)", "thread scaling (8 threads / 1), process CPU")
                 for name in scaling}  # fmt: skip
    if importlib.util.find_spec("openai") and importlib.util.find_spec("llmtel_openai"):
        expected |= {(g, name) for g in WRAPPER_GROUPS for name in WRAPPER_CASES}
    assert expected <= keys, f"missing rows: {sorted(expected - keys)}"

    for row in rows:
        # Per-chunk rows are differences of two noisy medians (or of paired samples), the wrapper's "added"
        # rows differences of paired samples: a quick run on a busy machine can give a negative one, so only
        # finiteness is asserted for them.
        derived = row["group"] in ("per streamed chunk", CHUNK_ROWS[0][0]) or row["name"].endswith(" added")
        for field in ("median", "low", "high"):
            value = row[field]
            assert isinstance(value, float | int) and math.isfinite(value), (row, field)
            assert derived or value > 0, (row, field)
        assert row["low"] <= row["median"] <= row["high"], row
        if row["ratio"] is not None:
            assert math.isfinite(row["ratio"]) and (derived or row["ratio"] > 0), row
    # Timings are per call in seconds: anything outside 10 ns .. 60 s is a harness bug, not noise.
    for row in rows:
        if row["unit"] in ("µs", "ms"):
            derived = row["group"] in ("per streamed chunk", CHUNK_ROWS[0][0]) or row["name"].endswith(" added")
            assert abs(row["median"]) < 60 and (derived or row["median"] > 1e-8), row
    # Every baseline row has ratio 1 and every timed row a ratio.
    for row in rows:
        if row["group"].startswith(("record:", "scrape:", "per streamed chunk", "span metrics:")):
            assert row["ratio"] is not None, row
        baselines = ("raw SDK, span + metrics", "stock OTel exporter, text 0.0.4", "span, no processor")
        if row["name"] in (*baselines, "llmtel.llm_call, 1 model", "raw SDK, span + metrics, 1 thread"):
            assert row["ratio"] == 1.0, row

    # The printed table has one line per row.
    table_lines = [line for line in proc.stdout.splitlines() if line.startswith("| ") and " | " in line]
    assert len(table_lines) == len(rows) + 1  # + header
    for group, name in expected:
        assert any(f"| {group} | {name} |" in line for line in table_lines), (group, name)
