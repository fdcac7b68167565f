"""The live page's routes and numbers over real HTTP against an in-process endpoint (no browser).

The browser test (test_browser.py) shows the pages work; these pin what they are served from:
the overview's arithmetic, content negotiation, the off switch, auth/TLS, and what is never served.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import ssl
import sys
import time
from pathlib import Path

import pytest
from bridge_helpers import OPENMETRICS_ACCEPT, TTFC, configured, get, ids, make_certificate, om_families, streamed_call
from opentelemetry.sdk.metrics import MeterProvider

import llmtel
from llmtel.readers.prometheus import PrometheusBridgeReader
from llmtel.serving.overview import Overview, quantile
from llmtel.serving.pages import wants_html

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the test extra installs tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def test_quantile_interpolates_inside_the_bucket_like_histogram_quantile() -> None:
    bounds = (0.1, 0.2, 0.4)
    # 10 samples in (0, 0.1], 10 in (0.1, 0.2], none above: the median is the top of the first bucket.
    assert quantile(0.5, bounds, [10, 10, 0, 0]) == pytest.approx(0.1)
    assert quantile(0.75, bounds, [10, 10, 0, 0]) == pytest.approx(0.15)
    assert quantile(0.95, bounds, [0, 0, 19, 1]) == pytest.approx(0.4)  # +Inf bucket → the highest bound
    assert quantile(0.5, bounds, [0, 0, 0, 0]) is None


def test_wants_html_only_when_html_is_asked_for() -> None:
    assert wants_html(BROWSER_ACCEPT)
    assert not wants_html("*/*")  # curl, urllib
    assert not wants_html("application/json")
    assert not wants_html("")
    assert not wants_html("text/html;q=0.5,application/json")


def _calls(model: str, count: int, *, error_every: int = 0) -> None:
    """``count`` non-streamed calls of 100 input / 10 output tokens; every ``error_every``-th one fails."""
    for index in range(count):
        try:
            with llmtel.llm_call(provider="openai", model=model) as call:
                call.set_usage(input_tokens=100, output_tokens=10)
                if error_every and index % error_every == 0:
                    raise TimeoutError("upstream timed out")
        except TimeoutError:
            pass


def test_overview_counts_calls_errors_tokens_and_cost_per_model() -> None:
    with configured(price_table={"gpt-4o": {"input": 2.5, "output": 10.0}}) as telemetry:
        _calls("gpt-4o", 8, error_every=4)  # 2 of 8 fail
        _calls("llama", 3)
        streamed_call(model="gpt-4o")  # one more, with a time to first chunk
        with llmtel.tool("search"):
            pass
        status, headers, body = get(f"{telemetry.endpoint_url}/api/overview", accept="application/json")
    assert status == 200 and headers["content-type"] == "application/json"
    view = json.loads(body)
    rows = {row["model"]: row for row in view["models"]}
    assert rows["gpt-4o"]["calls"] == 9 and rows["llama"]["calls"] == 3
    assert rows["gpt-4o"]["error_ratio"] == pytest.approx(2 / 9)
    assert list(rows["gpt-4o"]["errors_per_s"]) == ["TimeoutError"]
    assert rows["llama"]["errors_per_s"] == {} and rows["llama"]["cost_per_hour"] is None  # not priced
    seconds = view["window_s"]
    assert rows["gpt-4o"]["calls_per_s"] * seconds == pytest.approx(9)
    assert rows["gpt-4o"]["input_tokens_per_s"] * seconds == pytest.approx(9 * 100 - 100 + 12)
    # 8 calls x (100 in, 10 out) + the streamed call's 12 in, 3 out, at $2.5 / $10 per million tokens.
    cost = (800 * 2.5 + 80 * 10 + 12 * 2.5 + 3 * 10) / 1e6
    assert rows["gpt-4o"]["cost_per_hour"] * seconds / 3600 == pytest.approx(cost)
    assert view["totals"]["calls"] == 12 and view["totals"]["active"] == 0
    assert rows["gpt-4o"]["ttft_p50_s"] is not None and rows["llama"]["ttft_p50_s"] is None
    assert [tool["name"] for tool in view["tools"]] == ["search"]
    assert view["service"] and view["metrics_path"] == "/metrics"


def test_overview_rates_cover_the_window_not_the_process_lifetime() -> None:
    reader = PrometheusBridgeReader()
    provider = MeterProvider(metric_readers=[reader])
    histogram = provider.get_meter("t").create_histogram("gen_ai.client.operation.duration", unit="s")
    overview = Overview(window_s=0.2)
    overview.follow()
    reader.add_collect_listener(overview.observe)
    try:
        for _ in range(50):
            histogram.record(0.5, {"gen_ai.request.model": "m"})
        reader.snapshot()
        time.sleep(0.25)
        reader.snapshot()  # this one is a window after the 50 calls
        for _ in range(5):
            histogram.record(2.0, {"gen_ai.request.model": "m"})
        reader.snapshot()
        row = overview.view()["models"][0]
        assert row["calls"] == 5  # not 55: the window starts at the collection a window ago
        assert row["duration_p50_s"] > 1.28  # the window's calls took 2 s, the older 50 took 0.5 s
    finally:
        provider.shutdown()


def test_snapshot_keeps_exemplars_for_the_next_scrape_and_feeds_the_scatter() -> None:
    with configured() as telemetry:
        call = streamed_call()
        _, _, body = get(f"{telemetry.endpoint_url}/api/overview", accept="application/json")
        samples = json.loads(body)["ttft_samples"]
        assert [(s["trace_id"], s["span_id"]) for s in samples] == [ids(call)]
        # The page's collection took the exemplar from the SDK's reservoir; Prometheus still gets it.
        _, _, scrape = get(telemetry.metrics_url or "", accept=OPENMETRICS_ACCEPT)
        exemplars = [s.exemplar for s in om_families(scrape.decode())[TTFC].samples if s.exemplar]
        assert [e.labels["span_id"] for e in exemplars] == [ids(call)[1]]
        # ... and a scrape's collection feeds the page the same way.
        second = streamed_call()
        get(telemetry.metrics_url or "", accept=OPENMETRICS_ACCEPT)
        _, _, body = get(f"{telemetry.endpoint_url}/api/overview", accept="application/json")
        assert ids(second) in [(s["trace_id"], s["span_id"]) for s in json.loads(body)["ttft_samples"]]


def test_pages_and_negotiation() -> None:
    with configured() as telemetry:
        base = telemetry.endpoint_url
        call = streamed_call()
        trace_id = ids(call)[0]
        status, headers, body = get(f"{base}/", accept=BROWSER_ACCEPT)
        assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
        assert "script-src 'self'" in headers["content-security-policy"]
        assert b'src="/ui/overview.js"' in body and b"http" not in body  # nothing from elsewhere
        for name, kind in (("overview.js", "text/javascript"), ("llmtel.css", "text/css"), ("favicon.svg", "image/")):
            status, headers, _ = get(f"{base}/ui/{name}")
            assert status == 200 and headers["content-type"].startswith(kind), name
        assert get(f"{base}/ui/../endpoint.py")[0] == 404
        # /traces/<id>: HTML for a browser, JSON for everybody else (and for ?format=json).
        status, headers, body = get(f"{base}/traces/{trace_id}", accept=BROWSER_ACCEPT)
        assert status == 200 and headers["content-type"].startswith("text/html") and b"/ui/trace.js" in body
        status, headers, body = get(f"{base}/traces/{trace_id}", accept="*/*")
        assert headers["content-type"] == "application/json" and json.loads(body)["trace_id"] == trace_id
        status, headers, _ = get(f"{base}/traces/{trace_id}?format=json", accept=BROWSER_ACCEPT)
        assert headers["content-type"] == "application/json"
        assert get(f"{base}/traces/{'0' * 31}1", accept=BROWSER_ACCEPT)[0] == 404
        status, headers, _ = get(f"{base}/traces", accept=BROWSER_ACCEPT)
        assert status == 200 and headers["content-type"].startswith("text/html")


def test_trace_list_filters_errors_and_slow_traces() -> None:
    with configured() as telemetry:
        base = telemetry.endpoint_url
        fast = streamed_call(ttfc=0.0)
        slow = streamed_call(ttfc=0.12)
        _calls("gpt-4o", 1, error_every=1)
        listing = json.loads(get(f"{base}/traces", accept="*/*")[2])
        assert len(listing["traces"]) == 3 and len(listing["trace_ids"]) == 3
        errors = json.loads(get(f"{base}/traces?error=true", accept="*/*")[2])["traces"]
        assert [t["error"] for t in errors] == [True] and errors[0]["error_types"] == ["TimeoutError"]
        slow_ones = json.loads(get(f"{base}/traces?min_duration_ms=100", accept="*/*")[2])["traces"]
        assert [t["trace_id"] for t in slow_ones] == [ids(slow)[0]]
        assert ids(fast)[0] not in [t["trace_id"] for t in slow_ones]
        assert slow_ones[0]["models"] == ["gpt-4o"] and slow_ones[0]["name"].startswith("chat ")
        assert len(json.loads(get(f"{base}/traces?limit=1&min_duration_ms=abc", accept="*/*")[2])["traces"]) == 1


@pytest.mark.parametrize("how", ["argument", "variable"])
def test_ui_off_switch(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs = {"ui": False} if how == "argument" else {}
    if how == "variable":
        monkeypatch.setenv("LLMTEL_UI", "false")
    with configured(**kwargs) as telemetry:
        base = telemetry.endpoint_url
        trace_id = ids(streamed_call())[0]
        for path in ("/", "/api/overview", "/ui/overview.js"):
            assert get(f"{base}{path}", accept=BROWSER_ACCEPT)[0] == 404, path
        status, headers, _ = get(f"{base}/traces/{trace_id}", accept=BROWSER_ACCEPT)
        assert status == 200 and headers["content-type"] == "application/json"  # the API stays
        assert get(telemetry.metrics_url or "")[0] == 200


def test_bad_ui_variable_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTEL_UI", "maybe")
    with pytest.raises(llmtel.ConfigurationError, match="LLMTEL_UI"):
        llmtel.configure(prometheus_port=0, gpu_metrics=False, process_metrics=False)


def test_pages_use_the_endpoints_basic_auth_and_tls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    monkeypatch.setenv("LLMTEL_PROMETHEUS_BASIC_AUTH", "ops:s3cret")
    with configured(prometheus_tls_cert=str(cert), prometheus_tls_key=str(key)) as telemetry:
        base = telemetry.endpoint_url
        assert base.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        good = {"Authorization": "Basic " + base64.b64encode(b"ops:s3cret").decode()}
        for path in ("/", "/api/overview", "/ui/overview.js", "/traces"):
            status, headers, _ = get(f"{base}{path}", accept=BROWSER_ACCEPT, context=context)
            assert status == 401 and headers["www-authenticate"].startswith("Basic"), path
            assert get(f"{base}{path}", accept=BROWSER_ACCEPT, headers=good, context=context)[0] == 200, path


def test_overview_never_holds_exception_text_or_content() -> None:
    secret = "sk-live-0123456789 the user's prompt"
    with configured() as telemetry:
        try:
            with llmtel.llm_call(provider="openai", model="gpt-4o") as call:
                raise RuntimeError(secret)
        except RuntimeError:
            pass
        _, _, body = get(f"{telemetry.endpoint_url}/api/overview", accept="application/json")
        _, _, listing = get(f"{telemetry.endpoint_url}/traces", accept="*/*")
    assert call is not None
    assert b"sk-live" not in body and b"prompt" not in body
    assert b"sk-live" not in listing and b"prompt" not in listing
    assert json.loads(body)["models"][0]["errors_per_s"].keys() == {"RuntimeError"}


def test_scrapes_cost_nothing_extra_until_a_page_looks() -> None:
    with configured() as telemetry:
        assert telemetry.endpoint is not None
        first = streamed_call()
        get(telemetry.metrics_url or "", accept=OPENMETRICS_ACCEPT)  # nobody looks: not folded in
        _, _, body = get(f"{telemetry.endpoint_url}/api/overview", accept="application/json")
        samples = [(s["trace_id"], s["span_id"]) for s in json.loads(body)["ttft_samples"]]
        assert ids(first) not in samples  # that scrape took it; the page was not following yet
        second = streamed_call()
        get(telemetry.metrics_url or "", accept=OPENMETRICS_ACCEPT)  # a page looked: scrapes feed it now
        _, _, body = get(f"{telemetry.endpoint_url}/api/overview", accept="application/json")
        assert ids(second) in [(s["trace_id"], s["span_id"]) for s in json.loads(body)["ttft_samples"]]


def test_overview_shows_gpus_when_the_collector_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from collectors.fake_nvml import FakeGpu, FakeNvml  # the collectors' NVML stand-in (no GPU here)

    uuid = "GPU-abcdef01-0000-0000-0000-000000000000"
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([FakeGpu(uuid)]))
    with configured(gpu_metrics=True) as telemetry:
        _, _, body = get(f"{telemetry.endpoint_url}/api/overview", accept="application/json")
    gpus = json.loads(body)["gpus"]
    assert [gpu["id"] for gpu in gpus] == [uuid]
    gpu = gpus[0]
    assert gpu["model"] == "NVIDIA H100 80GB HBM3" and gpu["name"]
    assert gpu["utilization"] == pytest.approx(0.37)
    assert (gpu["memory_used"], gpu["memory_limit"]) == (1_048_576_000, 85_520_809_984)


def test_overview_without_gpus_has_none() -> None:
    with configured(gpu_metrics=False) as telemetry:
        _, _, body = get(f"{telemetry.endpoint_url}/api/overview", accept="application/json")
    view = json.loads(body)
    assert view["metrics"] is True and view["gpus"] == [] and view["models"] == [] and view["totals"]["calls"] == 0


def test_every_page_file_ships_as_package_data() -> None:
    """A wheel holds llmtel/serving/ui/* only through pyproject's package-data globs: none may be missed."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["llmtel.serving"]
    files = sorted(p.relative_to(ROOT / "llmtel/serving").as_posix() for p in (ROOT / "llmtel/serving/ui").iterdir())
    assert {"ui/index.html", "ui/trace.html", "ui/traces.html", "ui/overview.js"} <= set(files)
    assert [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)] == []


def test_frequent_refreshes_keep_history_small() -> None:
    reader = PrometheusBridgeReader()
    provider = MeterProvider(metric_readers=[reader])
    histogram = provider.get_meter("t").create_histogram("gen_ai.client.operation.duration", unit="s")
    overview = Overview()
    overview.follow()
    reader.add_collect_listener(overview.observe)
    try:
        for _ in range(200):  # 200 tabs' worth of refreshes within a fraction of a second
            histogram.record(0.5, {"gen_ai.request.model": "m"})
            reader.snapshot()
        assert len(overview._history) <= 2  # summaries at least HISTORY_STEP_S apart, plus the latest
        assert overview.view()["models"][0]["calls"] == 200
    finally:
        provider.shutdown()


def test_back_to_back_page_requests_collect_once() -> None:
    with configured() as telemetry:
        url = f"{telemetry.endpoint_url}/api/overview"
        streamed_call()
        first = json.loads(get(url, accept="application/json")[2])
        streamed_call()
        second = json.loads(get(url, accept="application/json")[2])  # within a second: the same collection
        assert second["time_s"] == first["time_s"] and second["totals"]["calls"] == first["totals"]["calls"] == 1
        time.sleep(1.05)
        third = json.loads(get(url, accept="application/json")[2])
        assert third["time_s"] > first["time_s"] and third["totals"]["calls"] == 2


def test_no_trace_pages_where_the_trace_api_is_off() -> None:
    with configured(serve_traces=False) as telemetry:
        base = telemetry.endpoint_url
        streamed_call()
        view = json.loads(get(f"{base}/api/overview", accept="application/json")[2])
        assert view["traces"] is False and view["ttft_samples"]  # dots, but the page makes no links of them
        assert get(f"{base}/traces", accept=BROWSER_ACCEPT)[0] == 404
        assert get(f"{base}/traces/{'a' * 32}", accept=BROWSER_ACCEPT)[0] == 404
        assert get(f"{base}/", accept=BROWSER_ACCEPT)[0] == 200
