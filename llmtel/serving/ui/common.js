// llmtel live page: shared helpers. Plain JavaScript, no framework; every value reaches the page
// through textContent or an attribute, never as markup.
"use strict";

const llmtel = (() => {
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = String(value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children) node.append(child);
    return node;
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    return { status: response.status, body };
  }

  function seconds(value) {
    if (value === null || value === undefined) return "—";
    if (value < 1) return `${(value * 1000).toFixed(value < 0.01 ? 1 : 0)} ms`;
    return `${value.toFixed(2)} s`;
  }

  function millis(value) {
    return value === null || value === undefined ? "—" : seconds(value / 1000);
  }

  function number(value, digits = 2) {
    if (value === null || value === undefined) return "—";
    if (value >= 1000) return Math.round(value).toLocaleString("en-US");
    return value.toFixed(digits);
  }

  function percent(value) {
    return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)} %`;
  }

  function money(value) {
    return value === null || value === undefined ? "—" : `$${value.toFixed(value < 1 ? 4 : 2)}`;
  }

  function bytes(value) {
    if (value === null || value === undefined) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (value >= 1024 && i < units.length - 1) {
      value /= 1024;
      i += 1;
    }
    return `${value.toFixed(i ? 1 : 0)} ${units[i]}`;
  }

  function clock(unixSeconds) {
    return new Date(unixSeconds * 1000).toLocaleTimeString("en-GB", { hour12: false });
  }

  function fillRows(table, rows, emptyText) {
    const body = table.tBodies[0];
    const columns = table.tHead ? table.tHead.rows[0].cells.length : 1;
    body.replaceChildren(
      ...(rows.length ? rows : [el("tr", {}, el("td", { class: "empty", colspan: columns, text: emptyText }))]),
    );
  }

  function cell(text, cls) {
    return el("td", { class: cls, text });
  }

  function setStatus(text, stale) {
    const node = document.getElementById("status");
    if (!node) return;
    node.textContent = text;
    node.classList.toggle("stale", Boolean(stale));
  }

  // Poll `load` every `intervalMs` (never two at once); pause while the tab is hidden.
  function poll(load, intervalMs) {
    let timer = null;
    async function tick() {
      timer = null;
      if (!document.hidden) {
        try {
          await load();
        } catch (error) {
          setStatus(`endpoint unreachable (${error.message || error})`, true);
        }
      }
      timer = setTimeout(tick, intervalMs);
    }
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && timer !== null) {
        clearTimeout(timer);
        tick();
      }
    });
    tick();
  }

  return { el, svg, getJSON, seconds, millis, number, percent, money, bytes, clock, fillRows, cell, setStatus, poll };
})();
