// llmtel live page: one trace as a waterfall (agent → tool → retrieval → LLM call), from /traces/<id> JSON.
"use strict";

(() => {
  const { el, getJSON, millis, clock, fillRows, setStatus } = llmtel;
  const traceId = window.location.pathname.replace(/^\/traces\//, "").replace(/\/+$/, "");
  const LLM_OPERATIONS = ["chat", "text_completion", "generate_content", "embeddings"];

  function category(span) {
    const operation = span.attributes["gen_ai.operation.name"];
    if (LLM_OPERATIONS.includes(operation)) return "llm";
    if (operation === "execute_tool") return "tool";
    if (operation === "invoke_agent" || operation === "create_agent") return "agent";
    if (operation === "retrieval") return "retrieval";
    return "";
  }

  // Parents before children, siblings by start time; spans whose parent is not stored are roots.
  function ordered(spans) {
    const byId = new Map(spans.map((s) => [s.span_id, s]));
    const children = new Map();
    const roots = [];
    for (const span of spans) {
      if (span.parent_span_id && byId.has(span.parent_span_id)) {
        if (!children.has(span.parent_span_id)) children.set(span.parent_span_id, []);
        children.get(span.parent_span_id).push(span);
      } else {
        roots.push(span);
      }
    }
    const out = [];
    const visit = (span, depth) => {
      out.push([span, depth]);
      for (const child of (children.get(span.span_id) || []).sort((a, b) => a.start_time_unix_nano - b.start_time_unix_nano)) {
        visit(child, depth + 1);
      }
    };
    roots.sort((a, b) => a.start_time_unix_nano - b.start_time_unix_nano).forEach((root) => visit(root, 0));
    return out;
  }

  function show(span, row) {
    for (const other of document.querySelectorAll(".wf-row.selected")) other.classList.remove("selected");
    row.classList.add("selected");
    document.getElementById("details").hidden = false;
    document.getElementById("detail-name").textContent = span.name;
    document.getElementById("detail-meta").textContent =
      `${span.kind} · ${millis(span.duration_ms)} · ${span.status} · span ${span.span_id}`;
    const keys = Object.keys(span.attributes).sort();
    fillRows(
      document.getElementById("attributes"),
      keys.map((key) => {
        const value = span.attributes[key];
        return el("tr", {}, el("td", { text: key }), el("td", { text: typeof value === "string" ? value : JSON.stringify(value) }));
      }),
      "No attributes.",
    );
    document.getElementById("events").replaceChildren(
      ...span.events.map((event) =>
        el(
          "div",
          { class: "event" },
          el("h3", { text: `event: ${event.name}` }),
          el(
            "table",
            { class: "grid kv" },
            el(
              "tbody",
              {},
              ...Object.entries(event.attributes || {}).map(([key, value]) =>
                el("tr", {}, el("td", { text: key }), el("td", { text: typeof value === "string" ? value : JSON.stringify(value) })),
              ),
            ),
          ),
        ),
      ),
    );
  }

  function render(spans) {
    const start = Math.min(...spans.map((s) => s.start_time_unix_nano));
    const end = Math.max(...spans.map((s) => s.end_time_unix_nano));
    const total = Math.max(end - start, 1);
    document.getElementById("trace-meta").textContent =
      `${spans.length} spans · ${millis(total / 1e6)} · started ${clock(start / 1e9)}`;
    const rows = [];
    let selected = null;
    const wanted = window.location.hash.replace(/^#span-/, "");
    for (const [span, depth] of ordered(spans)) {
      const kind = category(span);
      const bar = el("div", { class: `wf-bar ${kind} ${span.status === "ERROR" ? "error" : ""}` });
      bar.style.left = `${((span.start_time_unix_nano - start) / total) * 100}%`;
      bar.style.width = `${(Math.max(span.end_time_unix_nano - span.start_time_unix_nano, 0) / total) * 100}%`;
      const name = el("div", { class: "wf-name", title: span.name }, span.name, el("span", { class: "wf-kind", text: span.kind.toLowerCase() }));
      name.style.paddingLeft = `${depth * 16}px`;
      const row = el(
        "div",
        { class: "wf-row", role: "row", "data-span-id": span.span_id, "data-category": kind, "data-status": span.status },
        name,
        el("div", { class: "wf-track" }, bar),
        el("div", { class: span.status === "ERROR" ? "wf-dur bad" : "wf-dur", text: millis(span.duration_ms) }),
      );
      row.addEventListener("click", () => show(span, row));
      rows.push(row);
      if (span.span_id === wanted || (!wanted && !selected && kind === "llm")) selected = [span, row];
    }
    document.getElementById("waterfall").replaceChildren(...rows);
    if (selected) show(...selected);
  }

  async function load() {
    document.getElementById("trace-id").textContent = traceId;
    document.getElementById("json-link").href = `/traces/${traceId}?format=json`;
    const { status, body } = await getJSON(`/traces/${encodeURIComponent(traceId)}`);
    const note = document.getElementById("note");
    if (status !== 200 || !body || !body.spans) {
      note.hidden = false;
      note.textContent = (body && body.error) || `The endpoint answered ${status}.`;
      setStatus("");
      return;
    }
    render(body.spans);
    setStatus(`loaded ${clock(Date.now() / 1000)}`);
  }

  load().catch((error) => setStatus(`endpoint unreachable (${error.message || error})`, true));
})();
