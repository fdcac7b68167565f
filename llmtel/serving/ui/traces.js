// llmtel live page: recent traces from the endpoint's in-memory trace store, with error/slow filters.
"use strict";

(() => {
  const { el, getJSON, millis, clock, fillRows, cell, setStatus, poll } = llmtel;
  const form = document.getElementById("filters");
  const params = new URLSearchParams(window.location.search);
  form.elements.error.checked = ["1", "true", "yes", "on"].includes((params.get("error") || "").toLowerCase());
  form.elements.min_duration_ms.value = params.get("min_duration_ms") || "";

  function query() {
    const q = new URLSearchParams();
    if (form.elements.error.checked) q.set("error", "true");
    if (form.elements.min_duration_ms.value) q.set("min_duration_ms", form.elements.min_duration_ms.value);
    return q.toString();
  }

  async function load() {
    const q = query();
    const { status, body } = await getJSON(`/traces${q ? `?${q}` : ""}`);
    if (status !== 200 || !body) {
      setStatus(`traces answered ${status}`, true);
      return;
    }
    fillRows(
      document.getElementById("traces"),
      body.traces.map((t) =>
        el(
          "tr",
          { "data-trace-id": t.trace_id },
          cell(clock(t.start_time_unix_nano / 1e9)),
          el("td", {}, el("a", { href: `/traces/${t.trace_id}`, text: t.name })),
          cell(millis(t.duration_ms), "num"),
          cell(String(t.spans), "num"),
          t.error ? cell(t.error_types.join(", ") || "error", "bad") : cell("ok", "ok"),
          cell(t.models.join(", ")),
          el("td", {}, el("code", { text: t.trace_id })),
        ),
      ),
      "No stored trace matches.",
    );
    setStatus(`${body.traces.length} traces · updated ${clock(Date.now() / 1000)}`);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = query();
    window.history.replaceState(null, "", `/traces${q ? `?${q}` : ""}`);
    load();
  });
  poll(load, 5000);
})();
