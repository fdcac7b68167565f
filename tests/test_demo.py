"""`llmtel demo` — the README's main job — emits real telemetry on the embedded endpoint."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from realservers import free_port

from llmtel.cli import main

try:  # the genai-sources extra: the demo then also runs the Anthropic SDK over a fake transport
    import anthropic  # noqa: F401

    SDK_MODEL = 'gen_ai_request_model="claude-haiku-4-5"'
    # A duration bucket of the SDK's calls with an exemplar.
    SDK_EXEMPLAR = (
        r"gen_ai_client_operation_duration_seconds_bucket"
        r'\{[^}]*gen_ai_request_model="claude-haiku-4-5"[^}]*\} \d+(\.\d+)? # \{'
    )
except ImportError:
    SDK_MODEL = SDK_EXEMPLAR = ""


def test_demo_serves_metrics_with_exemplars_that_resolve_to_traces() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmtel", "demo", "--port", str(port), "--duration", "30", "--speed", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        body = ""
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                request = urllib.request.Request(f"{base}/metrics", headers={"Accept": "application/openmetrics-text"})
                body = urllib.request.urlopen(request, timeout=5).read().decode()
            except OSError:
                continue
            ttfc_exemplar = r"gen_ai_client_operation_time_to_first_chunk_seconds_bucket\{[^}]*\} \d+(\.\d+)? # \{"
            if re.search(ttfc_exemplar, body) and re.search(SDK_EXEMPLAR, body):
                break
        families = {f.name: f for f in text_string_to_metric_families(body)}
        for name in (
            "gen_ai_client_operation_duration_seconds",
            "gen_ai_client_token_usage",
            "llmtel_tool_duration_seconds",
            "llmtel_retrieval_duration_seconds",
            "llmtel_agent_duration_seconds",
            "llmtel_gen_ai_client_cost_USD",
        ):
            assert name in families, name
        if SDK_MODEL:  # the Anthropic SDK's own spans, turned into llmtel's call metrics with their exemplars
            sdk = [
                s
                for s in families["gen_ai_client_operation_duration_seconds"].samples
                if s.labels.get("gen_ai_request_model") == "claude-haiku-4-5"
            ]
            assert {s.labels.get("gen_ai_provider_name") for s in sdk} == {"anthropic"}
            assert any(s.labels.get("gen_ai_response_model") == "claude-haiku-4-5-20251001" for s in sdk)
            sdk_exemplar = next(s.exemplar for s in sdk if s.exemplar is not None)
            sdk_trace = json.load(urllib.request.urlopen(f"{base}/traces/{sdk_exemplar.labels['trace_id']}", timeout=5))
            (sdk_span,) = [span for span in sdk_trace["spans"] if span["span_id"] == sdk_exemplar.labels["span_id"]]
            assert sdk_span["name"] == "anthropic.messages.create"  # the exemplar is the SDK's own span
        exemplars = [
            s.exemplar
            for s in families["gen_ai_client_operation_time_to_first_chunk_seconds"].samples
            if s.exemplar is not None
        ]
        assert exemplars, "no TTFC exemplar in the scrape"
        trace_id = exemplars[0].labels["trace_id"]
        assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
        trace = json.load(urllib.request.urlopen(f"{base}/traces/{trace_id}", timeout=5))
        names = {span["name"] for span in trace["spans"]}
        assert any(name.startswith("chat ") for name in names)
        assert exemplars[0].labels["span_id"] in {span["span_id"] for span in trace["spans"]}
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "metrics:" in out and "shutting down" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--speed", "0", "--duration", "1"], "argument --speed: must be a positive"),
        (["demo", "--port", "70000", "--duration", "1"], "argument --port: must be 0-65535"),
        (["dashboard", "-o", "/nonexistent/x.json"], "llmtel dashboard: cannot write /nonexistent/x.json"),
        (["rules", "-o", "/nonexistent/x.json"], "llmtel rules: cannot write /nonexistent/x.json"),
    ],
    ids=["speed-0", "port-70000", "dashboard-bad-path", "rules-bad-path"],
)
def test_bad_command_lines_get_one_clear_error(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage error
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err


def test_progress_line_redraws_only_on_a_terminal() -> None:
    import os
    import pty

    command = [sys.executable, "-m", "llmtel", "demo", "--port", "0", "--duration", "1.1", "--speed", "20"]
    controller, terminal = pty.openpty()
    # Both at once (bytes: text mode would turn "\r" into "\n").
    on_terminal = subprocess.Popen(command, stdout=terminal, stderr=subprocess.DEVNULL)
    piped = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60, check=True).stdout
    assert on_terminal.wait(timeout=60) == 0
    os.close(terminal)
    assert b"\r" not in piped and b"shutting down" in piped  # a log gets whole lines
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal side is closed and drained
            break
        if not chunk:
            break
        seen += chunk
    os.close(controller)
    assert b"\r  " in seen and b"calls " in seen  # the live line, redrawn in place
