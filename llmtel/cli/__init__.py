"""The ``llmtel`` command: ``demo``, ``docs``, ``dashboard``, ``rules``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: subcommand → (module, help). Each module defines add_arguments(parser) and run(args) -> int.
COMMANDS = {
    "demo": ("llmtel.cli.demo", "run a simulated LLM workload emitting real telemetry to the embedded endpoint"),
    "docs": (
        "llmtel.cli.docgen",
        "regenerate every generated docs file (metric and option references, dashboards, rules)",
    ),
    "dashboard": ("llmtel.cli.dashboards", "print a Grafana dashboard generated from the registry"),
    "rules": ("llmtel.cli.rules", "print Prometheus recording and alerting rules generated from the registry"),
}


def write_output(text: str, path: str | None, command: str) -> int:
    """Write a generated file to ``path`` (stdout when None): 0, or 2 with a one-line error, never a traceback."""
    if not path:
        sys.stdout.write(text)
        return 0
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        print(f"llmtel {command}: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llmtel`` console script."""
    parser = argparse.ArgumentParser(prog="llmtel", description="OpenTelemetry-native telemetry for LLM apps")
    sub = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # a subcommand whose module is not installed
        modules[name] = module
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    return int(modules[args.command].run(args))


if __name__ == "__main__":
    sys.exit(main())
