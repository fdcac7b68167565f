"""Project sessions: tests, lint, typecheck, bench, docs.

The interpreter running nox is used for every session (``python=False`` would
skip the venv; we want an isolated one, so ``python=None`` = current version).
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
INSTRUMENTATIONS = sorted(p for p in (ROOT / "instrumentations").glob("*") if (p / "pyproject.toml").exists())


def _install_all(session: nox.Session) -> None:
    session.install("-e", ".[all,test]")
    for package in INSTRUMENTATIONS:
        session.install("-e", f"{package}[instruments]")


@nox.session(python=None)
def tests(session: nox.Session) -> None:
    """The whole test suite, real-server tests included (needs Debian's prometheus package)."""
    _install_all(session)
    session.run("pytest", "-q", "--durations=15", *session.posargs)
    if not session.posargs:
        session.notify("genai_sources")
        session.notify("genai_sources_openai2")
        session.notify("llmtel_openai_openai2")
        session.notify("tests_oldest_sdk")


@nox.session(python=None)
def tests_oldest_sdk(session: nox.Session) -> None:
    """The suite on the oldest supported OpenTelemetry SDK (constraints/oldest-sdk.txt); ``tests`` runs the newest.

    No azure extra: Azure's exporter pins one SDK minor per release and has none for the oldest.
    Tests of features the older SDK lacks skip with the reason (docs/compatibility.md).
    """
    constraints = ("-c", "constraints/oldest-sdk.txt")
    session.install(*constraints, "-e", ".[aws,gcp,prices,test]")
    for package in INSTRUMENTATIONS:
        session.install(*constraints, "-e", f"{package}[instruments]")
    session.run("pytest", "-q", *(session.posargs or ["tests"]))


@nox.session(python=None)
def genai_sources(session: nox.Session) -> None:
    """GenAI span sources (Anthropic SDK, OpenLLMetry, contrib google-genai): tests/genai_spans and the demo's SDK step.

    Their own venv: installed instrumentors are all loaded by every opentelemetry-instrument start, and
    importing these SDKs would slow down the auto-instrumentation tests of the main suite.
    """
    session.install("-e", ".[all,test,genai-sources]")
    session.run("pytest", "-q", "tests/genai_spans", "tests/test_demo.py", *session.posargs)


@nox.session(python=None)
def genai_sources_openai2(session: nox.Session) -> None:
    """GenAI span sources that need openai<3 (contrib openai-v2, openai-agents-v2): tests/genai_spans in their venv."""
    session.install("-e", ".[test,genai-sources-openai2]")
    session.run("pytest", "-q", "tests/genai_spans", *session.posargs)


@nox.session(python=None)
def llmtel_openai_openai2(session: nox.Session) -> None:
    """llmtel-openai on openai 2.x (httpx), with the real contrib openai-v2 beside it; the main venv has openai 3.x
    (httpx2) and the two majors cannot share one."""
    session.install("-e", ".[test,genai-sources-openai2]", "-e", "instrumentations/llmtel-openai")
    session.run(
        "pytest",
        "-q",
        "tests/instrumentations/test_openai_replay.py",
        "tests/instrumentations/test_openai_instrumentation.py",
        *session.posargs,
    )


@nox.session(python=None)
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install("ruff")
    session.run("ruff", "check", "llmtel", "tests", "benchmarks", "instrumentations", "noxfile.py")
    session.run("ruff", "format", "--check", "llmtel", "tests", "benchmarks", "instrumentations", "noxfile.py")


@nox.session(python=None)
def typecheck(session: nox.Session) -> None:
    """mypy, strict (pyproject's [tool.mypy]) on llmtel/ and on every instrumentation package's sources."""
    _install_all(session)
    session.install("mypy", "types-psutil", "types-protobuf")
    session.run("mypy", "llmtel", *(str((package / "src").relative_to(ROOT)) for package in INSTRUMENTATIONS))


@nox.session(python=None)
def bench(session: nox.Session) -> None:
    """Benchmarks: overhead vs the raw OpenTelemetry SDK and prometheus_client, scrape cost, memory."""
    _install_all(session)
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(python=None)
def docs(session: nox.Session) -> None:
    """Regenerate the docs generated from the registry."""
    session.install("-e", ".")
    session.run("llmtel", "docs")
