"""A fleet, end to end, with real parts: three llmtel instances (two plain processes and a gunicorn
prefork app with one endpoint per worker) → Debian's Prometheus in agent mode (file-based service
discovery) → remote write with exemplars → a central Prometheus evaluating ``llmtel rules``.

The configs are the shipped ones (deploy/prometheus/agent.yml, central.yml) with only addresses,
paths and intervals changed. Asserted on the central server:

* per-instance (per-worker) and fleet-wide call counts are exact;
* ``query_exemplars`` returns the trace id of a call made in a given instance;
* the recording rules aggregate across instances: their series keep ``job`` and the model only
  (``instance``, ``worker``, ``pod`` summed away) and equal the sum of the instances' rates,
  evaluated at the same timestamp (after the agent stopped, so both see the same samples).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from realservers import free_port, free_port_range, prometheus_server, require_binary, stop_process

from llmtel.cli import rules as rules_mod
from llmtel.cli.promql import PromNames, instrument, label
from llmtel.semconv import REQUEST_MODEL

pytestmark = pytest.mark.realserver
pytest.importorskip("gunicorn", reason="gunicorn is in the test extra")

HERE = Path(__file__).resolve().parent
DEPLOY = HERE.parents[1] / "deploy" / "prometheus"
JOB = rules_mod.DEFAULT_JOB  # the shipped agent config's job: the rules' default must watch it
NAMES = PromNames("prometheus", latest=False)
DURATION = instrument("gen_ai.client.operation.duration")
TTFC = instrument("gen_ai.client.operation.time_to_first_chunk")
assert DURATION is not None and TTFC is not None
COUNT = NAMES.count(DURATION)
MODEL = label(REQUEST_MODEL)
T = TypeVar("T")


def _get(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body[:1] in (b"{", b"[") else body


def _wait(what: str, probe: Callable[[], T | None], timeout: float = 30, logs: Callable[[], str] = str) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}\n{logs()}")


def _query(base: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    params = {"query": expr, **({"time": repr(at)} if at is not None else {})}
    doc = _get(f"{base}/api/v1/query?{urllib.parse.urlencode(params)}")
    assert doc["status"] == "success", doc
    return list(doc["data"]["result"])


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT)


def _app_env(metrics_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTEL_"))}
    env.update(
        OTEL_SERVICE_NAME=JOB,
        OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port),
        LLMTEL_PROCESS_METRICS="false",
        LLMTEL_GPU_METRICS="false",
        PYTHONPATH=os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p),
        **extra,
    )
    return env


class Instance:
    """One llmtel process (or prefork app): its app URL and the calls it made, per metrics port."""

    def __init__(self, name: str, app_port: int, metrics_ports: list[int]) -> None:
        self.name, self.url = name, f"http://127.0.0.1:{app_port}"
        self.metrics_ports = metrics_ports
        self.calls: dict[int, int] = dict.fromkeys(metrics_ports, 0)  # metrics port -> calls
        self.trace_ids: dict[int, list[str]] = {p: [] for p in metrics_ports}

    def call(self, n: int, model: str) -> dict[str, Any]:
        doc: dict[str, Any] = _get(f"{self.url}/call?n={n}&model={model}")
        self.calls[doc["port"]] += n
        self.trace_ids[doc["port"]] += doc["trace_ids"]
        return doc


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[list[Instance], subprocess.Popen[bytes] | None]]:
    require_binary("prometheus")
    with ExitStack() as stack:
        instances = []
        for name in ("app-a", "app-b"):
            app_port, metrics_port = free_port(), free_port()
            proc = _start(
                [sys.executable, str(HERE / "fleet_app.py"), str(app_port)],
                _app_env(metrics_port),
                tmp_path / f"{name}.log",
            )
            stack.callback(stop_process, proc)
            instances.append(Instance(name, app_port, [metrics_port]))
        workers = 2
        base, http_port = free_port_range(workers + 1), free_port()
        gunicorn = _start(
            [sys.executable, "-m", "gunicorn", "-c", str(HERE / "gunicorn_conf.py"), "fleet_app:app"],
            _app_env(base, FLEET_BIND=f"127.0.0.1:{http_port}", FLEET_WORKERS=str(workers)),
            tmp_path / "app-g.log",
        )
        stack.callback(stop_process, gunicorn)
        instances.append(Instance("app-g", http_port, list(range(base, base + workers + 1))))

        def logs() -> str:
            return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(tmp_path.glob("*.log")))

        for inst in instances:
            _wait(f"{inst.name} app", lambda inst=inst: _get(inst.url, timeout=1) == b"ok", logs=logs)  # type: ignore[misc]
            for port in inst.metrics_ports:
                _wait(
                    f"{inst.name} /metrics on {port}",
                    lambda p=port: _get(f"http://127.0.0.1:{p}/metrics") is not None,
                    logs=logs,
                )  # type: ignore[misc]
        yield instances, gunicorn


def test_fleet_through_agent_and_remote_write(
    tmp_path: Path, fleet: tuple[list[Instance], subprocess.Popen[bytes]]
) -> None:
    instances, _ = fleet
    a, b, g = instances
    # The recording and alerting rules as shipped (default --job) on the central server.
    rule_file = tmp_path / "llmtel-rules.yaml"
    parser = __import__("argparse").ArgumentParser()
    rules_mod.add_arguments(parser)
    assert rules_mod.run(parser.parse_args(["--no-semconv-latest", "-o", str(rule_file)])) == 0
    central_cfg = yaml.safe_load((DEPLOY / "central.yml").read_text())
    central_cfg["global"]["evaluation_interval"] = "1s"
    central_cfg["rule_files"] = [str(rule_file)]
    (tmp_path / "central").mkdir()
    (tmp_path / "central.yml").write_text(yaml.safe_dump(central_cfg))
    # File-based discovery: one target per endpoint, the prefork app's workers included.
    targets = [
        {"targets": [f"127.0.0.1:{p}" for p in inst.metrics_ports], "labels": {"pod": inst.name}} for inst in instances
    ]
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "llm-app-fleet.json").write_text(json.dumps(targets))

    with ExitStack() as stack:
        central = stack.enter_context(
            prometheus_server(
                tmp_path / "central.yml", tmp_path / "central", extra_args=["--web.enable-remote-write-receiver"]
            )
        )
        agent_cfg = yaml.safe_load((DEPLOY / "agent.yml").read_text())
        agent_cfg["global"]["scrape_interval"] = "1s"
        [job] = agent_cfg["scrape_configs"]
        assert job["job_name"] == JOB
        job["file_sd_configs"][0]["files"] = [str(tmp_path / "targets" / "llm-app-*.json")]
        [remote] = agent_cfg["remote_write"]
        assert remote["send_exemplars"] is True
        remote["url"] = f"{central}/api/v1/write"
        remote["queue_config"]["batch_send_deadline"] = "500ms"
        (tmp_path / "agent").mkdir()
        (tmp_path / "agent.yml").write_text(yaml.safe_dump(agent_cfg))
        agent_stack = stack.enter_context(ExitStack())
        agent_stack.enter_context(prometheus_server(tmp_path / "agent.yml", tmp_path / "agent", agent=True))

        def counts() -> dict[str, float]:
            rows = _query(central, f'sum by (instance) ({COUNT}{{job="{JOB}"}})')
            return {r["metric"]["instance"]: float(r["value"][1]) for r in rows}

        def arrived() -> bool:
            expected = {f"127.0.0.1:{p}": n for i in instances for p, n in i.calls.items() if n}
            got = counts()
            return all(got.get(k) == v for k, v in expected.items())

        # Two rounds, a few scrapes apart, so every series exists before its last increase
        # (rate() needs an increase between two samples to be non-zero).
        for round_calls in ((2, 1, 2), (3, 3, 4)):
            a.call(round_calls[0], "gpt-4o-mini")
            b.call(round_calls[1], "claude-3-5-haiku")
            b.call(1, "gpt-4o-mini")
            for _ in range(round_calls[2]):
                g.call(1, "gpt-4o-mini")
            _wait("the calls at the central Prometheus", arrived, timeout=30)
            time.sleep(2.5)

        # Per instance (and per prefork worker): exact.
        rows = _query(central, f'sum by (instance, pod, worker, cluster) ({COUNT}{{job="{JOB}"}})')
        got = {
            (r["metric"]["pod"], r["metric"]["instance"], r["metric"].get("worker")): float(r["value"][1]) for r in rows
        }
        expected = {}
        for inst in instances:
            for port, n in inst.calls.items():
                if n:
                    worker = str(port - inst.metrics_ports[0]) if inst is g else None
                    expected[(inst.name, f"127.0.0.1:{port}", worker)] = float(n)
        assert got == expected
        assert {r["metric"]["cluster"] for r in rows} == {"prod-eu-1"}  # the agent's external label
        assert sum(n for n in g.calls.values()) == 6 and g.calls[g.metrics_ports[0]] == 0  # master serves none
        # Fleet-wide: exact.
        [fleet_total] = _query(central, f'sum({COUNT}{{job="{JOB}"}})')
        assert float(fleet_total["value"][1]) == 5 + 6 + 6

        # Exemplars came through remote write: the TTFC bucket of instance B links to B's own calls.
        b_instance = f"127.0.0.1:{b.metrics_ports[0]}"
        b_ids = set(b.trace_ids[b.metrics_ports[0]])
        others = {t for inst in (a, g) for ids in inst.trace_ids.values() for t in ids}

        def exemplar_ids() -> set[str]:
            now = time.time()
            params = urllib.parse.urlencode(
                {"query": f'{NAMES.bucket(TTFC)}{{instance="{b_instance}"}}', "start": now - 300, "end": now + 5}
            )
            doc = _get(f"{central}/api/v1/query_exemplars?{params}")
            return {e["labels"]["trace_id"] for s in doc["data"] for e in s["exemplars"]}

        ids = _wait("exemplars at the central Prometheus", exemplar_ids, timeout=20)
        assert ids & b_ids, (ids, b_ids)
        assert not ids & others and ids <= b_ids

        # Recording rules: stop the agent so no sample arrives any more, let the rules run over the
        # settled data, then compare a recorded value with the per-instance rates at its timestamp.
        agent_stack.close()
        time.sleep(3)
        rule = next(
            r["record"]
            for grp in yaml.safe_load(rule_file.read_text())["groups"]
            for r in grp["rules"]
            if r.get("record", "").startswith("job") and r["record"].endswith(f":{COUNT}:rate5m")
        )
        recorded = _query(central, f"{rule}")
        by_model = {r["metric"][MODEL]: r for r in recorded}
        assert set(by_model) == {"gpt-4o-mini", "claude-3-5-haiku"}
        for r in recorded:  # instance, worker, pod (and the agent's cluster) are aggregated away
            assert set(r["metric"]) == {"__name__", "job", MODEL}, r["metric"]
            assert r["metric"]["job"] == JOB
        stamps = {m: float(_query(central, f'timestamp({rule}{{{MODEL}="{m}"}})')[0]["value"][1]) for m in by_model}
        for model, stamp in stamps.items():
            value = float(_query(central, f'{rule}{{{MODEL}="{model}"}}', at=stamp)[0]["value"][1])
            per_instance = _query(central, f'rate({COUNT}{{job="{JOB}", {MODEL}="{model}"}}[5m])', at=stamp)
            rates = {r["metric"]["instance"]: float(r["value"][1]) for r in per_instance}
            assert value > 0
            assert value == pytest.approx(sum(rates.values()), rel=1e-9), (model, value, rates)
            if model == "gpt-4o-mini":  # A and B (both rounds) and the prefork workers: a sum over instances
                assert len([v for v in rates.values() if v > 0]) >= 2 and value > max(rates.values())
