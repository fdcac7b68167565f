"""Run the benchmark suite and print one table: ``python -m benchmarks [--quick] [--only record,spans,scrape,memory]``.

``--quick`` runs every benchmark with few rounds and small sizes (CI keeps it
from rotting; its timings are not meant to be quoted). The full run is what
docs/performance.md reports.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib.metadata import version

from benchmarks.harness import Row, render, rows_from

SECTIONS = ("record", "spans", "scrape", "memory", "import", "wrapper")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in (
        "opentelemetry-sdk",
        "opentelemetry-exporter-prometheus",
        "prometheus_client",
    ):
        try:
            out[dist] = version(dist)
        except Exception:  # a missing dist is just not listed
            pass
    return out


def per_chunk_rows(rows: list[Row]) -> list[Row]:
    """(2): (streaming - non-streaming) / chunks, and the marginal (128 - 8) / 120, per implementation."""

    def table(group: str) -> dict[str, Row]:
        return {r.name: r for r in rows if r.group == group}

    plain, s8, s128 = (table(f"record: {g}") for g in ("non-streaming", "stream 8 chunks", "stream 128 chunks"))
    out = []
    for name in plain:
        if name not in s8 or name not in s128:
            continue
        per = (s128[name].median - plain[name].median) / 128
        marginal = (s128[name].median - s8[name].median) / 120
        out.append(
            Row(
                "per streamed chunk",
                name,
                per,
                min(per, marginal),
                max(per, marginal),
                "µs",
                note=f"(128 - plain)/128; marginal (128 - 8)/120 = {marginal * 1e6:.2f} µs",
            )
        )
    base = {r.name: r.median for r in out}.get("raw SDK, span + metrics")
    for row in out:
        row.ratio = row.median / base if base else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few rounds, small sizes (CI)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument(
        "--series", default=None, help="scrape sizes, e.g. 1000,10000 (default: 1000,10000; quick: 200)"
    )
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this path")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")

    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()), flush=True)
    rows: list[Row] = []
    if "record" in only:
        import llmtel
        from benchmarks import record

        telemetry = record.configure()
        try:
            results = record.run(telemetry, quick=args.quick)
            rows += rows_from(results)
            rows += per_chunk_rows(rows)
            rows += record.chunk_rows(results)
            rows += record.thread_rows(results)
        finally:
            llmtel.shutdown()
    if "spans" in only:
        import llmtel
        from benchmarks import record, spans

        record.configure()  # the processor records into llmtel's configured instruments
        try:
            rows += rows_from(spans.run(quick=args.quick))
        finally:
            llmtel.shutdown()
    if "scrape" in only:
        from benchmarks import scrape

        sizes = [int(s) for s in args.series.split(",")] if args.series else ([200] if args.quick else [1000, 10000])
        rows += scrape.run(sizes, quick=args.quick)
    if "memory" in only:
        from benchmarks import memory

        rows += memory.run(series=200 if args.quick else 1000)
    if "import" in only:
        from benchmarks import importtime

        rows += importtime.run(quick=args.quick)
    if "wrapper" in only:
        import llmtel
        from benchmarks import record, wrapper

        record.configure()
        try:
            rows += wrapper.run(quick=args.quick)
        finally:
            llmtel.shutdown()
    print(render(rows), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"versions": versions(), "rows": [r.__dict__ for r in rows]}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
