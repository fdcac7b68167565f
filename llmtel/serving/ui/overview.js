// llmtel live page: the overview. Reads /api/overview every few seconds (computed on request by the
// endpoint from the process's own instruments) and draws tiles, tables and the TTFT scatter.
"use strict";

(() => {
  const { el, svg, getJSON, seconds, number, percent, money, bytes, clock, fillRows, cell, setStatus, poll } = llmtel;
  const REFRESH_MS = 2000;
  const COLORS = ["#1f6feb", "#8250df", "#1a7f37", "#bf3989", "#0969da", "#953800", "#57606a"];
  let hoveringChart = false; // the scatter holds still under the pointer, so a dot can be clicked
  let last = null;

  function colorOf(model, models) {
    const index = models.indexOf(model);
    return COLORS[(index < 0 ? models.length : index) % COLORS.length];
  }

  function tile(label, value, sub, bad) {
    return el(
      "div",
      { class: "tile" },
      el("div", { class: "label", text: label }),
      el("div", { class: bad ? "value bad" : "value", text: value }),
      el("div", { class: "sub", text: sub || "\u00a0" }),
    );
  }

  function renderTiles(totals) {
    document.getElementById("tiles").replaceChildren(
      tile("calls / s", number(totals.calls_per_s), `${totals.calls} in the window`),
      tile("error rate", percent(totals.error_ratio), `${Math.round(totals.error_ratio * totals.calls)} failed calls`, totals.error_ratio > 0.05),
      tile("call duration p50", seconds(totals.duration_p50_s), `p95 ${seconds(totals.duration_p95_s)}`),
      tile("TTFT p50 (first chunk)", seconds(totals.ttft_p50_s), `p95 ${seconds(totals.ttft_p95_s)}`),
      tile("input tokens / s", number(totals.input_tokens_per_s, 0), `output ${number(totals.output_tokens_per_s, 0)} / s`),
      tile("cost / hour", money(totals.cost_per_hour), totals.cost_per_hour === null ? "no priced model" : "priced models"),
      tile("active requests", number(totals.active, 0), "in flight now"),
    );
  }

  function renderModels(rows) {
    fillRows(
      document.getElementById("models"),
      rows.map((m) =>
        el(
          "tr",
          {},
          cell(m.model),
          cell(m.provider),
          cell(number(m.calls_per_s), "num"),
          cell(percent(m.error_ratio), m.error_ratio > 0 ? "num bad" : "num"),
          cell(seconds(m.duration_p50_s), "num"),
          cell(seconds(m.duration_p95_s), "num"),
          cell(seconds(m.ttft_p50_s), "num"),
          cell(seconds(m.ttft_p95_s), "num"),
          cell(number(m.input_tokens_per_s, 0), "num"),
          cell(number(m.output_tokens_per_s, 0), "num"),
          cell(money(m.cost_per_hour), "num"),
          cell(number(m.active, 0), "num"),
        ),
      ),
      "No GenAI calls recorded yet.",
    );
    const errors = [];
    for (const m of rows) {
      for (const [kind, perSecond] of Object.entries(m.errors_per_s)) {
        errors.push(el("tr", {}, cell(m.model), cell(kind, "bad"), cell(number(perSecond, 3), "num")));
      }
    }
    fillRows(document.getElementById("errors"), errors, "No errors in the window.");
  }

  function renderLatency(id, rows, emptyText) {
    fillRows(
      document.getElementById(id),
      rows.map((r) =>
        el(
          "tr",
          {},
          cell(r.name),
          cell(number(r.calls_per_s), "num"),
          cell(percent(r.error_ratio), r.error_ratio > 0 ? "num bad" : "num"),
          cell(seconds(r.p50_s), "num"),
          cell(seconds(r.p95_s), "num"),
        ),
      ),
      emptyText,
    );
  }

  function renderGpus(gpus) {
    document.getElementById("gpu-card").hidden = gpus.length === 0;
    fillRows(
      document.getElementById("gpus"),
      gpus.map((g) =>
        el(
          "tr",
          {},
          cell([g.name, g.model].filter(Boolean).join(" · ")),
          cell(percent(g.utilization), "num"),
          cell(bytes(g.memory_used), "num"),
          cell(bytes(g.memory_limit), "num"),
        ),
      ),
      "",
    );
  }

  function niceStep(span, count) {
    const raw = span / count;
    const power = 10 ** Math.floor(Math.log10(raw));
    return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw);
  }

  function renderScatter(data, models) {
    const box = document.getElementById("scatter");
    const samples = data.ttft_samples;
    if (!samples.length) {
      box.replaceChildren(el("p", { class: "empty", text: "No time-to-first-chunk exemplars yet (streamed calls inside sampled spans)." }));
      document.getElementById("legend").replaceChildren();
      return;
    }
    const width = Math.max(box.clientWidth, 320);
    const height = 260;
    const pad = { left: 56, right: 12, top: 10, bottom: 24 };
    const t1 = data.time_s;
    const first = Math.min(...samples.map((s) => s.time_s));
    const t0 = Math.min(first - Math.max((t1 - first) * 0.03, 0.5), t1 - 10);
    const yMax = Math.max(...samples.map((s) => s.value_s), data.totals.ttft_p95_s || 0) * 1.1 || 1;
    const x = (t) => pad.left + ((t - t0) / (t1 - t0 || 1)) * (width - pad.left - pad.right);
    const y = (v) => height - pad.bottom - (v / yMax) * (height - pad.top - pad.bottom);
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "time to first chunk samples" });
    chart.append(svg("line", { class: "axis", x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0) }));
    const yStep = niceStep(yMax, 4);
    for (let v = 0; v <= yMax; v += yStep) {
      chart.append(svg("line", { class: "axis", x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v) }));
      chart.append(svg("text", { class: "tick", x: pad.left - 6, y: y(v) + 4, "text-anchor": "end", text: seconds(v) }));
    }
    const xStep = niceStep(t1 - t0, 6);
    for (let t = Math.ceil(t0 / xStep) * xStep; t <= t1; t += xStep) {
      chart.append(svg("text", { class: "tick", x: x(t), y: height - 6, "text-anchor": "middle", text: clock(t) }));
    }
    const p95 = data.totals.ttft_p95_s;
    if (p95) chart.append(svg("line", { class: "p95", x1: pad.left, x2: width - pad.right, y1: y(p95), y2: y(p95) }));
    const slow = p95 || Infinity;
    for (const s of samples) {
      const dot = svg(
        "circle",
        {
          class: s.error ? "dot error" : "dot",
          cx: x(s.time_s).toFixed(1),
          cy: y(s.value_s).toFixed(1),
          r: s.value_s >= slow ? 6 : 4,
          fill: colorOf(s.model, models),
          "data-trace-id": s.trace_id,
          "data-span-id": s.span_id,
        },
        svg("title", { text: `${s.model}: ${seconds(s.value_s)} at ${clock(s.time_s)}${data.traces ? ". Click to open the trace." : ""}` }),
      );
      if (data.traces) dot.addEventListener("click", () => window.location.assign(`/traces/${s.trace_id}#span-${s.span_id}`));
      chart.append(dot);
    }
    if (p95) {
      // Drawn after the dots, with a halo (CSS), so it stays readable.
      chart.append(svg("text", { class: "p95-label", x: width - pad.right - 4, y: y(p95) - 4, "text-anchor": "end", text: `p95 ${seconds(p95)}` }));
    }
    chart.addEventListener("mouseenter", () => (hoveringChart = true));
    chart.addEventListener("mouseleave", () => (hoveringChart = false));
    box.replaceChildren(chart);
    document.getElementById("legend").replaceChildren(
      ...models.map((m) => el("span", {}, el("span", { class: "swatch", "data-color": colorOf(m, models) }), m)),
      el("span", { text: "larger dots: above p95 · red ring: the call failed" }),
    );
    for (const swatch of document.querySelectorAll(".swatch")) swatch.style.background = swatch.dataset.color;
  }

  function render(data) {
    const note = document.getElementById("note");
    if (!data.metrics) {
      note.hidden = false;
      note.textContent = data.reason || "No metrics collected yet.";
      return;
    }
    note.hidden = true;
    document.getElementById("service").textContent = data.service || "";
    document.getElementById("traces-link").hidden = !data.traces;
    if (data.metrics_path) {
      const link = document.getElementById("metrics-link");
      link.href = data.metrics_path;
      link.textContent = data.metrics_path;
      link.hidden = false;
    }
    document.getElementById("window").textContent = `over the last ${Math.round(data.window_s)} s`;
    const models = data.models.map((m) => m.model);
    renderTiles(data.totals);
    renderModels(data.models);
    renderLatency("tools", data.tools, "No tool calls recorded.");
    renderLatency("retrievals", data.retrievals, "No retrieval queries recorded.");
    renderGpus(data.gpus);
    renderScatter(data, models);
  }

  async function load() {
    if (hoveringChart && last) return;
    const { status, body } = await getJSON("/api/overview");
    if (status !== 200 || !body) {
      setStatus(`overview answered ${status}`, true);
      return;
    }
    last = body;
    render(body);
    setStatus(`updated ${clock(body.time_s || Date.now() / 1000)} · every ${REFRESH_MS / 1000} s`);
  }

  poll(load, REFRESH_MS);
})();
