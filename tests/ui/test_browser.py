"""The live page in a real browser: Debian's Chromium, headless, driven by Playwright's Python API.

The overview runs against a real ``llmtel demo`` (a subprocess on a free port): it must fill in from
the process's own instruments, show time-to-first-chunk dots, and a click on a dot must open that
call's trace with the llm_call span the dot's exemplar points at. Screenshots land in the test's
tmp directory (kept by pytest; the path is printed) and in ``test-artifacts/`` when that variable
``LLMTEL_TEST_ARTIFACTS`` names a directory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from realservers import free_port, stop_process

CHROMIUM = "/usr/bin/chromium"


def _chromium() -> str:
    if shutil.which(CHROMIUM) is None:
        message = "Debian's chromium is not installed (apt-get install -y --no-install-recommends chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}, and CI=true requires it")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the test extra) is not installed")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root; --disable-dev-shm-usage: containers often have a tiny /dev/shm.
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def demo() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llmtel", "demo", "--port", str(port), "--quiet", "--duration", "120", "--speed", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"demo did not come up: {process.stderr.read()!r}") from None
                time.sleep(0.2)
        yield base
    finally:
        stop_process(process)


def _artifact_dir(tmp_path: Path) -> Path:
    wanted = os.environ.get("LLMTEL_TEST_ARTIFACTS")
    directory = Path(wanted) if wanted else tmp_path
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _watch(page: Any, base: str) -> tuple[list[str], list[str]]:
    """Collect console errors, page errors and any request that leaves the endpoint."""
    errors: list[str] = []
    foreign: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: None if request.url.startswith(base) else foreign.append(request.url))
    return errors, foreign


def test_overview_dot_opens_its_trace(browser: Any, demo: str, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    artifacts = _artifact_dir(tmp_path)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors, foreign = _watch(page, demo)
    page.goto(f"{demo}/")

    # Data arrives by itself: the per-model table fills in and dots appear, with no reload.
    page.wait_for_selector("#models tbody tr td.num", timeout=15_000)
    # (Waiting by selector, not wait_for_function: the page's CSP refuses string evaluation, as it should.)
    page.locator("#scatter circle.dot").nth(4).wait_for(timeout=15_000)
    models = page.locator("#models tbody tr td:first-child").all_inner_texts()
    assert {"gpt-4o-mini", "claude-3-5-haiku", "llama-3.1-8b"} & set(models), models
    calls_tile = page.locator(".tile").first.locator(".value").inner_text()
    assert float(calls_tile) > 0, calls_tile
    assert page.locator("#tools tbody tr td:first-child").first.inner_text() == "lookup_order"
    assert page.locator("#retrievals tbody tr td:first-child").first.inner_text() == "product-docs"
    status = page.locator("#status")
    assert re.match(r"updated \d\d:\d\d:\d\d", status.inner_text())
    sync_api.expect(status).not_to_have_text(status.inner_text(), timeout=6_000)  # it refreshed by itself
    page.screenshot(path=str(artifacts / "overview.png"), full_page=True)

    # A dot no other dot covers, found where the mouse will click it.
    target = page.evaluate(
        """() => {
          for (const dot of [...document.querySelectorAll('#scatter circle.dot')].reverse()) {
            const box = dot.getBoundingClientRect();
            const x = box.left + box.width / 2, y = box.top + box.height / 2;
            if (document.elementFromPoint(x, y) === dot) return {trace: dot.dataset.traceId, span: dot.dataset.spanId};
          }
          return null;
        }"""
    )
    assert target is not None, "every dot is covered by another"
    dot = page.locator(f'#scatter circle.dot[data-trace-id="{target["trace"]}"][data-span-id="{target["span"]}"]')
    dot.hover()  # the chart holds still under the pointer
    dot.click()
    page.wait_for_url(f"**/traces/{target['trace']}**", timeout=10_000)

    # The trace page (HTML, as the browser asked) shows the llm_call span the exemplar named.
    row = page.locator(f'.wf-row[data-span-id="{target["span"]}"]')
    row.wait_for(timeout=10_000)
    assert page.locator("#trace-id").inner_text() == target["trace"]
    assert row.get_attribute("data-category") == "llm"
    assert re.match(r"(chat|text_completion|generate_content) ", row.locator(".wf-name").inner_text())
    assert "selected" in (row.get_attribute("class") or "")
    attributes = page.locator("#attributes").inner_text()
    assert "gen_ai.request.model" in attributes and "gen_ai.usage.input_tokens" in attributes
    categories = set(page.locator(".wf-row").evaluate_all("rows => rows.map(r => r.dataset.category)"))
    assert {"agent", "tool", "retrieval", "llm"} <= categories, categories
    page.screenshot(path=str(artifacts / "trace.png"), full_page=True)

    # The recent-traces list, filtered to errors.
    page.goto(f"{demo}/traces?error=true")
    page.wait_for_selector("#traces tbody tr[data-trace-id]", timeout=15_000)
    statuses = page.locator("#traces tbody tr td:nth-child(5)").all_inner_texts()
    assert statuses and all(status != "ok" for status in statuses), statuses
    page.screenshot(path=str(artifacts / "traces.png"), full_page=True)

    assert errors == [], errors
    assert foreign == [], foreign
    print(f"screenshots: {artifacts}")


def test_recorded_values_are_shown_as_text_never_run(browser: Any, tmp_path: Path) -> None:
    """A tool name (any recorded value) holding markup appears verbatim on the trace page; no script runs.

    Content capture is off (the default): the failed call's exception text is not on the page either.
    """
    from bridge_helpers import configured, ids, streamed_call

    import llmtel

    payload = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'
    secret = "sk-live-0123456789abcdef"
    with configured() as telemetry:
        with llmtel.agent("support"):
            with llmtel.tool(payload):
                pass
            call = streamed_call()
            try:
                with llmtel.llm_call(provider="openai", model="gpt-4o"):
                    raise PermissionError(f"bad key {secret}")
            except PermissionError:
                pass
        trace_id, _ = ids(call)
        page = browser.new_page()
        errors, foreign = _watch(page, telemetry.endpoint_url)
        page.goto(f"{telemetry.endpoint_url}/traces/{trace_id}")
        row = page.locator(".wf-row", has_text="execute_tool")
        row.wait_for(timeout=10_000)
        assert payload in row.locator(".wf-name").inner_text()
        row.click()
        assert payload in page.locator("#attributes").inner_text()
        assert page.title() != "pwned" and page.locator("#waterfall img, #attributes img").count() == 0
        page.locator('.wf-row[data-status="ERROR"]').click()
        assert "PermissionError" in page.locator("#details").inner_text()
        assert secret not in page.locator("body").inner_text()
        page.screenshot(path=str(_artifact_dir(tmp_path) / "markup-as-text.png"), full_page=True)
        page.close()
    assert errors == [] and foreign == [], (errors, foreign)
